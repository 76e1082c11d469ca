"""The target chapters' runners are driven by the scheme registry: a scheme registered in this file (a Heun
particle flow, family "particle") runs through run_schemes / run_target / run_particle_segments, is scored by
target_scores and shown by the table and plot helpers of mmdflow.plots.targets under its label, without any change
to the library."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mmdflow import experiments  # noqa: E402
from mmdflow._checks import check_int, check_positive  # noqa: E402
from mmdflow.energies import DiscrepancyEnergy, check_energy  # noqa: E402
from mmdflow.kernels import Riesz  # noqa: E402
from mmdflow.plots import targets as tplots  # noqa: E402
from mmdflow.schemes import Scheme, register_scheme, scheme_names, unregister_scheme  # noqa: E402
from mmdflow.trajectory import ParticleState, run_steps  # noqa: E402


@dataclass(frozen=True, kw_only=True)
class HeunConfig:
    """Step ``tau``, number of steps and snapshot spacing of the Heun particle flow (the particle family's settings)."""

    tau: float
    n_steps: int
    snapshot_every: int = 1

    def __post_init__(self):
        object.__setattr__(self, "tau", check_positive(self.tau, "tau"))
        check_int(self.n_steps, "n_steps", 1)
        check_int(self.snapshot_every, "snapshot_every", 1)


def run_heun(energy, x0, config, *, generator=None, checkpoint_dir=None, progress=True, callback=None):
    r"""Heun steps :math:`x \leftarrow x - \frac\tau2(g(x) + g(x - \tau g(x)))`, :math:`g` the Wasserstein gradient."""
    if checkpoint_dir is not None:
        raise ValueError("this test scheme keeps no checkpoints")
    check_energy(energy, x0, ("gradient", "value"), "Heun")

    def step(k, state):
        with torch.no_grad():
            g1 = energy.gradient(state.x)
            g2 = energy.gradient(state.x - config.tau * g1)
            return ParticleState(state.x - 0.5 * config.tau * (g1 + g2)), None

    return run_steps(step, ParticleState(x0.detach().clone()), times=[k * config.tau for k in range(config.n_steps + 1)],
                     snapshot_every=config.snapshot_every, measure=lambda s: energy.value(s.x), progress=progress,
                     callback=callback, name="heun")


@pytest.fixture
def heun():
    scheme = register_scheme(Scheme("heun", "Heun particle flow", "Heun", "particle", HeunConfig, run_heun))
    yield scheme
    unregister_scheme("heun")


SETTINGS = dict(n=30, t_end=0.4, width=8, hidden_layers=1, lr=1e-3, pf_tau=0.1, snap_dt=0.2,
                neural={"neural_backward": dict(tau=0.2, iterations_start=3, iterations=2, batch_size=15),
                        "neural_forward": dict(tau=0.2, iterations_start=3, iterations=2, batch_size=15)})


def _problem():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(30, 2, generator=g, dtype=torch.float64) * 0.3 + 1.0
    x0 = 0.2 * torch.randn(30, 2, generator=g, dtype=torch.float64)
    return target, x0


def _heun_by_hand(energy, x, tau, n_steps):
    """The same steps written out with the dense reference gradient (kernel.grad)."""
    k, y = Riesz(1.0), energy.target
    grad = lambda z: k.grad(z, z).sum(1) / z.shape[0] - k.grad(z, y).sum(1) / y.shape[0]   # noqa: E731
    for _ in range(n_steps):
        g1 = grad(x)
        x = x - 0.5 * tau * (g1 + grad(x - tau * g1))
    return x


def test_a_registered_particle_scheme_joins_the_target_comparison(heun):
    target, x0 = _problem()
    energy = DiscrepancyEnergy(Riesz(1.0), target)
    settings = experiments.SchemeSettings(**SETTINGS)
    assert scheme_names("neural", "particle")[-1] == "heun"
    runs = experiments.run_schemes(energy, x0.float(), x0, settings)          # every neural and particle scheme
    assert list(runs) == ["neural_backward", "neural_forward", "particle_flow", "heun"]
    heun_run = runs["heun"]
    torch.testing.assert_close(heun_run.times, torch.tensor([0.0, 0.2, 0.4], dtype=torch.float64))
    torch.testing.assert_close(heun_run.positions[-1], _heun_by_hand(energy, x0, 0.1, 4), rtol=1e-10, atol=1e-12)
    # the same step with the particle flow's settings gives the same trajectory through run_target's Diracs
    only = experiments.run_target("heun test", target, [[0.0, 0.0]], settings, schemes=["heun", "particle_flow"])
    assert list(only) == ["heun", "particle_flow"]
    # a second-order step lands closer to the converged flow than Euler at the same step
    fine = _heun_by_hand(energy, x0, 0.01, 40)
    assert float((heun_run.positions[-1] - fine).norm()) < float((runs["particle_flow"].positions[-1] - fine).norm())

    seg = experiments.run_particle_segments(energy, x0, [(0.1, 0.2), (0.05, 0.4)], scheme="heun")
    assert seg.info == {"scheme": "heun", "segments": 2} and float(seg.times[-1]) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="'heun' is of the family 'particle', not 'neural'"):
        experiments.run_neural_segments("heun", energy, x0, [(0.1, 0.2)], schedule=dict(iterations=1, batch_size=2),
                                        width=4, hidden_layers=1, lr=1e-3)

    sc = experiments.target_scores(runs, target, target[:20], lambda n, g: torch.rand(n, 2, generator=g), repeats=3)
    assert set(sc.train) == set(runs) and sc.train["heun"] == pytest.approx(float(energy.value(heun_run.positions[-1])))
    table = str(tplots.runs_table({"test": runs})) + str(tplots.held_out_table({"test": sc}))
    assert "Heun particle flow" in table and "neural backward" in table and "/ particle flow" in table
    assert "heun" not in table.replace("Heun", "")                            # names are never shown
    ax = tplots.plot_energy_curves(runs)
    assert "Heun particle flow" in [t.get_text() for t in ax.get_legend().get_texts()]
    anim = tplots.animate_particles(runs, frames=2)
    assert "Heun particle flow" in [a.get_title() for a in anim._fig.axes]
    assert "<img" in tplots.animation_html(anim).data                       # the two frames render
    plt.close("all")


