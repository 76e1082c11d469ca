"""Tests of mmdflow.simplex: the simplex projection and the simplex QP solvers against brute force."""

import itertools
import math

import pytest
import torch

from mmdflow import simplex

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------- simplex
def _project_brute(v):
    """Projection by enumerating supports: the best feasible candidate w_S = v_S - theta_S."""
    n = v.shape[0]
    best, best_d = None, math.inf
    for r in range(1, n + 1):
        for S in itertools.combinations(range(n), r):
            S = list(S)
            theta = (v[S].sum() - 1) / r
            w = torch.zeros_like(v)
            w[S] = v[S] - theta
            if (w[S] >= -1e-14).all():
                d = float(((w - v) ** 2).sum())
                if d < best_d:
                    best, best_d = w.clamp_min(0), d
    return best


@pytest.mark.parametrize("seed", range(6))
def test_project_simplex_matches_brute_force(seed):
    g = _gen(seed)
    n = 2 + seed % 5
    v = 2 * torch.randn(n, generator=g, dtype=F64)
    w = simplex.project_simplex(v)
    assert torch.allclose(w, _project_brute(v), atol=1e-12)
    assert w.min() >= 0 and abs(float(w.sum()) - 1) < 1e-12


def test_project_simplex_batched_fixed_points_and_dtype():
    g = _gen(1)
    v = torch.randn(4, 5, generator=g, dtype=F64)
    w = simplex.project_simplex(v)
    for i in range(4):
        assert torch.allclose(w[i], _project_brute(v[i]), atol=1e-12)
    p = torch.tensor([0.2, 0.0, 0.5, 0.3], dtype=F64)
    assert torch.allclose(simplex.project_simplex(p), p)          # points of the simplex are fixed
    assert simplex.project_simplex(p.float()).dtype == torch.float32


# ---------------------------------------------------------------------------------- QP solver
def _qp_brute(Q, c):
    """Minimiser of 1/2 w'Qw + c'w on the simplex by enumerating supports (KKT on each support)."""
    n = c.shape[0]
    best, best_val = None, math.inf
    for r in range(1, n + 1):
        for S in itertools.combinations(range(n), r):
            S = list(S)
            M = torch.zeros(r + 1, r + 1, dtype=F64)
            M[:r, :r] = Q[S][:, S]
            M[:r, r] = 1
            M[r, :r] = 1
            rhs = torch.cat([-c[S], torch.ones(1, dtype=F64)])
            sol = torch.linalg.lstsq(M, rhs[:, None]).solution[:, 0]
            w = torch.zeros(n, dtype=F64)
            w[S] = sol[:r]
            if (w >= -1e-12).all() and abs(float(w.sum()) - 1) < 1e-9:
                val = float(0.5 * w @ Q @ w + c @ w)
                if val < best_val - 1e-13:
                    best, best_val = w.clamp_min(0), val
    return best, best_val


@pytest.mark.parametrize("method", ["active_set", "fista"])
@pytest.mark.parametrize("seed", range(4))
def test_qp_solver_matches_brute_force_kkt(method, seed):
    g = _gen(seed)
    n = 5
    A = torch.randn(n, n if seed % 2 == 0 else 3, generator=g, dtype=F64)    # odd seeds: a singular Q (rank 3)
    Q = A @ A.T
    c = torch.randn(n, generator=g, dtype=F64)
    w, info = simplex.solve_simplex_qp(Q, c, tol=1e-12, max_iter=20000, method=method)
    w_ref, val_ref = _qp_brute(Q, c)
    val = float(0.5 * w @ Q @ w + c @ w)
    assert info.converged and info.gap <= 1e-12
    assert val <= val_ref + 1e-10 and val >= val_ref - 1e-10
    if seed % 2 == 0:                                              # strictly convex: unique minimiser
        assert torch.allclose(w, w_ref, atol=1e-6)
    assert w.min() >= 0 and abs(float(w.sum()) - 1) < 1e-12


def test_qp_two_point_closed_form():
    # 1/2 w'Qw + c'w with w = (t, 1-t): minimiser t* = clip((q22 - q12 + c2 - c1) / (q11 - 2 q12 + q22), 0, 1)
    Q = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    for c in (torch.tensor([0.3, -0.2], dtype=F64), torch.tensor([-3.0, 2.0], dtype=F64), torch.tensor([3.0, -2.0], dtype=F64)):
        t = (Q[1, 1] - Q[0, 1] + c[1] - c[0]) / (Q[0, 0] - 2 * Q[0, 1] + Q[1, 1])
        t = float(t.clamp(0, 1))
        for method in ("active_set", "fista"):
            w, _ = simplex.solve_simplex_qp(Q, c, tol=1e-14, max_iter=10000, method=method)
            assert torch.allclose(w, torch.tensor([t, 1 - t], dtype=F64), atol=1e-7)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="non-finite"):
        simplex.project_simplex(torch.tensor([1.0, float("nan")], dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        simplex.solve_simplex_qp(torch.eye(3), torch.zeros(2, dtype=F64))
