r"""The energies of weighted point clouds as functions, and their Wasserstein gradients.

With the normalisation of Altekrüger, Hertrich, Steidl (ICML 2023), Sec. 2 (see :mod:`mmdflow.energies`),
:math:`\mathcal E_K(\mu) = \tfrac12\sum_{ij}w_iw_jK(x_i,x_j)` (:func:`interaction_energy`),
:math:`\mathcal V_{K,\nu}(\mu) = -\sum_{ij}w_iv_jK(x_i,y_j)` (:func:`potential_energy`),
:math:`\mathcal D_K^2(\mu,\nu) = \mathcal E_K(\mu)+\mathcal V_{K,\nu}(\mu)+\mathcal E_K(\nu)` (:func:`discrepancy`),
:math:`\mathrm{MMD}^2 = 2\mathcal D_K^2` (:func:`mmd2`) and the energy distance (:func:`energy_distance`), and the
gradients :math:`\nabla\frac{\delta F}{\delta\mu}(x_i)` of the first three (:func:`interaction_gradient`,
:func:`potential_gradient`, :func:`discrepancy_gradient`). Every function takes ``(N, d)`` tensors, optional
weights (``None`` = uniform), and returns tensors on the inputs' device and dtype. :mod:`mmdflow.energies` exports
every name and wraps them in the objects the schemes use.
"""

from __future__ import annotations

import torch

from ._checks import BLOCKED_INSTEAD, check_clouds, check_pairs_memory, check_points, check_weights
from .kernels import RadialKernel, Riesz, squared_distances
from .summation import choose_backend, double_sum, kernel_sum_grad

__all__ = ["interaction_energy", "potential_energy", "discrepancy", "mmd2", "energy_distance", "interaction_gradient",
           "potential_gradient", "discrepancy_gradient"]


def interaction_energy(x: torch.Tensor, kernel: RadialKernel, w: torch.Tensor | None = None, *,
                       backend: str = "auto") -> torch.Tensor:
    r"""Interaction energy :math:`\mathcal E_K(\mu) = \frac12\sum_{ij} w_i w_j K(x_i, x_j)`.

    Args:
        x: particles ``[N, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        w: weights ``[N]`` or ``None`` (uniform).
        backend: the summation backend (:func:`mmdflow.summation.kernel_sum`).

    Returns:
        0-d tensor. For the Riesz kernel this is :math:`-\frac12\iint|x-y|^r d\mu d\mu`.
    """
    w = check_weights(w, check_points(x, "x"), "w")
    return 0.5 * double_sum(x, x, kernel, w, w, backend=backend)


def potential_energy(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, w: torch.Tensor | None = None,
                     v: torch.Tensor | None = None, *, backend: str = "auto") -> torch.Tensor:
    r"""Potential energy :math:`\mathcal V_{K,\nu}(\mu) = -\sum_{i,j} w_i v_j K(x_i, y_j)`.

    Args:
        x: particles ``[N, d]`` of :math:`\mu`.
        y: target points ``[M, d]`` of :math:`\nu`.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        w: weights ``[N]`` of ``x``; ``None``: uniform.
        v: weights ``[M]`` of ``y``; ``None``: uniform.
        backend: the summation backend.

    Returns:
        0-d tensor, differentiable in ``x``, ``y``, ``w`` and ``v``.
    """
    w = check_weights(w, check_points(x, "x"), "w")
    return -double_sum(x, y, kernel, w, v, backend=backend)


def discrepancy(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, w: torch.Tensor | None = None,
                v: torch.Tensor | None = None, *, backend: str = "auto") -> torch.Tensor:
    r"""The discrepancy :math:`\mathcal D_K^2(\mu,\nu) = \frac12\iint K\,d(\mu-\nu)\,d(\mu-\nu)`.

    Altekrüger et al. (2023), Sec. 2; equals ``mmd2(...) / 2``. With the Riesz
    kernel ``r = 1`` it is half the energy distance of Székely and Rizzo.

    Args:
        x: particles ``[N, d]`` of :math:`\mu`.
        y: target points ``[M, d]`` of :math:`\nu`.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        w: weights ``[N]`` of ``x``; ``None``: uniform.
        v: weights ``[M]`` of ``y``; ``None``: uniform.
        backend: the summation backend (:func:`mmdflow.summation.kernel_sum`).

    Returns:
        0-d tensor, differentiable in ``x``, ``y``, ``w`` and ``v``.

    Raises:
        ValueError: the points are not finite ``[*, d]`` tensors of one space.
    """
    check_clouds(x, y)
    return (interaction_energy(x, kernel, w, backend=backend) + potential_energy(x, y, kernel, w, v, backend=backend)
            + interaction_energy(y, kernel, v, backend=backend))


