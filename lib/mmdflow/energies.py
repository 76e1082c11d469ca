r"""Interaction energy, potential energy and the discrepancy (MMD) of weighted point clouds.

Normalisation of Altekrüger, Hertrich, Steidl (ICML 2023), Sec. 2, for a kernel
:math:`K` and probability measures :math:`\mu = \sum_i w_i\delta_{x_i}`,
:math:`\nu = \sum_j v_j\delta_{y_j}`:

.. math::
    \mathcal E_K(\mu) = \tfrac12 \iint K\,d\mu\,d\mu, \qquad
    \mathcal V_{K,\nu}(\mu) = -\iint K(x, y)\,d\nu(y)\,d\mu(x),

.. math::
    \mathcal D_K^2(\mu, \nu) = \mathcal E_K(\mu) + \mathcal V_{K,\nu}(\mu) + \mathcal E_K(\nu)
    = \tfrac12 \iint K\,d(\mu-\nu)\,d(\mu-\nu),

which is **half** the textbook :math:`\mathrm{MMD}^2 = \|m_\mu - m_\nu\|^2_{\mathcal H}`
(:func:`mmd2`). All sums are V-statistics (the diagonal ``i = j`` included);
for the Riesz kernel the diagonal vanishes anyway.

The Wasserstein gradient of a functional :math:`F` at particle :math:`x_i` is
:math:`\nabla\frac{\delta F}{\delta\mu}(x_i)`; the particle velocity is its
negative. For :math:`F = \mathcal D_K^2(\cdot,\nu)`:
:math:`\frac{\delta F}{\delta\mu}(z) = \int K(z, x)\,d\mu(x) - \int K(z, y)\,d\nu(y)`.

Every function takes ``(N, d)`` tensors, optional weights (``None`` = uniform),
and returns tensors on the inputs' device and dtype. The functions live in :mod:`mmdflow.energy_functions`
(exported here too); this module holds the :class:`Energy` protocol and the energy objects the schemes use.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ._checks import check_points, check_weights
from .energy_functions import (discrepancy, discrepancy_gradient, energy_distance, interaction_energy,
                               interaction_gradient, mmd2, potential_energy, potential_gradient)
from .kernels import RadialKernel
from .summation import Backend, directional_derivative, double_sum, kernel_sum
from .summation.dispatch import directional_terms, pair_terms
from .trajectory import digest
from .summation.sliced import check_sliced_kernel, sliced_discrepancy_and_gradient

__all__ = [
    "Energy",
    "check_energy",
    "interaction_energy",
    "potential_energy",
    "discrepancy",
    "mmd2",
    "energy_distance",
    "interaction_gradient",
    "potential_gradient",
    "discrepancy_gradient",
    "InteractionEnergy",
    "DiscrepancyEnergy",
    "SlicedDiscrepancyEnergy",
]


@runtime_checkable
class Energy(Protocol):
    r"""What a scheme asks of a functional :math:`F` of a weighted point cloud :math:`\mu = \sum_i w_i\delta_{x_i}`.

    Every energy has :meth:`value` and :meth:`fingerprint`; each scheme needs some of the other methods (its
    runner checks them once at the start with :func:`check_energy`, naming a missing one):

    - ``value(x, w=None) -> 0-d``: every scheme (the recorded energies);
    - ``gradient(x, w=None) -> [N, d]``: particle flows (the Wasserstein gradient
      :math:`\nabla\frac{\delta F}{\delta\mu}(x_i)`);
    - ``batch_estimate(x1, x2) -> 0-d``: the neural backward scheme (two-batch estimate);
    - ``batch_directional_derivative(x1, u1, x2, u2) -> 0-d``: the neural forward scheme;
    - ``fingerprint() -> dict``: checkpoint keys (type, parameters, data digests).

    Optional: ``batch_estimate_and_grad`` / ``batch_directional_derivative_and_grad`` (the neural schemes'
    explicit engine), ``first_variation(z, x, w)``, ``state_dict`` / ``load_state_dict`` (an energy carrying a
    generator), ``target`` ``[M, d]`` (an energy with a target: its dimension is checked against the start).
    Shapes: ``x`` ``[N, d]``, ``w`` ``[N]`` (``None``: uniform); batches ``[B, d]``.
    """

    def value(self, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """The functional :math:`F(\\mu)` at :math:`\\mu = \\sum_i w_i\\delta_{x_i}`.

        Args:
            x: particles ``[N, d]``.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            0-d tensor.
        """
        ...

    def fingerprint(self) -> dict: ...


def check_energy(energy, x0: torch.Tensor, needs: tuple[str, ...], scheme: str) -> None:
    """Check once, at the start of a run, that ``energy`` has the methods ``needs`` of the scheme ``scheme`` and, for an
    energy with a ``target``, that the target lives in the dimension of the start ``x0`` ``[N, d]``.

    Args:
        energy: the functional (see :class:`Energy`).
        x0: the start ``[N, d]``.
        needs: the method names the scheme calls.
        scheme: the scheme's name, for the messages.

    Raises:
        TypeError: ``energy`` lacks one of the methods ``needs``.
        ValueError: the energy's target and ``x0`` live in different dimensions.
    """
    for method in needs:
        if not callable(getattr(energy, method, None)):
            raise TypeError(f"the {scheme} scheme needs energy.{method}(...), which {type(energy).__name__} does not "
                            f"have (see mmdflow.energies.Energy)")
    target = getattr(energy, "target", None)
    if isinstance(target, torch.Tensor) and target.dim() == 2 and target.shape[1] != x0.shape[1]:
        raise ValueError(f"the energy's target lives in d={target.shape[1]} but the start x0 has d={x0.shape[1]} "
                         f"({type(energy).__name__}, {scheme} scheme)")


def _backend_fingerprint(backend):
    """A backend name, or a :class:`~mmdflow.summation.Backend`'s name with a digest of its options."""
    if isinstance(backend, Backend):
        return {"name": backend.name, "options": digest(dict(backend.options))}
    return backend


