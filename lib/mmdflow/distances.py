r"""Squared distances :math:`s_{ij} = \|x_i - y_j\|^2`, the one distance routine of the library.

:func:`squared_distances` forms them from explicit ``[N, M, d]`` differences (exact, the reference);
:func:`pairwise_squared_distances` without that temporary: explicit differences one coordinate at a time up to
:data:`EXPLICIT_DIFF_MAX_D` dimensions, above a GEMM :math:`s = |x|^2 + |y|^2 - 2\langle x, y\rangle` whose
entries near 0 are recomputed exactly; :func:`centred` removes the clouds' common mean first, so that the GEMM form
loses no digits to an offset. :mod:`mmdflow.kernels` exports every name too.
"""

from __future__ import annotations

import torch

__all__ = ["squared_distances", "pairwise_squared_distances", "centred", "EXPLICIT_DIFF_MAX_D"]

#: up to this dimension, squared distances come from explicit differences; above, from a GEMM.
EXPLICIT_DIFF_MAX_D = 8


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact squared distances ``|x_i - y_j|^2`` from explicit differences.

    Args:
        x: ``[N, d]``.
        y: ``[M, d]``.

    Returns:
        ``[N, M]`` tensor. Uses ``O(N M d)`` memory; the blocked backend in
        :mod:`mmdflow.summation` avoids that for large inputs.
    """
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def pairwise_squared_distances(x: torch.Tensor, y: torch.Tensor, *, x_sq: torch.Tensor | None = None,
                               y_sq: torch.Tensor | None = None, exact: bool | None = None
                               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Squared distances ``[N, M]`` without an ``[N, M, d]`` temporary, and the mask of entries set to 0.

    The one distance routine of the fast paths (blocked sums, Gram matrices):

    * ``exact`` (default for ``d <= EXPLICIT_DIFF_MAX_D``): explicit differences, one coordinate at a time;
      the mask is ``None``.
    * GEMM (default above): :math:`s = |x|^2 + |y|^2 - 2\langle x, y\rangle` (one ``addmm``). Its absolute
      rounding error is about :math:`\varepsilon(|x|^2 + |y|^2)`; entries below ``2^10 eps (|x_i|^2 + |y_j|^2)``
      are recomputed from explicit differences, so that close pairs keep their digits and coinciding points
      get exactly 0 (the returned mask), whatever the clouds' offset. Centre the clouds first (:func:`centred`)
      so that few entries need it.

    Args:
        x: ``[N, d]``.
        y: ``[M, d]``.
        x_sq, y_sq: precomputed ``|x_i|^2`` ``[N]``, ``|y_j|^2`` ``[M]`` (GEMM form).
        exact: force explicit differences (``True``) or the GEMM (``False``); ``None`` chooses by ``d``.

    Returns:
        ``(s, zero)``: the squared distances :math:`s_{ij} = \|x_i - y_j\|^2`, ``[N, M]`` (dtype and device of
        ``x``), and the ``[N, M]`` boolean mask of the entries that are exactly 0 (GEMM form), or ``None`` (explicit
        differences).
    """
    if exact is None:
        exact = x.shape[1] <= EXPLICIT_DIFF_MAX_D
    if exact:
        yt = y.T.contiguous()
        diff = x[:, :1] - yt[0]
        sq = diff * diff
        for k in range(1, x.shape[1]):
            torch.sub(x[:, k:k + 1], yt[k], out=diff)
            sq.addcmul_(diff, diff)
        return sq, None
    if y_sq is None:
        y_sq = (y * y).sum(1)
    if x_sq is None:
        x_sq = y_sq if x is y else (x * x).sum(1)
    # one GEMM writing onto the broadcast |y|^2, one in-place add (no [N, M] norm matrices)
    s = torch.addmm(y_sq[None, :], x, y.T, alpha=-2.0).add_(x_sq[:, None])
    # the GEMM form has an absolute rounding error of about eps (|x|^2 + |y|^2): entries below 2^10 times that
    # level are recomputed from explicit differences (exact, whatever the offset of the clouds)
    eps = torch.finfo(s.dtype).eps
    norms = torch.add(x_sq[:, None], y_sq[None, :])
    loose = s <= (2.0 ** 10 * eps) * norms
    idx = loose.nonzero()
    if idx.numel():
        diff = x[idx[:, 0]] - y[idx[:, 1]]
        s[idx[:, 0], idx[:, 1]] = (diff * diff).sum(1)
    zero = s <= 0
    return s.clamp_min_(0.0), zero


def centred(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x - c`` and ``y - c`` for the mean ``c`` of all their points (``y is x`` is kept): differences are unchanged,
    and the GEMM form of the squared distances loses no digits to a common offset of the clouds.

    Args:
        x: ``[N, d]``.
        y: ``[M, d]``, or ``x`` itself.

    Returns:
        ``(x - c, y - c)``, shapes ``[N, d]`` and ``[M, d]``, with ``c`` the mean of the ``N + M`` points (computed in
        float64, cast back to ``x``'s dtype); the second is the first when ``y is x``.
    """
    pts = x if y is x else torch.cat([x, y])
    c = pts.detach().double().mean(0).to(x.dtype)
    xc = x - c
    return xc, (xc if y is x else y - c)