def mmd2(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, w: torch.Tensor | None = None,
         v: torch.Tensor | None = None, *, backend: str = "auto") -> torch.Tensor:
    r"""Textbook squared MMD :math:`\iint K\,d(\mu-\nu)\,d(\mu-\nu) = 2\,\mathcal D_K^2(\mu,\nu)` (V-statistic).

    Args:
        x: points ``[N, d]`` of :math:`\mu`.
        y: points ``[M, d]`` of :math:`\nu`.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        w: weights ``[N]``; ``None``: uniform.
        v: weights ``[M]``; ``None``: uniform.
        backend: the summation backend.

    Returns:
        0-d tensor, differentiable.
    """
    return 2.0 * discrepancy(x, y, kernel, w, v, backend=backend)


def energy_distance(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None,
                    v: torch.Tensor | None = None, *, backend: str = "auto") -> torch.Tensor:
    r"""Energy distance :math:`2E|X-Y| - E|X-X'| - E|Y-Y'|` of the weighted point clouds.

    ``backend="dense"`` (and ``"auto"`` when it resolves to ``dense`` for the largest of the three pair sets)
    computes it independently of the kernels and of :mod:`mmdflow.summation`, from the ``[N, M, d]``
    differences: the check that :math:`\mathcal D_K^2` with ``Riesz(1)`` is half of it. Any other backend
    computes the three double sums of the distance kernel ``Riesz(1)`` with it (``"blocked"``: exact in
    bounded memory).

    Args:
        x: points ``[N, d]``.
        y: points ``[M, d]``.
        w: weights ``[N]``; ``None``: uniform.
        v: weights ``[M]``; ``None``: uniform.
        backend: ``"dense"``, ``"auto"`` or another summation backend.

    Returns:
        0-d tensor.

    Raises:
        ValueError: the points are not finite ``[*, d]`` tensors of one space.
    """
    check_clouds(x, y)
    w = check_weights(w, x, "w")
    v = check_weights(v, y, "v")
    big = x if x.shape[0] >= y.shape[0] else y
    if choose_backend(backend, big, big, _DISTANCE) != "dense":
        return (-2 * double_sum(x, y, _DISTANCE, w, v, backend=backend) + double_sum(x, x, _DISTANCE, w, w, backend=backend)
                + double_sum(y, y, _DISTANCE, v, v, backend=backend))
    check_pairs_memory(big, big, 2 * x.shape[1] + 2, "energy_distance's dense [N, M, d] differences",
                       instead=BLOCKED_INSTEAD)
    dist = lambda a, b: squared_distances(a, b).clamp_min(0).sqrt()  # noqa: E731
    return 2 * w @ dist(x, y) @ v - w @ dist(x, x) @ w - v @ dist(y, y) @ v


_DISTANCE = Riesz(1.0)


def interaction_gradient(x: torch.Tensor, kernel: RadialKernel, w: torch.Tensor | None = None, *,
                         backend: str = "auto") -> torch.Tensor:
    r"""Wasserstein gradient of :math:`\mathcal E_K` at the particles: :math:`\sum_j w_j \nabla_1K(x_i, x_j)`, ``[N, d]``.

    Args:
        x: particles ``[N, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        w: weights ``[N]``; ``None``: uniform.
        backend: the summation backend.

    Returns:
        ``[N, d]`` tensor (detached), dtype and device of ``x``.
    """
    w = check_weights(w, check_points(x, "x"), "w")
    return kernel_sum_grad(x, x, kernel, w, backend=backend)


def potential_gradient(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor | None = None, *,
                       backend: str = "auto") -> torch.Tensor:
    r"""Wasserstein gradient of :math:`\mathcal V_{K,\nu}`: :math:`-\sum_j v_j \nabla_1 K(x_i, y_j)`, ``[N, d]``.

    Args:
        x: particles ``[N, d]``.
        y: target points ``[M, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        v: weights ``[M]``; ``None``: uniform.
        backend: the summation backend.

    Returns:
        ``[N, d]`` tensor (detached), dtype and device of ``x``.
    """
    return -kernel_sum_grad(x, y, kernel, v, backend=backend)


def discrepancy_gradient(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, w: torch.Tensor | None = None,
                         v: torch.Tensor | None = None, *, backend: str = "auto") -> torch.Tensor:
    r"""Wasserstein gradient of :math:`\mathcal D_K^2(\cdot,\nu)` at the particles, ``[N, d]``.

    :math:`\nabla\frac{\delta F}{\delta\mu}(x_i) = \sum_j w_j\nabla_1K(x_i,x_j) - \sum_l v_l\nabla_1K(x_i,y_l)`.
    The gradient of :func:`discrepancy` with respect to ``x_i`` equals ``w_i`` times this.

    Args:
        x: particles ``[N, d]``.
        y: target points ``[M, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        w: weights ``[N]``; ``None``: uniform.
        v: weights ``[M]``; ``None``: uniform.
        backend: the summation backend.

    Returns:
        ``[N, d]`` tensor (detached), dtype and device of ``x``.
    """
    return interaction_gradient(x, kernel, w, backend=backend) + potential_gradient(x, y, kernel, v, backend=backend)
