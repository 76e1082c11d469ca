r"""The interaction-energy benchmark of Altekrüger et al. (2023), Sec. 6.1: schemes from :math:`\delta_0` against :math:`\gamma(t)`.

Each scheme follows the Wasserstein gradient flow of the Riesz interaction energy :math:`\mathcal E_K` from a
Dirac at the origin; the exact flow is the curve :math:`\gamma(t)` of :mod:`mmdflow.analytic`. The schemes are
those of the registry (:mod:`mmdflow.schemes`), named by their registry names: every registered scheme of the
families ``"neural"`` and ``"particle"`` (:func:`benchmark_schemes`; the paper's three: ``"neural_backward"``,
``"neural_forward"``, ``"particle_flow"``), so that registering a scheme of one of these families adds it to the
comparison. :func:`run_interaction_case` runs one scheme in one setting and compares it with :math:`\gamma(t)`
(and the neural backward scheme with its exact JKO iterate) by :math:`\mathcal D_K^2` against the noise floor of
two exact samples (:mod:`mmdflow.metrics`). Results are :class:`InteractionResult` objects;
:func:`format_interaction_table` and the plots take them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import torch

from .. import analytic, metrics, schemes
from .._checks import check_int, check_positive
from ..energies import InteractionEnergy
from ..flows import ParticleFlowConfig, perturbed_dirac
from ..kernels import Riesz
from ..metrics import ExactComparison
from ..runtime import StoredDataError, load_stored_results, stored_results_path
from ..trajectory import Trajectory

__all__ = ["InteractionSettings", "PROFILES", "interaction_settings", "InteractionResult", "BENCH_TIMES",
           "FAMILIES", "JKO_SCHEME", "R1_ONLY", "benchmark_schemes", "is_particle", "defined_from_dirac", "check_case",
           "run_interaction_case", "interaction_targets", "format_interaction_table", "results_to_json",
           "results_from_json", "check_scheme_names", "load_results", "provenance_summary", "best_runs",
           "reading_notes"]

#: the times at which the benchmark compares a scheme with the analytic curve gamma(t).
BENCH_TIMES = (0.4, 0.8, 1.2)
#: the scheme families the benchmark compares (:data:`mmdflow.schemes.FAMILIES`): ``"neural"`` schemes start at the
#: exact Dirac (N coinciding particles) with the settings' network and Adam loop, ``"particle"`` schemes at the
#: perturbed Dirac (:func:`mmdflow.flows.perturbed_dirac`: coinciding particles feel no force) with the step
#: ``pf_tau``.
FAMILIES = ("neural", "particle")
#: the scheme whose time-discrete target is known in closed form: the JKO iterate :math:`(c_n\mathrm{Id})_\#\eta^*`
#: from a Dirac (:func:`mmdflow.analytic.sample_jko`), measured besides :math:`\gamma(t)` (``jko_errors``).
JKO_SCHEME = "neural_backward"
#: the schemes defined from a Dirac only for ``r = 1``: the forward step needs the directional derivative of
#: :math:`\mathcal E_K` at :math:`\delta_0`, which only ``r = 1`` gives (paper Sec. 6.1).
R1_ONLY = ("neural_forward",)


def benchmark_schemes() -> list[str]:
    """The registered schemes of the benchmark's :data:`FAMILIES`, in display order (the default comparison)."""
    return schemes.scheme_names(*FAMILIES)


def is_particle(scheme: str) -> bool:
    """Whether the registered ``scheme`` is of the family ``"particle"``: it runs at the step ``pf_tau`` from the
    perturbed Dirac, has no Adam iterations, and of several runs of one case the smallest step counts."""
    return schemes.get_scheme(scheme).family == "particle"


def defined_from_dirac(scheme: str, r: float) -> bool:
    """Whether ``scheme`` is defined from a Dirac for the Riesz exponent ``r`` (:data:`R1_ONLY`)."""
    return scheme not in R1_ONLY or float(r) == 1.0


