r"""Weighted particle measures, the witness of the MMD and the explicit Wasserstein (position) step.

:math:`f_\mu(z) = \int k(z, x)\,d\mu(x) - \int k(z, y)\,d\pi(y)` (:func:`witness`), its gradient, and
:func:`position_step`, the Wasserstein half of the IFT/WFR splitting (see :mod:`mmdflow.wfr`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._checks import check_points, check_positive, check_same_space, check_weights
from ..kernels import RadialKernel
from ..summation import Backend, kernel_sum, kernel_sum_grad

__all__ = ["WeightedParticles", "WITNESS_BACKEND", "NOISE_VARIANTS", "witness", "witness_gradient",
           "wasserstein_velocity", "authors_lr_to_tau", "position_step"]

#: the two noise-injection updates of the noisy MMD flow (:class:`NoiseSchedule`, :func:`position_step`).
NOISE_VARIANTS = ("arbel", "authors")
#: the default ``backend=`` of :func:`witness`, :func:`witness_gradient` and :func:`position_step` (and of
#: ``WFRConfig.witness_backend``), a backend of :mod:`mmdflow.summation`: a constant, bound as the default when those
#: functions and the config are defined and never read at call time (to choose another backend, pass ``backend=`` or
#: ``WFRConfig(witness_backend=...)``; reassigning this name changes nothing). ``"blocked"``
#: is exact and forms :math:`\sum_j v_j\nabla_1k(z_i, y_j) = [(C\mathbf 1)z - Cy]_i`,
#: :math:`C_{ij} = 2\phi'(s_{ij})v_j`, from one ``[P, M]`` distance block and one GEMM. ``"auto"`` picks the
#: ``[P, M, d]`` dense reference at the sizes of chapter 6, measured 4-6x slower per gradient for d = 2
#: (N = 128-200) and 17x slower for d = 100 (N = 100).
WITNESS_BACKEND = "blocked"


# ----------------------------------------------------------------------------------------------
# weighted particle measures
# ----------------------------------------------------------------------------------------------
class WeightedParticles(NamedTuple):
    r"""A weighted particle measure :math:`\mu = \sum_i w_i\delta_{x_i}`.

    Attributes:
        x: positions ``[N, d]``.
        w: weights ``[N]`` on the probability simplex.
    """

    x: torch.Tensor
    w: torch.Tensor

    @classmethod
    def uniform(cls, x: torch.Tensor) -> "WeightedParticles":
        """Particles ``x`` ``[N, d]`` with weights ``1/N``.

        Args:
            x: positions ``[N, d]``.

        Returns:
            The :class:`WeightedParticles`.
        """
        check_points(x, "x")
        return cls(x, check_weights(None, x))

    def checked(self) -> "WeightedParticles":
        """Validate shapes, finiteness and the simplex constraint; returns ``self``.

        Returns:
            ``self``.

        Raises:
            ValueError: invalid positions or weights off the simplex.
        """
        check_points(self.x, "x")
        check_weights(self.w, self.x, "w")
        return self


# ----------------------------------------------------------------------------------------------
# kernels, witness, velocities
# ----------------------------------------------------------------------------------------------
def witness(z: torch.Tensor, x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel,
            w: torch.Tensor | None = None, v: torch.Tensor | None = None, *,
            backend: str | Backend = WITNESS_BACKEND) -> torch.Tensor:
    r"""The witness :math:`f_\mu(z) = \sum_j w_j k(z, x_j) - \sum_l v_l k(z, y_l)`, the first variation of
    :math:`\tfrac12\mathrm{MMD}^2(\mu, \pi)` (Arbel et al. 2019, Sec. 2; Gladin et al. 2024, Sec. 3).

    The two kernel sums by :func:`mmdflow.summation.kernel_sum`.

    Args:
        z: evaluation points ``[P, d]``.
        x, w: particles ``[N, d]`` and weights ``[N]``.
        y, v: target samples ``[M, d]`` and weights ``[M]`` (``None`` = uniform).
        kernel: the kernel :math:`k` (from :mod:`mmdflow.kernels`).
        backend: the summation backend of both sums (default :data:`WITNESS_BACKEND`).

    Returns:
        ``[P]`` tensor, dtype and device of ``z``.

    Raises:
        TypeError: points that are not floating tensors, or weights of another dtype or device.
        ValueError: points that are not finite ``[*, d]`` tensors of one space, or weights off the simplex.
    """
    w, v = _check_witness_inputs(z, x, y, w, v)
    return kernel_sum(z, x, kernel, w, backend=backend) - kernel_sum(z, y, kernel, v, backend=backend)


def witness_gradient(z: torch.Tensor, x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel,
                     w: torch.Tensor | None = None, v: torch.Tensor | None = None, *,
                     backend: str | Backend = WITNESS_BACKEND) -> torch.Tensor:
    r""":math:`\nabla f_\mu(z) = \sum_j w_j\nabla_1k(z, x_j) - \sum_l v_l\nabla_1k(z, y_l)`, shape ``[P, d]``.

    The two gradient sums by :func:`mmdflow.summation.kernel_sum_grad` with ``backend`` (default
    :data:`WITNESS_BACKEND`; no autograd graph); shapes and weights as in :func:`witness`.

    Args:
        z: evaluation points ``[P, d]``.
        x: particles ``[N, d]``.
        y: target samples ``[M, d]``.
        kernel: the kernel :math:`k` (from :mod:`mmdflow.kernels`).
        w: particle weights ``[N]``; ``None``: uniform.
        v: target weights ``[M]``; ``None``: uniform.
        backend: the summation backend of both gradient sums (default :data:`WITNESS_BACKEND`).

    Returns:
        ``[P, d]`` tensor (detached), dtype and device of ``z``.

    Raises:
        TypeError: points that are not floating tensors, or weights of another dtype or device.
        ValueError: points that are not finite ``[*, d]`` tensors of one space, or weights off the simplex.
    """
    w, v = _check_witness_inputs(z, x, y, w, v)
    return kernel_sum_grad(z, x, kernel, w, backend=backend) - kernel_sum_grad(z, y, kernel, v, backend=backend)


def _check_witness_inputs(z, x, y, w, v) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``z``, ``x``, ``y`` (one space); return the weights ``w`` ``[N]``, ``v`` ``[M]`` (``None`` = uniform)."""
    check_points(z, "z")
    check_points(x, "x")
    check_points(y, "y")
    check_same_space(z, x, ("z", "x"))
    check_same_space(z, y, ("z", "y"))
    return check_weights(w, x, "w"), check_weights(v, y, "v")


