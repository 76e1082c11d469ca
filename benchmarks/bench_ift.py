"""The 100-d Gaussian-mixture study of chapter 6 (IFT against the MMD flows and WFR GD) at several particle counts.

Runs every scheme of ``mmdflow.experiments.ift.hd_schemes`` for each ``N:seeds`` case and stores each run, with its
held-out MMD^2, effective sample size and zero-weight share along the run, its final energy distance and MMD^2 at
a second bandwidth, its wall time and provenance (commit, date, machine, threads), in a JSON file as soon as it
ends; runs already in the file are skipped, so an interrupted sweep resumes. Cases are submitted in the order given.

A thin front end of the sweep runner (mmdflow.experiments.sweep): every (scheme, N, seed) is one Dask task, on a
local cluster with one single-threaded worker per core (default), on the cluster of --scheduler / $MMDFLOW_SCHEDULER
(tcp://host:8786), or in this process (--scheduler serial); this process alone writes the results file.

    python benchmarks/bench_ift.py --profile book            # the book's stored results (2 CPU cores: about 1 h)
    python benchmarks/bench_ift.py --profile paper --scheduler tcp://head:8786 --checkpoint-root /shared/ckpt
    python benchmarks/bench_ift.py --cases 500:0,1 --steps 1000 --out /tmp/ift.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mmdflow.experiments import ift, sweep

RESULTS = Path(__file__).resolve().parent / "results"
MAIN = (ift.MMD_FLOW, ift.NOISE_AUTHORS, ift.IFT_WEIGHTED, ift.IFT_PURE, ift.WFR_GD)
EXTRA = (ift.NOISE_ARBEL, ift.IFT_LITERAL)
#: (cases "N:seeds" in run order, iterations, labels at N = 500 beyond MAIN) per profile
PROFILES = {
    "book": (["250:0,1,2", "500:0,1,2", "1000:0", "2000:0", "1000:1", "2000:1"], 1000),
    "paper": ([f"{n}:{','.join(map(str, range(20)))}" for n in (1000, 2000, 5000, 10000)], 9001),
}


def _cases(specs):
    out = []
    for spec in specs:
        n, seeds = spec.split(":")
        out.append((int(n), [int(s) for s in seeds.split(",")]))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=tuple(PROFILES), default="book")
    p.add_argument("--cases", nargs="+", default=None, help="N:seed,seed,... (overrides the profile)")
    p.add_argument("--steps", type=int, default=None, help="iterations (overrides the profile)")
    p.add_argument("--extra-at", type=int, nargs="*", default=[500],
                   help="sizes at which the Arbel noise variant and the literal lr' also run")
    p.add_argument("--out", type=Path, default=None, help="results file (default benchmarks/results/ift_100d_<profile>.json)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--device", default=None, help="device of every run (default: each worker's GPU when it has one)")
    p.add_argument("--scheduler", default=None,
                   help=f"'local' (default), 'serial' or a scheduler address tcp://host:8786 (default ${sweep.SCHEDULER_ENV})")
    p.add_argument("--workers", type=int, default=None, help="workers of the local cluster (default: one per core)")
    p.add_argument("--checkpoint-root", type=Path, default=None,
                   help="run folders (default build/sweeps/checkpoints); on a cluster, a folder every worker reads")
    a = p.parse_args(argv)
    cases, steps = PROFILES[a.profile]
    cases = _cases(a.cases or cases)
    steps = a.steps or steps
    out = a.out or RESULTS / f"ift_100d_{a.profile}.json"
    runs = [spec for n, seeds in cases
            for spec in sweep.ift_runs({n: seeds}, steps, {n: MAIN + (EXTRA if n in a.extra_at else ())})]
    t0 = time.perf_counter()
    sweep.run_sweep(runs, store=out, checkpoint_root=a.checkpoint_root, scheduler=a.scheduler, n_workers=a.workers,
                    device=a.device, threads=a.threads,
                    log=lambda s: print(f"[{time.perf_counter() - t0:7.0f} s] {s}", flush=True))
    print(f"done in {time.perf_counter() - t0:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
