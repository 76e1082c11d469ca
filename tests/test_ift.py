"""Tests of the IFT study's additions: weight statistics, held-out scores, the two position steps, the authors'
noisy-flow update, the rate of the exact proximal step, and the 100-d study's plumbing (experiments.ift)."""

import json
import math

import pytest
import torch

from mmdflow import energies, metrics, summation, wfr
from mmdflow.data import mixtures
from mmdflow.experiments import ift, run_seeds, sweep
from mmdflow.kernels import Gaussian

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _flow(method, x0, target, sigma, *, generator=None, **cfg):
    """wfr.wfr_flow of ``method`` from ``x0`` for the Gaussian discrepancy (bandwidth ``sigma``) against ``target``."""
    energy = energies.DiscrepancyEnergy(Gaussian(sigma), target)
    return wfr.wfr_flow(energy, x0, wfr.WFRConfig(method=method, **cfg), generator=generator, progress=False)


# ---------------------------------------------------------------------------------- weight statistics
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_effective_sample_size_and_zero_share_in_closed_cases(dtype):
    n = 10
    uniform = torch.full((n,), 1.0 / n, dtype=dtype)
    assert metrics.effective_sample_size(uniform) == pytest.approx(n, rel=1e-6)
    assert metrics.zero_weight_fraction(uniform) == 0.0
    one = torch.zeros(n, dtype=dtype)
    one[3] = 1.0
    assert metrics.weight_statistics(one) == (pytest.approx(1.0), pytest.approx(0.9))
    k_equal = torch.zeros(n, dtype=dtype)
    k_equal[[0, 2, 5, 7]] = 0.25
    assert metrics.weight_statistics(k_equal) == (pytest.approx(4.0, rel=1e-6), pytest.approx(0.6))
    a = 0.2
    two = torch.tensor([a, 1 - a], dtype=dtype)
    assert metrics.effective_sample_size(two) == pytest.approx(1 / (a * a + (1 - a) ** 2), rel=1e-6)
    tiny = torch.tensor([0.5 - 5e-7, 0.5 - 5e-7, 1e-6], dtype=F64)
    assert metrics.zero_weight_fraction(tiny) == 0.0
    assert metrics.zero_weight_fraction(tiny, atol=1e-5) == pytest.approx(1 / 3)


def test_weight_statistics_reject_bad_weights():
    with pytest.raises(ValueError, match="non-negative"):
        metrics.effective_sample_size(torch.tensor([1.5, -0.5], dtype=F64))
    with pytest.raises(ValueError, match="sum to one"):
        metrics.effective_sample_size(torch.tensor([0.3, 0.3], dtype=F64))
    with pytest.raises(ValueError, match="1D"):
        metrics.effective_sample_size(torch.full((2, 2), 0.25, dtype=F64))
    with pytest.raises(ValueError, match="atol"):
        metrics.zero_weight_fraction(torch.tensor([0.5, 0.5], dtype=F64), atol=-1.0)


def test_heldout_scores_match_an_explicit_computation():
    g = _gen(1)
    x, y = torch.randn(7, 3, generator=g, dtype=F64), torch.randn(9, 3, generator=g, dtype=F64) + 0.5
    w = torch.softmax(torch.randn(7, generator=g, dtype=F64), 0)
    v = torch.full((9,), 1 / 9, dtype=F64)
    dist = lambda a, b: ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1).sqrt()  # noqa: E731
    ed = 2 * w @ dist(x, y) @ v - w @ dist(x, x) @ w - v @ dist(y, y) @ v
    s = 1.7
    gk = lambda a, b: torch.exp(-dist(a, b) ** 2 / (2 * s * s))  # noqa: E731
    m2 = w @ gk(x, x) @ w - 2 * w @ gk(x, y) @ v + v @ gk(y, y) @ v
    sc = metrics.heldout_scores(x, y, w, sigma=s)
    assert sc.energy_distance == pytest.approx(float(ed), rel=1e-10)
    assert sc.mmd2 == pytest.approx(float(m2), rel=1e-10)
    assert sc.sigma == s
    with pytest.raises(ValueError, match="sigma"):
        metrics.heldout_scores(x, y, w, sigma=0.0)