def wasserstein_velocity(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel,
                         w: torch.Tensor | None = None, v: torch.Tensor | None = None, *,
                         backend: str | Backend = WITNESS_BACKEND) -> torch.Tensor:
    r"""Velocity of the Wasserstein gradient flow of :math:`\tfrac12\mathrm{MMD}^2`: :math:`-\nabla f_\mu(x_i)`, ``[N, d]``.

    This is the MMD flow of Arbel et al. (2019), Eq. (9), for weighted particles (``backend`` as in
    :func:`witness_gradient`).

    Args:
        x: particles ``[N, d]`` (also the evaluation points ``z`` of :func:`witness_gradient`).
        y, kernel, w, v, backend: as in :func:`witness_gradient`.

    Returns:
        ``[N, d]`` tensor (detached), dtype and device of ``x``.

    Raises:
        TypeError, ValueError: as :func:`witness_gradient`.
    """
    return -witness_gradient(x, x, y, kernel, w, v, backend=backend)


def authors_lr_to_tau(lr: float, n: int) -> float:
    r"""The Wasserstein step :math:`\tau_\mathrm{eff} = 2\,\mathrm{lr}/N` equivalent to the authors' learning rate.

    The official IFT code updates :math:`X \leftarrow X - \mathrm{lr}\,\nabla_X\mathrm{MMD}^2(w, X; Y)`
    and :math:`\partial\mathrm{MMD}^2/\partial x_i = 2w_i\nabla f_\mu(x_i)`; for :math:`w = 1/N` this is a
    step :math:`2\,\mathrm{lr}/N` along the Wasserstein velocity (``lr = 1e4``, ``N = 1e4`` gives 2).

    Args:
        lr: the authors' learning rate.
        n: the number of particles ``N``.

    Returns:
        :math:`\tau_\mathrm{eff}` as a float.
    """
    return 2.0 * check_positive(lr, "lr") / check_positive(n, "n")


