"""Memory guards of the O(N M) computations and the safe-scale check of the kernel sums (issue 13, items 4-5)."""

import math

import pytest
import torch

from mmdflow import _checks, energies, wfr
from mmdflow.data import images, mixtures
from mmdflow.kernels import Gaussian, Riesz
from mmdflow.summation import kernel_sum, kernel_sum_grad


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.delenv("MMDFLOW_MEMORY_BUDGET", raising=False)
    monkeypatch.setattr(_checks, "MEMORY_BUDGET", 32 * 2**20)     # 32 MiB


def _cloud(n, d=2, seed=0, dtype=torch.float64):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_the_budget_comes_from_the_setting_the_environment_or_the_machine(monkeypatch):
    monkeypatch.setattr(_checks, "MEMORY_BUDGET", None)
    monkeypatch.setenv("MMDFLOW_MEMORY_BUDGET", "1.5G")
    assert _checks.memory_budget() == (int(1.5 * 2**30), "MMDFLOW_MEMORY_BUDGET=1.5G")
    monkeypatch.setattr(_checks, "MEMORY_BUDGET", 1234)
    assert _checks.memory_budget()[0] == 1234
    monkeypatch.setattr(_checks, "MEMORY_BUDGET", None)
    monkeypatch.delenv("MMDFLOW_MEMORY_BUDGET")
    budget, source = _checks.memory_budget()
    assert 0 < budget and f"{_checks.MEMORY_FRACTION:g} of the" in source


def test_the_dense_backend_refuses_beyond_the_budget_and_blocked_computes_it(small_budget):
    x = _cloud(2500)                              # 2500^2 pairs x 8 B x 3 = 150 MB > 32 MiB
    with pytest.raises(_checks.MemoryBudgetError, match=r"about 143 MiB, above the memory budget of 32 MiB"):
        kernel_sum(x, x, Riesz(1.0), backend="dense")
    s = kernel_sum(x, x, Riesz(1.0), backend="blocked")
    ref = torch.cat([-torch.cdist(x[i:i + 500], x).mean(1) for i in range(0, 2500, 500)])   # independent
    assert torch.allclose(s, ref, rtol=1e-10, atol=1e-12)
    with pytest.raises(_checks.MemoryBudgetError, match="gradient terms"):
        kernel_sum_grad(x, x, Gaussian(1.0), backend="dense")


def test_energy_distance_honours_its_backend(small_budget):
    x, y = _cloud(2500, seed=1), _cloud(2400, seed=2) + 0.3
    with pytest.raises(_checks.MemoryBudgetError, match="energy_distance"):
        energies.energy_distance(x, y, backend="dense")
    blocked = energies.energy_distance(x, y, backend="blocked")
    mean_dist = lambda a, b: sum(float(torch.cdist(a[i:i + 500], b).sum()) for i in range(0, len(a), 500)) / (  # noqa
        len(a) * len(b))
    ref = 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)
    assert float(blocked) == pytest.approx(ref, rel=1e-10)
    # the default resolves to a memory-bounded backend at this size: no O(N M d) tensor
    assert float(energies.energy_distance(x, y)) == pytest.approx(ref, rel=1e-10)


def test_small_dense_inputs_agree_with_the_kernel_formula():
    x, y = _cloud(40, seed=3), _cloud(30, seed=4)
    d_k = energies.discrepancy(x, y, Riesz(1.0))
    assert float(energies.energy_distance(x, y, backend="dense")) == pytest.approx(2 * float(d_k), rel=1e-12)


def test_the_kernel_matrix_of_a_radial_kernel_is_guarded(small_budget):
    x = _cloud(1500, d=3)
    with pytest.raises(_checks.MemoryBudgetError, match="kernel_matrix"):
        Riesz(1.0)(x, x)
    with pytest.raises(_checks.MemoryBudgetError, match="1500 x 1500 points in d=3"):
        Riesz(1.0).grad(x, x)


