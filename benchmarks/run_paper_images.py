"""The image experiments of Altekrüger et al. (2023) at the paper's particle counts, run once and stored.

Chapter 4 renders what this script stores; it does not rerun it. Two parts, each resumable (finished entries are
skipped; the neural schemes checkpoint every step under ``build/checkpoints/paper_images``):

* ``--runs``: the three schemes (neural backward NB, neural forward NF, particle flow PF) toward "Max und Moritz"
  (Fig. 1, Sec. 6.2) with the paper's 6000 particles, from two Diracs at (-1/2, 0) and (1/2, 0) to t = 100.
  Stored per scheme: the settings, the curve of :math:`\\mathcal D_K^2` to the training target, the final
  :math:`\\mathcal D_K^2`, the held-out score against a fresh sample and the two-sample floor, the wall time, and
  the particles at a few times (float16, for the figures).
* ``--sweep``: final :math:`\\mathcal D_K^2` of the neural schemes against Adam iterations per step and against the
  time step tau, on the smiley (App. F, Ex. 1) with its paper count of 2000 particles, to a shorter end time
  (``--sweep-t-end``): the measurements behind the chapter's choice of settings.

* ``--ex3``: the functional of App. F, Ex. 3 (no target; the paper gives no settings): the neural backward scheme
  at its chapter setting and with more Adam iterations per step and a smaller step, next to the neural forward
  scheme and the particle flow, to tell under-training from the scheme itself (where the chapter's neural backward
  run ends in clumps and lines). Stored: the final value, the share of the particles in the fullest cell of a
  0.02 x 0.02 grid (clumps), the spread of :math:`x_2` right of the axis (the fan), the final particles.

Output: ``benchmarks/results/paper_images.json`` (the runs; ``paper_images_nb.json`` a neural backward variant,
``--nb-variant``, and ``paper_images_nf.json`` a neural forward one, ``--nf-variant``), ``paper_images_sweep.json`` (the sweep), with
provenance per entry, and ``paper_images_particles.pt`` (snapshots of the runs). Schemes are named by their registry
names (:mod:`mmdflow.schemes`): the key of a run is the name, or the name and its variant
(``"neural_backward, tau 0.5"``), and so is every ``scheme`` field (checked on loading,
:func:`mmdflow.experiments.targets.load_paper_images`).

    python benchmarks/run_paper_images.py --runs --sweep
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from mmdflow import experiments
from mmdflow.schemes import scheme_names
from mmdflow.experiments.targets import PAPER_IMAGE_TARGETS, image_target_sampler
from mmdflow.runtime import provenance

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SNAP_TIMES = (0.0, 2.0, 4.0, 16.0, 32.0, 100.0)

#: the stored runs at the paper's particle count (one entry per scheme; ``None``: particle flow).
MM_SETTINGS = dict(n=6000, t_end=100.0, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.2, snap_dt=2.0,
                   neural={"neural_backward": dict(tau=2.0, iterations_start=400, iterations=60, batch_size=1000),
                           "neural_forward": dict(tau=1.0, iterations_start=400, iterations=30, batch_size=1000,
                                                  batch1=2000)})

#: the sweep on the smiley (2000 particles): (scheme, tau, iterations per step)
SWEEP = [(scheme, tau, its) for scheme in ("neural_backward", "neural_forward")
         for tau, its in ((1.0, 20), (1.0, 50), (1.0, 100), (0.5, 50), (2.0, 50))]


def _load(path: Path) -> dict:
    return experiments.targets.load_paper_images(path) if path.exists() else {"runs": {}, "sweep": []}


def _load_particles(path: Path) -> dict:
    return experiments.targets.load_paper_particles(path) if path.exists() else {}


def _checkpoints(smoke: bool) -> Path:
    return Path("/tmp/paper_images_smoke_ckpt") if smoke else ROOT / "build" / "checkpoints" / "paper_images"


def _save(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _snapshots(tr, times) -> dict:
    out = {}
    for t in times:
        k = int(torch.argmin((tr.times - t).abs()))
        out[f"{float(tr.times[k]):g}"] = tr.positions[k].to(torch.float16).clone()
    return out


def run_stored(out: Path, particles_out: Path, seed: int, schemes=None, label: str = "") -> None:
    data = _load(out)
    target = PAPER_IMAGE_TARGETS["max_und_moritz"]
    sample = image_target_sampler(target)
    s = experiments.SchemeSettings(**MM_SETTINGS)
    y = sample(s.n, torch.Generator().manual_seed(seed + 1))
    held = sample(2000, torch.Generator().manual_seed(seed + 100))
    for scheme in schemes or scheme_names("neural", "particle"):
        key = scheme + label
        data = _load(out)                      # another variant may have been stored meanwhile
        if key in data["runs"].get("max_und_moritz", {}):
            print(f"max_und_moritz / {scheme}: stored, skipped", flush=True)
            continue
        t0 = time.perf_counter()
        x0, x0_pf = experiments.dirac_starts(target.centers, s.n, seed=seed)
        e32, e64 = experiments.target_energies(y, backend="blocked")
        runs = experiments.run_schemes(e32, x0, x0_pf, s, energy_particles=e64, seed=seed,
                                       checkpoint_dir=_checkpoints(s.n < 1000),
                                       name="max_und_moritz" + label.replace(" ", "").replace(",", "_"),
                                       schemes=(scheme,))
        tr = runs[scheme]
        sc = experiments.target_scores(runs, y, held, sample, repeats=10, seed=seed + 200)
        sched = s.neural.get(scheme)           # None: a particle scheme
        entry = {"n": s.n, "n_target": s.n, "t_end": float(tr.times[-1]),
                 "tau": s.pf_tau if sched is None else sched.tau,
                 "iterations": None if sched is None else sched.iterations,
                 "iterations_start": None if sched is None else sched.iterations_start,
                 "batch": None if sched is None else sched.batch_size,
                 "network": None if sched is None else f"{s.width} x {s.hidden_layers}, Adam lr {s.lr:g}",
                 "times": tr.times.tolist(), "energies": tr.energies.tolist(),
                 "final_dk2": float(tr.energies[-1]), "train": sc.train[scheme], "held_out": sc.held_out[scheme],
                 "floor": sc.floor, "floor_low": sc.floor_low, "floor_high": sc.floor_high,
                 "n_held_out": sc.n_held_out, "wall_time": tr.wall_time,
                 "provenance": provenance(wall_time=time.perf_counter() - t0, load=os.getloadavg()[0])}
        data = _load(out)
        parts = _load_particles(particles_out)
        data["runs"].setdefault("max_und_moritz", {})[key] = entry
        parts.setdefault("max_und_moritz", {})[key] = _snapshots(tr, SNAP_TIMES)
        parts["max_und_moritz_target"] = y.to(torch.float16)
        torch.save(parts, particles_out)
        _save(out, data)
        print(f"max_und_moritz / {key}: D_K^2 {entry['final_dk2']:.3e}, held-out {entry['held_out']:.3e} "
              f"(floor {entry['floor']:.3e}), {entry['wall_time']:.0f} s", flush=True)


def run_sweep(out: Path, seed: int, t_end: float) -> None:
    data = _load(out)
    sample = image_target_sampler("smiley")
    target = PAPER_IMAGE_TARGETS["smiley"]
    n = target.n_paper
    y = sample(n, torch.Generator().manual_seed(seed + 2))
    done = {(e["scheme"], e["tau"], e["iterations"], e["t_end"]) for e in data["sweep"]}
    for scheme, tau, its in SWEEP:
        if (scheme, tau, its, t_end) in done:
            continue
        sched = dict(tau=tau, iterations_start=200, iterations=its, batch_size=1000)
        s = experiments.SchemeSettings(n=n, t_end=t_end, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.2,
                                       snap_dt=t_end / 10, neural={"neural_backward": sched,
                                                                   "neural_forward": dict(sched, batch1=2000)})
        x0, x0_pf = experiments.dirac_starts(target.centers, n, seed=seed)
        e32, e64 = experiments.target_energies(y, backend="blocked")
        t0 = time.perf_counter()
        tr = experiments.run_schemes(e32, x0, x0_pf, s, energy_particles=e64, seed=seed, schemes=(scheme,))[scheme]
        entry = {"scheme": scheme, "tau": tau, "iterations": its, "iterations_start": 200, "batch": 1000, "n": n,
                 "t_end": t_end, "final_dk2": float(e64.value(tr.positions[-1].double())),
                 "times": tr.times.tolist(), "energies": tr.energies.tolist(), "wall_time": tr.wall_time,
                 "provenance": provenance(wall_time=time.perf_counter() - t0, load=os.getloadavg()[0])}
        data["sweep"].append(entry)
        _save(out, data)
        print(f"sweep {scheme} tau {tau:g} its {its}: D_K^2(t={t_end:g}) {entry['final_dk2']:.3e}, "
              f"{entry['wall_time']:.0f} s", flush=True)
    if not any(e["scheme"] == "particle_flow" and e["t_end"] == t_end for e in data["sweep"]):
        s = experiments.SchemeSettings(n=n, t_end=t_end, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.2,
                                       snap_dt=t_end / 10, neural={})
        x0, x0_pf = experiments.dirac_starts(target.centers, n, seed=seed)
        e32, e64 = experiments.target_energies(y, backend="blocked")
        tr = experiments.run_schemes(e32, x0, x0_pf, s, energy_particles=e64, seed=seed,
                                     schemes=("particle_flow",))["particle_flow"]
        data["sweep"].append({"scheme": "particle_flow", "tau": 0.2, "iterations": None, "n": n, "t_end": t_end,
                              "final_dk2": float(tr.energies[-1]), "times": tr.times.tolist(),
                              "energies": tr.energies.tolist(), "wall_time": tr.wall_time,
                              "provenance": provenance(wall_time=tr.wall_time, load=os.getloadavg()[0])})
        _save(out, data)


EX3_RUNS = [("neural_backward", 0.1, 40), ("neural_backward", 0.1, 200), ("neural_backward", 0.05, 100),
            ("neural_forward", 0.1, 40), ("particle_flow", 0.02, None)]


def clump_share(p: torch.Tensor, cell: float = 0.02) -> float:
    """Share of the particles in the fullest cell of a ``cell x cell`` grid (``1/N`` for spread particles)."""
    idx = torch.floor(p.double() / cell).to(torch.int64)
    _, counts = torch.unique(idx, dim=0, return_counts=True)
    return float(counts.max()) / p.shape[0]


def run_ex3(out: Path, particles_out: Path, seed: int, n: int, t_end: float) -> None:
    from mmdflow.functionals import ImplosionExplosion

    data = _load(out)
    parts = _load_particles(particles_out)
    g0 = torch.Generator().manual_seed(seed + 3)
    blob = torch.randn(n, 2, generator=g0, dtype=torch.float64) * 0.3 + torch.tensor([-1.0, 0.0], dtype=torch.float64)
    for scheme, tau, its in EX3_RUNS:
        key = f"{scheme}, tau {tau:g}" + ("" if its is None else f", {its} iterations")
        if key in data.get("ex3", {}):
            continue
        sched = dict(tau=tau, iterations_start=its or 1, iterations=its or 1, batch_size=n // 2)
        s = experiments.SchemeSettings(n=n, t_end=t_end, width=128, hidden_layers=3, lr=3e-3, pf_tau=tau, snap_dt=0.5,
                                       neural={"neural_backward": sched, "neural_forward": dict(sched, batch1=n)})
        t0 = time.perf_counter()
        tr = experiments.run_schemes(ImplosionExplosion(), blob.float(), blob, s, seed=seed, schemes=(scheme,))[scheme]
        x = tr.positions[-1]
        right = x[:, 0] >= 0
        entry = {"scheme": scheme, "tau": tau, "iterations": its, "n": n, "batch": None if its is None else n // 2,
                 "t_end": float(tr.times[-1]), "final_value": float(tr.energies[-1]),
                 "clump_share": clump_share(x), "right_share": float(right.double().mean()),
                 "right_y_std": float(x[right, 1].double().std()) if int(right.sum()) > 1 else None,
                 "times": tr.times.tolist(), "values": tr.energies.tolist(), "wall_time": tr.wall_time,
                 "provenance": provenance(wall_time=time.perf_counter() - t0, load=os.getloadavg()[0])}
        data.setdefault("ex3", {})[key] = entry
        parts.setdefault("ex3", {})[key] = x.to(torch.float16).clone()
        torch.save(parts, particles_out)
        _save(out, data)
        print(f"ex3 {key}: F {entry['final_value']:.4f}, fullest cell {entry['clump_share']:.3f}, "
              f"x2 spread right {entry['right_y_std']}, {entry['wall_time']:.0f} s", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", action="store_true", help="Max und Moritz at 6000 particles, three schemes")
    p.add_argument("--sweep", action="store_true", help="iterations/tau sweep on the smiley (2000 particles)")
    p.add_argument("--sweep-t-end", type=float, default=10.0)
    p.add_argument("--nb-variant", nargs=2, type=float, metavar=("TAU", "ITERATIONS"), default=None,
                   help="with --runs: only the neural backward scheme at this step and iteration count, stored as "
                        "'neural_backward, tau TAU'")
    p.add_argument("--nf-variant", nargs=2, type=float, metavar=("TAU", "ITERATIONS"), default=None,
                   help="with --runs: only the neural forward scheme at this step and iteration count")
    p.add_argument("--ex3", action="store_true", help="App. F, Ex. 3: the neural backward scheme's clumps")
    p.add_argument("--ex3-n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS / "paper_images.json")
    p.add_argument("--smoke", action="store_true", help="tiny settings, output under /tmp (checks the script runs)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        MM_SETTINGS.update(n=200, t_end=4.0, neural={
            "neural_backward": dict(tau=2.0, iterations_start=5, iterations=2, batch_size=100),
            "neural_forward": dict(tau=2.0, iterations_start=5, iterations=2, batch_size=100, batch1=100)})
        SWEEP[:] = SWEEP[:1]
        PAPER_IMAGE_TARGETS["smiley"] = PAPER_IMAGE_TARGETS["smiley"]._replace(n_paper=200)
        args.out = Path("/tmp/paper_images_smoke.json")
        args.sweep_t_end = 2.0
    if args.sweep:
        run_sweep(args.out.with_name(args.out.stem + "_sweep.json"), args.seed, args.sweep_t_end)
    if args.ex3:
        run_ex3(args.out.with_name(args.out.stem + "_ex3.json"), args.out.with_name("paper_images_ex3.pt"),
                args.seed, 200 if args.smoke else args.ex3_n, 0.4 if args.smoke else 3.0)
    if args.runs and args.nf_variant:
        tau, its = args.nf_variant
        MM_SETTINGS["neural"] = dict(MM_SETTINGS["neural"], neural_forward=dict(
            MM_SETTINGS["neural"]["neural_forward"], tau=tau, iterations_start=400, iterations=int(its)))
        out = args.out.with_name(args.out.stem + "_nf.json")
        run_stored(out, out.with_name(out.stem + "_particles.pt"), args.seed, schemes=("neural_forward",),
                   label=f", tau {tau:g}, {int(its)} iterations")
    elif args.runs and args.nb_variant:
        tau, its = args.nb_variant
        MM_SETTINGS["neural"] = dict(MM_SETTINGS["neural"], neural_backward=dict(
            MM_SETTINGS["neural"]["neural_backward"], tau=tau, iterations_start=400, iterations=int(its)))
        out = args.out.with_name(args.out.stem + "_nb.json")             # a file of its own: no race with --runs
        run_stored(out, out.with_name(out.stem + "_particles.pt"), args.seed, schemes=("neural_backward",),
                   label=f", tau {tau:g}")
    elif args.runs:
        run_stored(args.out, args.out.with_name("paper_images_particles.pt"), args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
