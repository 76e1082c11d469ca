"""The Sec. 6.1 interaction benchmark is driven by the scheme registry: a particle scheme registered here (the Heun
flow of the recipe in tests/test_schemes.py) runs through ``run_interaction_case``, the sweep, the tables, the
reading notes and the plot, named by its registry name and shown by its label; stored results with names the
registry does not know are refused, naming the file and the fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

from mmdflow import runtime, schemes
from mmdflow.experiments import interaction, sweep
from mmdflow.flows import perturbed_dirac
from mmdflow.plots import neural as nplots
from mmdflow.runtime import StoredDataError
from test_schemes import HeunConfig, run_heun

ROOT = Path(__file__).resolve().parent.parent
#: tiny settings: tau = 0.2, six steps (T = 1.2), the particle schemes at the step pf_tau = 0.1.
TINY = dict(n_particles=40, n_steps=6, iterations=2, pf_tau=0.1)
TIMES = interaction.BENCH_TIMES


@pytest.fixture
def registered_heun():
    scheme = schemes.register_scheme(schemes.Scheme("heun", "Heun particle flow", "Heun", "particle", HeunConfig,
                                                    run_heun))
    yield scheme
    schemes.unregister_scheme("heun")


def _riesz1_gradient(x):
    """Wasserstein gradient of E_K = -1/2 iint |x - y| at the particles, written out: -(1/N) sum_j (x_i - x_j) /
    |x_i - x_j| (0 for j = i)."""
    diff = x[:, None, :] - x[None, :, :]
    dist = diff.norm(dim=-1, keepdim=True)
    unit = torch.where(dist > 0, diff / dist.clamp_min(1e-300), torch.zeros_like(diff))
    return -unit.sum(1) / x.shape[0]


def test_a_registered_particle_scheme_joins_the_benchmark(registered_heun, tmp_path):
    assert interaction.benchmark_schemes() == ["neural_backward", "neural_forward", "particle_flow", "heun"]
    settings = interaction.interaction_settings("quick", **TINY)
    res = interaction.run_interaction_case("heun", 2, 1.0, settings, times=TIMES, n_repeats=1)
    assert (res.scheme, res.tau, res.iterations, res.jko_errors) == ("heun", 0.1, None, {})
    # the same Heun steps from the same perturbed Dirac, with the gradient written out
    x = perturbed_dirac(40, 2, generator=torch.Generator().manual_seed(0))
    for _ in range(12):
        g1 = _riesz1_gradient(x)
        x = x - 0.05 * (g1 + _riesz1_gradient(x - 0.1 * g1))
    torch.testing.assert_close(res.trajectory.at(1.2), x)
    torch.testing.assert_close(res.trajectory.times, 0.1 * torch.arange(13, dtype=torch.float64))
    assert set(res.errors) == set(TIMES) and all(e.d2 > 0 and e.noise > 0 for e in res.errors.values())

    # the sweep: registry name in the run's name, a particle scheme's cost and identity, the same numbers
    run, = sweep.interaction_runs("quick", cases=[(2, 1.0)], schemes=["heun"], n_repeats=1, **TINY)
    assert run.name.startswith("heun_d2_r1_m40_tau0.1") and run.identity[3:6] == (None, 40, 0.1)
    assert run.cost == sweep.InteractionRun(**{**run.__dict__, "scheme": "particle_flow"}).cost
    swept, = sweep.run_interaction_sweep([run], scheduler="serial", checkpoint_root=tmp_path, progress=False)
    assert swept.scheme == "heun" and swept.radius == res.radius
    assert all(swept.errors[t][:2] == res.errors[t][:2] for t in TIMES)   # d2, noise (the stds are NaN at 1 repeat)
    assert interaction.results_from_json(interaction.results_to_json([swept]))[0].radius == swept.radius

    # tables, notes and the plot show the label, and treat the scheme by its family
    pf = interaction.run_interaction_case("particle_flow", 2, 1.0, settings, times=TIMES, n_repeats=1)
    coarse = interaction.InteractionResult(**{**res.__dict__, "tau": 0.2})
    table = nplots.scheme_table([res, coarse, pf], "heun")
    assert table.caption.startswith("Heun particle flow (step $dt = 0.1$") and len(table.rows) == 1
    assert "dt = 0.2" in nplots.scheme_table([res, coarse], "heun", particle_step=0.2).caption
    assert "Heun particle flow" in str(nplots.particle_step_table([res, coarse], scheme="heun").caption)
    bench = nplots.benchmark_table([pf, res, coarse])
    assert [r[0] for r in bench.rows] == ["particle flow", "Heun particle flow"]     # the finest step only
    notes = interaction.reading_notes([pf, res, coarse])
    assert any(n.startswith("The Heun particle flow (step $dt = 0.1$)") for n in notes)
    assert any(n.startswith("At the coarser step $dt = 0.2$ the Heun particle flow") for n in notes)
    text = interaction.format_interaction_table([pf, res], times=TIMES)
    assert "Heun particle flow" in text and "particle flow " in text
    floors = {(40, 2, 1.0, t): 1e-3 for t in TIMES}
    matplotlib.use("Agg")
    ax = nplots.plot_benchmark_ratios([pf, res], floors=floors)
    lines = {line.get_label().split(",")[0]: line.get_linestyle() for line in ax.get_lines()[:2]}
    assert set(lines) == {"PF", "Heun"} and lines["PF"] != lines["Heun"]

    with pytest.raises(ValueError, match="slow start"):        # r < 1 from a perturbed Dirac needs a slow start
        interaction.run_interaction_case("heun", 2, 0.5, settings, times=TIMES, n_repeats=1)


def test_schemes_outside_the_benchmark_are_refused():
    settings = interaction.interaction_settings("quick", **TINY)
    with pytest.raises(ValueError, match="family 'weighted'"):
        interaction.run_interaction_case("ift", 2, 1.0, settings)
    with pytest.raises(ValueError, match="unknown scheme 'backward'"):
        interaction.run_interaction_case("backward", 2, 1.0, settings)
    with pytest.raises(ValueError, match="family 'neural'"):
        settings.neural_config("particle_flow")
    with pytest.raises(ValueError, match="only for r = 1"):
        sweep.InteractionRun(scheme="neural_forward", d=2, r=0.5, settings=settings)
    assert [s.scheme for s in sweep.interaction_runs("quick", cases=[(2, 0.5)], **TINY)] == ["neural_backward",
                                                                                              "particle_flow"]


def _old_records():
    """Two records as the benchmark wrote them before the schemes took their registry names."""
    err = {"d2": 2e-4, "noise": 1e-4, "d2_std": 0.0, "noise_std": 0.0}
    rec = {"scheme": "backward", "d": 2, "r": 1.0, "iterations": 10, "n_particles": 5, "tau": 0.1, "seed": 0,
           "n_repeats": 2, "wall_time": 1.0, "elapsed": 1.0, "provenance": {"commit": "abc", "run_key": "backward_d2"},
           "errors": {"0.4": err}, "jko_errors": {"0.4": err}, "radius": {"0.4": [0.1, 0.123456789012345]},
           "shell": {}}
    return [rec, {**rec, "scheme": "particle", "iterations": None, "jko_errors": {}, "tau": 0.001}]


def test_old_scheme_names_are_refused_naming_the_file_and_the_fix(tmp_path, monkeypatch):
    store = tmp_path / "old.json"
    store.write_text(json.dumps(_old_records(), indent=1))
    monkeypatch.setenv(runtime.RESULTS_ENV, str(tmp_path))            # the stored results' loader
    with pytest.raises(StoredDataError, match=rf"{store}: run \[0\] names the scheme 'backward'"):
        interaction.load_results("old.json")
    with pytest.raises(StoredDataError, match=rf"{store}: run \[0\] names the scheme 'backward'[\s\S]*"
                                              rf"scripts/migrate_scheme_names.py {store}"):
        interaction.results_from_json(sweep.read_store(store), source=str(store))
    run, = sweep.interaction_runs("quick", cases=[(2, 1.0)], schemes=["particle_flow"], n_repeats=1, **TINY)
    with pytest.raises(StoredDataError, match="migrate_scheme_names"):       # before anything runs
        sweep.run_sweep([run], store=store, scheduler="serial", checkpoint_root=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_migration_script_changes_only_the_scheme_names(tmp_path):
    path = tmp_path / "old.json"
    old = _old_records()
    text = json.dumps(old, indent=1)
    path.write_text(text)
    script = [sys.executable, str(ROOT / "scripts" / "migrate_scheme_names.py"), str(path)]
    out = subprocess.run(script, capture_output=True, text=True, check=True).stdout
    assert "2 record(s) renamed" in out
    new = json.loads(path.read_text())
    assert [r["scheme"] for r in new] == ["neural_backward", "particle_flow"]
    assert [{**r, "scheme": None} for r in new] == [{**r, "scheme": None} for r in old]   # numbers, provenance kept
    assert len(path.read_text()) - len(text) == len("neural_") + len("_flow")               # nothing else rewritten
    assert interaction.results_from_json(new, source=str(path))[0].scheme == "neural_backward"
    assert "already uses" in subprocess.run(script, capture_output=True, text=True, check=True).stdout
    path.write_text(json.dumps([{**old[0], "scheme": "euler"}]))
    bad = subprocess.run(script, capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown scheme names ['euler']" in bad.stderr
