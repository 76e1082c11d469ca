"""Tests of mmdflow.experiments.seeds (multi-seed runs of the weighted-particle flows) and its summary statistics."""

import dataclasses

import pytest
import torch

from mmdflow import energies, experiments, wfr
from mmdflow.data import mixtures
from mmdflow.kernels import Gaussian
from mmdflow.experiments.seeds import RUN_SEED_OFFSET, TEST_SEED_OFFSET, FinalLoss, SeedRuns, run_seeds, summarise_final
from mmdflow.plots import wfr as wplots
from mmdflow.trajectory import Trajectory

F64 = torch.float64


K = Gaussian(1.5)


def _runs(n_steps=3):
    cfg = dict(n_steps=n_steps, tau=1.0, loss_every=1)
    return {"MMD flow": wfr.WFRConfig(method="mmd", **cfg),
            "IFT": wfr.WFRConfig(method="ift", **cfg, eta=0.5),
            "WFR GD": wfr.WFRConfig(method="wfr", **cfg)}


def test_run_seeds_shapes_shared_start_and_seeding_rule():
    target = mixtures.gaussian_2d()
    res = run_seeds(_runs(), target, [3, 4], 8, kernel=K, n_test=20)
    assert list(res) == ["MMD flow", "IFT", "WFR GD"]
    assert experiments.run_seeds is run_seeds and experiments.SeedRuns is SeedRuns
    for r in res.values():
        assert isinstance(r, SeedRuns)
        assert r.loss.shape == (2, 4) and r.steps.tolist() == [0.0, 1.0, 2.0, 3.0] and r.wall.shape == (2,)
        assert torch.equal(r.final, r.loss[:, -1])
    # every scheme starts from the same particles (seed 3) and is scored on the same held-out sample:
    # with uniform initial weights the step-0 losses agree
    x0 = mixtures.initial_particles(8, torch.Generator().manual_seed(3))
    for r in res.values():
        assert torch.equal(r.first.positions[0], x0)
    assert torch.equal(res["MMD flow"].loss[:, 0], res["IFT"].loss[:, 0])
    # seed 3 of the study is the single run with the documented generators
    yt = target(20, torch.Generator().manual_seed(3 + TEST_SEED_OFFSET))
    assert all(torch.equal(r.held_out, yt) for r in res.values())       # the first seed's held-out sample
    cfg = _runs()["IFT"]
    tr = wfr.wfr_flow(energies.DiscrepancyEnergy(K, yt), x0, cfg, sampler=target,
                      generator=torch.Generator().manual_seed(3 + RUN_SEED_OFFSET), progress=False)
    assert torch.equal(tr.info["loss"], res["IFT"].loss[0])
    # the first seed's trajectory is relabelled by iteration (t_k = k tau, tau = 1 here: the same times)
    assert torch.equal(res["IFT"].first.times, wfr.by_iteration(tr).times)
    # a config that names no method is refused, naming its label
    with pytest.raises(ValueError, match="'IFT'.*names no method"):
        run_seeds({"IFT": dataclasses.replace(cfg, method=None)}, target, [3], 8, kernel=K)


def test_run_seeds_is_reproducible_and_keeps_dtype():
    a = run_seeds(_runs(2), mixtures.mixture_2d(), [0], 6, kernel=K, n_test=20, dtype=torch.float32)
    b = run_seeds(_runs(2), mixtures.mixture_2d(), [0], 6, kernel=K, n_test=20, dtype=torch.float32)
    for label in a:
        assert torch.equal(a[label].loss, b[label].loss)
        assert a[label].first.positions.dtype == torch.float32


def test_summarise_final_is_typed_and_rejects_untyped_records():
    res = run_seeds(_runs(2), mixtures.gaussian_2d(), [0, 1], 6, kernel=K, n_test=20)
    summ = summarise_final(res)
    for label, r in res.items():
        assert isinstance(summ[label], FinalLoss)
        m, s = summ[label]
        assert m == float(f"{float(r.final.mean()):.2g}") and s == float(f"{float(r.final.std(unbiased=False)):.2g}")
    with pytest.raises(TypeError, match="'MMD flow'"):
        summarise_final({"MMD flow": {"loss": res["MMD flow"].loss, "wall": res["MMD flow"].wall}})
    # the statistics live with the runs: the plots module takes results and does not re-export them
    assert not hasattr(wplots, "summarise_final") and not hasattr(wplots, "FinalLoss")


