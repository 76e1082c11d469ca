"""Energies and the discrepancy against closed forms, autograd, finite differences and the dense reference."""

import math
from statistics import NormalDist

import pytest
import torch

from mmdflow import closed_forms, energies, kernels

ALL = [kernels.Riesz(0.5), kernels.Riesz(1.0), kernels.Riesz(1.5), kernels.Gaussian(0.7),
       kernels.InverseMultiquadric(1.3), kernels.Laplace(0.9)]


def normal_quantile_grid(n, mean=0.0, std=1.0):
    """Deterministic 'sample' of N(mean, std^2): the quantiles at (i - 1/2)/n, shape (n, 1)."""
    nd = NormalDist(mean, std)
    return torch.tensor([[nd.inv_cdf((i + 0.5) / n)] for i in range(n)], dtype=torch.float64)


def random_weights(n, gen):
    w = torch.rand(n, generator=gen, dtype=torch.float64) + 0.1
    return w / w.sum()


@pytest.mark.parametrize("r", [0.5, 1.0, 1.5])
def test_interaction_energy_of_uniform_interval(r):
    n = 2000
    x = (torch.arange(n, dtype=torch.float64)[:, None] + 0.5) / n * 2 - 1     # midpoints of [-1, 1]
    value = energies.interaction_energy(x, kernels.Riesz(r))
    assert value.item() == pytest.approx(closed_forms.riesz_interaction_uniform_interval(r), abs=2e-4)


@pytest.mark.parametrize("shift,scale", [(0.0, 1.5), (1.0, 1.0), (2.5, 0.5)])
def test_discrepancy_of_1d_gaussians_is_half_the_energy_distance(shift, scale):
    x = normal_quantile_grid(1500)
    y = normal_quantile_grid(1500, shift, scale)
    d2 = energies.discrepancy(x, y, kernels.Riesz(1.0))
    exact = closed_forms.energy_distance_gaussians_1d(0.0, 1.0, shift, scale) / 2
    assert d2.item() == pytest.approx(exact, abs=2e-3)


@pytest.mark.parametrize("shift", [0.5, 2.0])
def test_gaussian_kernel_mmd2_between_shifted_gaussians(shift):
    x = normal_quantile_grid(1500)
    y = normal_quantile_grid(1500, shift)
    value = energies.mmd2(x, y, kernels.Gaussian(1.0))
    assert value.item() == pytest.approx(closed_forms.gaussian_kernel_mmd2_shift(shift, 1, 1.0), abs=2e-3)


def test_discrepancy_equals_half_energy_distance_with_weights(gen):
    x = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(20, 3, generator=gen, dtype=torch.float64) + 0.3
    w, v = random_weights(30, gen), random_weights(20, gen)
    d2 = energies.discrepancy(x, y, kernels.Riesz(1.0), w, v)
    ed = energies.energy_distance(x, y, w, v)
    assert d2.item() == pytest.approx(ed.item() / 2, rel=1e-12)
    assert energies.mmd2(x, y, kernels.Riesz(1.0), w, v).item() == pytest.approx(2 * d2.item(), rel=1e-14)


