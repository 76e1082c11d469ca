"""Grouped coinciding pairs (two-Dirac starts: a million pairs in two groups) against the dense row-equality matrix,
and the grouped coincidence terms against the plain pair-list formulas."""

from __future__ import annotations

import math

import pytest
import torch

from mmdflow.summation import dense, dispatch


def _clouds(d, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 3, (300, d), generator=gen).to(dtype)
    b = torch.randint(0, 3, (200, d), generator=gen).to(dtype)
    if d > 2:
        a[:, 2:], b[:, 2:] = 0.0, 0.0
    a[:40] = 7.0                                       # one large group: 40 x 60 pairs
    b[:60] = 7.0
    a[40:60], b[60:80] = b[90:110].clone(), b[90:110].clone()
    a[45, 0], b[91, 0] = -0.0, 0.0
    return a, b


def _ref_pairs(a, b):
    return sorted(map(tuple, (a[:, None, :] == b[None, :, :]).all(-1).nonzero().tolist()))


@pytest.mark.parametrize("d, dtype", [(2, torch.float32), (7, torch.float64), (784, torch.float32)])
@pytest.mark.parametrize("block_pairs", [1, 100, 4096, 2 ** 62])
def test_groups_hold_exactly_the_pairs_of_the_equality_matrix(d, dtype, block_pairs):
    a, b = _clouds(d, dtype, d)
    g = dense.coinciding_groups(a, b, block_pairs=block_pairs)
    ia, ib = g.pairs()
    assert sorted(zip(ia.tolist(), ib.tolist())) == _ref_pairs(a, b)
    assert g.num_pairs() == len(_ref_pairs(a, b))
    if block_pairs == 100:
        assert any(x.numel() * y.numel() == 2400 for x, y in g.blocks)      # the 40 x 60 group is a block


def test_two_diracs_are_two_blocks_and_spread_points_none():
    x = torch.zeros(2000, 2)
    x[1000:, 0] = 1.0
    g = dense.coinciding_groups(x, x)
    assert g.ia.numel() == 0 and len(g.blocks) == 2 and g.num_pairs() == 2 * 1000 * 1000
    assert sorted(len(a) for a, _ in g.blocks) == [1000, 1000]
    y = torch.rand(500, 2, generator=torch.Generator().manual_seed(0))
    assert dense.coinciding_groups(y, y + 1.0).empty()
    ia, ib = dense.coinciding_pairs(y, y)                # each point with itself only
    assert torch.equal(ia.sort().values, torch.arange(500)) and torch.equal(ia, ib)


def test_a_hash_collision_is_resolved_exactly(monkeypatch):
    a, b = _clouds(3, torch.float64, 1)
    monkeypatch.setattr(dense, "_row_hash", lambda x: torch.zeros(x.shape[0], dtype=torch.int64))   # all collide
    ia, ib = dense.coinciding_groups(a, b, block_pairs=100).pairs()
    assert sorted(zip(ia.tolist(), ib.tolist())) == _ref_pairs(a, b)


@pytest.mark.parametrize("slope", [-1.0, -math.inf])
@pytest.mark.parametrize("fixed", [False, True])
@pytest.mark.parametrize("uniform", [False, True])
@pytest.mark.parametrize("d", [2, 10])
def test_grouped_terms_match_the_pair_list(slope, fixed, uniform, d):
    a, b = _clouds(d, torch.float64, 2)
    gen = torch.Generator().manual_seed(3)
    ua = torch.randn(a.shape[0], d, generator=gen, dtype=torch.float64)
    ub = None if fixed else torch.randn(b.shape[0], d, generator=gen, dtype=torch.float64)
    if not fixed:
        ub[60] = ua[0]                                   # one coinciding pair with zero relative velocity
    ua[1] = 0.0
    wa = torch.rand(a.shape[0], generator=gen, dtype=torch.float64)
    wb = torch.rand(b.shape[0], generator=gen, dtype=torch.float64)
    ia, ib = dense.coinciding_pairs(a, b)
    groups = dense.coinciding_groups(a, b, block_pairs=50)
    assert groups.blocks
    # autograd form, weight columns or scalars
    cols = (1 / a.shape[0], 1 / b.shape[0]) if uniform else (wa[:, None], wb[:, None])
    ua_r = ua.clone().requires_grad_()
    ref = dense.coincidence_term(ua_r, ub, ia, ib, *cols, slope)
    ua_g = ua.clone().requires_grad_()
    got = dense.grouped_coincidence_term(ua_g, ub, groups, *cols, slope)
    assert float(got.detach()) == pytest.approx(float(ref.detach()), rel=1e-12)
    if not math.isinf(slope):
        g_ref, = torch.autograd.grad(ref, ua_r)
        g_got, = torch.autograd.grad(got, ua_g)
        torch.testing.assert_close(g_got, g_ref, rtol=1e-12, atol=1e-14)
    # explicit gradients (weights as vectors)
    wv = (torch.full_like(wa, 1 / a.shape[0]), torch.full_like(wb, 1 / b.shape[0])) if uniform else (wa, wb)
    v_ref, ga_ref, gb_ref = dispatch._coincidence_and_grads(ua, ub, (ia, ib), *wv, slope)
    v_got, ga_got, gb_got = dense.grouped_coincidence_and_grads(ua, ub, groups, *wv, slope)
    assert float(v_got) == pytest.approx(float(v_ref), rel=1e-12)
    torch.testing.assert_close(ga_got, ga_ref, rtol=1e-12, atol=1e-14)
    if not fixed:
        torch.testing.assert_close(gb_got, gb_ref, rtol=1e-12, atol=1e-14)


def test_directional_derivative_from_two_diracs_matches_the_dense_reference():
    from mmdflow.kernels import Riesz
    x = torch.zeros(120, 2, dtype=torch.float64)
    x[60:, 0] = 1.0
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(120, 2, generator=gen, dtype=torch.float64)
    ref = dense.reference_directional_derivative(x, u, x, u, Riesz(1.0), 1 / 120, 1 / 120)
    for backend in ("blocked",):
        got = dispatch.directional_derivative(x, u, x, u, Riesz(1.0), backend=backend)
        assert float(got) == pytest.approx(float(ref), rel=1e-10)