class InteractionEnergy:
    r"""The functional :math:`F(\mu) = \mathcal E_K(\mu)` as an object the schemes can use.

    Methods: :meth:`value`, :meth:`gradient` (Wasserstein gradient at the particles),
    :meth:`first_variation`, and :meth:`batch_estimate` (the two-independent-batch
    estimate used by the neural schemes of Altekrüger et al., Sec. 3).
    """

    def __init__(self, kernel: RadialKernel, *, backend: str = "auto"):
        if not isinstance(kernel, RadialKernel):
            raise TypeError(f"kernel must be an mmdflow.kernels kernel, got {type(kernel).__name__}")
        self.kernel, self.backend = kernel, backend

    def __repr__(self):
        return f"InteractionEnergy({self.kernel})"

    def fingerprint(self) -> dict:
        """What determines this energy (type, kernel, backend), for checkpoint keys.

        Returns:
            A JSON-ready dict.
        """
        return {"type": type(self).__name__, "kernel": repr(self.kernel), "backend": _backend_fingerprint(self.backend)}

    def value(self, x, w=None):
        r"""The interaction energy :math:`\mathcal E_K(\mu) = \frac12\sum_{i,j} w_i w_j K(x_i, x_j)`.

        Computed by :func:`interaction_energy` with this energy's ``backend``.

        Args:
            x: particles ``[N, d]``.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            0-d tensor, differentiable in ``x`` and ``w``.
        """
        return interaction_energy(x, self.kernel, w, backend=self.backend)

    def gradient(self, x, w=None):
        r"""Wasserstein gradient :math:`\sum_j w_j\nabla_1 K(x_i, x_j)` of :math:`\mathcal E_K` at the particles.

        Computed by :func:`interaction_gradient` with this energy's ``backend``.

        Args:
            x: particles ``[N, d]``.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            ``[N, d]`` tensor (detached).
        """
        return interaction_gradient(x, self.kernel, w, backend=self.backend)

    def first_variation(self, z, x, w=None):
        r""":math:`\frac{\delta F}{\delta\mu}(z) = \int K(z, x)\,d\mu(x)`, shape ``[len(z)]``.

        Args:
            z: evaluation points ``[L, d]``.
            x: particles ``[N, d]`` of :math:`\mu`.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            ``[L]`` tensor.
        """
        return kernel_sum(z, x, self.kernel, w, backend=self.backend)

    def batch_estimate(self, x1, x2):
        r"""Estimate of :math:`F(\mu)` from two independent batches: :math:`\frac12\,\mathrm{mean}_{ij}K(x^1_i, x^2_j)`.

        The backward scheme's loss (Altekrüger et al. 2023, Sec. 3); the sum goes through
        :func:`mmdflow.summation.kernel_sum` with this energy's ``backend``. Shapes ``[B1, d]``, ``[B2, d]``.

        Args:
            x1: first batch ``[B1, d]``.
            x2: second, independent batch ``[B2, d]``.

        Returns:
            0-d tensor, differentiable in both batches.
        """
        return 0.5 * double_sum(x1, x2, self.kernel, backend=self.backend)

    def batch_directional_derivative(self, x1, u1, x2, u2):
        r"""Two-batch estimate of the directional derivative :math:`D_v\mathcal E_K(\mu)` along a velocity plan.

        :math:`\frac12\,\mathrm{mean}_{ij}\frac{d}{dt}|_{0^+}K(x^1_i+tu^1_i, x^2_j+tu^2_j)`, cross pairs only;
        coinciding points contribute :math:`\frac12 c\|u^1_i-u^2_j\|` (``c = -1`` for Riesz ``r = 1``).
        Altekrüger et al. (2023), Sec. 4; computed by :func:`mmdflow.summation.directional_derivative`
        with this energy's ``backend``. Shapes: all ``[B, d]``; returns a 0-d tensor.

        Args:
            x1: first batch ``[B, d]``.
            u1: its velocities ``[B, d]``.
            x2: second batch ``[B, d]``.
            u2: its velocities ``[B, d]``.

        Returns:
            0-d tensor, differentiable in ``u1`` and ``u2``.
        """
        return 0.5 * directional_derivative(x1, u1, x2, u2, self.kernel, backend=self.backend)

    @property
    def _sums(self) -> dict:
        return {"backend": self.backend}

    @staticmethod
    def _uniform(x) -> float:
        return 1.0 / x.shape[0]

    def batch_estimate_and_grad(self, x1, x2):
        r""":meth:`batch_estimate` and its gradients in both batches, ``(F, g1 [B1, d], g2 [B2, d])``, without autograd.

        :math:`\nabla_{x^1_i}\hat F = \frac{1}{2B_1B_2}\sum_j\nabla_1K(x^1_i, x^2_j)` (and symmetrically), by
        :func:`mmdflow.summation.pair_sum_and_grads`' internal form: no input checks, no host synchronisation on
        the dense path. For training loops whose batches come from checked particles; the reference is autograd
        of :meth:`batch_estimate`.

        Args:
            x1: first batch ``[B1, d]``.
            x2: second batch ``[B2, d]``.

        Returns:
            ``(F, g1, g2)``: 0-d value, ``[B1, d]`` and ``[B2, d]`` gradients, all detached.
        """
        s, g1, g2, _ = pair_terms(x1, x2, self.kernel, self._uniform(x1), self._uniform(x2), backend=self.backend)
        return 0.5 * s, g1.mul_(0.5), g2.mul_(0.5)

    def batch_directional_derivative_and_grad(self, x1, u1, x2, u2):
        r""":meth:`batch_directional_derivative` and its gradients in the velocities ``(D, gu1, gu2)``, without
        autograd: :math:`\nabla_{u^1_i}\hat D` is the gradient of the cross-pair sum in :math:`x^1_i`, plus the
        coinciding pairs' term (:func:`mmdflow.summation.dispatch.directional_terms`). No input checks.

        Args:
            x1: first batch ``[B1, d]``.
            u1: its velocities ``[B1, d]``.
            x2: second batch ``[B2, d]``.
            u2: its velocities ``[B2, d]``.

        Returns:
            ``(D, gu1, gu2)``: 0-d value, ``[B1, d]`` and ``[B2, d]`` gradients, all detached.
        """
        d, g1, g2 = directional_terms(x1, u1, x2, u2, self.kernel, self._uniform(x1), self._uniform(x2),
                                      backend=self.backend)
        return 0.5 * d, g1.mul_(0.5), g2.mul_(0.5)


