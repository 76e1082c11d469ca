"""The exact 1-D quantile flow (mmdflow.analytic1d) against closed forms, an implicit time integral, the particle
ODE's structure, and W2 by quantiles against known values and a brute-force matching."""

import itertools
import math

import pytest
import torch

from mmdflow import analytic1d as a1

F64 = torch.float64
LEVELS = (torch.arange(500, dtype=F64) + 0.5) / 500


@pytest.mark.parametrize("x0", [0.3, -0.5, 1.7])
def test_uniform_target_matches_closed_form(x0):
    q = a1.quantile_flow(a1.Uniform(0.0, 1.0), x0, LEVELS, [0.25, 1.0, 2.0])
    for k, t in enumerate([0.25, 1.0, 2.0]):
        assert float((q[k] - a1.uniform_flow_from_dirac(x0, LEVELS, t)).abs().max()) < 1e-10


def test_uniform_closed_form_solves_the_ode():
    """The closed form itself: finite-difference time derivative equals 2 (s - F(Q)) (independent of the solver)."""
    t, h = 0.7, 1e-6
    for x0 in (0.3, -0.5):
        qp, qm = (a1.uniform_flow_from_dirac(x0, LEVELS, t + e) for e in (h, -h))
        q = a1.uniform_flow_from_dirac(x0, LEVELS, t)
        rhs = 2 * (LEVELS - a1.Uniform(0.0, 1.0).cdf(q))
        assert float(((qp - qm) / (2 * h) - rhs).abs().max()) < 1e-6


def test_gaussian_target_matches_the_implicit_time_integral():
    """t = int_{x0}^{Q(t,s)} dq / (2 (s - F(q))), by composite Gauss-Legendre quadrature."""
    nu = a1.Gaussian(0.0, 0.5)
    s = torch.tensor([0.05, 0.3, 0.5, 0.8, 0.97], dtype=F64)
    q = a1.quantile_flow(nu, 0.25, s, [0.6])[0]
    node, weight = a1.gauss_legendre(20)
    for i in range(s.numel()):
        e = torch.linspace(0.25, float(q[i]), 301, dtype=F64)
        nodes = e[:-1, None] + (e[1:] - e[:-1])[:, None] * node
        t = ((e[1:] - e[:-1])[:, None] * weight / (2 * (s[i] - nu.cdf(nodes)))).sum()
        assert abs(float(t) - 0.6) < 1e-10


def test_atom_levels_merge_in_finite_time_and_order_is_kept():
    nu = a1.Mixture((a1.Gaussian(0.0, 0.5), a1.Atom(0.75)), (0.6, 0.4))
    lo, hi = float(nu.cdf_left(torch.tensor(0.75))), float(nu.cdf(torch.tensor(0.75)))
    q = a1.quantile_flow(nu, 0.25, LEVELS, [0.5, 4.0])
    inside = (LEVELS > lo + 0.07) & (LEVELS < hi)              # these arrive by t = 0.5 / (2 * 0.07) < 4
    assert bool((q[1][inside] == 0.75).all())                       # merged exactly into the atom
    assert bool((q[1][LEVELS < lo] < 0.75).all())
    assert bool((q.diff(dim=1) >= 0).all())                         # still a quantile function
    # a level just inside the jump starting below: it reaches the atom no later than (a - x0) / (2 (s - F(a-)))
    s = torch.tensor([lo + 0.1], dtype=F64)
    bound = (0.75 - 0.25) / (2 * 0.1)
    assert float(a1.quantile_flow(nu, 0.25, s, [bound])[0, 0]) == 0.75


def test_levels_do_not_move_at_their_equilibrium_and_dirac_levels_separate():
    nu = a1.Gaussian(0.0, 1.0)
    s = torch.tensor([0.2, 0.5, 0.8], dtype=F64)
    start = nu.quantile(s)
    assert float((a1.quantile_flow(nu, start, s, [3.0])[0] - start).abs().max()) < 1e-12
    q = a1.quantile_flow(nu, 0.0, s, [1e-3])[0]
    assert float(q[0]) < float(q[1]) < float(q[2]) and abs(float(q[1])) < 1e-15   # the median level stays


def test_mixture_quantiles_invert_the_cdf():
    nu = a1.Mixture((a1.Uniform(-1.5, -0.5), a1.Uniform(0.5, 1.5)), (0.5, 0.5))
    s = torch.tensor([0.1, 0.4, 0.6, 0.9], dtype=F64)
    assert float((nu.cdf(nu.quantile(s)) - s).abs().max()) < 1e-12
    # the level of the gap: left quantile at its left end, right quantile at its right end
    assert abs(float(nu.quantile(torch.tensor([0.5], dtype=F64))) + 0.5) < 1e-12
    assert abs(float(nu.quantile_right(torch.tensor([0.5], dtype=F64))) - 0.5) < 1e-12


def test_w2_discrete_against_brute_force_matching():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, generator=gen, dtype=F64), torch.randn(6, generator=gen, dtype=F64) * 2 + 1
    best = min(float(((x - y[list(p)]) ** 2).mean()) for p in itertools.permutations(range(6)))
    assert abs(float(a1.w2_discrete(x, y)) ** 2 - best) < 1e-12


def test_w2_discrete_weights_equal_split_points():
    x = torch.tensor([0.0, 1.0, 3.0], dtype=F64)
    y = torch.tensor([0.5, 2.0], dtype=F64)
    w = torch.tensor([0.5, 0.25, 0.25], dtype=F64)
    split = torch.tensor([0.0, 0.0, 1.0, 3.0], dtype=F64)
    assert abs(float(a1.w2_discrete(x, y, w)) - float(a1.w2_discrete(split, y))) < 1e-14
    assert abs(float(a1.w2_discrete(torch.zeros(1, dtype=F64), torch.tensor([-1.0, 1.0], dtype=F64))) - 1.0) < 1e-14


def test_w2_to_quantile_known_values():
    n = 50
    mid = (torch.arange(n, dtype=F64) + 0.5) / n
    # N midpoints of U[0, 1] against U[0, 1]: W2 = 1 / (N sqrt 12)
    assert abs(float(a1.w2_discrete_to_quantile(mid, lambda s: s)) - 1 / (n * math.sqrt(12))) < 1e-14
    # two Gaussians: W2^2 = (m1 - m2)^2 + (s1 - s2)^2; a fine discrete stand-in for N(0, 1)
    g1, g2 = a1.Gaussian(0.0, 1.0), a1.Gaussian(0.5, 2.0)
    fine = g1.quantile((torch.arange(20000, dtype=F64) + 0.5) / 20000)
    w2 = float(a1.w2_discrete_to_quantile(fine, g2.quantile))
    assert abs(w2 - math.sqrt(0.25 + 1.0)) < 2e-3


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="a < b"):
        a1.Uniform(1.0, 0.0)
    with pytest.raises(ValueError, match="open interval"):
        a1.quantile_flow(a1.Uniform(0, 1), 0.5, torch.tensor([0.0, 0.5], dtype=F64), [1.0])
    with pytest.raises(ValueError, match="sum to 1"):
        a1.Mixture((a1.Uniform(0, 1), a1.Atom(2.0)), (0.5, 0.6))
    with pytest.raises(ValueError, match="non-decreasing"):
        a1.solve_levels(lambda y: -y, torch.ones(2, dtype=F64), [1.0, 0.5])
