"""Running the schemes of Altekrüger et al. (2023) on one functional, as the target chapters do.

* :class:`SchemeSettings` -- the settings of one experiment (frozen, validated), with a :class:`NeuralSchedule`
  per neural scheme,
* :func:`run_schemes` -- every registered scheme of the families ``"neural"`` and ``"particle"``
  (:func:`mmdflow.schemes.scheme_names`) with those settings, each built and run through its registry record,
* :func:`run_in_segments` / :func:`concat_trajectories` -- a run made of constant-step segments
  (the paper's MNIST step schedule), joined into one :class:`~mmdflow.trajectory.Trajectory`,
* :func:`format_runs` -- a one-line summary per scheme,
* :data:`PAPER_IMAGE_TARGETS` / :func:`image_target_sampler` -- the paper's two image targets (Fig. 1 and
  App. F, Ex. 1) as the chapters and the stored runs build them,
* :func:`load_paper_images` -- the stored runs of ``benchmarks/run_paper_images.py``.

Schemes are named by their registry names (``"neural_backward"``, ``"neural_forward"``, ``"particle_flow"``, ...)
everywhere: arguments, the keys of the results, the records and the stored results; the text shown on a page is
:func:`mmdflow.schemes.label` / :func:`~mmdflow.schemes.short_label` of the name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, NamedTuple, Sequence

import torch

from .. import data, flows
from .. import schemes as _registry
from .._checks import check_int, check_positive
from ..energies import DiscrepancyEnergy
from ..kernels import Riesz
from ..trajectory import Trajectory

__all__ = ["NeuralSchedule", "SchemeSettings", "run_schemes", "run_in_segments", "concat_trajectories", "format_runs",
           "dirac_starts", "target_energies", "run_target", "run_neural_segments", "run_particle_segments", "rescore",
           "TargetScores", "target_scores", "ImageTarget", "PAPER_IMAGE_TARGETS", "image_target_sampler",
           "neural_config", "particle_config", "load_paper_images",
           "load_paper_particles"]

_SCHEDULE_FIELDS = ("tau", "iterations", "iterations_start", "batch_size", "batch1")


@dataclass(frozen=True, kw_only=True)
class NeuralSchedule:
    """Time step, Adam iterations and batches of one neural scheme (the names of its config).

    Attributes:
        tau: the time step.
        iterations: Adam iterations per step from ``start_time`` on (see :class:`SchemeSettings`).
        iterations_start: Adam iterations per step before ``start_time`` (``None``: ``iterations``).
        batch_size: the training batch (``batch_size`` of :class:`~mmdflow.neural.NeuralBackwardConfig` and
            :class:`~mmdflow.neural.NeuralForwardConfig`).
        batch1: the batch of the step's descent rate, for a scheme whose config has one (``batch1`` of
            :class:`~mmdflow.neural.NeuralForwardConfig`; ``None``: all particles).
    """

    tau: float
    iterations: int
    iterations_start: int | None = None
    batch_size: int
    batch1: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "tau", check_positive(self.tau, "tau"))
        check_int(self.iterations, "iterations", 1)
        check_int(self.batch_size, "batch_size", 1)
        if self.iterations_start is not None:
            check_int(self.iterations_start, "iterations_start", 1)
        if self.batch1 is not None:
            check_int(self.batch1, "batch1", 1)

    @classmethod
    def of(cls, value, name: str = "schedule") -> "NeuralSchedule":
        """A schedule from itself or a dict of its fields (as written in a chapter's parameters cell)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - set(_SCHEDULE_FIELDS)
            if unknown:
                raise ValueError(f"{name} has unknown fields {sorted(unknown)}; known: {', '.join(_SCHEDULE_FIELDS)}")
            return cls(**value)
        raise TypeError(f"{name} must be a NeuralSchedule or a dict(tau=..., iterations=..., iterations_start=..., "
                        f"batch_size=..., batch1=...), got {value!r}")


@dataclass(frozen=True, kw_only=True)
class SchemeSettings:
    """Settings of one experiment for the neural and particle schemes.

    Attributes:
        n: number of particles (and of target samples where the target is sampled).
        t_end: final time of every scheme.
        width, hidden_layers, lr: the networks of the neural schemes and their Adam step.
        neural: ``{scheme name: NeuralSchedule}`` (or a dict of its fields) for each neural scheme
            (family ``"neural"`` of :mod:`mmdflow.schemes`): its step, Adam iterations and batches.
        pf_tau: step of the (explicit) particle schemes (family ``"particle"``).
        snap_dt: time between snapshots.
        smoothing: blur of the target image in pixels (image targets only).
        start_time: time up to which the neural schemes use the first iteration count.
    """

    n: int
    t_end: float
    width: int
    hidden_layers: int
    lr: float
    neural: Mapping[str, NeuralSchedule]
    pf_tau: float
    snap_dt: float
    smoothing: float | None = None
    start_time: float = 1.0

    def __post_init__(self):
        for name in ("n", "width", "hidden_layers"):
            check_int(getattr(self, name), name, 1)
        for name in ("t_end", "lr", "pf_tau", "snap_dt", "start_time"):
            check_positive(getattr(self, name), name)
        if not isinstance(self.neural, Mapping):
            raise TypeError(f"neural must be a dict {{scheme name: NeuralSchedule}}, got {self.neural!r}")
        for name in self.neural:
            _registry.require(name, "neural", where="SchemeSettings.neural")
        object.__setattr__(self, "neural", {name: NeuralSchedule.of(s, f"neural[{name!r}]")
                                            for name, s in self.neural.items()})

    def schedule(self, name: str) -> NeuralSchedule:
        """The :class:`NeuralSchedule` of the neural scheme ``name`` (refused, naming the ones given, if none)."""
        if name not in self.neural:
            raise ValueError(f"the settings have no schedule for the neural scheme {name!r}; "
                             f"given: {list(self.neural)}")
        return self.neural[name]


def _n_steps(t_end: float, tau: float, what: str) -> int:
    k = round(t_end / tau)
    if k < 1 or abs(k * tau - t_end) > 1e-9 * max(1.0, t_end):
        raise ValueError(f"{what}: the end time {t_end!r} is not a positive multiple of the step tau={tau!r}")
    return k


def neural_config(name: str, schedule: NeuralSchedule | dict, *, n_particles: int, **settings):
    """The config of the neural scheme ``name``, built by its registry factory from ``settings`` (``tau``,
    ``n_steps``, ``width``, ``hidden_layers``, ``lr``, ``start_time``, ``snapshot_every``, ...) and the schedule's
    iterations and batches; ``batch1`` (the schedule's, or ``n_particles`` when it gives none) goes to a config
    that has that field, and a ``batch1`` for a config without one is refused.

    Args:
        name: a registered scheme of the family ``"neural"``.
        schedule: its :class:`NeuralSchedule` (or a dict of its fields).
        n_particles: the number of particles (the default ``batch1``).
        settings: the other config fields.

    Returns:
        The config.
    """
    scheme = _registry.require(name, "neural", where="neural_config")
    sched = NeuralSchedule.of(schedule, f"schedule of {name!r}")
    extra = dict(iterations=sched.iterations, iterations_start=sched.iterations_start, batch_size=sched.batch_size)
    if "batch1" in scheme.config_fields:
        extra["batch1"] = sched.batch1 or n_particles
    elif sched.batch1 is not None:
        raise ValueError(f"the schedule of {name!r} gives batch1={sched.batch1!r}, but its config has no batch1")
    return scheme.config(**settings, **extra)


def particle_config(name: str, *, tau: float, n_steps: int, snapshot_every: int):
    """The config of the particle scheme ``name`` (family ``"particle"``), built by its registry factory."""
    return _registry.require(name, "particle", where="particle_config").config(tau=tau, n_steps=n_steps,
                                                                snapshot_every=snapshot_every)


def run_schemes(energy, x0_neural: torch.Tensor, x0_particles: torch.Tensor, settings: SchemeSettings, *,
                energy_particles=None, seed: int = 0, checkpoint_dir=None, name: str | None = None,
                schemes: Sequence[str] | None = None) -> dict[str, Trajectory]:
    """Run the neural and particle schemes on one functional, each through its registry record.

    A scheme of the family ``"neural"`` gets its :class:`NeuralSchedule` from ``settings.neural``, starts at
    ``x0_neural`` with a generator seeded ``seed`` and checkpoints; one of the family ``"particle"`` takes the step
    ``settings.pf_tau`` from ``x0_particles`` on ``energy_particles``.

    Args:
        energy: the functional (needs ``batch_estimate``, ``batch_directional_derivative``, ``gradient``, ``value``).
        x0_neural: ``[N, d]`` start of the neural schemes (exact Diracs are fine).
        x0_particles: ``[N, d]`` start of the particle schemes (perturbed Diracs: coinciding particles feel no force).
        settings: the experiment's :class:`SchemeSettings`.
        energy_particles: the functional for the particle schemes (e.g. with a float64 target); default ``energy``.
        seed: seed of each neural scheme's generator (weights, batches, latents).
        checkpoint_dir: folder for the neural schemes' checkpoints (``<dir>/<name>/<scheme>``); ``None`` = none.
        name: the experiment's name (its checkpoint subfolder).
        schemes: registry names of the schemes to run; ``None``: every registered scheme of the families
            ``"neural"`` and ``"particle"`` (:func:`mmdflow.schemes.scheme_names`), in display order.

    Returns:
        ``{scheme name: Trajectory}`` in the order of ``schemes``.
    """
    names = _registry.scheme_names("neural", "particle") if schemes is None else list(schemes)
    for scheme in names:
        _registry.require(scheme, "neural", "particle", where="run_schemes")
    runs = {}
    for scheme in names:
        record = _registry.get_scheme(scheme)
        if record.family == "particle":
            cfg = particle_config(scheme, tau=settings.pf_tau, n_steps=_n_steps(settings.t_end, settings.pf_tau, scheme),
                                  snapshot_every=max(1, round(settings.snap_dt / settings.pf_tau)))
            runs[scheme] = record.run(energy_particles or energy, x0_particles, cfg, progress=False)
            continue
        sched = settings.schedule(scheme)
        cfg = neural_config(scheme, sched, n_particles=x0_neural.shape[0], tau=sched.tau,
                            n_steps=_n_steps(settings.t_end, sched.tau, scheme), width=settings.width,
                            hidden_layers=settings.hidden_layers, lr=settings.lr, start_time=settings.start_time,
                            snapshot_every=max(1, round(settings.snap_dt / sched.tau)))
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / _slug(name or "") / _slug(scheme)
        gen = torch.Generator(device=x0_neural.device).manual_seed(seed)
        runs[scheme] = record.run(energy, x0_neural, cfg, generator=gen, checkpoint_dir=ckpt, progress=False)
    return runs


def _slug(text: str) -> str:
    return text.replace(" ", "_").replace(".", "")


def dirac_starts(centers, n: int, *, seed: int = 0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Starts of the neural and particle schemes at ``k`` Diracs: ``n`` particles split in ``k`` blocks.

    Returns ``(x0_neural, x0_particles)``: exact Diracs ``[n, d]`` (float32, on ``device``; the neural schemes split
    them in their first step) and the same Diracs perturbed by ``1e-9`` (float64, CPU; coinciding particles feel
    no force), see :func:`mmdflow.flows.perturbed_dirac`.
    """
    centers = torch.as_tensor(centers, dtype=torch.float64)
    x0 = flows.perturbed_dirac(n, centers.shape[1], centers=centers, scale=0.0, dtype=torch.float32, device=device,
                               generator=torch.Generator().manual_seed(seed))
    x0_pf = flows.perturbed_dirac(n, centers.shape[1], centers=centers, generator=torch.Generator().manual_seed(seed))
    return x0, x0_pf


def target_energies(target: torch.Tensor, *, backend="auto", r: float = 1.0):
    r""":math:`\mathcal D_K^2(\cdot, \nu)` for the Riesz kernel and an empirical target ``[M, d]``, twice: with the
    target as given (the neural schemes) and in float64 (the particle flow). ``backend`` goes to both."""
    return (DiscrepancyEnergy(Riesz(r), target, backend=backend),
            DiscrepancyEnergy(Riesz(r), target.double(), backend=backend))


def run_target(name: str, target: torch.Tensor, centers, settings: SchemeSettings, *, backend="auto", seed: int = 0,
               checkpoint_dir=None, device=None, schemes: Sequence[str] | None = None) -> dict[str, Trajectory]:
    r"""The neural and particle schemes from Diracs at ``centers`` toward an empirical target ``[M, d]``, for
    :math:`\mathcal D_K^2(\cdot, \nu)` with the Riesz kernel ``r = 1`` (chapter 4): :func:`dirac_starts`,
    :func:`target_energies` and :func:`run_schemes` (checkpoints under ``<checkpoint_dir>/<name>``; ``schemes``:
    registry names, ``None`` for all of the families ``"neural"`` and ``"particle"``)."""
    x0, x0_pf = dirac_starts(centers, settings.n, seed=seed, device=device)
    e32, e64 = target_energies(target, backend=backend)
    return run_schemes(e32, x0, x0_pf, settings, energy_particles=e64, seed=seed, checkpoint_dir=checkpoint_dir,
                       name=name, schemes=schemes)


def rescore(runs: dict[str, Trajectory], energy) -> dict[str, Trajectory]:
    """The runs with ``energies`` recomputed by ``energy.value`` at every snapshot (e.g. exact values for a
    sliced particle flow, which records estimates)."""
    def values(tr):
        with torch.no_grad():
            return torch.tensor([float(energy.value(p.to(energy.target))) for p in tr.positions], dtype=torch.float64)

    return {k: tr._replace(energies=values(tr)) for k, tr in runs.items()}


def concat_trajectories(parts: Sequence[Trajectory], scheme: str = "") -> Trajectory:
    """Join consecutive runs (each starting where the previous ended) into one trajectory.

    The times of each part are shifted by the end time of the previous parts; the first snapshot of every
    part after the first (a repeat of the previous part's last one) is dropped.
    """
    if not parts:
        raise ValueError("concat_trajectories needs at least one trajectory")
    times, pos, en, offset = [parts[0].times], [parts[0].positions], [parts[0].energies], float(parts[0].times[-1])
    for tr in parts[1:]:
        times.append(tr.times[1:] + offset)
        pos.append(tr.positions[1:].to(pos[0]))
        en.append(tr.energies[1:].to(en[0]))
        offset += float(tr.times[-1])
    return Trajectory(torch.cat(times), torch.cat(pos), torch.cat(en), wall_time=sum(p.wall_time for p in parts),
                      info={"scheme": scheme, "segments": len(parts)})


def run_in_segments(run_segment: Callable[[int, float, int, torch.Tensor], Trajectory], x0: torch.Tensor,
                    segments: Sequence[tuple[float, float]], *, scheme: str = "") -> Trajectory:
    """Run a scheme through constant-step segments ``[(tau, t_end), ...]`` and join the results.

    Args:
        run_segment: ``run_segment(k, tau, n_steps, x) -> Trajectory`` runs segment ``k`` from positions ``x``.
        x0: the start ``[N, d]``.
        segments: ``(tau, end time)`` pairs with increasing end times.
    """
    x, t0, parts = x0, 0.0, []
    for k, (tau, t_end) in enumerate(segments):
        tau = check_positive(tau, f"segments[{k}] tau")
        n_steps = round((t_end - t0) / tau)
        if n_steps < 1:
            raise ValueError(f"segment {k} ends at t={t_end!r}, not after its start t={t0!r} plus one step {tau!r}")
        parts.append(run_segment(k, tau, n_steps, x))
        x, t0 = parts[-1].positions[-1], t_end
    return concat_trajectories(parts, scheme)


def format_runs(runs: dict[str, Trajectory], name: str = "", value: str = "final value") -> str:
    """One line per scheme: experiment, scheme (its label), final time, final value of the functional, wall time."""
    return "\n".join(f"{name:>12} | {_registry.label(scheme):<15} | t = {float(tr.times[-1]):g} | {value} "
                     f"{float(tr.energies[-1]):.3e} | {tr.wall_time:6.1f} s" for scheme, tr in runs.items())


def run_neural_segments(scheme: str, energy, x0: torch.Tensor, segments: Sequence[tuple[float, float]], *,
                        schedule: NeuralSchedule | dict, width: int, hidden_layers: int, lr: float, seed: int = 0,
                        checkpoint_dir=None, snapshots_per_segment: int = 40) -> Trajectory:
    """A neural scheme (a registry name of the family ``"neural"``, e.g. ``"neural_backward"``) through
    constant-step segments.

    Each segment ``(tau, end time)`` is one run with a fresh network (seeded ``seed + k``), whose first step gets
    ``schedule.iterations_start`` Adam iterations and later steps ``schedule.iterations``, with the schedule's
    batches (:func:`neural_config`; ``schedule.tau`` is not used: the segments give the steps, and a dict may
    leave it out); about ``snapshots_per_segment`` snapshots per segment; checkpoints in
    ``<checkpoint_dir>/<scheme>/segment<k>`` (the paper's MNIST schedule, chapter 5).
    """
    record = _registry.require(scheme, "neural", where="run_neural_segments")
    sched = NeuralSchedule.of(dict(schedule, tau=1.0) if isinstance(schedule, dict) and "tau" not in schedule
                              else schedule, "schedule")

    def segment(k, tau, n_steps, x):
        cfg = neural_config(scheme, sched, n_particles=x.shape[0], tau=tau, n_steps=n_steps, start_time=tau / 2,
                            snapshot_every=max(1, n_steps // snapshots_per_segment), width=width,
                            hidden_layers=hidden_layers, lr=lr)
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / _slug(scheme) / f"segment{k}"
        gen = torch.Generator(device=x.device).manual_seed(seed + k)
        return record.run(energy, x, cfg, generator=gen, checkpoint_dir=ckpt, progress=False)

    return run_in_segments(segment, x0, segments, scheme=scheme)


def run_particle_segments(energy, x0: torch.Tensor, segments: Sequence[tuple[float, float]], *,
                          scheme: str = "particle_flow", snapshots_per_segment: int = 40) -> Trajectory:
    """A particle scheme (a registry name of the family ``"particle"``) through constant-step segments
    ``(tau, end time)`` (about ``snapshots_per_segment`` snapshots each)."""
    record = _registry.require(scheme, "particle", where="run_particle_segments")

    def segment(k, tau, n_steps, x):
        return record.run(energy, x, particle_config(scheme, tau=tau, n_steps=n_steps,
                                                     snapshot_every=max(1, n_steps // snapshots_per_segment)),
                          progress=False)

    return run_in_segments(segment, x0, segments, scheme=scheme)


class TargetScores(NamedTuple):
    r"""Final particles of each scheme scored against the training target and against a fresh sample.

    Attributes:
        train: ``{scheme name: D_K^2(final particles, training target)}``.
        held_out: ``{scheme name: D_K^2(final particles, held-out sample)}``.
        floor: median :math:`\mathcal D_K^2` between ``n`` fresh i.i.d. samples of the target density and the
            held-out sample (``n`` = the number of particles): what a perfect sampler of the density scores (the
            median, because the law of this statistic has a long right tail: a few samples with several points in
            the faint background score far above the rest).
        floor_low, floor_high: its quartiles over the repeats; n_held_out: size of the held-out sample.
    """

    train: dict
    held_out: dict
    floor: float
    floor_low: float
    floor_high: float
    n_held_out: int


def target_scores(runs: dict[str, Trajectory], target: torch.Tensor, held_out: torch.Tensor,
                  sample: Callable[[int, torch.Generator], torch.Tensor], *, repeats: int = 5,
                  seed: int = 0) -> TargetScores:
    r""":math:`\mathcal D_K^2` (Riesz ``r = 1``) of each run's final particles to the training ``target`` ``[M, d]``
    and to a fresh ``held_out`` sample ``[H, d]`` of the same density, with the two-sample floor of the latter.

    :math:`\mathcal D_K^2` to the training samples rewards copying them (a flow of ``N = M`` particles can end
    far below what any sampler of the density reaches); against a held-out sample the best possible score is
    the floor, the median of :math:`\mathcal D_K^2(\hat\nu_N, \hat\nu_H)` over ``N`` i.i.d. samples, estimated from
    ``repeats`` draws of ``sample(N, generator)`` (generators seeded ``seed, seed + 1, ...``). Exact sums in
    float64 (blocked backend).
    """
    check_int(repeats, "repeats", 1)
    h = held_out.detach().double().cpu()
    e_train = DiscrepancyEnergy(Riesz(1.0), target.detach().double().cpu(), backend="blocked")
    e_held = DiscrepancyEnergy(Riesz(1.0), h, backend="blocked")
    train, held, n = {}, {}, None
    with torch.no_grad():
        for scheme, tr in runs.items():
            x = tr.positions[-1].detach().double().cpu()
            n = x.shape[0]
            train[scheme] = float(e_train.value(x))
            held[scheme] = float(e_held.value(x))
        floors = torch.tensor([float(e_held.value(sample(n, torch.Generator().manual_seed(seed + k)).double().cpu()))
                               for k in range(repeats)], dtype=torch.float64)
    q = torch.quantile(floors, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return TargetScores(train, held, float(q[1]), float(q[0]), float(q[2]), h.shape[0])


class ImageTarget(NamedTuple):
    """One of the paper's image experiments: the picture, how it becomes a density, where the Diracs start.

    Attributes:
        image: a key of :data:`mmdflow.data.PAPER_IMAGES`; size: long side in pixels after resampling (the authors
            use 100 x 100).
        smoothing, halos, halo_weight, background: the density (:func:`mmdflow.data.image_to_density`; the
            authors' ``gauss_sigma`` and their halo of blurs 10, 20, 50 pixels at weight 0.01, no uniform floor).
        centers: the two Diracs of the start, each with half of the particles.
        n_paper, t_end_paper, tau_paper: the paper's particle count, end time and neural time step.
        lim: plot box ``(x0, x1, y0, y1)`` (the authors' figures).
    """

    image: str
    size: int
    smoothing: float
    halos: tuple
    halo_weight: float
    background: float
    centers: tuple
    n_paper: int
    t_end_paper: float
    tau_paper: float
    lim: tuple


#: the image experiments of Altekrüger et al. (2023): Fig. 1 / Sec. 6.2 and App. F, Ex. 1.
PAPER_IMAGE_TARGETS = {
    "max_und_moritz": ImageTarget(image="max_und_moritz", size=100, smoothing=0.1, halos=(10.0, 20.0, 50.0),
                                  halo_weight=0.01, background=0.0, centers=((-0.5, 0.0), (0.5, 0.0)), n_paper=6000,
                                  t_end_paper=100.0, tau_paper=0.5, lim=(-0.62, 0.62, -0.48, 0.48)),
    "smiley": ImageTarget(image="smiley", size=100, smoothing=2.0, halos=(10.0, 20.0, 50.0), halo_weight=0.01,
                          background=0.0, centers=((-1.0, 0.0), (1.0, 0.0)), n_paper=2000, t_end_paper=50.0,
                          tau_paper=0.1, lim=(-1.1, 1.1, -0.6, 0.6)),
}


def image_target_sampler(target: ImageTarget | str, image=None) -> Callable[[int, torch.Generator], torch.Tensor]:
    """``sample(n, generator) -> [n, 2]`` float32 samples of an image target's density (``image``: a path or grey
    levels to use instead of the paper's picture, e.g. the reader's own, resampled to the same long side)."""
    t = PAPER_IMAGE_TARGETS[target] if isinstance(target, str) else target
    grey = data.paper_image(t.image, t.size) if image is None else data.resize_grey(image, t.size)
    density = dict(smoothing=t.smoothing, halos=t.halos, halo_weight=t.halo_weight, background=t.background)
    data.image_to_density(grey, **density)          # refuses pictures without a picture here, not mid-chapter

    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        return data.image_to_samples(grey, n, generator=generator, **density)

    return sample


def load_paper_images(path) -> dict:
    """The stored results of ``benchmarks/run_paper_images.py`` (``paper_images*.json``) with their scheme names
    checked: the keys of ``runs[<target>]`` and ``ex3`` are ``"<registry name>"`` or ``"<registry name>, <variant>"``
    and every ``scheme`` field a registry name; a file written with other names (e.g. the labels "neural
    backward") is refused with a ``ValueError`` naming it.

    Args:
        path: the JSON file.

    Returns:
        The parsed data ``{"runs": {target: {key: run}}, "sweep": [run, ...], ...}``.
    """
    path = Path(path)
    stored = json.loads(path.read_text())
    where = f"stored results {str(path)!r}"
    keys = [k for runs in stored.get("runs", {}).values() for k in runs] + list(stored.get("ex3", {}))
    _registry.check_names([k.split(",")[0] for k in keys], where)
    entries = list(stored.get("sweep", [])) + list(stored.get("ex3", {}).values())
    _registry.check_names([e["scheme"] for e in entries if "scheme" in e], where)
    return stored


def load_paper_particles(path) -> dict:
    """The particles stored beside :func:`load_paper_images`' results (``torch.load``): ``{target: {key:
    {time: [N, 2]}}}`` (or ``{"ex3": {key: [N, 2]}}``), with the scheme names of the keys checked as there."""
    path = Path(path)
    parts = torch.load(path)
    keys = [k for v in parts.values() if isinstance(v, dict) for k in v]
    _registry.check_names([k.split(",")[0] for k in keys], f"stored particles {str(path)!r}")
    return parts