def position_step(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, tau: float,
                  w: torch.Tensor | None = None, v: torch.Tensor | None = None, *,
                  scaling: str = "pure", noise: torch.Tensor | None = None,
                  noise_variant: str = "arbel", backend: str | Backend = WITNESS_BACKEND) -> torch.Tensor:
    r"""One explicit Wasserstein step for :math:`\tfrac12\mathrm{MMD}^2(\mu, \pi)` on the positions.

    * ``scaling="pure"``: :math:`x_i \leftarrow x_i - \tau\nabla f_\mu(x_i + \xi_i)`, the forward Euler
      step of :math:`\dot x_i = -\nabla f_\mu(x_i)` (the particle form of the Wasserstein part of IFT,
      :math:`\tau = \alpha h`).
    * ``scaling="weighted"``: :math:`x_i \leftarrow x_i - \tau N w_i\nabla f_\mu(x_i + \xi_i)`, the
      authors' code (a Euclidean gradient step on :math:`\mathrm{MMD}^2(w, X)` with
      :math:`\mathrm{lr} = \tau N/2`, see :func:`authors_lr_to_tau`).

    ``noise`` :math:`\xi` ``[N, d]`` (``None`` = 0) implements the noise injection of Arbel et al.
    (2019), Sec. 4 / Eq. (17): with ``noise_variant="arbel"`` the witness is built from the un-noised
    :math:`\mu`, its gradient is evaluated at the perturbed points; with ``noise_variant="authors"`` (the
    official IFT code) the witness is that of the perturbed measure :math:`\tilde\mu = \sum_j w_j\delta_{x_j+\xi_j}`,
    :math:`x_i \leftarrow x_i - \tau (Nw_i)^{[\mathrm{weighted}]}\nabla f_{\tilde\mu}(x_i + \xi_i)`.

    Args:
        x: positions ``[N, d]``.
        y: target samples ``[M, d]``.
        kernel: the kernel :math:`k` (from :mod:`mmdflow.kernels`).
        tau: step size :math:`\ge 0`.
        w: particle weights ``[N]``; ``None``: uniform.
        v: target weights ``[M]``; ``None``: uniform.
        scaling: ``"pure"`` or ``"weighted"`` (see above).
        noise: the perturbation :math:`\xi` ``[N, d]``, or ``None`` (no noise).
        noise_variant: ``"arbel"`` or ``"authors"`` (:data:`NOISE_VARIANTS`; used only with ``noise``).
        backend: the summation backend of the witness gradient (default :data:`WITNESS_BACKEND`).

    Returns:
        new positions ``[N, d]`` (dtype/device of ``x``).

    Raises:
        ValueError: a negative or non-finite ``tau``, an unknown ``scaling`` or ``noise_variant``, ``noise`` of
            another shape than ``x``, or invalid points or weights.
    """
    check_points(x, "x")
    tau = float(tau)
    if not math.isfinite(tau) or tau < 0:
        raise ValueError(f"tau must be a finite non-negative number, got {tau!r}")
    if scaling not in ("pure", "weighted"):
        raise ValueError(f"scaling must be 'pure' or 'weighted', got {scaling!r}")
    if noise_variant not in NOISE_VARIANTS:
        raise ValueError(f"noise_variant must be one of {NOISE_VARIANTS}, got {noise_variant!r}")
    w = check_weights(w, x, "w")
    z = x
    if noise is not None:
        if noise.shape != x.shape:
            raise ValueError(f"noise must have the shape of x {tuple(x.shape)}, got {tuple(noise.shape)}")
        z = x + noise
    g = witness_gradient(z, z if noise_variant == "authors" else x, y, kernel, w, v, backend=backend)
    if scaling == "weighted":
        g = g * (x.shape[0] * w)[:, None]
    return x - tau * g
