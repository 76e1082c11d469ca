"""Tests of mmdflow.wfr against closed forms, brute-force references and autograd."""

import math

import pytest
import torch

from mmdflow import energies, simplex, summation, wfr
from mmdflow.data import mixtures
from mmdflow.kernels import Gaussian

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _flow(method, x0, target, sigma, *, sampler=None, generator=None, w0=None, **cfg):
    """wfr.wfr_flow of ``method`` from ``x0`` for the Gaussian discrepancy (bandwidth ``sigma``) against ``target``
    (the training target, or with ``sampler`` the held-out sample of the loss)."""
    energy = energies.DiscrepancyEnergy(Gaussian(sigma), target)
    return wfr.wfr_flow(energy, x0, wfr.WFRConfig(method=method, **cfg), sampler=sampler, generator=generator, w0=w0,
                        progress=False)


def _sampled(method, x0, sample, sigma, n_test, generator, **cfg):
    """As :func:`_flow` with a target given by a sampler: the held-out sample of ``n_test`` points first, then the
    run's batches, from ``generator``."""
    held_out = sample(n_test, generator).to(x0)
    return _flow(method, x0, held_out, sigma, sampler=sample, generator=generator, **cfg)


def _grid(n_side=3, spacing=1.0):
    a = torch.arange(n_side, dtype=torch.float64) * spacing
    return torch.cartesian_prod(a, a)