class _TargetTerms:
    r"""What the two discrepancy energies share, written once: a checked target
    :math:`\nu = \sum_l v_l\delta_{y_l}`, its constant energy :math:`\mathcal E_K(\nu)` (computed once, by the
    subclass's ``_compute_target_energy``), the first variation and the two-batch estimates, all with the subclass's
    summation options ``_sums`` (``{"backend": ...}`` and, for the sliced discrepancy, its slicing options).
    """

    def _set_target(self, target: torch.Tensor, target_weights: torch.Tensor | None) -> None:
        self.target = check_points(target, "target")
        self.target_weights = check_weights(target_weights, target, "target_weights")
        self._target_energy = None

    def _target_repr(self) -> str:
        return f"target of {self.target.shape[0]} points in d={self.target.shape[1]}"

    def _target_digests(self) -> dict:
        return {"target": digest(self.target), "target_weights": digest(self.target_weights)}

    @property
    def target_energy(self) -> torch.Tensor:
        r"""The constant :math:`\mathcal E_K(\nu)` (computed once)."""
        if self._target_energy is None:
            with torch.no_grad():
                self._target_energy = self._compute_target_energy()
        return self._target_energy

    def _y(self, x):
        return self.target.to(x), self.target_weights.to(x)

    def first_variation(self, z, x, w=None):
        r""":math:`\frac{\delta F}{\delta\mu}(z) = \sum_j w_j K(z, x_j) - \sum_l v_l K(z, y_l)`.

        Args:
            z: evaluation points ``[L, d]``.
            x: particles ``[N, d]`` of :math:`\mu`.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            ``[L]`` tensor.
        """
        y, v = self._y(z)
        return kernel_sum(z, x, self.kernel, w, **self._sums) - kernel_sum(z, y, self.kernel, v, **self._sums)

    def batch_estimate(self, x1, x2):
        r"""Two-batch estimate: cross pairs for :math:`\mathcal E_K`, both batches against the target for :math:`\mathcal V`.

        :math:`\frac12\,\mathrm{mean}_{ij}K(x^1_i, x^2_j) - \mathrm{mean}_k\sum_l v_l K(x_k, y_l) + \mathcal E_K(\nu)`,
        ``k`` over both batches.

        Args:
            x1: first batch ``[B1, d]``.
            x2: second, independent batch ``[B2, d]``.

        Returns:
            0-d tensor, differentiable in both batches.
        """
        y, v = self._y(x1)
        potential = double_sum(torch.cat([x1, x2]), y, self.kernel, None, v, **self._sums)
        inter = 0.5 * double_sum(x1, x2, self.kernel, **self._sums)
        return inter + potential.neg() + self.target_energy.to(x1)

    #: form the interaction part of :meth:`batch_directional_derivative` before the potential part (the sliced
    #: energy: its generator gives the interaction part the first directions); else the potential part first (the
    #: order in which autograd sums the gradients in the velocities)
    _interaction_first = False

    def batch_directional_derivative(self, x1, u1, x2, u2):
        r"""Two-batch estimate of :math:`D_v\mathcal D_K^2(\cdot,\nu)(\mu)`: the interaction part on cross
        pairs plus :math:`-\mathrm{mean}_k\sum_l v_l\frac{d}{dt}|_{0^+}K(x_k+tu_k, y_l)` over both batches
        (the targets are fixed points).

        Args:
            x1: first batch ``[B1, d]``.
            u1: its velocities ``[B1, d]``.
            x2: second batch ``[B2, d]``.
            u2: its velocities ``[B2, d]``.

        Returns:
            0-d tensor, differentiable in ``u1`` and ``u2``.
        """
        def interaction():
            return 0.5 * directional_derivative(x1, u1, x2, u2, self.kernel, **self._sums)

        def potential():
            y, v = self._y(x1)
            return -directional_derivative(torch.cat([x1, x2]), torch.cat([u1, u2]), y, None, self.kernel, None, v,
                                           **self._sums)

        if self._interaction_first:
            inter = interaction()
            return inter + potential()
        pot = potential()
        return interaction() + pot