def test_finite_float32_coordinates_that_overflow_squared_distances_are_refused():
    x = torch.tensor([[1e20, 0.0], [-1e20, 3.0]])
    # the silent result before: -inf sums and zero gradients
    assert torch.isinf(-((x[:, None] - x[None]) ** 2).sum(-1).sqrt()).any()
    with pytest.raises(ValueError, match=r"x has entries as large as 1e\+20"):
        kernel_sum(x, x, Riesz(1.0))
    with pytest.raises(ValueError, match="rescale the points or use float64"):
        kernel_sum_grad(x, x, Riesz(1.0))
    # the same points in float64 are fine, and so are large float32 points whose squares do not overflow
    x64 = x.double()
    assert torch.isfinite(kernel_sum(x64, x64, Riesz(1.0))).all()
    big = torch.tensor([[3e18, 0.0], [-3e18, 1.0]])
    assert torch.allclose(kernel_sum(big, big, Riesz(1.0)).double(), torch.tensor([-3e18, -3e18], dtype=torch.float64),
                          rtol=1e-6)


def test_riesz_gradient_refuses_nan():
    x = _cloud(5)
    x[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"nan at index \(1, 0\)"):
        Riesz(1.0).grad(x, _cloud(4))


def test_wfr_flow_refuses_the_ift_gram_matrix_beyond_the_budget_before_any_work(small_budget):
    x = _cloud(2100)
    with pytest.raises(_checks.MemoryBudgetError, match="use method='mmd' or 'mmd_noise'"):
        wfr.wfr_flow(energies.DiscrepancyEnergy(Gaussian(1.0), x), x, wfr.WFRConfig(method="ift", n_steps=1, tau=0.1),
                     progress=False)


def test_wfr_flow_uses_memory_bounded_sums_for_many_particles(monkeypatch):
    """Above GRAM_ENTRIES the MMD flows' loss (info["loss"]) comes from blocked kernel sums; same numbers."""
    target = mixtures.gaussian_2d().sample(300, torch.Generator().manual_seed(1), dtype=torch.float64)
    x0 = _cloud(200, seed=5)
    energy = energies.DiscrepancyEnergy(Gaussian(1.0), target)
    cfg = wfr.WFRConfig(method="mmd", n_steps=3, tau=0.5, snapshot_every=1)
    dense = wfr.wfr_flow(energy, x0, cfg, generator=torch.Generator().manual_seed(2), progress=False)
    monkeypatch.setattr(wfr, "GRAM_ENTRIES", 0)
    calls = []
    real = wfr.kernel_matrix
    monkeypatch.setattr(wfr, "kernel_matrix", lambda a, b, k: calls.append(a.shape[0]) or real(a, b, k))
    bounded = wfr.wfr_flow(energy, x0, cfg, generator=torch.Generator().manual_seed(2), progress=False)
    assert calls == []                                          # no Gram matrix at all
    assert torch.allclose(bounded.info["loss"], dense.info["loss"], rtol=1e-10, atol=1e-14)
    assert torch.equal(bounded.positions, dense.positions)


def test_image_smoothing_far_beyond_the_image_is_exact_and_cheap():
    img = images.smiley_image(40)
    p = images.image_to_density(img, smoothing=1e6, background=0.0)
    # a Gaussian far wider than the image is flat over it: every pixel sees all the ink
    assert p.shape == (40, 40) and abs(p.max() / p.min() - 1) < 1e-6
    assert images.image_to_samples(img, 5, smoothing=1e6, generator=torch.Generator().manual_seed(0)).shape == (5, 2)


@pytest.mark.parametrize("sigma", [0.7, 3.0, 12.0])      # 12 px on a 15 x 11 image: wider than the image
def test_the_blur_is_the_zero_padded_gaussian_convolution(sigma):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(15, 11, generator=g, dtype=torch.float64).numpy()
    p = images.image_to_density(img, smoothing=sigma, background=0.0, invert=False)
    # independent: the 2-D sum over all pixels with the separable Gaussian weights, cut at ceil(4 sigma) pixels
    i = torch.arange(15, dtype=torch.float64)
    j = torch.arange(11, dtype=torch.float64)
    cut = math.ceil(4 * sigma)
    wi = torch.exp(-0.5 * ((i[:, None] - i[None]) / sigma) ** 2) * ((i[:, None] - i[None]).abs() <= cut)
    wj = torch.exp(-0.5 * ((j[:, None] - j[None]) / sigma) ** 2) * ((j[:, None] - j[None]).abs() <= cut)
    blurred = wi @ torch.as_tensor(img) @ wj.T
    assert p.shape == (15, 11)
    assert torch.allclose(torch.as_tensor(p), blurred / blurred.sum(), rtol=1e-12, atol=1e-15)
