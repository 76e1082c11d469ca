r"""The weight (Fisher-Rao / MMD) steps of the weighted-particle schemes on a fixed support (see :mod:`mmdflow.wfr`).

:func:`mmd_prox_weights` (the exact MMD-JKO step of IFT), :func:`mmd_pgd_weights` (the authors' single
projected-gradient step), :func:`kl_weight_step` ("WFR GD") and :func:`inclusive_kl_prox`. Weights ``w`` ``[N]`` of
the particles ``x`` ``[N, d]`` on the simplex; target samples ``y`` ``[M, d]`` with weights ``v`` ``[M]``.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_points, check_positive, check_weights
from ..kernels import RadialKernel
from ..simplex import QPInfo, project_simplex, solve_simplex_qp
from ..summation import kernel_matrix

__all__ = ["mmd_prox_weights", "mmd_pgd_weights", "kl_weight_step", "inclusive_kl_prox"]


def _check_eta(eta, name="eta") -> float:
    return check_positive(eta, name)


def _gram_and_b(x, y, kernel, v, gram, b):
    """``K = k(x, x)`` and ``b = k(x, y) v`` unless given (the runner passes its cached matrices)."""
    K = kernel_matrix(x, x, kernel) if gram is None else gram
    if b is None:
        check_points(y, "y")
        b = kernel_matrix(x, y, kernel) @ check_weights(v, y, "v")
    n = x.shape[0]
    if K.shape != (n, n) or b.shape != (n,):
        raise ValueError(f"gram must be ({n}, {n}) and b ({n},), got {tuple(K.shape)} and {tuple(b.shape)}")
    return K, b


def _step_inputs(x, w, y, kernel, lr, v, gram, b):
    """The checked inputs of an explicit weight step: weights ``[N]``, learning rate, ``K`` ``[N, N]``, ``b`` ``[N]``."""
    check_points(x, "x")
    w = check_weights(w, x, "w")
    lr = check_positive(lr, "lr")
    K, b = _gram_and_b(x, y, kernel, v, gram, b)
    return w, lr, K, b


def mmd_prox_weights(x: torch.Tensor, w_old: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, eta: float,
                     v: torch.Tensor | None = None, *, tol: float = 1e-10, max_iter: int = 5000,
                     gram: torch.Tensor | None = None, b: torch.Tensor | None = None,
                     method: str = "active_set") -> tuple[torch.Tensor, QPInfo]:
    r"""The MMD-JKO (proximal) weight step of IFT on a fixed support (Gladin et al. 2024, Sec. 4).

    .. math::
        w^+ = \arg\min_{w\in\Delta}\ \tfrac12\mathrm{MMD}^2(\textstyle\sum_i w_i\delta_{x_i}, \pi)
        + \tfrac1{2\eta}\mathrm{MMD}^2(\sum_i w_i\delta_{x_i}, \sum_i w^\mathrm{old}_i\delta_{x_i})
        = \arg\min_{w\in\Delta}\ \tfrac12 w^\top Kw - b^\top w + \tfrac1{2\eta}(w-w^\mathrm{old})^\top K(w-w^\mathrm{old}),

    :math:`K_{ij} = k(x_i, x_j)`, :math:`b_i = \sum_l v_l k(x_i, y_l)`, :math:`\eta = \beta h`. When the target
    lies in the particle support (:math:`\pi = \sum_i p_i\delta_{x_i}`) and :math:`K` is positive definite,
    :math:`w^+ = (w^\mathrm{old} + \eta p)/(1 + \eta)` and :math:`\mathrm{MMD}` shrinks exactly by
    :math:`1/(1+\eta)`: the implicit Euler step of :math:`\partial_t\mu = -\beta(\mu - \pi)`.
    Solved by :func:`~mmdflow.simplex.solve_simplex_qp` (warm start :math:`w^\mathrm{old}`) with
    :math:`Q = (1 + 1/\eta)K`, :math:`c = -b - Kw^\mathrm{old}/\eta`.

    Args:
        x: support ``[N, d]``.
        w_old: ``[N]``.
        y, v: target samples ``[M, d]`` and weights ``[M]`` (``None`` = uniform).
        kernel: the kernel :math:`k` (from :mod:`mmdflow.kernels`).
        eta: step :math:`> 0`.
        tol, max_iter, method: solver settings (:func:`~mmdflow.simplex.solve_simplex_qp`).
        gram, b: optional precomputed ``K`` ``[N, N]`` and ``b`` ``[N]``.

    Returns:
        ``(w, info)`` with ``w`` ``[N]`` and the solver certificate :class:`~mmdflow.simplex.QPInfo`.

    Raises:
        ValueError: invalid points, ``w_old`` off the simplex, a non-positive ``eta``, or ``gram``/``b`` of the
            wrong shape.
    """
    check_points(x, "x")
    w_old = check_weights(w_old, x, "w_old")
    eta = _check_eta(eta)
    K, b = _gram_and_b(x, y, kernel, v, gram, b)
    Kw = K @ w_old
    return solve_simplex_qp((1.0 + 1.0 / eta) * K, -b - Kw / eta, w_old, tol=tol, max_iter=max_iter, method=method)


def mmd_pgd_weights(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, lr: float,
                    v: torch.Tensor | None = None, *, gram: torch.Tensor | None = None, b: torch.Tensor | None = None) -> torch.Tensor:
    r"""The authors' weight step: one Euclidean projected-gradient step on :math:`\mathrm{MMD}^2` in :math:`w`.

    :math:`w \leftarrow P_\Delta\big(w + 2\,\mathrm{lr}\,(b - Kw)\big)`. Because the gradient of the
    proximal term vanishes at :math:`w^\mathrm{old}`, this is also one projected-gradient step (step
    :math:`2\,\mathrm{lr}`, warm start) on the QP of :func:`mmd_prox_weights`, for any :math:`\eta`.
    It has no uniform rate: error modes contract by :math:`1 - 2\,\mathrm{lr}\,\lambda_k(K)`.
    Here :math:`K_{ij} = k(x_i, x_j)`, :math:`b_i = \sum_l v_l k(x_i, y_l)` and :math:`P_\Delta` is the Euclidean
    projection onto the simplex.

    Args:
        x: support ``[N, d]``.
        w: current weights ``[N]`` on the simplex.
        y: target samples ``[M, d]`` (unused when ``b`` is given).
        kernel: the kernel :math:`k` (from :mod:`mmdflow.kernels`).
        lr: learning rate :math:`> 0`.
        v: target weights ``[M]``; ``None``: uniform.
        gram: optional precomputed ``K`` ``[N, N]``.
        b: optional precomputed ``b`` ``[N]``.

    Returns:
        new weights ``[N]`` on the simplex, dtype and device of ``x``.

    Raises:
        ValueError: invalid points, ``w`` off the simplex, a non-positive ``lr``, or ``gram``/``b`` of the wrong
            shape.
    """
    w, lr, K, b = _step_inputs(x, w, y, kernel, lr, v, gram, b)
    return project_simplex(w + 2.0 * lr * (b - K @ w))


def kl_weight_step(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, lr: float,
                   v: torch.Tensor | None = None, *, normalise: str = "project",
                   gram: torch.Tensor | None = None, b: torch.Tensor | None = None) -> torch.Tensor:
    r"""The multiplicative Fisher-Rao / KL (mirror-descent) weight step, "WFR GD".

    :math:`w_i \leftarrow w_i\exp(-\mathrm{lr}\,f_\mu(x_i)) = w_i\exp(\mathrm{lr}\,(b - Kw)_i)`, the
    explicit step of the (spherical) Fisher-Rao flow :math:`\partial_t\mu = -\beta\mu(f_\mu - \int f_\mu d\mu)`.
    ``normalise="project"`` follows the authors' code (Euclidean projection onto the simplex, which can
    zero weights); ``"renormalise"`` divides by the sum (the entropic mirror step; weights stay positive).
    With ``"renormalise"``, when the factors' sum under- or overflows, the same step is taken in the log domain
    (a softmax).

    Args:
        x, w, y, kernel, lr, v, gram, b: as in :func:`mmd_pgd_weights` (support ``[N, d]``, weights ``[N]``,
            target samples ``[M, d]`` and weights ``[M]``, learning rate, optional ``K`` ``[N, N]`` and ``b`` ``[N]``).
        normalise: ``"project"`` or ``"renormalise"``.

    Returns:
        new weights ``[N]`` on the simplex, dtype and device of ``x``.

    Raises:
        ValueError: invalid points, ``w`` off the simplex, a non-positive ``lr``, an unknown ``normalise``, or
            ``gram``/``b`` of the wrong shape.
    """
    if normalise not in ("project", "renormalise"):
        raise ValueError(f"normalise must be 'project' or 'renormalise', got {normalise!r}")
    w, lr, K, b = _step_inputs(x, w, y, kernel, lr, v, gram, b)
    g = lr * (b - K @ w)
    u = w * torch.exp(g)
    if normalise == "project":
        return project_simplex(u)
    total = float(u.sum())
    if not (0.0 < total < math.inf):   # every exp under- or overflowed: the same step in the log domain (softmax)
        return torch.softmax(torch.log(w) + g, dim=0)
    return u / total


def inclusive_kl_prox(w_old: torch.Tensor, p: torch.Tensor, eta: float) -> torch.Tensor:
    r"""Closed-form KL proximal step of the inclusive-KL Fisher-Rao flow on a common finite support.

    :math:`\arg\min_{w\in\Delta}\ \mathrm{KL}(p\,|\,w) + \tfrac1\eta\mathrm{KL}(w^\mathrm{old}\,|\,w)
    = (w^\mathrm{old} + \eta p)/(1 + \eta)`: the objective is :math:`-\sum_i (p_i + w^\mathrm{old}_i/\eta)\log w_i`
    up to constants, minimised on the simplex by weights proportional to :math:`p + w^\mathrm{old}/\eta`
    (Zhu 2024, "Inclusive KL minimization", the MMD-step = KL-step equivalence). It coincides with
    :func:`mmd_prox_weights` when the target lies in the support.

    Args:
        w_old: current weights ``[N]`` on the simplex.
        p: target weights ``[N]`` on the same support.
        eta: step :math:`\eta > 0`.

    Returns:
        new weights ``[N]``, dtype and device of ``w_old``.

    Raises:
        ValueError: a non-positive ``eta``, or ``w_old`` and ``p`` of different shapes.
    """
    eta = _check_eta(eta)
    if w_old.shape != p.shape:
        raise ValueError(f"w_old and p must have the same shape, got {tuple(w_old.shape)} and {tuple(p.shape)}")
    return (w_old + eta * p) / (1.0 + eta)
