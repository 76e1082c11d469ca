"""Exact kernel sums: the compiled paths against the torch blocks of the same run (one thread, best of repeats).

Each line prints the time of the library's default exact path (``auto``), the time of a reference computed in
the same run and their ratio, and the target where one exists:

* d = 2, N = M: value and gradient of one Riesz(1) kernel sum (``kernel_sum_and_grad`` of x against y), against the torch blocks (``backend="blocked", fused=False``; at N = 1e5 timed on a tenth of the rows
  and scaled);
* one particle-flow step of the interaction energy, d = 2, float64, m = 1e4 particles;
* d = 784 (uniform against MNIST-like data), N = M: the autograd path (``DiscrepancyEnergy.value(x).backward()``,
  the target's constant energy computed once) against the explicit one, and the explicit one against its GEMM floor (the two matrix products alone);
* float32 gradient error against float64 at r = 0.5, 1, 1.5 for clouds at offsets 0 and 1000.

    python benchmarks/bench_exact.py            # the sizes of the targets (a few minutes)
    python benchmarks/bench_exact.py --quick    # small sizes
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from mmdflow import energies
from mmdflow.kernels import Riesz
from mmdflow.summation import kernel_sum_and_grad, kernel_sum_grad

K = Riesz(1.0)


def best(fn, repeats):
    out, t = None, float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        t = min(t, time.perf_counter() - t0)
    return t, out


def line(what, t_lib, t_ref, ref_name, target=None):
    verdict = "" if target is None else f" | target <= {target:g} s: {'yes' if t_lib <= target else 'no'}"
    print(f"{what:<44} {t_lib:9.4f} s | {ref_name:<30} {t_ref:9.4f} s | ratio {t_ref / t_lib:7.2f}{verdict}",
          flush=True)


def d2(n, repeats, quick):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g) * 0.3 + 1.0

    kernel_sum_and_grad(x[:10], y, K)
    t_lib, _ = best(lambda: kernel_sum_and_grad(x, y, K), repeats)
    rows = n if n <= 20_000 else n // 10
    t_ref, _ = best(lambda: kernel_sum_and_grad(x[:rows], y, K, backend="blocked", fused=False), 1)
    t_ref *= n / rows
    name = "torch blocks" + ("" if rows == n else f" ({rows} rows, scaled)")
    target = None if quick else (0.15 if n == 10_000 else 15.0 if n == 100_000 else None)
    line(f"d=2 N=M={n} float32 value+grad", t_lib, t_ref, name, target)


def flow_step(m, repeats, quick):
    x = torch.randn(m, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.3
    e = energies.InteractionEnergy(K)
    e.gradient(x[:10])
    t_lib, _ = best(lambda: e.gradient(x), repeats)
    t_ref, _ = best(lambda: kernel_sum_grad(x, x, K, backend="blocked", fused=False), 1)
    line(f"particle-flow step d=2 float64 m={m}", t_lib, t_ref, "torch blocks", None if quick else 0.15)


def d784(n, repeats):
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(n, 784, generator=g), torch.rand(n, 784, generator=g) ** 3
    kernel_sum_and_grad(x[:300], y[:300], K)

    def explicit():
        return kernel_sum_and_grad(x, x, K), kernel_sum_and_grad(x, y, K)

    energy = energies.DiscrepancyEnergy(K, y)
    energy.target_energy                      # the constant E_K(y), computed once (as in a flow)

    def autograd():
        xr = x.clone().requires_grad_(True)
        energy.value(xr).backward()
        return xr.grad

    def gemm_floor():                        # the matrix products of the explicit pass, nothing else
        return (x @ x.T) @ x, (x @ y.T) @ y

    t_exp, _ = best(explicit, repeats)
    t_auto, _ = best(autograd, repeats)
    t_gemm, _ = best(gemm_floor, repeats)
    print(f"d=784 N=M={n}: explicit {t_exp:.3f} s, autograd {t_auto:.3f} s (ratio {t_auto / t_exp:.2f}, target <= 1.1), "
          f"GEMM floor {t_gemm:.3f} s (explicit / floor {t_exp / t_gemm:.2f}, target <= 1.2)", flush=True)


def float32_errors(n):
    g = torch.Generator().manual_seed(3)
    worst = 0.0
    for r in (0.5, 1.0, 1.5):
        for offset in (0.0, 1e3):
            x = (torch.randn(n, 2, generator=g, dtype=torch.float64) + offset).float()
            y = (0.5 * torch.randn(n, 2, generator=g, dtype=torch.float64) + offset + 0.5).float()
            k = Riesz(r)
            g64 = kernel_sum_grad(x.double(), x.double(), k) - kernel_sum_grad(x.double(), y.double(), k)
            g32 = kernel_sum_grad(x, x, k) - kernel_sum_grad(x, y, k)
            err = float((g32.double() - g64).norm() / g64.norm())
            worst = max(worst, err)
            print(f"float32 gradient error, r={r}, offset {offset:g}, N={n}: {err:.2e}", flush=True)
    print(f"worst float32 gradient error {worst:.2e} (target <= 2e-6: {'yes' if worst <= 2e-6 else 'no'})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, one thread, load average at start {os.getloadavg()[0]:.2f} (2 shared cores); "
          f"best of {args.repeats}")
    for n in ((2_000,) if args.quick else (10_000, 100_000)):
        d2(n, args.repeats if n <= 10_000 else 1, args.quick)
    flow_step(2_000 if args.quick else 10_000, args.repeats, args.quick)
    d784(1_000 if args.quick else 10_000, args.repeats if args.quick else 1)
    float32_errors(1_000 if args.quick else 5_000)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
