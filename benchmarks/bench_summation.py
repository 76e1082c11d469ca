"""Benchmark of the kernel-sum backends for the Riesz(1) discrepancy (issue 6, chapter 7).

One evaluation = value and Wasserstein gradient of F(x) = E_K(mu) + V_K,nu(mu) (the discrepancy
without its constant target term), N = M, float32, on the threads given by --threads (default 2).
Every figure is printed next to its reference (the exact blocked computation, timed or extrapolated
from a subset of rows) with the ratio, and next to the issue's target when one exists.

    python benchmarks/bench_summation.py            # the issue's sizes (several minutes on 2 cores)
    python benchmarks/bench_summation.py --quick    # small sizes (about a minute)

Data: d=2: x ~ N(0, I), y a two-Gaussian mixture. d=784: x ~ U[0,1]^784 (the flow's start), y the MNIST
test images / 255 from $MMDFLOW_DATA/mnist (tiled with 0.02 jitter beyond 10^4 images), or a synthetic
stand-in (smooth random blobs) when the files are missing (the output says which).
The gradient error is ||g - g_exact|| / ||g_exact|| over 2000 fixed particles, g_exact from the blocked
backend (float64 in d=2, float32 in d=784).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mmdflow.summation import sliced
from mmdflow.summation import sort1d as _sort1d
from mmdflow.kernels import Riesz
from mmdflow.summation import kernel_sum_and_grad, kernel_sum_grad

K1 = Riesz(1.0)
ROWS = []


def load_mnist_images(n: int, gen: torch.Generator) -> tuple[torch.Tensor, str]:
    """``n`` images / 255 as float32 ``[n, 784]`` from the IDX test file (tiled with jitter beyond 10^4)."""
    root = Path(os.environ.get("MMDFLOW_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    path = root / "mnist" / "t10k-images-idx3-ubyte.gz"
    if path.exists():
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
        count = int.from_bytes(raw[4:8], "big")
        imgs = torch.from_numpy(np.frombuffer(raw, np.uint8, offset=16).reshape(count, 784).astype(np.float32) / 255)
        source = f"MNIST test images ({path})"
    else:  # synthetic stand-in: sums of smooth bumps on the 28x28 grid
        t = torch.linspace(0, 1, 28)
        gy, gx = torch.meshgrid(t, t, indexing="ij")
        c = torch.rand(10_000, 4, 2, generator=gen)
        imgs = sum(torch.exp(-((gx - c[:, k, :1, None]) ** 2 + (gy - c[:, k, 1:, None]) ** 2) / 0.01)
                   for k in range(4)).reshape(10_000, 784).clamp(0, 1)
        source = "synthetic blobs (MNIST files not found)"
    reps = -(-n // len(imgs))
    out = imgs.repeat(reps, 1)[:n]
    if n > len(imgs):
        out[len(imgs):] += 0.02 * torch.randn(n - len(imgs), 784, generator=gen)
    return out.contiguous(), source


def data(d: int, n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    if d == 2:
        x = torch.randn(n, 2, generator=gen)
        comp = torch.rand(n, generator=gen) < 0.5
        y = torch.randn(n, 2, generator=gen) * 0.3 + torch.where(comp[:, None], torch.tensor([2.0, 0.0]),
                                                                 torch.tensor([-1.0, 1.5]))
        return x, y, "x ~ N(0,I), y two-Gaussian mixture"
    x = torch.rand(n, d, generator=gen)
    y, source = load_mnist_images(n, gen)
    return x, y, f"x ~ U[0,1]^784, y {source}"


CPU = {"last": float("nan")}


def timed(fn, repeat: int = 1):
    """Best wall time of ``repeat`` runs; the process CPU time of that run is kept in ``CPU["last"]``.

    On a shared machine the wall time includes waiting for a core; CPU time / threads is then a better
    estimate of the wall time on free cores (it still includes slowdowns from shared caches).
    """
    best, out = float("inf"), None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t0
        if wall < best:
            best, CPU["last"] = wall, time.process_time() - c0
    return best, out


def exact_subset(x, y, rows: int, dtype):
    """Exact gradient (blocked) of F at the first ``rows`` particles, and its wall time."""
    xs, xx, yy = x[:rows].to(dtype), x.to(dtype), y.to(dtype)
    t, g = timed(lambda: kernel_sum_grad(xs, xx, K1, backend="blocked")
                 - kernel_sum_grad(xs, yy, K1, backend="blocked"))
    return g, t


def sliced_eval(x, y, rule, p, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return sliced.sliced_discrepancy_and_gradient(x, y, n_directions=p, directions=rule, generator=gen)


def rel_err(g, ref):
    return float((g[: len(ref)].double() - ref.double()).norm() / ref.double().norm())


def report(case, figure, value, unit, ref=None, ref_label="", target=None, better="lower", cpu=None):
    ratio = f"{ref / value:8.1f}x" if (ref is not None and unit == "s") else (
        f"{value / ref:8.2f}" if ref is not None else "")
    met = ""
    if target is not None:
        ok = value <= target if better == "lower" else value >= target
        met = f"target {'<=' if better == 'lower' else '>='} {target:g}: {'MET' if ok else 'MISSED'}"
    refs = f"{ref:10.4g} {unit} {ref_label}" if ref is not None else ""
    cpu_s = f"[cpu {cpu:7.3g} s]" if cpu is not None else " " * 16
    line = f"{case:<30} {figure:<22} {value:10.4g} {unit:<5} {cpu_s} | {refs:<36} {ratio:>9} | {met}"
    ROWS.append(line)
    print(line, flush=True)


def bench_d2(n, quick):
    x, y, desc = data(2, n)
    print(f"\n## d=2, N=M={n}: {desc}")
    ref_g, t_sub = exact_subset(x, y, 2000, torch.float64)
    t_exact = t_sub * n / 2000
    sliced_eval(x[:100], y[:100], "equispaced", 10)  # warm-up (numba cache load)
    for rule, p in [("equispaced", 100), ("equispaced", 1000), ("orthogonal", 100), ("iid", 100), ("iid", 1000)]:
        t, (_, g) = timed(lambda: sliced_eval(x, y, rule, p), repeat=3)
        tgt = rule == "equispaced" and p == 100 and not quick
        report(f"sliced {rule} P={p}", "time (value+grad)", t, "s", t_exact, "exact blocked (extrap.)",
               0.25 if tgt else None, cpu=CPU["last"])
        report(f"sliced {rule} P={p}", "rel. gradient error", rel_err(g, ref_g), "", None, "",
               2e-4 if tgt else None)
    if n <= 20_000:
        t, _ = timed(lambda: (kernel_sum_and_grad(x, x, K1, backend="blocked"),
                              kernel_sum_and_grad(x, y, K1, backend="blocked")))
        report("blocked exact", "time (value+grad)", t, "s", t_exact, "extrap. from 2000 rows", cpu=CPU["last"])
    else:
        report("blocked exact (extrapolated)", "time (value+grad)", t_exact, "s", t_sub, "2000 rows, timed")


def bench_d784(n, quick, exact_full: bool):
    x, y, desc = data(784, n)
    print(f"\n## d=784, N=M={n}: {desc}")
    ref_g, t_sub = exact_subset(x, y, 2000, torch.float32)
    t_exact = t_sub * n / 2000
    if exact_full:
        t_exact, _ = timed(lambda: (kernel_sum_and_grad(x, x, K1, backend="blocked"),
                                    kernel_sum_and_grad(x, y, K1, backend="blocked")))
        report("blocked exact", "time (value+grad)", t_exact, "s", t_sub * n / 2000, "extrap. from 2000 rows",
               6.0 if (n == 10_000 and not quick) else None, cpu=CPU["last"])
    sliced_eval(x[:100], y[:100], "iid", 10)
    big = n >= 100_000
    for rule, p in [("iid", 1000), ("orthogonal", 1000), ("iid", 100)]:
        t, (_, g) = timed(lambda: sliced_eval(x, y, rule, p), repeat=2)
        tgt_t = 6.0 if (big and p == 1000) else (0.7 if (n == 10_000 and rule == "orthogonal" and p == 1000)
                                                    else None)
        report(f"sliced {rule} P={p}", "time (value+grad)", t, "s", t_exact,
               "exact blocked" + ("" if exact_full else " (extrap.)"), None if quick else tgt_t, cpu=CPU["last"])
        tgt_e = {"iid": 1.0, "orthogonal": 0.6}.get(rule) if p == 1000 and big else None
        report(f"sliced {rule} P={p}", "rel. gradient error", rel_err(g, ref_g), "", None, "",
               None if quick else tgt_e)
    if not exact_full:
        report("blocked exact (extrapolated)", "time (value+grad)", t_exact, "s", t_sub, "2000 rows, timed")


def bench_1d(n, p):
    print(f"\n## 1D step alone: P={p} slices of N+M={2 * n} float32 points (value + gradient)")
    gen = torch.Generator().manual_seed(0)
    zq, zs = torch.randn(p, n, generator=gen), torch.randn(p, n, generator=gen) + 0.5
    cq = torch.full((n,), 1 / n, dtype=torch.float64)
    cs = -cq
    el = p * 2 * n
    t_t, _ = timed(lambda: _sort1d.sign_sums(zq[: max(1, p // 10)], cq, zs[: max(1, p // 10)], cs, engine="torch"))
    t_t *= p / max(1, p // 10)
    if _sort1d.HAVE_NUMBA:
        _sort1d.sign_sums(zq[:2, :10], cq[:10], zs[:2, :10], cs[:10], engine="numba")
        t_n, _ = timed(lambda: _sort1d.sign_sums(zq, cq, zs, cs, engine="numba"), repeat=3)
        cpu = CPU["last"]
        report("1D numba radix kernel", "throughput", el / t_n / 1e6, "M/s", el / t_t / 1e6,
               "torch argsort+scatter", 120, better="higher", cpu=cpu)
        report("1D numba, per CPU-second x 2", "throughput (est.)", 2 * el / cpu / 1e6, "M/s", None, "",
               120, better="higher")
        # the mode of the sliced discrepancy: gradient and the weighted sum of h only (no per-point h)
        t_w, _ = timed(lambda: _sort1d.sign_sums(zq, cq, zs, cs, want_h="weighted", alpha=0.5, engine="numba"),
                       repeat=3)
        report("1D numba, weighted h", "throughput", el / t_w / 1e6, "M/s", el / t_t / 1e6,
               "torch argsort+scatter", 120, better="higher", cpu=CPU["last"])
    t_s, _ = timed(lambda: torch.sort(zq[: max(1, p // 10)], dim=1))
    report("torch.sort alone (reference)", "throughput", el / (2 * t_s * p / max(1, p // 10)) / 1e6, "M/s")


def child_rss(n):
    """Peak RSS (GB) of a fresh process doing one d=2 sliced evaluation (equispaced, P=100), and after its imports."""
    # VmHWM (the peak resident set of this process image) rather than getrusage's ru_maxrss, which Linux
    # carries over from the parent across fork+exec and would report the benchmark's own peak.
    code = f"""
