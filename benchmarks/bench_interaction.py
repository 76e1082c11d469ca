"""Interaction-energy benchmark of Altekrüger, Hertrich, Steidl (2023), Sec. 6.1: schemes from delta_0 vs gamma(t).

For each dimension d and Riesz exponent r, runs the neural backward scheme, the neural forward
scheme (r = 1 only: from a Dirac the forward step is defined only there) and the particle flow on
the interaction energy E_K started at delta_0, and prints D_K^2 (distance kernel) between the
particles and an exact sample of the analytic curve gamma(t) at t = 0.4, 0.8, 1.2, next to the
noise floor of that statistic (two exact samples) and their ratio, followed by the issue's targets.

Results are appended to a JSON file after every run (``--out``) and runs already there are skipped,
and the neural schemes checkpoint after every time step (``--checkpoint-root``), so an interrupted
benchmark resumes where it stopped. ``--table-only`` prints the table of a results file.

    python benchmarks/bench_interaction.py --profile quick
    python benchmarks/bench_interaction.py --profile paper --iterations 2000 --dims 2 3 --rs 1 1.5
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from pathlib import Path

import torch

from mmdflow import default_device
from mmdflow.runtime import SCHEMAS, load_json, provenance
from mmdflow.experiments import interaction

RESULTS = Path(__file__).resolve().parent / "results"


def _read(out: Path) -> list:
    return interaction.results_from_json(load_json(out, SCHEMAS["interaction"])) if out.exists() else []


def _store(out: Path, res, key_of) -> list:
    """Add ``res`` to the results file (replacing a run with its key) under a lock, re-reading the file first, so
    that several benchmark processes can fill one file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = [x for x in _read(out) if key_of(x) != key_of(res)] + [res]
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(interaction.results_to_json(results), indent=1))
        tmp.replace(out)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=("quick", "paper"), default="quick")
    p.add_argument("--iterations", type=int, default=None, help="Adam iterations per time step (overrides the profile)")
    p.add_argument("--n-particles", type=int, default=None)
    p.add_argument("--dims", type=int, nargs="+", default=[2, 3, 10])
    p.add_argument("--rs", type=float, nargs="+", default=[0.5, 1.0, 1.5])
    p.add_argument("--schemes", nargs="+", default=list(interaction.SCHEMES), choices=interaction.SCHEMES)
    p.add_argument("--pf-taus", type=float, nargs="+", default=None,
                   help="particle-flow steps to run (each a divisor of tau; default: the profile's pf_tau); several "
                        "show the flow's convergence in its step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=None,
                   help="repeats of the metric, fresh exact samples each (default: 3 quick, 10 paper)")
    p.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/interaction_<profile>.json)")
    p.add_argument("--checkpoint-root", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "mmdflow-bench-ckpt")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    p.add_argument("--table-only", action="store_true", help="print the table of --out and exit")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or RESULTS / f"interaction_{args.profile}.json"
    results = _read(out)
    if args.table_only:
        print(interaction.format_interaction_table(results))
        return 0

    if args.repeats is None:
        args.repeats = 3 if args.profile == "quick" else 10
    settings = interaction.interaction_settings(args.profile, iterations=args.iterations, n_particles=args.n_particles)
    device = torch.device(args.device) if args.device else default_device()
    # the code this process runs is the code at its start: its commit is recorded now, the date at each result
    started = provenance(device=str(device))
    print(f"profile {args.profile}: {settings}; device {device}; torch threads {torch.get_num_threads()}", flush=True)
    runs = [(scheme, d, r, pf_tau) for d in args.dims for r in args.rs for scheme in args.schemes
            for pf_tau in (args.pf_taus or [settings.pf_tau] if scheme == "particle" else [None])
            if scheme != "forward" or r == 1.0]
    def key_of(res):
        return res.scheme, res.d, res.r, res.iterations, res.n_particles, res.tau, res.seed

    for scheme, d, r, pf_tau in runs:
        case = settings if pf_tau is None else interaction.interaction_settings(
            args.profile, iterations=args.iterations, n_particles=args.n_particles, pf_tau=pf_tau)
        its = None if scheme == "particle" else case.iterations
        tau = case.pf_tau if scheme == "particle" else case.tau
        key = (scheme, d, float(r), its, case.n_particles, tau, args.seed)
        if any(key_of(res) == key for res in _read(out)):
            print(f"skip {scheme} d={d} r={r} its={its} tau={tau:g}: already in {out}", flush=True)
            continue
        ckpt = args.checkpoint_root / (f"{args.profile}_{scheme}_d{d}_r{r:g}_it{its}_m{case.n_particles}"
                                       f"_tau{tau:g}_s{args.seed}")
        t0 = time.perf_counter()
        res = interaction.run_interaction_case(scheme, d, float(r), case, seed=args.seed, n_repeats=args.repeats,
                                               device=device, checkpoint_dir=ckpt, progress=args.progress)
        res.elapsed = time.perf_counter() - t0
        res.provenance = dict(started, started=started["date"], date=provenance()["date"], wall_time=res.wall_time,
                              elapsed=res.elapsed)
        results = _store(out, res, key_of)
        ratios = " ".join(f"t={t:g}: {e.d2:.2e}/{e.noise:.2e}" for t, e in res.errors.items())
        print(f"{scheme:>9} d={d:<3} r={r:<4g} its={its} tau={tau:g}: {ratios}  ({res.elapsed:.0f} s)", flush=True)
    print()
    print(interaction.format_interaction_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