# ---------------------------------------------------------------------------------- position steps and noise
def test_pure_and_weighted_position_steps_coincide_for_uniform_weights():
    g = _gen(2)
    k = Gaussian(1.2)
    x, y = torch.randn(11, 2, generator=g, dtype=F64), torch.randn(13, 2, generator=g, dtype=F64)
    pure = wfr.position_step(x, y, k, 0.7, scaling="pure")
    weighted = wfr.position_step(x, y, k, 0.7, torch.full((11,), 1 / 11, dtype=F64), scaling="weighted")
    assert torch.allclose(pure, weighted, atol=1e-14)
    ref = x + 0.7 * wfr.wasserstein_velocity(x, y, k)
    assert torch.allclose(pure, ref, atol=1e-14)
    # non-uniform weights: the weighted step is the pure one scaled particle by particle by N w_i
    w = torch.softmax(torch.randn(11, generator=g, dtype=F64), 0)
    dp = wfr.position_step(x, y, k, 0.7, w, scaling="pure") - x
    dw = wfr.position_step(x, y, k, 0.7, w, scaling="weighted") - x
    assert torch.allclose(dw, 11 * w[:, None] * dp, atol=1e-14)
    # inside the runner: the first IFT iteration starts from uniform weights, so both steps give the same positions
    x0 = mixtures.initial_particles(12, _gen(3), center=(1.0, 1.0))
    runs = [_flow("ift", x0, y, 1.2, n_steps=1, tau=0.7, position_step=s, weight_step="pgd")
            for s in ("pure", "weighted")]
    assert torch.allclose(runs[0].positions[-1], runs[1].positions[-1], atol=1e-14)
    assert torch.allclose(runs[0].weights[-1], runs[1].weights[-1], atol=1e-14)


def test_authors_noise_variant_uses_the_witness_of_the_noisy_particles():
    g = _gen(4)
    k = Gaussian(1.0)
    x, y = torch.randn(5, 2, generator=g, dtype=F64), torch.randn(6, 2, generator=g, dtype=F64)
    xi = 0.3 * torch.randn(5, 2, generator=g, dtype=F64)
    new = wfr.position_step(x, y, k, 0.5, noise=xi, noise_variant="authors")
    # independent: autograd of N/2 * MMD^2(X + xi, Y) with respect to X (uniform weights), a step tau = 0.5
    xx = x.clone().requires_grad_(True)
    z = xx + xi
    m2 = k(z, z).mean() - 2 * k(z, y).mean() + k(y, y).mean()
    (grad,) = torch.autograd.grad(0.5 * 5 * m2, xx)
    assert torch.allclose(new, x - 0.5 * grad, atol=1e-12)
    arbel = wfr.position_step(x, y, k, 0.5, noise=xi)
    assert not torch.allclose(new, arbel, atol=1e-6)
    with pytest.raises(ValueError, match="noise_variant"):
        wfr.position_step(x, y, k, 0.5, noise=xi, noise_variant="both")
    with pytest.raises(ValueError, match="variant"):
        wfr.NoiseSchedule(beta0=1.0, variant="noisy")


def test_runner_noise_variants_differ_only_while_the_noise_is_on():
    x0 = mixtures.initial_particles(10, _gen(5), center=(1.0, 1.0))
    y = mixtures.gaussian_2d()(20, _gen(6))
    out = {}
    for variant in wfr.NOISE_VARIANTS:
        out[variant] = _flow("mmd_noise", x0, y, 1.5, generator=_gen(7), n_steps=4, tau=1.0, snapshot_every=1,
                             noise=wfr.NoiseSchedule(beta0=0.5, off_after=2, variant=variant))
    a, b = out["arbel"].positions, out["authors"].positions
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1], atol=1e-8)
    # from step 2 on both are the plain MMD flow: same map applied to different points
    step = lambda x: wfr.position_step(x, y, Gaussian(1.5), 1.0)  # noqa: E731
    for pos in (a, b):
        assert torch.allclose(pos[3], step(pos[2]), atol=1e-12)