def test_unregistered_names_are_refused_where_a_scheme_is_named():
    target, x0 = _problem()
    energy = DiscrepancyEnergy(Riesz(1.0), target)
    with pytest.raises(ValueError, match="unknown scheme 'heun'"):
        experiments.run_schemes(energy, x0.float(), x0, experiments.SchemeSettings(**SETTINGS), schemes=["heun"])
    with pytest.raises(ValueError, match="unknown scheme 'particle flow'"):      # a label is not a name
        tplots.runs_table({"test": {"particle flow": None}})
    with pytest.raises(ValueError, match="family 'weighted'"):
        experiments.run_schemes(energy, x0.float(), x0, experiments.SchemeSettings(**SETTINGS), schemes=["ift"])


def test_stored_results_with_other_scheme_names_are_refused_naming_the_file(tmp_path):
    import json
    path = tmp_path / "paper_images.json"
    path.write_text(json.dumps({"runs": {"max_und_moritz": {"neural backward": {}}}, "sweep": []}))
    with pytest.raises(ValueError, match=r"paper_images\.json.*unknown scheme name\(s\) \['neural backward'\]"):
        experiments.targets.load_paper_images(path)
    path.write_text(json.dumps({"runs": {}, "sweep": [{"scheme": "particle flow"}]}))
    with pytest.raises(ValueError, match="unknown scheme name"):
        experiments.targets.load_paper_images(path)
    path.write_text(json.dumps({"runs": {"m": {"neural_backward, tau 0.5": {}}}, "sweep": [{"scheme": "particle_flow"}]}))
    assert experiments.targets.load_paper_images(path)["sweep"][0]["scheme"] == "particle_flow"
    pt = tmp_path / "paper_images_particles.pt"
    torch.save({"m": {"neural forward": {"0": torch.zeros(2, 2)}}}, pt)
    with pytest.raises(ValueError, match=r"paper_images_particles\.pt"):
        experiments.targets.load_paper_particles(pt)


def test_the_stored_paper_image_results_use_the_registry_names():
    from mmdflow.runtime import find_upward
    folder = find_upward("benchmarks/results")
    for path in sorted(folder.glob("paper_images*.json")):
        experiments.targets.load_paper_images(path)
    for path in sorted(folder.glob("paper_images*.pt")):
        experiments.targets.load_paper_particles(path)


def test_the_notation_page_lists_the_registry_names_and_labels():
    """The table of scheme names on book/notation.md is the registry's, row for row."""
    import re

    from mmdflow import schemes
    from mmdflow.runtime import find_upward
    text = find_upward("book/notation.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+?) \| ([^|]+?) \|$", text, flags=re.M)
    assert rows == [(n, schemes.label(n), schemes.short_label(n)) for n in schemes.scheme_names()]