# ---------------------------------------------------------------------------------- fast paths vs dense references
@pytest.mark.parametrize("d", [2, 20])
def test_gram_witness_and_gradient_match_dense_references(d):
    g = _gen(3)
    k = Gaussian(1.3)
    x, y, z = (torch.randn(n, d, generator=g, dtype=F64) for n in (7, 9, 5))
    w = torch.softmax(torch.randn(7, generator=g, dtype=F64), 0)
    assert torch.allclose(summation.kernel_matrix(x, y, k), k(x, y), atol=1e-12)
    f_ref = summation.kernel_sum(z, x, k, w, backend="dense") - summation.kernel_sum(z, y, k, backend="dense")
    assert torch.allclose(wfr.witness(z, x, y, k, w), f_ref, atol=1e-12)
    g_ref = (summation.kernel_sum_grad(z, x, k, w, backend="dense")
             - summation.kernel_sum_grad(z, y, k, backend="dense"))
    assert torch.allclose(wfr.witness_gradient(z, x, y, k, w), g_ref, atol=1e-12)
    assert torch.allclose(wfr.wasserstein_velocity(x, y, k, w), -energies.discrepancy_gradient(x, y, k, w), atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("d", [2, 100])
def test_runner_gram_matrix_and_witness_gradient_match_dense_references(d, dtype):
    """The kernel math of wfr (Gram matrices by summation.kernel_matrix: explicit differences for d <= 8, a GEMM
    above; witness gradients by kernel_sum_grad with wfr.WITNESS_BACKEND) against kernel(x, y) and the dense backend,
    also inside wfr_flow: one WFR GD iteration (position step, KL weight step) recomputed from the references."""
    g = _gen(15)
    k = Gaussian(1.3 if d == 2 else 10.0)
    x, y, z = (torch.randn(n, d, generator=g, dtype=F64).to(dtype) for n in (12, 15, 7))
    w = torch.softmax(torch.randn(12, generator=g, dtype=F64), 0).to(dtype)
    atol = 1e-12 if dtype == F64 else 1e-5
    K = summation.kernel_matrix(x, x, k)
    assert K.dtype == dtype and torch.allclose(K, k(x, x), atol=atol)
    assert torch.allclose(summation.kernel_matrix(z, y, k), k(z, y), atol=atol)
    g_ref = (summation.kernel_sum_grad(z, x, k, w, backend="dense")
             - summation.kernel_sum_grad(z, y, k, backend="dense"))
    grad = wfr.witness_gradient(z, x, y, k, w)
    assert grad.dtype == dtype and torch.allclose(grad, g_ref, atol=atol)
    f_ref = summation.kernel_sum(z, x, k, w, backend="dense") - summation.kernel_sum(z, y, k, backend="dense")
    assert torch.allclose(wfr.witness(z, x, y, k, w), f_ref, atol=atol)
    # one iteration of the runner against the same formulas from the dense references
    tr = _flow("wfr", x, y, k.sigma, n_steps=1, tau=0.7, kl_lr=0.5, kl_normalise="renormalise")
    v = torch.full((15,), 1 / 15, dtype=dtype)
    x1 = x - 0.7 * (summation.kernel_sum_grad(x, x, k, backend="dense")
                    - summation.kernel_sum_grad(x, y, k, backend="dense"))
    w0 = torch.full((12,), 1 / 12, dtype=dtype)
    u = w0 * torch.exp(0.5 * (k(x1, y) @ v - k(x1, x1) @ w0))
    assert tr.positions.dtype == dtype
    assert torch.allclose(tr.positions[-1], x1, atol=atol)
    assert torch.allclose(tr.weights[-1], u / u.sum(), atol=atol)
    loss_ref = energies.mmd2(x1, y, k, tr.weights[-1], backend="dense")
    assert abs(float(tr.info["loss"][-1]) - float(loss_ref)) < (1e-12 if dtype == F64 else 1e-5)


def test_witness_backend_is_a_parameter_passed_through_to_the_sums(monkeypatch):
    """backend= of witness, witness_gradient, position_step and WFRConfig.witness_backend reach the summation
    backend (a spy backend that delegates to the dense reference counts the calls); the default is WITNESS_BACKEND."""
    calls = []
    value_fn, grad_fn = summation.BACKENDS["dense"]
    monkeypatch.setitem(summation.BACKENDS, "spy", (lambda *a, **o: (calls.append("sum"), value_fn(*a, **o))[1],
                                                    lambda *a, **o: (calls.append("grad"), grad_fn(*a, **o))[1]))
    g = _gen(21)
    k = Gaussian(1.1)
    x, y, z = (torch.randn(n, 2, generator=g, dtype=F64) for n in (6, 8, 4))
    w = torch.softmax(torch.randn(6, generator=g, dtype=F64), 0)
    torch.testing.assert_close(wfr.witness(z, x, y, k, w, backend="spy"), wfr.witness(z, x, y, k, w))
    torch.testing.assert_close(wfr.witness_gradient(z, x, y, k, w, backend="spy"), wfr.witness_gradient(z, x, y, k, w))
    torch.testing.assert_close(wfr.position_step(x, y, k, 0.3, w, backend="spy"), wfr.position_step(x, y, k, 0.3, w))
    assert calls == ["sum", "sum", "grad", "grad", "grad", "grad"]
    calls.clear()
    assert wfr.WFRConfig(n_steps=2, tau=0.3).witness_backend == wfr.WITNESS_BACKEND == "blocked"
    torch.testing.assert_close(_flow("mmd", x, y, 1.1, n_steps=2, tau=0.3, witness_backend="spy").positions[-1],
                               _flow("mmd", x, y, 1.1, n_steps=2, tau=0.3).positions[-1])
    assert calls == ["grad", "grad"] * 2                                  # two position steps, two sums each
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        wfr.WFRConfig(n_steps=1, tau=0.1, witness_backend="nope")
    with pytest.raises(TypeError, match="witness_backend must be a backend name or a Backend"):
        wfr.WFRConfig(n_steps=1, tau=0.1, witness_backend=3)


def test_position_step_weighted_equals_authors_euclidean_gradient_step():
    g = _gen(4)
    k = Gaussian(1.0)
    x, y = torch.randn(6, 2, generator=g, dtype=F64), torch.randn(8, 2, generator=g, dtype=F64)
    w = torch.softmax(torch.randn(6, generator=g, dtype=F64), 0)
    lr = 0.7
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(energies.mmd2(xr, y, k, w, backend="dense"), xr)
    ref = x - lr * grad                                  # authors: X <- X - lr * grad_X MMD^2(w, X; Y)
    new = wfr.position_step(x, y, k, wfr.authors_lr_to_tau(lr, 6), w, scaling="weighted")
    assert torch.allclose(new, ref, atol=1e-12)
    # the pure step is a step along -grad f, i.e. the weighted one divided by N w_i
    pure = wfr.position_step(x, y, k, 0.3, w)
    assert torch.allclose(pure, x - 0.3 * grad / (2 * w[:, None]), atol=1e-12)


def test_weight_steps_match_their_formulas():
    g = _gen(5)
    k = Gaussian(1.0)
    x, y = torch.randn(6, 2, generator=g, dtype=F64), torch.randn(8, 2, generator=g, dtype=F64)
    w = torch.softmax(torch.randn(6, generator=g, dtype=F64), 0)
    wr = w.clone().requires_grad_(True)
    (gw,) = torch.autograd.grad(energies.mmd2(x, y, k, wr, backend="dense"), wr)
    assert torch.allclose(wfr.mmd_pgd_weights(x, w, y, k, 0.05), simplex.project_simplex(w - 0.05 * gw), atol=1e-12)
    f = wfr.witness(x, x, y, k, w)
    u = w * torch.exp(-0.8 * f)
    assert torch.allclose(wfr.kl_weight_step(x, w, y, k, 0.8, normalise="renormalise"), u / u.sum(), atol=1e-12)
    assert torch.allclose(wfr.kl_weight_step(x, w, y, k, 0.8), simplex.project_simplex(u), atol=1e-12)


# ---------------------------------------------------------------------------------- flow properties
@pytest.mark.parametrize("beta_h", [0.1, 0.5])
def test_rate_beta_for_exact_prox_weight_step(beta_h):
    """Transport off, target inside the particle support: MMD_l = MMD_0 (1 + beta h)^(-l) exactly."""
    x0 = _grid(3, 1.0) + 0.05 * torch.randn(9, 2, generator=_gen(6), dtype=F64)
    target = x0[[0, 4, 5, 8]].clone()                  # pi = uniform on four of the particles
    h, n_steps = 0.1, 12
    tr = _flow("ift", x0, target, 0.6, n_steps=n_steps, tau=0.0, eta=beta_h, qp_tol=1e-14)
    mmd = tr.info["loss"].sqrt()
    t = tr.info["loss_steps"] * h
    slope = float(torch.diff(mmd.log()).mean() / h)
    expected = -math.log(1 + beta_h) / h
    assert abs(slope - expected) < 1e-6 * abs(expected)
    assert torch.allclose(mmd[1:] / mmd[:-1], torch.full((n_steps,), 1 / (1 + beta_h), dtype=F64), rtol=1e-6)
    # least-squares slope of log MMD against t, the check as stated in the issue
    tc = t - t.mean()
    ls = float((tc * mmd.log()).sum() / (tc * tc).sum())
    assert abs(ls - expected) < 1e-6 * abs(expected)
    assert tr.info["qp_gap_max"] <= 1e-14


@pytest.mark.parametrize("method", ["ift", "wfr", "ift_pgd"])
def test_weights_stay_on_the_simplex_after_every_step(method):
    g = _gen(7)
    x0 = mixtures.initial_particles(40, g, center=(1.0, 1.0))
    tr = _sampled("wfr" if method == "wfr" else "ift", x0, mixtures.gaussian_2d(), 1.0, 50, g, n_steps=25, tau=1.0,
                  eta=2.0, kl_lr=5.0, pgd_lr=0.5, snapshot_every=1, batch_size=30,
                  weight_step="pgd" if method == "ift_pgd" else "prox")
    assert tr.weights.shape == (26, 40)
    assert (tr.weights >= 0).all()
    assert torch.allclose(tr.weights.sum(1), torch.ones(26, dtype=F64), atol=1e-12)
    if method != "wfr":
        assert (tr.weights[-1] == 0).any()             # the MMD step removes all mass from some particles


@pytest.mark.parametrize("method", ["mmd", "ift", "wfr"])
def test_energy_non_increasing_for_small_steps(method):
    g = _gen(8)
    x0 = mixtures.initial_particles(30, g, center=(2.0, 2.0))
    target = mixtures.gaussian_2d()(40, g)
    tr = _flow(method, x0, target, 1.0, n_steps=40, tau=0.2, eta=0.2, kl_lr=0.2)   # full fixed target: the loss is 2F
    loss = tr.info["loss"]
    assert (torch.diff(loss) <= 1e-13).all()
    assert loss[-1] < 0.9 * loss[0]
    ref = energies.mmd2(tr.positions[-1], target, Gaussian(1.0), tr.weights[-1], backend="dense")
    assert abs(float(ref) - float(loss[-1])) < 1e-12


def test_dissipation_identity_for_small_steps():
    """(F(mu^{l+1}) - F(mu^l)) / h -> -alpha sum_i w_i |grad f(x_i)|^2 - beta MMD^2 (target in the support)."""
    x = _grid(3, 1.2) + 0.1 * torch.randn(9, 2, generator=_gen(9), dtype=F64)
    y = x[[1, 3, 7]].clone()
    k = Gaussian(0.8)
    w = torch.full((9,), 1 / 9, dtype=F64)
    alpha, beta = 1.0, 2.0
    F0 = float(energies.discrepancy(x, y, k, w))
    grad = wfr.witness_gradient(x, x, y, k, w)
    rate = -alpha * float((w * (grad ** 2).sum(1)).sum()) - beta * 2 * F0
    errs = []
    for h in (1e-3, 1e-4):
        state, info = wfr.ift_step(x, w, y, k, alpha * h, beta * h, tol=1e-15)
        F1 = float(energies.discrepancy(state.x, y, k, state.w))
        errs.append(abs((F1 - F0) / h - rate) / abs(rate))
    assert errs[0] < 1e-2 and errs[1] < 1e-3
    assert errs[1] < 0.2 * errs[0]                     # first-order consistency


def test_mmd_prox_equals_inclusive_kl_prox():
    """Same support: argmin 1/2 MMD^2(w, p) + MMD^2(w, w0)/(2 eta) = argmin KL(p|w) + KL(w0|w)/eta = (w0 + eta p)/(1 + eta)."""
    g = _gen(10)
    x = _grid(2, 1.0) + 0.1 * torch.randn(4, 2, generator=g, dtype=F64)
    x = torch.cat([x, torch.tensor([[3.0, 0.5], [0.5, 3.0]], dtype=F64)])
    k = Gaussian(0.7)
    p = torch.softmax(torch.randn(6, generator=g, dtype=F64), 0)
    w0 = torch.softmax(torch.randn(6, generator=g, dtype=F64), 0)
    eta = 0.7
    w_mmd, info = wfr.mmd_prox_weights(x, w0, x, k, eta, v=p, tol=1e-15)
    w_kl = wfr.inclusive_kl_prox(w0, p, eta)
    assert torch.allclose(w_mmd, w_kl, atol=1e-9)
    # numerical KL prox over the simplex (softmax parametrisation, L-BFGS), independent of the closed form
    theta = torch.zeros(6, requires_grad=True, dtype=F64)
    opt = torch.optim.LBFGS([theta], lr=1, max_iter=100, tolerance_grad=1e-12, tolerance_change=1e-16,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        lw = torch.log_softmax(theta, 0)
        obj = (p * (p.log() - lw)).sum() + (w0 * (w0.log() - lw)).sum() / eta
        obj.backward()
        return obj

    opt.step(closure)
    assert torch.allclose(torch.softmax(theta.detach(), 0), w_mmd, atol=1e-7)


def test_noise_injection_evaluates_the_clean_witness_at_perturbed_points():
    g = _gen(11)
    k = Gaussian(1.0)
    x, y = torch.randn(5, 2, generator=g, dtype=F64), torch.randn(6, 2, generator=g, dtype=F64)
    xi = 0.3 * torch.randn(5, 2, generator=g, dtype=F64)
    new = wfr.position_step(x, y, k, 0.5, noise=xi)
    ref = x - 0.5 * (summation.kernel_sum_grad(x + xi, x, k, backend="dense")
                     - summation.kernel_sum_grad(x + xi, y, k, backend="dense"))
    assert torch.allclose(new, ref, atol=1e-12)
    s = wfr.NoiseSchedule(beta0=2.0, halve_every=10, off_after=25)
    assert [s.level(n) for n in (0, 9, 10, 20, 24, 25)] == [2.0, 2.0, 1.0, 0.5, 0.5, 0.0]


def test_runner_records_and_is_reproducible():
    runs = [_sampled("mmd_noise", mixtures.initial_particles(10, _gen(12)), mixtures.mixture_2d(), 1.5, 30, _gen(13),
                     n_steps=6, tau=2.0, noise=wfr.NoiseSchedule(beta0=1.0, halve_every=2), snapshot_every=3,
                     loss_every=2) for _ in range(2)]
    a, b = runs
    assert torch.equal(a.positions, b.positions) and torch.equal(a.info["loss"], b.info["loss"])
    assert a.times.tolist() == [0.0, 6.0, 12.0] and a.info["loss_steps"].tolist() == [0.0, 2.0, 4.0, 6.0]
    assert wfr.by_iteration(a).times.tolist() == [0.0, 3.0, 6.0] and a.info["h"] == 2.0     # t_k = k tau
    assert torch.allclose(a.weights, torch.full((3, 10), 0.1, dtype=F64))
    # energies: D_K^2 against the held-out sample, half the loss's textbook MMD^2
    assert a.positions.dtype == torch.float64 and float(a.energies[-1]) == pytest.approx(float(a.info["loss"][-1]) / 2,
                                                                                          rel=1e-12)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="sigma"):
        Gaussian(-1.0)                                   # the bandwidth belongs to the energy's kernel
    with pytest.raises(ValueError, match="tau"):
        wfr.WFRConfig(n_steps=3, tau=-0.1)
    with pytest.raises(TypeError, match="n_steps"):
        wfr.WFRConfig(n_steps=2.5, tau=1.0)
    with pytest.raises(ValueError, match="weight_step"):
        wfr.WFRConfig(n_steps=3, tau=1.0, weight_step="newton")
    with pytest.raises(ValueError, match="beta0"):
        wfr.NoiseSchedule(beta0=0.0)
    x0 = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ValueError, match="method"):
        _flow("langevin", x0, torch.ones(3, 2, dtype=F64), 1.0, n_steps=2, tau=1.0)
    with pytest.raises(ValueError, match="NoiseSchedule"):
        _flow("mmd_noise", x0, torch.ones(3, 2, dtype=F64), 1.0, n_steps=2, tau=1.0)
    with pytest.raises(ValueError, match="lives in d=3 but the start x0 has d=2"):
        _flow("mmd", x0, torch.ones(3, 3, dtype=F64), 1.0, n_steps=2, tau=1.0)
    with pytest.raises(ValueError, match="sum to one"):
        _flow("ift", x0, torch.ones(3, 2, dtype=F64), 1.0, n_steps=2, tau=1.0, w0=torch.full((4,), 0.3, dtype=F64))
    with pytest.raises(ValueError, match="eta"):
        wfr.mmd_prox_weights(x0, torch.full((4,), 0.25, dtype=F64), torch.ones(3, 2, dtype=F64), Gaussian(1.0), 0.0)
