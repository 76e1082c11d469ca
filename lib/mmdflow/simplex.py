r"""Quadratic programs over the probability simplex: the weight steps of the weighted-particle flows.

The MMD (proximal) weight step of IFT (Gladin, Dvurechensky, Mielke, Zhu, NeurIPS 2024, Sec. 4) and the
authors' projected-gradient step live on the simplex :math:`\Delta = \{w\in\mathbb R^N : w\ge0,\ \sum_i w_i = 1\}`:

* :func:`project_simplex` -- the Euclidean projection :math:`P_\Delta(v) = \arg\min_{w\in\Delta}\|w - v\|`
  (exact, sort-based), on the last dimension of a ``[..., N]`` tensor;
* :func:`solve_simplex_qp` -- :math:`\min_{w\in\Delta}\tfrac12 w^\top Qw + c^\top w` for a symmetric PSD
  ``[N, N]`` matrix :math:`Q`, with the Frank-Wolfe duality gap as certificate (:class:`QPInfo`).

Only torch (and numpy for the active-set solver); the schemes in :mod:`mmdflow.wfr` import from here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._checks import check_positive

__all__ = ["project_simplex", "QPInfo", "solve_simplex_qp"]


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    r"""Euclidean projection onto the probability simplex, :math:`\arg\min_{w\in\Delta}\|w - v\|`.

    Exact sort-based algorithm (Held, Wolfe, Crowder 1974; Duchi et al. 2008): with
    :math:`u` the entries of :math:`v` sorted decreasingly, :math:`\rho = \max\{j : u_j -
    (\sum_{i\le j}u_i - 1)/j > 0\}` and :math:`\theta = (\sum_{i\le\rho}u_i - 1)/\rho`, the projection
    is :math:`\max(v - \theta, 0)`.

    Args:
        v: ``[..., N]``; the projection acts on the last dimension.

    Returns:
        tensor of the shape, dtype and device of ``v``, non-negative, summing to one along the last dim.
    """
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"v must be a torch.Tensor, got {type(v).__name__}")
    if v.dim() == 0 or v.shape[-1] == 0:
        raise ValueError(f"v must have a non-empty last dimension, got shape {tuple(v.shape)}")
    if not v.is_floating_point():
        raise TypeError(f"v must have a floating dtype, got {v.dtype}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError("v contains a non-finite value")
    n = v.shape[-1]
    if float(v.detach().abs().max()) > 1e3:
        # large entries: the "- 1" of the running sums below would be lost to rounding (and the sums may overflow).
        # The projection is invariant to a common shift, and an entry below max(v) - 1 is zero in it
        # (theta >= max(v) - 1), so shift by the maximum and clamp the far entries to -2: the same projection
        v = (v - v.amax(dim=-1, keepdim=True)).clamp_min(-2.0)
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = torch.cumsum(u, dim=-1) - 1.0
    j = torch.arange(1, n + 1, dtype=v.dtype, device=v.device)
    cond = (u - css / j) > 0
    # rho: number of entries kept = index of the last True + 1 (the first entry always qualifies)
    rho = (cond * torch.arange(1, n + 1, device=v.device)).amax(dim=-1, keepdim=True)
    theta = css.gather(-1, rho - 1) / rho.to(v.dtype)
    return torch.clamp(v - theta, min=0.0)


class QPInfo(NamedTuple):
    """Certificate of :func:`solve_simplex_qp`.

    Attributes:
        gap: the Frank-Wolfe duality gap :math:`\\nabla\\phi(w)^\\top w - \\min_i\\nabla\\phi(w)_i`, an upper
            bound on :math:`\\phi(w) - \\min_\\Delta\\phi` (zero exactly at the KKT points).
        n_iter: iterations used.
        converged: ``gap <= tol``.
        lipschitz: the step constant :math:`L` used by FISTA (step ``1/L``; ``nan`` for the active-set solver).
    """

    gap: float
    n_iter: int
    converged: bool
    lipschitz: float


def _top_eigenvalue(q: torch.Tensor, iters: int = 30) -> float:
    """Power-iteration estimate of the top eigenvalue of a symmetric PSD matrix (from below)."""
    u = torch.ones(q.shape[0], dtype=q.dtype, device=q.device)
    u = u / u.norm()
    lam = 0.0
    for _ in range(iters):
        qu = q @ u
        lam = float(u @ qu)
        nrm = qu.norm()
        if nrm <= 0:
            break
        u = qu / nrm
    return lam


def _fw_gap(Q: torch.Tensor, c: torch.Tensor, w: torch.Tensor) -> float:
    g = Q @ w + c
    return float(g @ w - g.min())


def _fista(Q, c, w, tol, max_iter):
    """FISTA with step 1/L, backtracking safeguard and function-value restart (float64 torch)."""
    L = max(_top_eigenvalue(Q), 1e-300)
    Qw = Q @ w
    phi = 0.5 * float(w @ Qw) + float(c @ w)
    w_prev, Qw_prev, t = w, Qw, 1.0
    gap, it = float("inf"), 0
    for it in range(1, max_iter + 1):
        grad_w = Qw + c
        gap = float(grad_w @ w - grad_w.min())
        if gap <= tol:
            return w, gap, it - 1, L
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        mom = (t - 1.0) / t_next
        yk = w + mom * (w - w_prev)
        Qy = Qw + mom * (Qw - Qw_prev)
        gy = Qy + c
        while True:
            w_new = project_simplex(yk - gy / L)
            Qw_new = Q @ w_new
            d = w_new - yk
            dd = float(d @ d)
            if dd == 0.0 or float(d @ (Qw_new - Qy)) <= L * dd * (1 + 1e-12):
                break
            L *= 2.0
        phi_new = 0.5 * float(w_new @ Qw_new) + float(c @ w_new)
        if phi_new > phi:  # adaptive restart: drop the momentum, take a plain projected-gradient step
            t_next = 1.0
            w_new = project_simplex(w - grad_w / L)
            Qw_new = Q @ w_new
            phi_new = 0.5 * float(w_new @ Qw_new) + float(c @ w_new)
        w_prev, Qw_prev, w, Qw, phi, t = w, Qw, w_new, Qw_new, phi_new, t_next
    return w, _fw_gap(Q, c, w), it, L


def _active_set(Q, c, w, tol, max_iter):
    """Primal active-set method (float64 numpy): exact up to round-off, warm-started from ``w``'s support.

    On the working set P it solves the equality-constrained problem through the KKT system
    ``[[Q_PP, 1], [1^T, 0]] [s; -lambda] = [-c_P; 1]`` (least squares with a relative cut-off, so a
    singular ``Q_PP`` from nearly coinciding particles is handled), steps from ``w`` towards ``s`` up to
    the first bound that becomes active (dropping it), and adds the index of the most negative reduced
    cost ``g_j - lambda`` when ``s`` is feasible. The reduced-cost test is the Frank-Wolfe gap test.
    """
    import numpy as np

    Qn, cn, wn = (a.detach().cpu().numpy() for a in (Q, c, w))
    n = cn.shape[0]
    wn = wn.copy()
    P = np.flatnonzero(wn > 0)
    if P.size > max(1, n // 2):  # a cold start from the best vertex is cheaper than shrinking a large support
        j = int(np.argmin(0.5 * np.diag(Qn) + cn))
        wn[:] = 0.0
        wn[j] = 1.0
        P = np.array([j])
    gap, it = float("inf"), 0
    for it in range(1, max_iter + 1):
        p = P.size
        M = np.zeros((p + 1, p + 1))
        M[:p, :p] = Qn[np.ix_(P, P)]
        M[:p, p] = 1.0
        M[p, :p] = 1.0
        rhs = np.concatenate([-cn[P], [1.0]])
        try:  # LU first; least squares when the KKT matrix is (numerically) singular
            sol = np.linalg.solve(M, rhs)
            if not np.all(np.isfinite(sol)) or np.abs(M @ sol - rhs).max() > 1e-9 * (1.0 + np.abs(rhs).max()):
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            sol = np.linalg.lstsq(M, rhs, rcond=1e-13)[0]
        s = sol[:p]
        if s.min() > 0:
            wn[:] = 0.0
            wn[P] = s / s.sum()
            g = Qn @ wn + cn
            gap = float(g @ wn - g.min())
            if gap <= tol:
                break
            j = int(np.argmin(g))
            if wn[j] > 0:  # stationarity on P is only approximate: no further progress possible
                break
            P = np.sort(np.append(P, j))
        else:
            wP = wn[P]
            neg = s <= 0
            ratios = np.full(p, np.inf)
            ratios[neg] = wP[neg] / (wP[neg] - s[neg])
            k = int(np.argmin(ratios))
            alpha = float(ratios[k])
            wP = wP + alpha * (s - wP)
            wP[k] = 0.0
            wP[wP < 1e-300] = 0.0
            keep = wP > 0
            wn[:] = 0.0
            wn[P[keep]] = wP[keep] / wP[keep].sum()
            P = P[keep]
    out = torch.from_numpy(wn).to(Q)
    return out, _fw_gap(Q, c, out), it, float("nan")


def solve_simplex_qp(q: torch.Tensor, c: torch.Tensor, w0: torch.Tensor | None = None, *,
                     tol: float = 1e-10, max_iter: int = 5000,
                     method: str = "active_set") -> tuple[torch.Tensor, QPInfo]:
    r"""Minimise :math:`\phi(w) = \tfrac12 w^\top Q w + c^\top w` over the probability simplex.

    Two solvers, both stopped by the Frank-Wolfe duality gap
    :math:`g(w) = \nabla\phi(w)^\top w - \min_i\nabla\phi(w)_i \ge \phi(w) - \min_\Delta\phi`
    (zero exactly at the KKT points; for a stationary point on its support it equals the largest
    negative reduced cost), which is returned as the certificate:

    * ``"active_set"`` (default): a primal active-set method warm-started from the support of ``w0``;
      finite, exact up to round-off, robust to the (numerically) singular kernel matrices of clustered
      particles.
    * ``"fista"``: accelerated projected gradient (Beck & Teboulle 2009) with step :math:`1/L`,
      :math:`L` the top eigenvalue of :math:`Q` (power iteration, safeguarded by the exact
      sufficient-decrease test :math:`d^\top Qd \le L\|d\|^2`), function-value restart (O'Donoghue &
      Candès 2015). Simple, but on ill-conditioned Gaussian kernel matrices it may need :math:`10^4`
      iterations for a gap of :math:`10^{-6}`.

    Computed in float64.

    Args:
        q: symmetric positive semi-definite ``[N, N]``.
        c: ``[N]``.
        w0: feasible start ``[N]`` (``None`` = uniform).
        tol: target duality gap (absolute, in units of :math:`\phi`).
        max_iter: iteration cap.
        method: ``"active_set"`` or ``"fista"``.

    Returns:
        ``(w, info)``: the minimiser ``[N]`` in the dtype of ``q`` and a :class:`QPInfo`.
    """
    if not isinstance(q, torch.Tensor) or q.dim() != 2 or q.shape[0] != q.shape[1]:
        raise ValueError(f"q must be a square matrix, got shape {tuple(getattr(q, 'shape', ()))}")
    n = q.shape[0]
    if not isinstance(c, torch.Tensor) or c.shape != (n,):
        raise ValueError(f"c must have shape ({n},), got {tuple(getattr(c, 'shape', ()))}")
    if not (bool(torch.isfinite(q).all()) and bool(torch.isfinite(c).all())):
        raise ValueError("q and c must be finite")
    tol = check_positive(tol, "tol")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if method not in ("active_set", "fista"):
        raise ValueError(f"method must be 'active_set' or 'fista', got {method!r}")
    Q, c64 = q.detach().double(), c.detach().double()
    if w0 is None:
        w = torch.full((n,), 1.0 / n, dtype=torch.float64, device=q.device)
    else:
        if w0.shape != (n,):
            raise ValueError(f"w0 must have shape ({n},), got {tuple(w0.shape)}")
        w = project_simplex(w0.detach().double())
    solver = _active_set if method == "active_set" else _fista
    w, gap, it, L = solver(Q, c64, w, tol, max_iter)
    return w.to(q.dtype), QPInfo(gap=gap, n_iter=it, converged=gap <= tol, lipschitz=L)
