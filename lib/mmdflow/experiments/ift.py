r"""The 100-dimensional Gaussian-mixture study of the IFT chapter (chapter 6): schemes, stored runs, size sweep.

The target is :func:`mmdflow.data.mixture_100d` (the official IFT code's construction), the source
:math:`N(0, I_{100})`, the kernel Gaussian with :math:`\sigma = 10` (:math:`e^{-|x-y|^2/200}`). The step sizes
follow the authors' learning rates for :math:`N = 10^4`: position step :math:`\tau_\mathrm{eff} = 2\,\mathrm{lr}/N`
with :math:`\mathrm{lr} = 10^4` at :math:`N = 10^4`, i.e. :math:`\tau = 2` (kept for every :math:`N`,
:func:`mmdflow.wfr.authors_lr_to_tau`); projected-gradient weight step :math:`\mathrm{lr}' = 10^{-3}` at
:math:`N = 10^4`, scaled by :math:`10^4/N` so that the per-step change of the weight density :math:`Nw_i` is
theirs (label :data:`IFT_LITERAL` keeps the literal :math:`10^{-3}`); KL learning rate 1; noise level 2
switched off after 4000 of 9001 iterations (the same fraction of shorter runs).

:func:`hd_schemes` gives the schemes as ``{label: (method, WFRConfig)}`` for
:func:`mmdflow.experiments.run_seeds`; :func:`run_hd` runs one (label, N, seed) and returns a :class:`HDRun`
(held-out :math:`\mathrm{MMD}^2`, effective sample size and zero-weight share along the run, the final energy
distance and :math:`\mathrm{MMD}^2` at bandwidth :data:`HD_SIGMA_ALT` against an independent sample, wall time
and provenance); :func:`run_sweep` fills a JSON file run by run (resumable);
:func:`load_results` reads the stored ones (``benchmarks/results/ift_*.json``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch

from .._checks import check_int
from ..data.mixtures import mixture_100d
from ..runtime import provenance
from ..wfr import NoiseSchedule, WFRConfig
from .seeds import run_seeds

__all__ = ["HD_SIGMA", "HD_SIGMA_ALT", "HD_TAU", "MMD_FLOW", "NOISE_AUTHORS", "NOISE_ARBEL", "IFT_WEIGHTED",
           "IFT_PURE", "IFT_LITERAL", "WFR_GD", "HD_LABELS", "hd_schemes", "HDRun", "run_hd", "run_sweep",
           "results_to_json", "results_from_json", "stored_results_path", "load_results", "finals_by_size"]

#: bandwidth of the training kernel (the authors' :math:`e^{-|x-y|^2/200}`).
HD_SIGMA = 10.0
#: bandwidth of the second, held-out Gaussian kernel (twice the training one: about the target's median distance
#: scale, so that near-by distinct points count as close).
HD_SIGMA_ALT = 20.0
#: position step :math:`\tau_\mathrm{eff} = 2\,\mathrm{lr}/N` of the authors (lr = 1e4 at N = 1e4).
HD_TAU = 2.0

MMD_FLOW = "MMD flow"
NOISE_AUTHORS = "noisy MMD flow (authors)"
NOISE_ARBEL = "noisy MMD flow (Arbel)"
IFT_WEIGHTED = "IFT, weighted step (authors)"
IFT_PURE = "IFT, pure step"
IFT_LITERAL = "IFT, weighted, lr' = 1e-3"
WFR_GD = "WFR GD (KL step, weighted)"
#: every scheme of :func:`hd_schemes`, in plotting order.
HD_LABELS = (MMD_FLOW, NOISE_AUTHORS, NOISE_ARBEL, IFT_WEIGHTED, IFT_PURE, IFT_LITERAL, WFR_GD)


def hd_schemes(n: int, n_steps: int, *, labels: Sequence[str] | None = None,
               loss_every: int | None = None) -> dict[str, tuple[str, WFRConfig]]:
    r"""The 100-d schemes at ``n`` particles and ``n_steps`` iterations, ``{label: (method, WFRConfig)}``.

    * :data:`MMD_FLOW`: the MMD flow, :math:`\tau = 2`;
    * :data:`NOISE_AUTHORS` / :data:`NOISE_ARBEL`: noisy MMD flow, level 2 until ``4000/9001`` of the run, the
      official code's update / Arbel et al.'s (:class:`mmdflow.wfr.NoiseSchedule` ``variant``);
    * :data:`IFT_WEIGHTED`: IFT with the authors' weight-scaled position step and one projected-gradient weight step,
      :math:`\mathrm{lr}' = 10^{-3}\cdot 10^4/N`; :data:`IFT_PURE`: the same with the position step of the PDE
      (``position_step="pure"``); :data:`IFT_LITERAL`: weighted, :math:`\mathrm{lr}' = 10^{-3}`;
    * :data:`WFR_GD`: weighted position step and the multiplicative KL weight step, learning rate 1.

    ``loss_every`` (default ``max(1, n_steps // 200)``): held-out loss and weight statistics every this many steps.
    """
    check_int(n, "n", 1)
    check_int(n_steps, "n_steps", 1)
    labels = HD_LABELS if labels is None else tuple(labels)
    bad = [lb for lb in labels if lb not in HD_LABELS]
    if bad:
        raise ValueError(f"unknown 100-d scheme label(s) {bad}; choose from {HD_LABELS}")
    base = dict(n_steps=n_steps, sigma=HD_SIGMA, tau=HD_TAU, n_test=n, snapshot_every=None,
                loss_every=check_int(loss_every, "loss_every", 1) if loss_every else max(1, n_steps // 200))
    off = int(n_steps * 4000 / 9001)
    lr = 1e-3 * 1e4 / n
    all_schemes = {
        MMD_FLOW: ("mmd", WFRConfig(**base)),
        NOISE_AUTHORS: ("mmd_noise", WFRConfig(**base, noise=NoiseSchedule(beta0=2.0, off_after=off,
                                                                           variant="authors"))),
        NOISE_ARBEL: ("mmd_noise", WFRConfig(**base, noise=NoiseSchedule(beta0=2.0, off_after=off, variant="arbel"))),
        IFT_WEIGHTED: ("ift", WFRConfig(**base, position_step="weighted", weight_step="pgd", pgd_lr=lr)),
        IFT_PURE: ("ift", WFRConfig(**base, position_step="pure", weight_step="pgd", pgd_lr=lr)),
        IFT_LITERAL: ("ift", WFRConfig(**base, position_step="weighted", weight_step="pgd", pgd_lr=1e-3)),
        WFR_GD: ("wfr", WFRConfig(**base, position_step="weighted", kl_lr=1.0)),
    }
    return {lb: all_schemes[lb] for lb in labels}


@dataclass(frozen=True, kw_only=True)
class HDRun:
    r"""One 100-d run (:func:`run_hd`).

    Attributes:
        label, n, seed, n_steps: the scheme (:data:`HD_LABELS`), particles, seed, iterations.
        steps, loss: iterations ``[L]`` and held-out :math:`\mathrm{MMD}^2` (training kernel) there.
        ess, zero_fraction: effective sample size and zero-weight share ``[L]`` (:func:`mmdflow.metrics.weight_statistics`).
        energy_distance, mmd2_alt: final scores against an independent sample (:func:`mmdflow.metrics.heldout_scores`,
            bandwidth :data:`HD_SIGMA_ALT`).
        wall: seconds of the run; provenance: :func:`mmdflow.runtime.provenance` of the run.
    """

    label: str
    n: int
    seed: int
    n_steps: int
    steps: list[float]
    loss: list[float]
    ess: list[float]
    zero_fraction: list[float]
    energy_distance: float
    mmd2_alt: float
    wall: float
    provenance: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int, int, int]:
        """``(label, n, seed, n_steps)``: what identifies a run in a results file."""
        return (self.label, self.n, self.seed, self.n_steps)

    @property
    def final(self) -> float:
        r"""The final held-out :math:`\mathrm{MMD}^2`."""
        return self.loss[-1]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "HDRun":
        return cls(**data)


def run_hd(label: str, n: int, seed: int, n_steps: int, *, device=None, dtype=torch.float32,
           loss_every: int | None = None) -> HDRun:
    """Run one 100-d scheme (:func:`hd_schemes`) for one seed with :func:`mmdflow.experiments.run_seeds`
    (initial particles :math:`N(0, I)` of the seed, held-out sample of ``n`` points, second scores at
    :data:`HD_SIGMA_ALT`)."""
    schemes = hd_schemes(n, n_steps, labels=[label], loss_every=loss_every)
    r = run_seeds(schemes, mixture_100d(), [seed], n, n_test=n, center=[0.0] * 100, dtype=dtype, device=device,
                  sigma_alt=HD_SIGMA_ALT)[label]
    wall = float(r.wall[0])
    return HDRun(label=label, n=n, seed=seed, n_steps=n_steps, steps=r.steps.tolist(), loss=r.loss[0].tolist(),
                 ess=r.ess[0].tolist(), zero_fraction=r.zero_fraction[0].tolist(),
                 energy_distance=float(r.energy_distance[0]), mmd2_alt=float(r.mmd2_alt[0]), wall=wall,
                 provenance=provenance(wall_time=wall))


def results_to_json(runs: Iterable[HDRun]) -> list[dict]:
    """Runs as JSON-ready dicts."""
    return [r.to_json() for r in runs]


def results_from_json(data: list[dict]) -> list[HDRun]:
    """Inverse of :func:`results_to_json`."""
    return [HDRun.from_json(d) for d in data]


def _store(path: Path, run: HDRun) -> list[HDRun]:
    runs = results_from_json(json.loads(path.read_text())) if path.exists() else []
    runs = [r for r in runs if r.key != run.key] + [run]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results_to_json(runs), indent=0))
    tmp.replace(path)
    return runs


def run_sweep(sizes: Mapping[int, Sequence[int]], n_steps: int, labels_by_size: Mapping[int, Sequence[str]], *,
              out: str | os.PathLike, device=None, dtype=torch.float32, log=None) -> list[HDRun]:
    """Run every ``(label, N, seed)`` of ``labels_by_size[N] x sizes[N]`` (``sizes``: ``{N: seeds}``) that ``out``
    does not hold yet, storing each run in the JSON file ``out`` as soon as it ends (so an interrupted sweep
    resumes). Returns the runs of ``out`` for these keys. ``log``: ``print``-like, called after every run."""
    out = Path(out)
    done = {r.key for r in (results_from_json(json.loads(out.read_text())) if out.exists() else [])}
    for n, seeds in sizes.items():
        for seed in seeds:
            for label in labels_by_size[n]:
                if (label, n, seed, n_steps) in done:
                    continue
                run = run_hd(label, n, seed, n_steps, device=device, dtype=dtype)
                _store(out, run)
                if log is not None:
                    log(f"N={n} seed={seed} {label}: final MMD^2 {run.final:.4g}, ESS {run.ess[-1]:.0f}, "
                        f"{run.wall:.0f} s")
    keys = {(lb, n, s, n_steps) for n, seeds in sizes.items() for s in seeds for lb in labels_by_size[n]}
    return [r for r in results_from_json(json.loads(out.read_text())) if r.key in keys] if out.exists() else []


def stored_results_path(name: str) -> Path:
    """``benchmarks/results/<name>``: under ``$MMDFLOW_RESULTS`` when set, else in the first ``benchmarks/results``
    folder found from the working directory upward (a chapter runs in ``notebooks/`` or in the folder of its
    executed copy)."""
    env = os.environ.get("MMDFLOW_RESULTS")
    if env:
        path = Path(env) / name
    else:
        here = Path.cwd().resolve()
        found = [p / "benchmarks" / "results" / name for p in (here, *here.parents)
                 if (p / "benchmarks" / "results" / name).exists()]
        path = found[0] if found else Path("benchmarks") / "results" / name
    if not path.exists():
        raise FileNotFoundError(f"stored 100-d results {name!r} not found (looked in $MMDFLOW_RESULTS and in "
                                f"benchmarks/results from {Path.cwd()} upward); run benchmarks/bench_ift.py")
    return path


def load_results(name: str = "ift_100d_book.json") -> list[HDRun]:
    """The stored runs (:func:`stored_results_path`) as :class:`HDRun` objects."""
    return results_from_json(json.loads(stored_results_path(name).read_text()))


def finals_by_size(runs: Iterable[HDRun], n_steps: int | None = None) -> dict[str, dict[int, list[float]]]:
    r"""``{label: {N: [final held-out MMD^2 per seed, by seed]}}`` (runs with ``n_steps`` iterations, if given),
    labels in the order of :data:`HD_LABELS`, sizes increasing."""
    out: dict[str, dict[int, list[tuple[int, float]]]] = {}
    for r in runs:
        if n_steps is None or r.n_steps == n_steps:
            out.setdefault(r.label, {}).setdefault(r.n, []).append((r.seed, r.final))
    return {lb: {n: [v for _, v in sorted(out[lb][n])] for n in sorted(out[lb])} for lb in HD_LABELS if lb in out}
