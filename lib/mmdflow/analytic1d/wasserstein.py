r"""The Wasserstein distance on the line through quantile functions,
:math:`W_2(\mu,\mu')^2 = \int_0^1|Q_\mu(s)-Q_{\mu'}(s)|^2\,ds`: Gauss-Legendre quadrature on :math:`[0, 1]`
(:func:`gauss_legendre`, :func:`cell_nodes`), between quantiles at levels (:func:`w2_quantiles`), between two
weighted point clouds (exact, :func:`w2_discrete`) and between a cloud and a quantile function
(:func:`w2_discrete_to_quantile`).
"""

from __future__ import annotations

from typing import Callable

import torch

from .targets import _F64, _t

__all__ = ["w2_quantiles", "w2_discrete", "w2_discrete_to_quantile", "gauss_legendre", "cell_nodes"]


# ------------------------------------------------------------------------------------------------
# W2 on the line through quantile functions
# ------------------------------------------------------------------------------------------------

def gauss_legendre(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of the ``n``-point Gauss-Legendre rule on ``[0, 1]`` (float64, Golub-Welsch).

    Args:
        n: the number of nodes.

    Returns:
        ``(nodes [n], weights [n])``, float64; the weights sum to 1.
    """
    k = torch.arange(1, n, dtype=_F64)
    beta = k / torch.sqrt(4.0 * k * k - 1.0)
    jac = torch.diag(beta, 1) + torch.diag(beta, -1)
    nodes, vecs = torch.linalg.eigh(jac)
    weights = 2.0 * vecs[0] ** 2
    return (nodes + 1.0) / 2.0, weights / 2.0


def w2_quantiles(q1: torch.Tensor, q2: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    r""":math:`\big(\sum_k \omega_k|Q_1(s_k)-Q_2(s_k)|^2\big)^{1/2}`: :math:`W_2` by a quadrature rule on (0, 1).

    Args:
        q1: quantiles ``[..., n]`` at the nodes.
        q2: quantiles ``[..., n]`` at the nodes.
        weights: ``[n]`` quadrature weights (sum 1).

    Returns:
        ``[...]`` tensor: :math:`W_2` per leading index.
    """
    return torch.sqrt(((q1 - q2) ** 2 * weights).sum(-1))


def _discrete_quantile(x: torch.Tensor, w: torch.Tensor | None):
    x = _t(x).reshape(-1)
    w = torch.full_like(x, 1.0 / x.numel()) if w is None else _t(w).reshape(-1)
    if w.shape != x.shape or bool((w < 0).any()) or abs(float(w.sum()) - 1.0) > 1e-9:
        raise ValueError("weights must be non-negative, sum to 1 and match the points")
    order = torch.argsort(x)
    x, w = x[order], w[order]
    return x, torch.cumsum(w, 0).clamp(max=1.0)


def w2_discrete(x: torch.Tensor, y: torch.Tensor, wx: torch.Tensor | None = None,
                wy: torch.Tensor | None = None) -> torch.Tensor:
    r"""Exact :math:`W_2` between two weighted point sets on the line.

    Both quantile functions are step functions; on the common refinement of their jump levels
    :math:`0 = u_0 < u_1 < \dots < u_L = 1` they are constant, so
    :math:`W_2^2 = \sum_l (u_l-u_{l-1})\,|Q_x - Q_y|^2` exactly (the monotone coupling is optimal in 1-D).

    Args:
        x: ``[N]`` or ``[N, 1]``.
        y: ``[M]`` or ``[M, 1]``.
        wx: weights ``[N]`` of ``x`` (``None``: uniform).
        wy: weights ``[M]`` of ``y`` (``None``: uniform).

    Returns:
        0-d float64.
    """
    xs, cx = _discrete_quantile(x, wx)
    ys, cy = _discrete_quantile(y, wy)
    u = torch.unique(torch.cat([cx, cy, _t([0.0, 1.0])]))
    mid = 0.5 * (u[1:] + u[:-1])
    ix = torch.searchsorted(cx, mid).clamp(max=xs.numel() - 1)
    iy = torch.searchsorted(cy, mid).clamp(max=ys.numel() - 1)
    return torch.sqrt(((xs[ix] - ys[iy]) ** 2 * (u[1:] - u[:-1])).sum())


def cell_nodes(x: torch.Tensor, w: torch.Tensor | None = None, *, order: int = 8):
    r"""Quadrature on the cells of a discrete quantile function: for the sorted points with cumulative weights
    :math:`0=c_0<c_1<\dots`, ``order`` Gauss-Legendre nodes in each :math:`(c_{i-1}, c_i)`.

    Returns:
        ``(levels [N*order], weights [N*order], values [N*order])``: the nodes, their weights (sum 1) and the
        discrete quantile function :math:`x_{(i)}` at each node.

    Args:
        x: points ``[N]`` or ``[N, 1]``.
        w: weights ``[N]``; ``None``: uniform.
        order: nodes per cell.

    Returns:
        ``(levels [N*order], weights [N*order], values [N*order])``: the nodes, their weights (sum 1) and the
        discrete quantile function :math:`x_{(i)}` at each node.
    """
    xs, c = _discrete_quantile(x, w)
    lo = torch.cat([c.new_zeros(1), c[:-1]])
    g, gw = gauss_legendre(order)
    width = (c - lo)[:, None]
    levels = lo[:, None] + width * g[None, :]
    keep = width[:, 0] > 0
    return (levels[keep].reshape(-1), (width * gw[None, :])[keep].reshape(-1),
            xs[:, None].expand(-1, order)[keep].reshape(-1))


def w2_discrete_to_quantile(x: torch.Tensor, quantile: Callable[[torch.Tensor], torch.Tensor],
                            w: torch.Tensor | None = None, *, order: int = 8) -> torch.Tensor:
    r""":math:`W_2` between a weighted point set and a measure given by its quantile function.

    :math:`W_2^2 = \sum_i\int_{c_{i-1}}^{c_i}|x_{(i)} - Q(s)|^2\,ds`, each cell integrated by ``order``-point
    Gauss-Legendre (exact to rounding where :math:`Q` is a polynomial of degree < ``order`` on the cell).

    Args:
        x: points ``[N]`` or ``[N, 1]``.
        quantile: the quantile function :math:`Q`, levels ``[n]`` to quantiles ``[n]``.
        w: weights ``[N]``; ``None``: uniform.
        order: Gauss-Legendre nodes per cell.

    Returns:
        :math:`W_2`, a 0-d float64 tensor.
    """
    levels, weights, values = cell_nodes(x, w, order=order)
    return torch.sqrt(((values - quantile(levels)) ** 2 * weights).sum())