def check_case(scheme: str, r: float) -> schemes.Scheme:
    """The registered ``scheme`` of the benchmark (family in :data:`FAMILIES`), refused unless it is defined from a
    Dirac at ``r`` (:func:`defined_from_dirac`).

    Args:
        scheme: a registry name (:func:`benchmark_schemes`).
        r: the Riesz exponent.

    Returns:
        The :class:`mmdflow.schemes.Scheme`.

    Raises:
        ValueError: an unknown scheme, one of another family, or a scheme of :data:`R1_ONLY` at ``r != 1``.
    """
    entry = schemes.require(scheme, *FAMILIES, where="the interaction benchmark")
    if not defined_from_dirac(scheme, r):
        raise ValueError(f"the {entry.label} scheme from a Dirac is defined only for r = 1 (paper Sec. 6.1), got "
                         f"r={r}")
    return entry


@dataclass(frozen=True, kw_only=True)
class InteractionSettings:
    r"""Settings of the interaction benchmark (paper Sec. 6.1), shared by the three schemes.

    Attributes:
        n_particles: ``m``; tau, n_steps: time step and number of steps (``T = n_steps * tau``).
        width, hidden_layers, lr: the networks and their Adam step; iterations: Adam iterations per step
            (``iterations_start``: for the steps before ``t = 1``, ``None``: the same).
        batch_size: ``B`` of the two-batch estimates; batch1: the forward scheme's step batch.
        pf_tau: the (explicit Euler) particle flow's step, a divisor of ``tau``; its snapshots are taken at the
            multiples of ``tau``. From a perturbed Dirac with ``r > 1`` the explicit scheme lags behind
            :math:`\gamma(t)` by a start-up error of order ``pf_tau log(1/pf_tau)`` (chapter 2), so the
            comparison needs a much smaller step than the neural schemes' ``tau``.
        snapshot_every: steps between recorded snapshots (the benchmark itself records every step).
    """

    n_particles: int
    tau: float
    n_steps: int
    width: int
    hidden_layers: int
    lr: float
    iterations: int
    iterations_start: int | None = None
    batch_size: int
    batch1: int
    pf_tau: float
    snapshot_every: int = 1

    def __post_init__(self):
        for name in ("n_particles", "n_steps", "width", "hidden_layers", "batch_size", "batch1", "snapshot_every"):
            check_int(getattr(self, name), name, 1)
        check_int(self.iterations, "iterations", 1)
        if self.iterations_start is not None:
            check_int(self.iterations_start, "iterations_start", 1)
        check_positive(self.tau, "tau")
        check_positive(self.lr, "lr")
        check_positive(self.pf_tau, "pf_tau")
        k = round(self.tau / self.pf_tau)
        if k < 1 or abs(k * self.pf_tau - self.tau) > 1e-9 * self.tau:
            raise ValueError(f"pf_tau must divide tau={self.tau!r} (the particle flow's snapshots are at the multiples "
                             f"of tau), got pf_tau={self.pf_tau!r}")

    def neural_config(self, scheme: str, **overrides):
        """The config of the registered neural scheme ``scheme`` (e.g. ``"neural_backward"``): its config factory
        (:attr:`mmdflow.schemes.Scheme.config`) called with the settings it takes, then ``overrides``.

        Raises:
            ValueError: ``scheme`` is not a registered scheme of the family ``"neural"``.
        """
        entry = schemes.require(scheme, "neural", where="neural_config")
        taken = {k: v for k, v in asdict(self).items() if k in entry.config_fields}
        return entry.config(**{**taken, **overrides})


#: one table per profile: the authors' experiment (``run_interaction.py``), a CPU-minutes version of it for the
#: website (``book``: their network, batch and step, T = 1.2, a quarter of their iterations per step) and a
#: CPU-seconds one for the tests.
PROFILES = {
    "paper": InteractionSettings(n_particles=2000, tau=0.05, n_steps=24, width=64, hidden_layers=2, lr=1e-3,
                                 iterations=5000, batch_size=100, batch1=2000, pf_tau=0.001, snapshot_every=4),
    "book": InteractionSettings(n_particles=1000, tau=0.05, n_steps=24, width=64, hidden_layers=2, lr=1e-3,
                                iterations=1000, batch_size=100, batch1=1000, pf_tau=0.001, snapshot_every=4),
    "quick": InteractionSettings(n_particles=400, tau=0.2, n_steps=6, width=32, hidden_layers=2, lr=2e-3,
                                 iterations=250, batch_size=100, batch1=400, pf_tau=0.002, snapshot_every=1),
}