@pytest.mark.parametrize("kernel", ALL, ids=str)
def test_discrepancy_is_nonnegative_and_zero_on_identical_measures(kernel, gen):
    x = torch.randn(25, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(15, 2, generator=gen, dtype=torch.float64)
    assert energies.discrepancy(x, y, kernel).item() > 0
    w = random_weights(25, gen)
    assert abs(energies.discrepancy(x, x, kernel, w, w).item()) < 1e-12


def test_sum_decomposition(gen):
    x = torch.randn(10, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(12, 2, generator=gen, dtype=torch.float64)
    k = kernels.Riesz(0.7)
    total = energies.interaction_energy(x, k) + energies.potential_energy(x, y, k) + energies.interaction_energy(y, k)
    torch.testing.assert_close(energies.discrepancy(x, y, k), total)
    # explicit double sums
    kxx, kxy = k(x, x), k(x, y)
    assert energies.interaction_energy(x, k).item() == pytest.approx(0.5 * kxx.mean().item(), rel=1e-12)
    assert energies.potential_energy(x, y, k).item() == pytest.approx(-kxy.mean().item(), rel=1e-12)


@pytest.mark.parametrize("kernel", ALL, ids=str)
def test_wasserstein_gradient_matches_autograd(kernel, gen):
    x = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    w, v = random_weights(12, gen), random_weights(9, gen)
    xa = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(energies.discrepancy(xa, y, kernel, w, v), xa)
    grad = energies.discrepancy_gradient(x, y, kernel, w, v)
    torch.testing.assert_close(auto, w[:, None] * grad, rtol=1e-10, atol=1e-12)
    # interaction part: d/dx_i E = w_i * grad_i as well
    (auto_e,) = torch.autograd.grad(energies.interaction_energy(xa, kernel, w), xa)
    torch.testing.assert_close(auto_e, w[:, None] * energies.interaction_gradient(x, kernel, w), rtol=1e-10, atol=1e-12)


def test_gradient_matches_finite_differences(gen):
    x = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    k = kernels.Riesz(1.3)
    grad = energies.discrepancy_gradient(x, y, k) / 6          # d D^2 / d x_i = w_i * grad_i
    h = 1e-6
    for i in range(6):
        for j in range(2):
            e = torch.zeros_like(x)
            e[i, j] = h
            fd = (energies.discrepancy(x + e, y, k) - energies.discrepancy(x - e, y, k)) / (2 * h)
            assert fd.item() == pytest.approx(grad[i, j].item(), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("kernel", ALL, ids=str)
@pytest.mark.parametrize("d", [2, 20])
def test_blocked_backend_matches_dense(kernel, d, gen):
    x = torch.randn(37, d, generator=gen, dtype=torch.float64)
    y = torch.randn(29, d, generator=gen, dtype=torch.float64) * 1.3
    w, v = random_weights(37, gen), random_weights(29, gen)
    dense = energies.discrepancy(x, y, kernel, w, v, backend="dense")
    blocked = energies.discrepancy(x, y, kernel, w, v, backend="blocked", )
    torch.testing.assert_close(blocked, dense, rtol=1e-9, atol=1e-11)
    gd = energies.discrepancy_gradient(x, y, kernel, w, v, backend="dense")
    gb = energies.discrepancy_gradient(x, y, kernel, w, v, backend="blocked")
    torch.testing.assert_close(gb, gd, rtol=1e-8, atol=1e-10)


def test_blocked_autograd_in_small_blocks_matches_dense(gen):
    from mmdflow.summation import kernel_sum

    for d in (2, 12):
        x = torch.randn(23, d, generator=gen, dtype=torch.float64)
        y = torch.randn(17, d, generator=gen, dtype=torch.float64)
        v = random_weights(17, gen)
        go = torch.randn(23, generator=gen, dtype=torch.float64)
        grads = {}
        for backend, opts in (("dense", {}), ("blocked", {"block_elems": 40})):
            xa, ya, va = (t.clone().requires_grad_(True) for t in (x, y, v))
            s = kernel_sum(xa, ya, kernels.Riesz(1.5), va, backend=backend, **opts)
            grads[backend] = torch.autograd.grad((s * go).sum(), (xa, ya, va))
        for a, b in zip(grads["dense"], grads["blocked"]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_energy_objects_agree_with_functions(gen):
    x = torch.randn(15, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(11, 2, generator=gen, dtype=torch.float64)
    k = kernels.Riesz(1.0)
    f = energies.DiscrepancyEnergy(k, y)
    torch.testing.assert_close(f.value(x), energies.discrepancy(x, y, k))
    torch.testing.assert_close(f.gradient(x), energies.discrepancy_gradient(x, y, k))
    # batch estimate with identical batches reduces to the V-statistic value
    torch.testing.assert_close(f.batch_estimate(x, x), f.value(x))
    e = energies.InteractionEnergy(k)
    torch.testing.assert_close(e.batch_estimate(x, x), energies.interaction_energy(x, k))
    # the gradient of the first variation at the particles is the Wasserstein gradient
    z = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f.first_variation(z, x).sum(), z)
    torch.testing.assert_close(g, f.gradient(x), rtol=1e-10, atol=1e-12)


def test_outputs_keep_dtype_and_device_and_are_0d(dtype, device, gen):
    x = torch.randn(8, 2, generator=gen).to(device=device, dtype=dtype)
    y = torch.randn(6, 2, generator=gen).to(device=device, dtype=dtype)
    k = kernels.Riesz(1.0)
    w = torch.full((8,), 1 / 8, dtype=dtype, device=device)
    for out in (energies.interaction_energy(x, k, w), energies.potential_energy(x, y, k),
                energies.discrepancy(x, y, k), energies.mmd2(x, y, k)):
        assert out.shape == () and out.dtype == dtype and out.device.type == device.type
    g = energies.discrepancy_gradient(x, y, k)
    assert g.shape == (8, 2) and g.dtype == dtype and g.device.type == device.type


def test_uniform_weights_default(gen):
    x = torch.randn(9, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    k = kernels.Gaussian(1.0)
    explicit = energies.discrepancy(x, y, k, torch.full((9,), 1 / 9, dtype=torch.float64),
                                    torch.full((4,), 0.25, dtype=torch.float64))
    torch.testing.assert_close(energies.discrepancy(x, y, k), explicit)


def test_clear_errors_on_bad_input():
    k = kernels.Riesz(1.0)
    x = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"w must have shape \(4,\)"):
        energies.interaction_energy(x, k, torch.ones(3, dtype=torch.float64) / 3)
    with pytest.raises(ValueError, match="w must be non-negative, got a weight -0.5"):
        energies.interaction_energy(x, k, torch.tensor([1.5, -0.5, 0, 0], dtype=torch.float64))
    with pytest.raises(ValueError, match="w must sum to one"):
        energies.interaction_energy(x, k, torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-empty"):
        energies.discrepancy(torch.zeros(0, 2), torch.zeros(3, 2), k)
    with pytest.raises(ValueError, match="inf"):
        energies.discrepancy(torch.tensor([[0.0, math.inf]]), torch.zeros(3, 2), k)
    with pytest.raises(ValueError, match="same dimension d, got 2 and 3"):
        energies.discrepancy(torch.zeros(2, 2), torch.zeros(3, 3), k)
    with pytest.raises(TypeError, match="same dtype"):
        energies.discrepancy(torch.zeros(2, 2), torch.zeros(3, 2, dtype=torch.float64), k)
    with pytest.raises(ValueError, match="unknown backend 'fast'"):
        energies.discrepancy(torch.zeros(2, 2), torch.zeros(3, 2), k, backend="fast")
    with pytest.raises(TypeError, match="kernel must be an mmdflow.kernels kernel"):
        energies.discrepancy(torch.zeros(2, 2), torch.zeros(3, 2), lambda a, b: a @ b.T)


def test_conditional_min_eigenvalue_detects_cpd(gen):
    pts = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    assert closed_forms.conditional_min_eigenvalue(kernels.Riesz(1.0)(pts, pts)).item() > -1e-10
    assert torch.linalg.eigvalsh(kernels.Riesz(1.0)(pts, pts))[0].item() < 0
    assert closed_forms.conditional_min_eigenvalue(-torch.cdist(pts, pts) ** 3).item() < 0