# ---------------------------------------------------------------------------------- the decay bound
@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_exact_prox_step_meets_the_exponential_bound_where_the_theorem_applies(beta):
    """Target in the particle support, weight step alone: the proximal (implicit Euler) step gives
    MMD(t) = (1 + beta h)^(-t/h) MMD(0) <= ... its rate log(1 + beta h)/h is within beta^2 h / 2 of beta and tends to
    beta as h -> 0, so the discrete curve approaches e^{-beta t} MMD(0) from above; one projected-gradient step has
    no such rate (it decays more slowly than the bound here)."""
    x0 = torch.cartesian_prod(*(torch.arange(4, dtype=F64),) * 2) + 0.03 * torch.randn(16, 2, generator=_gen(8),
                                                                                        dtype=F64)
    target = x0[[0, 5, 6, 15]].clone()
    t_end = 1.0
    gaps = []
    for h in (0.1, 0.02):
        n = round(t_end / h)
        tr = _flow("ift", x0, target, 0.7, n_steps=n, tau=0.0, eta=beta * h, qp_tol=1e-14)
        mmd = tr.info["loss"].clamp_min(0).sqrt()
        t = tr.info["loss_steps"] * h
        discrete = mmd[0] * (1 + beta * h) ** (-t / h)
        assert torch.allclose(mmd, discrete, rtol=1e-6)
        rate = -float(torch.diff(mmd.log()).mean()) / h
        assert beta - beta * beta * h / 2 <= rate + 1e-9 and rate <= beta
        gaps.append(beta - rate)
        assert bool((mmd >= mmd[0] * torch.exp(-beta * t) * (1 - 1e-9)).all())
    assert gaps[1] < gaps[0] / 4                      # the rate converges to beta at first order in h
    pgd = _flow("ift", x0, target, 0.7, n_steps=10, tau=0.0, weight_step="pgd", pgd_lr=0.05)
    m = pgd.info["loss"].sqrt()
    assert float(m[-1] / m[0]) > (1 + beta * 0.1) ** -10


# ---------------------------------------------------------------------------------- run_seeds and experiments.ift
def test_run_seeds_records_weight_statistics_and_second_scores():
    cfg = dict(n_steps=6, tau=1.0, loss_every=3)
    runs = {"mmd": wfr.WFRConfig(method="mmd", **cfg),
            "ift": wfr.WFRConfig(method="ift", **cfg, weight_step="pgd", pgd_lr=5.0)}
    res = run_seeds(runs, mixtures.gaussian_2d(), [0, 1], 15, kernel=Gaussian(1.5), n_test=30, center=(1.0, 1.0),
                    sigma_alt=0.8)
    for r in res.values():
        assert r.ess.shape == r.loss.shape == r.zero_fraction.shape == (2, 3)
        assert r.energy_distance.shape == r.mmd2_alt.shape == (2,) and r.sigma_alt == 0.8
    assert torch.allclose(res["mmd"].ess, torch.full((2, 3), 15.0, dtype=F64))
    w_end = res["ift"].first.weights[-1]
    assert res["ift"].ess[0, -1] == pytest.approx(float(1 / (w_end * w_end).sum()))
    assert res["ift"].zero_fraction[0, -1] == pytest.approx(float((w_end == 0).double().mean()))
    with pytest.raises(ValueError, match="sigma_alt"):
        run_seeds(runs, mixtures.gaussian_2d(), [0], 15, kernel=Gaussian(1.5), sigma_alt=-1.0)


def test_hd_schemes_and_stored_runs(tmp_path):
    schemes = ift.hd_schemes(200, 90)
    assert set(schemes) == set(ift.HD_LABELS)
    assert all(isinstance(c, wfr.WFRConfig) for c in schemes.values())
    assert {lb: c.method for lb, c in schemes.items()} == {
        ift.MMD_FLOW: "mmd", ift.NOISE_AUTHORS: "mmd_noise", ift.NOISE_ARBEL: "mmd_noise", ift.IFT_WEIGHTED: "ift",
        ift.IFT_PURE: "ift", ift.IFT_LITERAL: "ift", ift.WFR_GD: "wfr"}
    cfg = schemes[ift.IFT_WEIGHTED]
    assert cfg.position_step == "weighted" and cfg.pgd_lr == pytest.approx(1e-3 * 1e4 / 200)
    assert schemes[ift.IFT_PURE].position_step == "pure" and schemes[ift.IFT_LITERAL].pgd_lr == 1e-3
    assert schemes[ift.NOISE_AUTHORS].noise.variant == "authors" and schemes[ift.NOISE_AUTHORS].noise.off_after == 39
    with pytest.raises(ValueError, match="label"):
        ift.hd_schemes(200, 90, labels=["IFT"])
    out = tmp_path / "ift.json"
    runs = sweep.run_ift_sweep({20: [0, 1]}, 4, {20: [ift.MMD_FLOW, ift.IFT_PURE]}, out=out, scheduler="serial",
                                checkpoint_root=tmp_path / "runs", progress=False)
    assert len(runs) == 4 and all(r.provenance["wall_time"] == r.wall for r in runs)
    again = sweep.run_ift_sweep({20: [0, 1]}, 4, {20: [ift.MMD_FLOW, ift.IFT_PURE]}, out=out, scheduler="serial",
                                 checkpoint_root=tmp_path / "runs", progress=False)     # resumes: nothing new
    assert [r.to_json() for r in again] == [r.to_json() for r in runs]
    assert ift.results_from_json(json.loads(out.read_text()))[0] == runs[0]
    finals = ift.finals_by_size(runs)
    assert list(finals) == [ift.MMD_FLOW, ift.IFT_PURE] and len(finals[ift.MMD_FLOW][20]) == 2
    assert all(math.isfinite(r.energy_distance) and r.ess[0] == pytest.approx(20) for r in runs)