class DiscrepancyEnergy(_TargetTerms, InteractionEnergy):
    r"""The functional :math:`F(\mu) = \mathcal D_K^2(\mu, \nu)` for a fixed target :math:`\nu`.

    Args:
        kernel: the kernel :math:`K`.
        target: target points ``[M, d]``.
        target_weights: ``[M]`` or ``None``.
        backend: the summation backend; ``"sliced"`` (or ``Backend("sliced", **options)``) gives the one sliced
            discrepancy, a :class:`SlicedDiscrepancyEnergy` with those options.
    """

    def __new__(cls, kernel: RadialKernel, target: torch.Tensor, target_weights: torch.Tensor | None = None, *,
                backend: str = "auto"):
        # one sliced discrepancy: the sliced backend (with its options) gives the SlicedDiscrepancyEnergy
        if cls is DiscrepancyEnergy and (backend.name if isinstance(backend, Backend) else backend) == "sliced":
            options = dict(backend.options) if isinstance(backend, Backend) else {}
            return SlicedDiscrepancyEnergy(kernel, target, target_weights, **options)
        return super().__new__(cls)

    def __init__(self, kernel: RadialKernel, target: torch.Tensor, target_weights: torch.Tensor | None = None, *,
                 backend: str = "auto"):
        super().__init__(kernel, backend=backend)
        self._set_target(target, target_weights)

    def __repr__(self):
        return f"DiscrepancyEnergy({self.kernel}, {self._target_repr()})"

    def fingerprint(self) -> dict:
        """Type, kernel, backend and digests of the target samples and weights, for checkpoint keys.

        Returns:
            A JSON-ready dict.
        """
        return dict(super().fingerprint(), **self._target_digests())

    def _compute_target_energy(self) -> torch.Tensor:
        return interaction_energy(self.target, self.kernel, self.target_weights, backend=self.backend)

    def value(self, x, w=None):
        r"""The discrepancy :math:`\mathcal D_K^2(\mu,\nu) = \mathcal E_K(\mu)+\mathcal V_{K,\nu}(\mu)+\mathcal E_K(\nu)`.

        Args:
            x: particles ``[N, d]`` of :math:`\mu`.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            0-d tensor, differentiable in ``x`` and ``w``.
        """
        y, v = self._y(x)
        return (interaction_energy(x, self.kernel, w, backend=self.backend)
                + potential_energy(x, y, self.kernel, w, v, backend=self.backend) + self.target_energy.to(x))

    def gradient(self, x, w=None):
        r"""Wasserstein gradient of :math:`\mathcal D_K^2(\cdot,\nu)` at the particles (:func:`discrepancy_gradient`).

        Args:
            x: particles ``[N, d]``.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            ``[N, d]`` tensor (detached).
        """
        y, v = self._y(x)
        return discrepancy_gradient(x, y, self.kernel, w, v, backend=self.backend)

    def batch_estimate_and_grad(self, x1, x2):
        r""":meth:`batch_estimate` and its gradients in both batches, without autograd: the interaction part of
        :meth:`InteractionEnergy.batch_estimate_and_grad` plus the potential term's
        :math:`-\frac{1}{B_1+B_2}\sum_l v_l\nabla_1K(x_k, y_l)` at every point of both batches. No input checks.

        Args:
            x1: first batch ``[B1, d]``.
            x2: second batch ``[B2, d]``.

        Returns:
            ``(F, g1, g2)``: 0-d value, ``[B1, d]`` and ``[B2, d]`` gradients, all detached.
        """
        y, v = self._y(x1)
        both = torch.cat([x1, x2])
        s, g, _, _ = pair_terms(both, y, self.kernel, self._uniform(both), v, want_b=False, backend=self.backend)
        inter, g1, g2 = super().batch_estimate_and_grad(x1, x2)
        b1 = x1.shape[0]
        return inter - s + self.target_energy.to(x1), g1.sub_(g[:b1]), g2.sub_(g[b1:])

    def batch_directional_derivative_and_grad(self, x1, u1, x2, u2):
        r""":meth:`batch_directional_derivative` and its gradients in the velocities, without autograd (the
        potential term: the targets are fixed points). No input checks.

        Args:
            x1: first batch ``[B1, d]``.
            u1: its velocities ``[B1, d]``.
            x2: second batch ``[B2, d]``.
            u2: its velocities ``[B2, d]``.

        Returns:
            ``(D, gu1, gu2)``: 0-d value, ``[B1, d]`` and ``[B2, d]`` gradients, all detached.
        """
        y, v = self._y(x1)
        both, ub = torch.cat([x1, x2]), torch.cat([u1, u2])
        dp, gp, _ = directional_terms(both, ub, y, None, self.kernel, self._uniform(both), v, backend=self.backend)
        d, g1, g2 = super().batch_directional_derivative_and_grad(x1, u1, x2, u2)
        b1 = x1.shape[0]
        return d - dp, g1.sub_(gp[:b1]), g2.sub_(gp[b1:])