def test_run_seeds_bad_inputs_raise_clear_errors():
    target = mixtures.gaussian_2d()
    with pytest.raises(ValueError, match="'bad'.*names no method"):
        run_seeds({"bad": wfr.WFRConfig(n_steps=1, tau=1.0)}, target, [0], 4, kernel=K)
    with pytest.raises(TypeError, match="'cfg'.*WFRConfig.*dict"):
        run_seeds({"cfg": {"n_steps": 1, "method": "mmd"}}, target, [0], 4, kernel=K)
    # the old (method, config) pairs are refused, not silently unpacked
    with pytest.raises(TypeError, match="'pair'.*WFRConfig.*tuple"):
        run_seeds({"pair": ("mmd", wfr.WFRConfig(method="mmd", n_steps=1, tau=1.0))}, target, [0], 4, kernel=K)
    with pytest.raises(ValueError, match="langevin"):
        wfr.WFRConfig(method="langevin", n_steps=1, tau=1.0)
    with pytest.raises(ValueError, match="non-empty"):
        run_seeds({}, target, [0], 4, kernel=K)
    with pytest.raises(ValueError, match="seeds"):
        run_seeds(_runs(), target, [], 4, kernel=K)
    with pytest.raises(TypeError, match="callable"):
        run_seeds(_runs(), torch.zeros(5, 2, dtype=F64), [0], 4, kernel=K)
    with pytest.raises(TypeError, match="kernel must be a RadialKernel"):
        run_seeds(_runs(), target, [0], 4, kernel=1.5)


def _synthetic(final_a, final_b, weights_a=None):
    """Two schemes with given final losses per seed (and the first seed's final weights of the first)."""
    def mk(final, w):
        loss = torch.stack([torch.ones(len(final), dtype=F64), torch.tensor(final, dtype=F64)], 1)
        first = None if w is None else Trajectory(
            times=torch.zeros(1, dtype=F64), positions=torch.zeros(1, len(w), 2, dtype=F64),
            energies=torch.zeros(1, dtype=F64), weights=torch.tensor([w], dtype=F64))
        return SeedRuns(steps=torch.tensor([0.0, 1.0], dtype=F64), loss=loss, wall=torch.ones(len(final), dtype=F64),
                        first=first, ess=loss, zero_fraction=0 * loss, energy_distance=torch.tensor(final, dtype=F64),
                        mmd2_alt=None)
    return {"a": mk(final_a, weights_a), "b": mk(final_b, None)}


def test_compare_final_and_final_scores_against_hand_computed_values():
    res = _synthetic([0.2, 0.9], [0.4, 0.6], weights_a=[0.5, 0.5, 0.0, 0.0])
    c = experiments.seeds.compare_final(res, "a", "b")
    assert c.ratio_min == pytest.approx(0.5) and c.ratio_max == pytest.approx(1.5)
    assert c.below_every_seed is False and c.zero_fraction == 0.5
    c = experiments.seeds.compare_final(_synthetic([0.2, 0.3], [0.4, 0.6]), "a", "b")
    assert c.below_every_seed is True and c.zero_fraction is None and c.ratio_max == pytest.approx(0.5)
    rows = experiments.seeds.final_scores({"T": res})
    assert [(r.target, r.label) for r in rows] == [("T", "a"), ("T", "b")]
    a, b = rows
    assert a.loss.mean == pytest.approx(0.55) and a.loss.std == pytest.approx(0.35)          # ddof = 0
    assert b.loss.mean == pytest.approx(0.5) and b.loss.std == pytest.approx(0.1)
    assert (a.rank, b.rank) == (2, 1) and (a.rank_energy, b.rank_energy) == (2, 1) and a.mmd2_alt is None
    assert a.ess == pytest.approx(0.55) and a.zero_fraction == 0.0