def test_fitted_rate_and_decay_study_on_closed_cases():
    t = torch.linspace(0, 2, 21, dtype=F64)
    assert ift.fitted_rate(t, 0.3 * torch.exp(-2 * 1.7 * t)) == pytest.approx(1.7, rel=1e-12)
    with pytest.raises(ValueError, match="two points"):
        ift.fitted_rate(t[:1], torch.ones(1, dtype=F64))
    runs = ift.decay_study([("prox", 2.0, 0.0), ("pgd", 2.0, 0.0)], h=0.1, n_steps=20)
    prox, pgd = runs
    assert prox.rate == pytest.approx(math.log1p(0.2) / 0.1, rel=1e-6)
    assert prox.holds and not prox.holds_continuous       # implicit Euler: above e^{-beta t}, on (1 + beta h)^{-l}
    assert not pgd.holds and pgd.rate < prox.rate


def _run(label, n, seed, final):
    return ift.HDRun(label=label, n=n, seed=seed, n_steps=10, steps=[0.0, 10.0], loss=[1.0, final], ess=[n, n],
                     zero_fraction=[0.0, 0.0], energy_distance=1.0, mmd2_alt=1.0, wall=0.0)


def test_ordering_and_first_size_below():
    runs = [_run(ift.MMD_FLOW, n, s, 1.0) for n in (100, 200, 400) for s in (0, 1)]
    runs += [_run(ift.IFT_PURE, 100, 0, 0.9), _run(ift.IFT_PURE, 100, 1, 1.1),      # mixed at 100
             _run(ift.IFT_PURE, 200, 0, 0.8), _run(ift.IFT_PURE, 200, 1, 0.7),
             _run(ift.IFT_PURE, 400, 0, 0.5)]                                          # one seed at 400
    orders = ift.ordering(runs, ift.IFT_PURE, ift.MMD_FLOW)
    assert [(o.n, o.n_seeds, o.below_every_seed) for o in orders] == [(100, 2, False), (200, 2, True), (400, 1, True)]
    assert orders[0].ratio_min == pytest.approx(0.9) and orders[0].ratio_max == pytest.approx(1.1)
    assert ift.first_size_below(orders) == 200
    assert ift.first_size_below(orders[:1]) is None
    assert ift.first_size_below([orders[1], orders[0]]) is None       # not below at the last size given


def test_decay_bound_holds_to_round_off_for_large_beta_and_prox_steps_agree():
    """beta = 4, transport off: the exact step's MMD^2 follows (1 + beta h)^(-2l) MMD_0^2; the only excess over it is
    below the float64 rounding bound of the V-statistic (it used to be flagged as a violation)."""
    run, = ift.decay_study([("prox", 4.0, 0.0)], h=0.1, n_steps=40)
    assert run.holds and run.excess <= run.roundoff and run.roundoff < 1e-12
    assert run.deviation < 1e-6                            # an equality without transport (alpha = 0)
    moved, = ift.decay_study([("prox", 1.0, 0.5)], h=0.1, n_steps=40)
    assert not moved.holds and moved.excess > 1e6 * moved.roundoff
    assert ift.prox_agreement() < 1e-9                     # QP solution = closed-form KL prox on a common support


def test_size_summary_against_hand_computed_values():
    finals = {ift.MMD_FLOW: {100: [1.0, 1.2], 200: [0.8]}, ift.IFT_PURE: {200: [0.4], 100: [0.5, 0.7]},
              ift.WFR_GD: {400: [0.3]}}
    s = ift.size_summary(finals, ift.MMD_FLOW)
    assert list(s) == [ift.MMD_FLOW, ift.IFT_PURE, ift.WFR_GD] and list(s[ift.IFT_PURE]) == [100, 200]
    assert s[ift.IFT_PURE][100] == pytest.approx((0.6, 0.1, 2, 0.6 / 1.1))
    assert s[ift.MMD_FLOW][200] == (0.8, 0.0, 1, 1.0)
    assert math.isnan(s[ift.WFR_GD][400].ratio)                  # no baseline run at N = 400