import json, torch
torch.set_num_threads(2)
from mmdflow.summation import sliced
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
base = hwm()
g = torch.Generator().manual_seed(0)
x = torch.randn({n}, 2, generator=g); y = torch.randn({n}, 2, generator=g) + 1
sliced.sliced_discrepancy_and_gradient(x, y, n_directions=100, directions="equispaced", generator=g)
print(json.dumps(dict(base=base, peak=hwm())))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["peak"] / 2**20, r["base"] / 2**20


def compile_cost():
    """Cold numba compile (empty cache dir) and the first call from the cache, each in a fresh process."""
    code = ("import time, torch; from mmdflow.summation import sort1d as S; t=time.perf_counter(); "
            "S.sign_sums(torch.randn(2, 5), torch.zeros(5), engine='numba'); print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
        cold = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True).stdout.split()[-1])
    warm = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split()[-1])
    return cold, warm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (no targets judged)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=["d2", "d784", "d784-1e4", "1d", "mem", "compile"], action="append")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if _sort1d.HAVE_NUMBA:
        import numba
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    only = set(args.only or ["d2", "d784", "d784-1e4", "1d", "mem", "compile"])
    print(f"torch {torch.__version__}, threads {args.threads}, numba {'yes' if _sort1d.HAVE_NUMBA else 'no'}, "
          f"load average at start {os.getloadavg()[0]:.2f} (machine shared; 2 cores)")
    t0 = time.perf_counter()
    if "1d" in only:
        bench_1d(10_000 if args.quick else 100_000, 20 if args.quick else 100)
    if "d2" in only:
        bench_d2(10_000 if args.quick else 100_000, args.quick)
    if "d784-1e4" in only:
        bench_d784(2_000 if args.quick else 10_000, args.quick, exact_full=True)
    if "d784" in only:
        bench_d784(5_000 if args.quick else 100_000, args.quick, exact_full=False)
    if "mem" in only:
        n = 10_000 if args.quick else 100_000
        peak, base = child_rss(n)
        print(f"\n## memory, d=2, N=M={n}, sliced equispaced P=100, fresh process")
        report("peak RSS", "GB (incl. torch)", peak, "GB", base, "after imports", None if args.quick else 0.7)
    if "compile" in only and _sort1d.HAVE_NUMBA:
        cold, warm = compile_cost()
        print("\n## numba JIT cost, first call in a fresh process")
        report("cold compile (empty cache)", "first call", cold, "s")
        report("from the on-disk cache", "first call", warm, "s")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; total {time.perf_counter() - t0:.0f} s")
    print("\n# summary")
    print("\n".join(ROWS))


if __name__ == "__main__":
    main()