class SlicedDiscrepancyEnergy(_TargetTerms):
    r"""The Riesz(1) discrepancy :math:`\mathcal D_K^2(\cdot,\nu)` with sliced value and gradient.

    A drop-in for :class:`mmdflow.energies.DiscrepancyEnergy` in particle
    flows: :meth:`gradient` calls :func:`sliced_discrepancy_and_gradient`
    (fresh directions at every call, shared by the interaction and potential
    terms); :meth:`value` adds the target's energy :math:`\mathcal E_K(\nu)`,
    computed once exactly (blocked) when ``exact_target_energy`` (default),
    so values are unbiased estimates of :math:`\mathcal D_K^2`.
    :meth:`first_variation` and :meth:`batch_estimate` use the ``sliced``
    backend of :func:`mmdflow.summation.kernel_sum`.

    Args:
        kernel: must be ``Riesz(1.0)``; target ``[M, d]``; target_weights ``[M]`` or ``None``.
        n_directions, directions, generator, engine, subspace: as in :func:`mmdflow.summation.sliced.sliced_kernel_sum`.
    """

    _interaction_first = True

    def __init__(self, kernel: RadialKernel, target: torch.Tensor, target_weights: torch.Tensor | None = None, *,
                 n_directions: int | None = None, directions="auto", generator: torch.Generator | None = None,
                 engine: str = "auto", exact_target_energy: bool = True, subspace="auto"):
        check_sliced_kernel(kernel)
        self.kernel = kernel
        self._set_target(target, target_weights)
        self.options = dict(n_directions=n_directions, directions=directions, generator=generator, engine=engine,
                            subspace=subspace)
        self.backend = "sliced"
        self._exact_target = exact_target_energy

    def __repr__(self):
        return (f"SlicedDiscrepancyEnergy({self.kernel}, {self._target_repr()}, {self.options['n_directions']} "
                f"{self.options['directions']} directions)")

    @property
    def _sums(self) -> dict:
        return {"backend": "sliced", **self.options}

    def fingerprint(self) -> dict:
        """Type, kernel, digests of the target and of the slicing options (the generator's current state included),
        for checkpoint keys.

        Returns:
            A JSON-ready dict.
        """
        return {"type": type(self).__name__, "kernel": repr(self.kernel), **self._target_digests(),
                "options": digest(self.options), "exact_target_energy": self._exact_target}

    def state_dict(self) -> dict:
        """The state of the directions' generator (it advances at every call), for checkpoints.

        Returns:
            ``{"generator": state}`` (a uint8 tensor), or ``{}`` without a generator.
        """
        gen = self.options["generator"]
        return {} if gen is None else {"generator": gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the directions' generator from :meth:`state_dict`.

        Args:
            state: a dict from :meth:`state_dict`.
        """
        if "generator" in state:
            self.options["generator"].set_state(state["generator"].cpu())

    def _compute_target_energy(self) -> torch.Tensor:
        backend = "blocked" if self._exact_target else "sliced"
        opts = {} if self._exact_target else self.options
        return 0.5 * (self.target_weights * kernel_sum(self.target, self.target, self.kernel, self.target_weights,
                                                       backend=backend, **opts)).sum()

    def value(self, x, w=None):
        r"""Sliced estimate of :math:`\mathcal D_K^2(\mu,\nu)` (Riesz ``r = 1``), plus the target's own energy.

        Args:
            x: particles ``[N, d]``.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            0-d tensor.
        """
        y, v = self._y(x)
        val, _ = sliced_discrepancy_and_gradient(x, y, w, v, **self.options)
        return val + self.target_energy.to(x)

    def gradient(self, x, w=None):
        r"""Sliced estimate of the Wasserstein gradient of :math:`\mathcal D_K^2(\cdot,\nu)` at the particles.

        Args:
            x: particles ``[N, d]``.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            ``[N, d]`` tensor (detached).
        """
        y, v = self._y(x)
        return sliced_discrepancy_and_gradient(x, y, w, v, want_value=False, **self.options)[1]

    def value_and_gradient(self, x, w=None):
        """Both from the same directions and one sort per direction.

        Args:
            x: particles ``[N, d]``.
            w: weights ``[N]``; ``None``: uniform.

        Returns:
            ``(value, gradient)``: 0-d and ``[N, d]``, as :meth:`value` and :meth:`gradient`.
        """
        y, v = self._y(x)
        val, g = sliced_discrepancy_and_gradient(x, y, w, v, **self.options)
        return val + self.target_energy.to(x), g