def interaction_settings(profile: str, **overrides) -> InteractionSettings:
    """The settings of a profile (:data:`PROFILES`) with overrides (``None`` values are ignored).

    Overriding ``iterations`` alone sets ``iterations_start`` to the same value.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    known = {f.name for f in fields(InteractionSettings)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(known)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "iterations" in given and "iterations_start" not in overrides:
        given["iterations_start"] = given["iterations"]
    return replace(PROFILES[profile], **given)


@dataclass
class InteractionResult:
    """One scheme in one setting of the benchmark.

    Attributes:
        scheme, d, r: the run; iterations: Adam iterations per step (``None`` for the particle flow);
        n_particles, tau, seed, n_repeats: its settings; wall_time: seconds in the scheme;
        errors: ``{t: ExactComparison}`` against :math:`\\gamma(t)`; jko_errors: the same against the exact
            JKO iterate (backward scheme, else empty); radius: ``{t: (99% quantile of |x|, analytic radius)}``;
        shell: ``{t: (fraction of particles within 5% of R(t) of the support radius R(t), the same for
            gamma(t))}`` (:func:`mmdflow.metrics.radial_statistics`); in the sphere case ``d + r >= 4`` the exact
            fraction is 1 and this, not :math:`\\mathcal D_K^2` at ``m`` particles, shows a thick shell;
        elapsed: wall seconds of the whole case (scheme and metrics), when measured;
        provenance: where and when the run was made (``commit``, ``date``, ``machine``, ``threads``, ``device``),
            filled in by the benchmark script (:func:`mmdflow.runtime.provenance`);
        trajectory: the run (``None`` when loaded from JSON).
    """

    scheme: str
    d: int
    r: float
    iterations: int | None
    n_particles: int
    tau: float
    seed: int
    n_repeats: int
    wall_time: float
    errors: dict = field(default_factory=dict)
    jko_errors: dict = field(default_factory=dict)
    radius: dict = field(default_factory=dict)
    shell: dict = field(default_factory=dict)
    elapsed: float | None = None
    provenance: dict = field(default_factory=dict)
    trajectory: Trajectory | None = None

    def ratio(self, t: float) -> float:
        """:math:`\\mathcal D_K^2 / \\text{noise}` at time ``t``."""
        e = self.errors[t]
        return e.d2 / e.noise

    def to_json(self) -> dict:
        """A JSON-ready dict (string time keys, no trajectory)."""
        out = {k: v for k, v in asdict(self).items()
               if k not in ("trajectory", "errors", "jko_errors", "radius", "shell")}
        for key in ("errors", "jko_errors"):
            out[key] = {format(t, "g"): e._asdict() for t, e in getattr(self, key).items()}
        for key in ("radius", "shell"):
            out[key] = {format(t, "g"): list(v) for t, v in getattr(self, key).items()}
        return out

    @classmethod
    def from_json(cls, data: dict) -> "InteractionResult":
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        for key in ("errors", "jko_errors"):
            data[key] = {float(t): ExactComparison(**e) for t, e in data.get(key, {}).items()}
        for key in ("radius", "shell"):
            data[key] = {float(t): tuple(v) for t, v in data.get(key, {}).items()}
        keep = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in keep})


def load_results(name: str = "interaction_paper.json") -> list[InteractionResult]:
    """The stored benchmark results (:func:`mmdflow.runtime.stored_results_path`) as :class:`InteractionResult` objects."""
    producer = "benchmarks/bench_interaction.py"
    data = load_stored_results(name, producer=producer, kind="interaction")
    return results_from_json(data, source=str(stored_results_path(name, producer=producer)))


def results_to_json(results: list[InteractionResult]) -> list[dict]:
    """Benchmark results as JSON-ready dicts (for ``json.dump``)."""
    return [res.to_json() for res in results]


def results_from_json(data: list[dict], *, source: str = "the records") -> list[InteractionResult]:
    """Inverse of :func:`results_to_json`, after :func:`check_scheme_names` (``source`` names the data in its error)."""
    check_scheme_names(data, source)
    return [InteractionResult.from_json(d) for d in data]


def check_scheme_names(records: list[dict], source: str) -> None:
    """Refuse records whose ``scheme`` is not a registered scheme of the benchmark (:func:`benchmark_schemes`).

    Records written before the benchmark named its schemes by their registry names (``"backward"``,
    ``"forward"``, ``"particle"``) are refused too: ``scripts/migrate_scheme_names.py`` rewrites such a file once.

    Args:
        records: JSON records (dicts with a ``"scheme"``).
        source: the file (or other origin) of the records, for the message.

    Raises:
        StoredDataError: a record names an unknown scheme (the message names ``source``, the record and the fix).
    """
    known = benchmark_schemes()
    for i, rec in enumerate(records):
        name = rec.get("scheme")
        if name not in known:
            raise StoredDataError(
                f"{source}: run [{i}] names the scheme {name!r}, which is not a registered scheme of the interaction "
                f"benchmark ({known}); a file written before the schemes took their registry names is rewritten once "
                f"with `python scripts/migrate_scheme_names.py {source}`, a scheme of your own is registered with "
                "mmdflow.schemes.register_scheme before the file is read")


def _particle_config(entry: schemes.Scheme, settings: InteractionSettings, r: float):
    r"""The config of a particle-family scheme: step ``pf_tau`` to ``T = n_steps * tau``, snapshots at the multiples of
    ``tau`` (``snapshot_dt`` where the config takes it, else ``snapshot_every``, else every step).

    For ``r < 1`` the explicit steps need the slow start of :class:`mmdflow.flows.ParticleFlowConfig` (steps
    ``1e-8, 1e-7, ...`` up to ``pf_tau``): from the perturbed Dirac the first full step would throw the particles
    apart (the force grows like :math:`\lVert x-y\rVert^{r-1}`); a particle scheme whose config has no
    ``slow_start`` is refused there.
    """
    tau, pf_tau = settings.tau, settings.pf_tau
    slow = r < 1
    # the number of steps to T, the slow start's included (its schedule is the one of the particle flow)
    n_steps = ParticleFlowConfig.until(settings.n_steps * tau, tau=pf_tau, slow_start=slow).n_steps
    wanted = {"tau": pf_tau, "n_steps": n_steps}
    params = entry.config_fields
    if slow:
        if "slow_start" not in params:
            raise ValueError(f"scheme {entry.name!r}: at r={r} < 1 a particle scheme from the perturbed Dirac needs a "
                             "slow start, and its config has no field slow_start")
        wanted["slow_start"] = True
    if "snapshot_dt" in params:
        wanted["snapshot_dt"] = tau
    elif "snapshot_every" in params and not slow:
        wanted["snapshot_every"] = round(tau / pf_tau)
    return entry.config(**wanted)


def run_interaction_case(scheme: str, d: int, r: float, settings: InteractionSettings, *, seed: int = 0,
                         times=BENCH_TIMES, n_repeats: int = 3, device=None, checkpoint_dir=None,
                         progress: bool = False) -> InteractionResult:
    r"""Run one scheme on :math:`\mathcal E_K` (Riesz ``r``) from :math:`\delta_0` in dimension ``d`` and measure it.

    ``scheme`` is a registry name of :func:`benchmark_schemes` (:func:`check_case`), built by its config factory and
    run by its runner (:mod:`mmdflow.schemes`), by family:

    * ``"neural"`` (``"neural_backward"``, ``"neural_forward"``, the latter ``r = 1`` only): from the exact Dirac,
      the config :meth:`InteractionSettings.neural_config` (snapshots at every step ``tau``), a generator seeded
      with ``seed``; the result's ``iterations`` are the Adam iterations per step;
    * ``"particle"`` (``"particle_flow"``): from the perturbed Dirac (float64), step ``settings.pf_tau`` with
      snapshots at the multiples of ``settings.tau`` and the slow start for ``r < 1``; its result's ``tau`` is
      ``pf_tau`` and ``iterations`` is ``None``.

    At each of ``times`` the particles are compared with :math:`\gamma(t)` by :func:`mmdflow.metrics.flow_error`
    (:math:`\mathcal D_K^2`, ``r = 1``, with its noise floor); the neural backward scheme (:data:`JKO_SCHEME`) is
    also compared with its exact time-discrete target, the JKO iterate :math:`(c_n\mathrm{Id})_\#\eta^*`
    (:func:`mmdflow.analytic.sample_jko`), which differs from :math:`\gamma(n\tau)` when ``r != 1``.
    Every scheme checkpoints into ``checkpoint_dir`` (``None``: none) and resumes a finished or interrupted run.
    """
    entry = check_case(scheme, r)
    if not isinstance(settings, InteractionSettings):
        raise TypeError(f"settings must be InteractionSettings (see interaction_settings), got {type(settings).__name__}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    energy = InteractionEnergy(Riesz(r))
    m, tau = settings.n_particles, settings.tau
    its = None
    if entry.family == "particle":
        cfg = _particle_config(entry, settings, r)
        x0 = perturbed_dirac(m, d, generator=torch.Generator().manual_seed(seed), device=device)
        traj = entry.run(energy, x0, cfg, progress=progress, checkpoint_dir=checkpoint_dir)
        tau = settings.pf_tau
    else:
        cfg = settings.neural_config(scheme, snapshot_every=1)
        its = cfg.iterations
        gen = torch.Generator(device=device).manual_seed(seed)
        traj = entry.run(energy, torch.zeros(m, d, device=device), cfg, generator=gen, checkpoint_dir=checkpoint_dir,
                         progress=progress)
    out = InteractionResult(scheme=scheme, d=d, r=float(r), iterations=its, n_particles=m, tau=tau, seed=seed,
                            n_repeats=n_repeats, wall_time=traj.wall_time, trajectory=traj)
    mgen = torch.Generator().manual_seed(10_000 + seed)   # the same exact samples of gamma(t) for every scheme
    jgen = torch.Generator().manual_seed(20_000 + seed)
    for t in times:
        x = traj.at(t).to(torch.float64).cpu()
        out.errors[t] = metrics.flow_error(x, t, r, n_repeats=n_repeats, generator=mgen)
        out.radius[t] = (float(x.norm(dim=1).quantile(0.99)), float(analytic.support_radius(t, d, r)))
        stats = metrics.radial_statistics(x, float(t), r)
        out.shell[t] = (stats.shell_fraction, stats.exact_shell_fraction)
        if scheme == JKO_SCHEME:
            n = round(t / tau)
            out.jko_errors[t] = metrics.compare_to_exact(
                x, lambda k, g, n=n: analytic.sample_jko(k, n, tau, d, r, generator=g), n_repeats=n_repeats,
                generator=jgen)
    return out


def _order() -> dict:
    """``{name: position}`` of the registered schemes (the display order of :mod:`mmdflow.schemes`)."""
    return {name: i for i, name in enumerate(schemes.scheme_names())}


def _phrase(scheme: str) -> str:
    """The scheme in a sentence: its label, plus "scheme" for a neural one ("neural backward scheme", "particle
    flow")."""
    entry = schemes.get_scheme(scheme)
    return entry.label + (" scheme" if entry.family == "neural" else "")


def best_runs(results: list[InteractionResult]) -> dict:
    """``{(scheme, d, r): result}``: of several runs of one case, a neural scheme's run with the most iterations per
    step, a particle scheme's run with the smallest step (by the scheme's family, :mod:`mmdflow.schemes`)."""
    def better(a, b):
        if is_particle(a.scheme):
            return a.tau < b.tau
        return (a.iterations or 0) > (b.iterations or 0)

    by: dict = {}
    for res in results:
        key = (res.scheme, res.d, res.r)
        if key not in by or better(res, by[key]):
            by[key] = res
    return by


def interaction_targets(results: list[InteractionResult], *, factor: float = 3.0) -> list[str]:
    r"""Checks on benchmark results, as lines of text.

    * ``r = 1``, ``d`` in {2, 3}: each registered neural scheme within ``factor`` times the noise floor at every
      time;
    * ``r = 1.5``, ``d = 2``: the neural backward scheme closer to :math:`\gamma(t)` than the particle flow
      at every time (the paper's claim, about these two schemes).

    Missing runs are reported as such; of several runs of one case, :func:`best_runs` picks the one that counts.
    """
    by = best_runs(results)
    lines = []
    for d in (2, 3):
        for scheme in schemes.scheme_names("neural"):
            res = by.get((scheme, d, 1.0))
            if res is None:
                lines.append(f"r=1, d={d}, {schemes.label(scheme)}: not run")
                continue
            worst = max(res.ratio(t) for t in res.errors)
            verdict = "yes" if worst <= factor else "no"
            lines.append(f"r=1, d={d}, {schemes.label(scheme)} ({res.iterations} its/step): D2/noise <= {factor:g} "
                         f"at every t: {verdict} (worst {worst:.2f})")
    nb, pf = by.get(("neural_backward", 2, 1.5)), by.get(("particle_flow", 2, 1.5))
    if nb is None or pf is None:
        lines.append("r=1.5, d=2, neural backward vs particle flow: not run")
    else:
        better = {t: nb.errors[t].d2 < pf.errors[t].d2 for t in nb.errors if t in pf.errors}
        detail = ", ".join(f"t={t:g}: {nb.errors[t].d2:.2e} vs {pf.errors[t].d2:.2e}" for t in better)
        lines.append(f"r=1.5, d=2, neural backward ({nb.iterations} its/step) closer to gamma(t) than the particle "
                     f"flow at every t: {'yes' if all(better.values()) else 'no'} ({detail})")
    return lines


def format_interaction_table(results: list[InteractionResult], *, times=BENCH_TIMES, factor: float = 3.0) -> str:
    r"""A text table of benchmark results: :math:`\mathcal D_K^2` to :math:`\gamma(t)`, noise floor and their ratio.

    One row per run (sorted by ``d``, ``r``, scheme); for the backward scheme a second row gives the
    discrepancy to its exact JKO iterate. Followed by :func:`interaction_targets`.
    """
    order = _order()
    rows = sorted(results, key=lambda res: (res.d, res.r, order[res.scheme], res.iterations or 0))
    w = 2 + max([len("scheme")] + [len(schemes.label(res.scheme)) for res in results])
    head = f"{'scheme':<{w}}{'d':>3}{'r':>5}{'its':>6}" + "".join(f"{'t=' + format(t, 'g'):>26}" for t in times)
    sub = f"{'':<{w + 14}}" + "".join(f"{'D2 [noise] ratio':>26}" for _ in times)
    lines = [head, sub, "-" * len(head)]

    def cells(errors):
        """One column per time: D2 [noise] ratio, or n/a."""
        return "".join(f"{'n/a':>26}" if (e := errors.get(t)) is None else
                       f"{e.d2:>10.2e} [{e.noise:.2e}] {e.d2 / e.noise:>4.1f}" for t in times)

    for res in rows:
        its = "-" if res.iterations is None else str(res.iterations)
        lines.append(f"{schemes.label(res.scheme):<{w}}{res.d:>3}{res.r:>5g}{its:>6}" + cells(res.errors))
        if res.jko_errors:
            lines.append(f"{'  vs JKO':<{w + 14}}" + cells(res.jko_errors))
    lines.append("")
    lines.append("D2 = D_K^2 (r=1 distance kernel, half the energy distance) to an exact sample of gamma(t) of the")
    reps = sorted({res.n_repeats for res in results if res.n_repeats})
    reps_text = "/".join(str(k) for k in reps) if reps else "several"
    lines.append(f"same size, noise = the same statistic between two exact samples (mean of {reps_text} repeats);")
    lines.append("'vs JKO' rows: the backward scheme against its exact time-discrete iterate (c_n Id)#eta*.")
    lines.extend(interaction_targets(results, factor=factor))
    return "\n".join(lines)


def provenance_summary(results: list[InteractionResult]) -> str:
    """One line on where stored results come from: machines, commits, dates and the total wall time of the runs
    (from each result's ``provenance``; results without one are counted as such)."""
    prov = [res.provenance for res in results if res.provenance]
    missing = len(results) - len(prov)
    if not prov:
        return f"{len(results)} runs without provenance records"
    machines = sorted({p.get("machine", "?") for p in prov})
    commits = sorted({str(p.get("commit")) for p in prov})
    dates = sorted(p.get("date", "?") for p in prov)
    wall = sum(float(p.get("elapsed", p.get("wall_time", 0.0))) for p in prov)
    threads = sorted({p.get("threads") for p in prov if p.get("threads") is not None})
    text = (f"{len(prov)} runs on {'; '.join(machines)} ({'/'.join(map(str, threads))} torch thread(s)), "
            f"commit {', '.join(commits)}, {dates[0][:10]} to {dates[-1][:10]}, "
            f"{wall / 60:.0f} minutes of wall time in all")
    return text + (f"; {missing} runs without provenance" if missing else "")


def reading_notes(results: list[InteractionResult], *, factor: float = 3.0) -> list[str]:
    r"""What the benchmark table says, as sentences computed from the results (Markdown): per scheme the cases
    within ``factor`` noise floors at every time and the worst case, the backward scheme against its JKO
    iterate, the shell fractions in the sphere cases and the particle flow's change with its step."""
    notes = []
    by = best_runs(results)
    for scheme in benchmark_schemes():
        runs = [q for k, q in by.items() if k[0] == scheme]
        if not runs:
            continue
        worst = [max(q.ratio(t) for t in q.errors) for q in runs]
        good = sum(w <= factor for w in worst)
        k_bad = max(range(len(runs)), key=worst.__getitem__)
        bad = runs[k_bad]
        its = sorted({q.iterations for q in runs if q.iterations})
        setting = (f" ({'/'.join(map(str, its))} Adam iterations per step)" if its
                   else f" (step $dt = {'/'.join(format(t, 'g') for t in sorted({q.tau for q in runs}))}$)")
        notes.append(f"The {_phrase(scheme)}{setting} is within {factor:g} noise floors of $\\gamma(t)$ at every "
                     f"time in {good} of {len(runs)} cases; its worst case is $d = {bad.d}$, $r = {bad.r:g}$ "
                     f"({worst[k_bad]:.1f} floors).")
    coarse = [q for q in results if by[q.scheme, q.d, q.r].tau < q.tau
              and is_particle(q.scheme)]
    for scheme, step in sorted({(q.scheme, q.tau) for q in coarse}, key=lambda st: (_order()[st[0]], -st[1])):
        runs = [q for q in coarse if q.scheme == scheme and q.tau == step]
        worst = [max(q.ratio(t) for t in q.errors) for q in runs]
        bad = runs[max(range(len(runs)), key=worst.__getitem__)]
        notes.append(f"At the coarser step $dt = {step:g}$ the {schemes.label(scheme)} is within {factor:g} noise floors at "
                     f"every time in {sum(w <= factor for w in worst)} of {len(runs)} cases; its worst case is "
                     f"$d = {bad.d}$, $r = {bad.r:g}$ ({max(worst):.1f} floors).")
    jko = [q for q in by.values() if q.jko_errors and q.r != 1.0]      # the JKO_SCHEME's runs
    for q in sorted(jko, key=lambda q: (q.d, q.r)):
        t = max(q.errors)
        name = schemes.label(q.scheme)
        notes.append(f"{name[:1].upper() + name[1:]}, $d = {q.d}$, $r = {q.r:g}$, $t = {t:g}$: {q.ratio(t):.1f} floors from "
                     f"$\\gamma(t)$, {q.jko_errors[t].d2 / q.jko_errors[t].noise:.1f} from its JKO iterate.")
    shells = [(k, q) for k, q in by.items() if analytic.is_sphere_case(q.d, q.r) and q.shell]
    if shells:
        parts = ", ".join(f"{schemes.label(k[0])} $d={q.d}$, $r={q.r:g}$: {q.shell[max(q.shell)][0]:.2f}"
                          for k, q in sorted(shells, key=lambda kq: (kq[1].d, kq[1].r, _order()[kq[0][0]])))
        notes.append(f"Fraction of particles within 5% of $R(t)$ at the last time in the sphere cases (exact: 1): "
                     f"{parts}.")
    return notes
