"""Interaction-energy benchmark of Altekrüger, Hertrich, Steidl (2023), Sec. 6.1: schemes from delta_0 vs gamma(t).

For each dimension d and Riesz exponent r, runs the neural backward scheme, the neural forward
scheme (r = 1 only: from a Dirac the forward step is defined only there) and the particle flow on
the interaction energy E_K started at delta_0, and prints D_K^2 (distance kernel) between the
particles and an exact sample of the analytic curve gamma(t) at t = 0.4, 0.8, 1.2, next to the
noise floor of that statistic (two exact samples) and their ratio, followed by the issue's targets.

A thin front end of the sweep runner (mmdflow.experiments.sweep): every (scheme, d, r) is one Dask task, on a
local cluster with one single-threaded worker per core (default), on the cluster of --scheduler / $MMDFLOW_SCHEDULER
(tcp://host:8786), or in this process (--scheduler serial). This process alone writes the results file (--out) after
every finished run and skips the runs it already holds; each run checkpoints under --checkpoint-root (a folder every
worker can read), so an interrupted or failed task resumes where it stopped. --table-only prints the table of a
results file. --compare-serial times the same sweep serially and on the chosen cluster, in one run, checks that the
results are bitwise equal, and prints the ratio (the results file is not touched), next to a control: the speed-up
the machine grants as many plain processes at that moment (on a busy machine, the bound of any parallel run).

    python benchmarks/bench_interaction.py --profile quick
    python benchmarks/bench_interaction.py --profile quick --compare-serial --workers 2
    python benchmarks/bench_interaction.py --profile paper --scheduler tcp://head:8786 --checkpoint-root /shared/ckpt
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmdflow.experiments import interaction, sweep

RESULTS = Path(__file__).resolve().parent / "results"


_SPIN = "import time\nt = time.perf_counter()\ns = 0\nfor i in range(20_000_000):\n    s += i\n"


def _capacity(n: int) -> float:
    """The parallel speed-up this machine grants ``n`` processes right now (a control for the ratio): ``n`` units of
    pure-Python work one after the other against side by side, each in its own process at this process's priority."""
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run([sys.executable, "-c", _SPIN], check=True)
    t_seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(n)]
    for p in procs:
        p.wait()
    return t_seq / (time.perf_counter() - t0)


def _compare(runs, args) -> int:
    """Time the sweep serially, then on the chosen cluster (its start-up included), in fresh folders; before and
    after, the parallel speed-up the machine grants as many plain processes (the best the sweep could reach)."""
    where = sweep.resolve_scheduler(args.scheduler)
    n = args.workers or (os.cpu_count() if where == "local" else 2)
    cap0 = _capacity(n)
    with tempfile.TemporaryDirectory(prefix="mmdflow-bench-") as tmp:
        tmp = Path(tmp)
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        serial = sweep.run_sweep(runs, store=tmp / "serial.json", checkpoint_root=tmp / "serial", scheduler="serial",
                                 device=args.device, threads=args.threads, progress=args.progress)
        t_serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        par = sweep.run_sweep(runs, store=tmp / "cluster.json", checkpoint_root=tmp / "cluster", scheduler=where,
                              n_workers=args.workers, device=args.device, threads=args.threads,
                              progress=args.progress)
        t_par = time.perf_counter() - t0
        load1 = os.getloadavg()
    cap1 = _capacity(n)
    same = all(sweep.science(a) == sweep.science(b) for a, b in zip(serial, par))
    workers = sorted({r["provenance"]["worker"] for r in par})
    label = f"local cluster, {args.workers or 'one worker per core'}" if where == "local" else where
    print(f"{len(runs)} runs; load average before {load0[0]:.2f}, after {load1[0]:.2f} ({os.cpu_count()} cores)")
    print(f"serial (this process, {args.threads} torch thread):   {t_serial:8.1f} s")
    print(f"{label} ({len(workers)} workers used): {t_par:8.1f} s (start-up and shut-down included)")
    print(f"ratio serial / cluster: {t_serial / t_par:.2f}x; results bitwise equal: {'yes' if same else 'NO'}")
    print(f"time inside the runs, summed: serial {sum(r['elapsed'] for r in serial):.1f} s, cluster "
          f"{sum(r['elapsed'] for r in par):.1f} s (the rest: start-up, scheduling, transfers)")
    print(f"control: {n} plain processes side by side ran {cap0:.2f}x (before) and {cap1:.2f}x (after) faster than "
          f"one after the other (an idle {os.cpu_count()}-core machine: about {min(n, os.cpu_count()):.0f}x)")
    return 0 if same else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=("quick", "paper"), default="quick")
    p.add_argument("--iterations", type=int, default=None, help="Adam iterations per time step (overrides the profile)")
    p.add_argument("--n-particles", type=int, default=None)
    p.add_argument("--dims", type=int, nargs="+", default=[2, 3, 10])
    p.add_argument("--rs", type=float, nargs="+", default=[0.5, 1.0, 1.5])
    p.add_argument("--schemes", nargs="+", default=interaction.benchmark_schemes(),
                   choices=interaction.benchmark_schemes(),
                   help="registry names of the schemes to run (mmdflow.schemes; default: all of the benchmark)")
    p.add_argument("--pf-taus", type=float, nargs="+", default=None,
                   help="particle-flow steps to run (each a divisor of tau; default: the profile's pf_tau); several "
                        "show the flow's convergence in its step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=None,
                   help="repeats of the metric, fresh exact samples each (default: 3 quick, 10 paper)")
    p.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/interaction_<profile>.json)")
    p.add_argument("--checkpoint-root", type=Path, default=None,
                   help=f"run folders (default ${sweep.SWEEP_DIR_ENV}/checkpoints or build/sweeps/checkpoints); "
                        "with a cluster of several machines, a folder every worker reads")
    p.add_argument("--scheduler", default=None,
                   help=f"'local' (default), 'serial' or a scheduler address tcp://host:8786 (default ${sweep.SCHEDULER_ENV})")
    p.add_argument("--workers", type=int, default=None, help="workers of the local cluster (default: one per core)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--device", default=None, help="device of every run (default: each worker's GPU when it has one)")
    p.add_argument("--table-only", action="store_true", help="print the table of --out and exit")
    p.add_argument("--compare-serial", action="store_true", help="time serial against the cluster (results not stored)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar over the runs")
    args = p.parse_args(argv)
    out = args.out or RESULTS / f"interaction_{args.profile}.json"
    if args.table_only:
        print(interaction.format_interaction_table(interaction.results_from_json(sweep.read_store(out), source=str(out))))
        return 0
    runs = sweep.interaction_runs(args.profile, cases=[(d, r) for d in args.dims for r in args.rs], schemes=args.schemes,
                                  pf_taus=args.pf_taus, seed=args.seed, n_repeats=args.repeats,
                                  iterations=args.iterations, n_particles=args.n_particles)
    print(f"profile {args.profile}: {runs[0].settings}; {len(runs)} runs", flush=True)
    if args.compare_serial:
        return _compare(runs, args)
    sweep.run_sweep(runs, store=out, checkpoint_root=args.checkpoint_root, scheduler=args.scheduler,
                    n_workers=args.workers, device=args.device, threads=args.threads, progress=args.progress,
                    log=lambda s: print(s, flush=True))
    print()
    print(interaction.format_interaction_table(interaction.results_from_json(sweep.read_store(out), source=str(out))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
