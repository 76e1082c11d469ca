"""Tests of the App. F implosion/explosion functional against dense formulas, autograd and finite differences."""

import pytest
import torch

from mmdflow.functionals import ImplosionExplosion

F = ImplosionExplosion()


def cloud(n=60, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(n, 2, generator=g, dtype=dtype)
    w = torch.rand(n, generator=g, dtype=dtype) + 0.1
    return p, w / w.sum()


def dense_value(p, w):
    """Direct double sum of the App. F formula."""
    x, y = p[:, 0], p[:, 1]
    pot = ((x < 0).to(p.dtype) * y.abs() - x) @ w
    m = (x >= 0).to(p.dtype) * w
    return pot - 0.5 * m @ (y[:, None] - y[None, :]).abs() @ m


def test_value_matches_dense_double_sum():
    p, w = cloud()
    torch.testing.assert_close(F.value(p, w), dense_value(p, w))
    torch.testing.assert_close(F.value(p), dense_value(p, torch.full((60,), 1 / 60, dtype=p.dtype)))


def test_value_closed_forms():
    # two points on the right at y = +-1, equal weights: F = -(x1 + x2)/2 - 1/2 * 2 * (1/4) * 2
    p = torch.tensor([[1.0, 1.0], [2.0, -1.0]], dtype=torch.float64)
    assert F.value(p).item() == pytest.approx(-1.5 - 0.5)
    # a point on the left only feels the potential |y| - x
    assert F.value(torch.tensor([[-2.0, -3.0]])).item() == pytest.approx(5.0)


def test_gradient_is_autograd_of_value_over_weights():
    p, w = cloud(seed=1)
    q = p.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(dense_value(q, w), q)
    torch.testing.assert_close(F.gradient(p, w), g / w[:, None])   # d F / d p_i = w_i * (Wasserstein gradient)


def test_value_is_differentiable_like_the_dense_double_sum():
    p, w = cloud(seed=10)
    p[::3, 0] = p[::3, 0].abs()                 # more points in the right half-plane, where the interaction acts
    q1, w1 = p.clone().requires_grad_(True), w.clone().requires_grad_(True)
    q2, w2 = p.clone().requires_grad_(True), w.clone().requires_grad_(True)
    g1 = torch.autograd.grad(F.value(q1, w1), (q1, w1))
    g2 = torch.autograd.grad(dense_value(q2, w2), (q2, w2))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_gradient_is_gradient_of_first_variation():
    p, w = cloud(seed=2)
    z = p.clone().requires_grad_(True)
    # differentiate in z only (the measure is held fixed)
    fv = F.first_variation(z, p, w)
    (g,) = torch.autograd.grad(fv.sum(), z)
    torch.testing.assert_close(F.gradient(p, w), g)
    # closed form: the first variation at a point equals the dense expression
    x, y = p[:, 0], p[:, 1]
    m = (x >= 0).to(p.dtype) * w
    ref = ((x < 0).to(p.dtype) * y.abs() - x) - (x >= 0).to(p.dtype) * ((y[:, None] - y[None, :]).abs() @ m)
    torch.testing.assert_close(fv.detach(), ref)


def test_gradient_directions():
    # left half: velocity points to the axis (implosion) and right; right half: away from the other points
    p = torch.tensor([[-1.0, 2.0], [-1.0, -2.0], [1.0, 0.5], [1.0, -0.5]], dtype=torch.float64)
    v = -F.gradient(p)
    assert torch.equal(v[:, 0], torch.ones(4, dtype=torch.float64))
    assert v[0, 1] == -1 and v[1, 1] == 1
    assert v[2, 1] == pytest.approx(0.25) and v[3, 1] == pytest.approx(-0.25)


def test_batch_estimate_of_identical_batches_is_the_value():
    p, _ = cloud(seed=3)
    torch.testing.assert_close(F.batch_estimate(p, p), F.value(p))


def test_batch_estimate_is_unbiased_on_average():
    g = torch.Generator().manual_seed(4)
    pop = torch.randn(4000, 2, generator=g, dtype=torch.float64) + torch.tensor([0.3, 0.0], dtype=torch.float64)
    est = torch.stack([F.batch_estimate(pop[torch.randint(0, 4000, (200,), generator=g)],
                                        pop[torch.randint(0, 4000, (200,), generator=g)]) for _ in range(100)])
    assert abs(est.mean().item() - F.value(pop).item()) < 4 * est.std().item() / 100**0.5 + 1e-3


def check_against_finite_differences(p1, p2, seed, eps, tol):
    """Random velocities ``u1``, ``u2`` (from ``seed``); asserts that the directional derivative of the two-batch
    estimate along them is its one-sided finite difference with step ``eps``, and returns them."""
    g = torch.Generator().manual_seed(seed)
    u1 = torch.randn(len(p1), 2, generator=g, dtype=torch.float64)
    u2 = torch.randn(len(p2), 2, generator=g, dtype=torch.float64)
    fd = (F.batch_estimate(p1 + eps * u1, p2 + eps * u2) - F.batch_estimate(p1, p2)) / eps
    torch.testing.assert_close(F.batch_directional_derivative(p1, u1, p2, u2), fd, atol=tol, rtol=tol)
    return u1, u2


def test_directional_derivative_matches_finite_differences():
    p1, _ = cloud(40, seed=5)
    p2, _ = cloud(30, seed=6)
    check_against_finite_differences(p1, p2, seed=7, eps=1e-7, tol=1e-5)


def test_directional_derivative_at_coinciding_points_is_one_sided():
    # all particles at the same point of the right half-plane: they separate in y, D = -u_x - 1/2 E|u1y - u2y|
    p = torch.tensor([[0.5, 0.0]], dtype=torch.float64).repeat(20, 1)
    u1, u2 = check_against_finite_differences(p, p, seed=8, eps=1e-6, tol=1e-6)
    assert F.batch_directional_derivative(p, u1, p, u2).item() < -torch.cat([u1, u2])[:, 0].mean().item()


def test_directional_derivative_is_differentiable_in_velocities():
    p, _ = cloud(10, seed=9)
    u = torch.randn(10, 2, dtype=torch.float64, requires_grad=True)
    F.batch_directional_derivative(p, u, p, u).backward()
    assert u.grad is not None and torch.isfinite(u.grad).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        F.value(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="velocities"):
        F.batch_directional_derivative(torch.zeros(5, 2), torch.zeros(4, 2), torch.zeros(5, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="sum to one"):
        F.value(torch.zeros(3, 2), torch.ones(3))


def test_sums_on_every_device_match_the_dense_formulas(device):
    """The sorting sums run on the points' device (numba on the CPU, the torch engine on a GPU)."""
    p, w = cloud(seed=11)
    p, w = p.to(device), w.to(device)
    torch.testing.assert_close(F.value(p, w), dense_value(p, w))
    x, y = p[:, 0], p[:, 1]
    m = (x >= 0).to(p.dtype) * w
    gy = torch.where(x >= 0, -(torch.sign(y[:, None] - y[None, :]) @ m), torch.sign(y))
    torch.testing.assert_close(F.gradient(p, w), torch.stack([-torch.ones_like(gy), gy], 1))
    assert F.first_variation(p[:7], p, w).device == p.device
