"""Cost of one Adam iteration of the neural schemes (Altekrüger et al. 2023, Secs. 3-4), one run, ratios printed.

An iteration draws two batches and latents, evaluates the network, the two-batch loss (the backward
scheme's JKO loss or the forward scheme's normalised directional derivative) and its gradient, and takes
an Adam step: what ``mmdflow.neural.train_backward`` / ``train_forward`` repeat thousands of times.
Each setting is timed (best of ``--repeats`` runs of ``--iterations`` iterations, one thread) with the
library (its default engine: written-out gradients of the loss and the MLP, Adam on its state, see
``mmdflow.neural.ENGINES``), with the library's autograd engine, and with two references kept in this script:

* ``previous``: the Riesz fast path the neural module had before the batch estimates moved into the
  energies (``torch.cdist`` losses chosen by the energy's type);
* ``autograd``: the plain formula, kernel matrices from the ``[B, M, d]`` differences, differentiated by
  autograd (the forward scheme: the loss as the derivative of the batch estimate along the velocities).

Two further parts (``--only b6000`` / ``--only coinciding``; both run by default):

* the library's ms per Adam iteration at the paper's Max und Moritz size, ``B = N = M = 6000`` (the neural
  schemes at the paper's particle count, Sec. 6.2), and at ``B = 1000`` batches of 6000 particles (the stored runs);
* the forward scheme at the smiley's two-point start (``B = 2000``, two Diracs of 1000 particles each): coinciding
  pairs grouped by point (:func:`mmdflow.summation.dense.coinciding_groups`, the library) against the former
  pair list (``previous_coinciding_pairs`` below: every one of the 2 x 1000^2 index pairs gathered and checked),
  with the same forward scheme on spread points as the yardstick.

    python benchmarks/bench_neural.py            # all settings
    python benchmarks/bench_neural.py --quick    # fewer iterations
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from mmdflow import energies, neural
from mmdflow.kernels import Riesz
from mmdflow.summation import dense, dispatch


# ------------------------------------------------------------------------------------------------
# references kept in the benchmark
# ------------------------------------------------------------------------------------------------

def _dist(a, b):
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _riesz_pow(dist, r):
    return dist if r == 1.0 else dist.clamp_min(torch.finfo(dist.dtype).tiny) ** r


def previous_batch_estimate(energy, x1, x2):
    """The former fast path of mmdflow.neural for Riesz energies (cdist, chosen by type)."""
    r = energy.kernel.r
    value = -0.5 * _riesz_pow(_dist(x1, x2), r).mean()
    if hasattr(energy, "target"):
        y, v = energy.target.to(x1), energy.target_weights.to(x1)
        value = value + (_riesz_pow(_dist(torch.cat([x1, x2]), y), r) @ v).mean() + energy.target_energy.to(x1)
    return value


def previous_directional_derivative(energy, x1, u1, x2, u2):
    """The former fast path for the Riesz interaction energy (r >= 1); other energies used the [B, M, d] formula."""
    r = energy.kernel.r
    if hasattr(energy, "target"):
        return autograd_directional_derivative(energy, x1, u1, x2, u2)
    with torch.no_grad():
        dist = _dist(x1, x2)
        coinc = dist == 0
        coef = torch.where(coinc, torch.zeros_like(dist), dist.clamp_min(torch.finfo(dist.dtype).tiny) ** (r - 2))
    zw = ((x1 * u1).sum(1, keepdim=True) - x1 @ u2.T - u1 @ x2.T + (x2 * u2).sum(1)[None, :])
    g = -r * coef * zw
    if r == 1.0 and bool(coinc.any()):
        g = g - torch.where(coinc, _dist(u1, u2), torch.zeros_like(g))
    return 0.5 * g.mean()


def autograd_batch_estimate(energy, x1, x2):
    """Plain formula: kernel matrices from [B, M, d] differences, differentiated by autograd."""
    k = energy.kernel
    value = 0.5 * k(x1, x2).mean()
    if hasattr(energy, "target"):
        y, v = energy.target.to(x1), energy.target_weights.to(x1)
        value = value - (k(torch.cat([x1, x2]), y) @ v).mean() + energy.target_energy.to(x1)
    return value


def autograd_directional_derivative(energy, x1, u1, x2, u2):
    """The [B, M, d] formula of the one-sided derivative (Riesz r = 1: -|w| at coinciding pairs)."""
    def pair(xa, ua, xb, ub, vb):
        z = xa[:, None, :] - xb[None, :, :]
        w = ua[:, None, :] - (ub[None, :, :] if ub is not None else 0.0)
        sq = (z * z).sum(-1)
        g = 2.0 * energy.kernel.dprofile(sq) * (z * w).sum(-1)
        coinc = sq == 0
        if bool(coinc.any()):
            g = g - torch.where(coinc, w.norm(dim=-1), torch.zeros_like(g))
        return (g @ vb).mean()

    value = 0.5 * pair(x1, u1, x2, u2, torch.full((x2.shape[0],), 1.0 / x2.shape[0], dtype=x1.dtype))
    if hasattr(energy, "target"):
        y, v = energy.target.to(x1), energy.target_weights.to(x1)
        value = value - pair(torch.cat([x1, x2]), torch.cat([u1, u2]), y, None, v)
    return value


def previous_coinciding_pairs(xa, xb):
    """The former pair search: hash keys, a binary search per row of ``xa``, then every candidate pair gathered
    and its rows compared (``O(pairs)`` gathers: two million at a two-Dirac start of 2000 particles)."""
    n = xa.shape[0]
    ha, hb = dense._row_hash(xa), dense._row_hash(xb)
    sorted_b, order = torch.sort(hb)
    lo = torch.searchsorted(sorted_b, ha, right=False)
    counts = torch.searchsorted(sorted_b, ha, right=True) - lo
    total = int(counts.sum())
    ia = torch.repeat_interleave(torch.arange(n, device=xa.device), counts)
    start = torch.repeat_interleave(lo, counts)
    offset = torch.arange(total, device=xa.device) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
    ib = order[start + offset]
    same = (xa[ia] == xb[ib]).all(1)
    return ia[same], ib[same]


class _PreviousPairs:
    """Context: the explicit engine finds coinciding pairs with :func:`previous_coinciding_pairs` and sums their
    term over the pair list (the library before grouping)."""

    def __enter__(self):
        self.saved = dispatch.coinciding_groups
        dispatch.coinciding_groups = lambda a, b: dense.CoincidingGroups(*previous_coinciding_pairs(a, b), ())
        return self

    def __exit__(self, *exc):
        dispatch.coinciding_groups = self.saved


def coinciding_benchmark(repeats: int, iterations: int) -> dict:
    """Forward scheme, B = 2000, width 128 x 3: ms per Adam iteration at the two-point start (grouped / previous
    pair list) and on spread points."""
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(2000, 2, generator=gen) - 0.5
    e = energies.DiscrepancyEnergy(Riesz(1.0), y)
    two = torch.zeros(2000, 2)
    two[:1000, 0], two[1000:, 0] = -1.0, 1.0
    spread = torch.rand(2000, 2, generator=gen) - 0.5
    ms = {"two points, grouped": float("inf"), "two points, previous": float("inf"), "spread points": float("inf")}
    for _ in range(repeats):
        ms["two points, grouped"] = min(ms["two points, grouped"], time_iterations(
            "forward", e, two, width=128, hidden_layers=3, batch=2000, iterations=iterations))
        with _PreviousPairs():
            ms["two points, previous"] = min(ms["two points, previous"], time_iterations(
                "forward", e, two, width=128, hidden_layers=3, batch=2000, iterations=iterations))
        ms["spread points"] = min(ms["spread points"], time_iterations(
            "forward", e, spread, width=128, hidden_layers=3, batch=2000, iterations=iterations))
    return ms


# ------------------------------------------------------------------------------------------------
# timing
# ------------------------------------------------------------------------------------------------

class _Patched:
    """An energy whose batch methods are replaced by a reference implementation."""

    def __init__(self, energy, estimate, derivative):
        self.energy, self.estimate, self.derivative = energy, estimate, derivative

    def batch_estimate(self, x1, x2):
        return self.estimate(self.energy, x1, x2)

    def batch_directional_derivative(self, x1, u1, x2, u2):
        return self.derivative(self.energy, x1, u1, x2, u2)


def time_iterations(scheme, energy, x, *, width, hidden_layers, batch, iterations, seed=0, engine="auto"):
    """Milliseconds per Adam iteration of ``train_backward``/``train_forward`` (one run)."""
    best = float("inf")
    for _ in range(1):
        gen = torch.Generator(device=x.device).manual_seed(seed)
        cfg = neural.NeuralBackwardConfig(width=width, hidden_layers=hidden_layers)
        net = neural.make_network(x.shape[1], cfg, device=x.device, generator=gen)
        opt = neural.make_optimizer(net, cfg)
        t0 = time.perf_counter()
        if scheme == "backward":
            neural.train_backward(net, opt, energy, x, 0.05, iterations=iterations, batch_size=batch, generator=gen,
                                  engine=engine)
        else:
            neural.train_forward(net, opt, energy, x, iterations=iterations, batch_size=batch, generator=gen,
                                 engine=engine)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / iterations * 1e3)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--only", choices=("interaction", "image", "b6000", "coinciding"), default=None,
                   help="one setting only")
    p.add_argument("--library-only", action="store_true", help="time the library's default engine only")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    its = 50 if args.quick else 300
    gen = torch.Generator().manual_seed(0)
    settings = []
    # interaction setting (paper Sec. 6.1): d = 2, B = 100, width 64 x 2, particles spread out (t > 0)
    dev = torch.device(args.device)
    x_int = 0.3 * torch.randn(2000, 2, generator=gen)
    settings.append(("interaction, d=2, B=100, 64x2", energies.InteractionEnergy(Riesz(1.0)), x_int.to(dev), 64, 2,
                     100, its))
    # image setting (chapter 4): 2000 particles, 2000 targets, B = 2000, width 128 x 5
    y_img = torch.rand(2000, 2, generator=gen) - 0.5
    x_img = torch.rand(2000, 2, generator=gen) - 0.5
    settings.append(("image, d=2, M=2000, B=2000, 128x5", energies.DiscrepancyEnergy(Riesz(1.0), y_img.to(dev)),
                     x_img.to(dev), 128, 5, 2000, max(5, its // 20) if dev.type == "cpu" else its))
    if args.only:
        settings = [st for st in settings if st[0].startswith(args.only)]
    load = os.getloadavg()[0]
    if args.only in (None, "coinciding"):
        n_it = 5 if args.quick else 20
        ms = coinciding_benchmark(args.repeats, n_it)
        print(f"forward scheme, B = 2000, 128 x 3, best of {args.repeats} x {n_it} iterations, load {load:.2f}:")
        for k, v in ms.items():
            print(f"  {k:<22} {v:9.1f} ms/iteration")
        print(f"  previous / grouped at the two-point start: {ms['two points, previous'] / ms['two points, grouped']:.2f}"
              f"; grouped two-point / spread: {ms['two points, grouped'] / ms['spread points']:.2f}", flush=True)
    if args.only in (None, "b6000"):
        gen6 = torch.Generator().manual_seed(1)
        e6 = energies.DiscrepancyEnergy(Riesz(1.0), (torch.rand(6000, 2, generator=gen6) - 0.5).to(dev))
        x6 = (torch.rand(6000, 2, generator=gen6) - 0.5).to(dev)
        n_it = 2 if args.quick else 5
        for batch in (6000, 1000):
            for scheme in ("backward", "forward"):
                best = min(time_iterations(scheme, e6, x6, width=128, hidden_layers=3, batch=batch, iterations=n_it)
                           for _ in range(args.repeats))
                print(f"Max und Moritz size, N = M = 6000, B = {batch}, 128 x 3, {scheme}: {best:9.1f} ms/iteration "
                      f"(best of {args.repeats} x {n_it}, load {os.getloadavg()[0]:.2f})", flush=True)
    if args.only in ("coinciding", "b6000"):
        return 0
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {load:.2f}; "
          f"best of {args.repeats} runs; ms per Adam iteration")
    head = (f"{'setting':<36} {'scheme':<9} {'library':>9} {'lib-ag':>9} {'previous':>9} {'autograd':>9} "
            f"{'ag/lib':>8} {'prev/lib':>8}")
    print(head)
    print("-" * len(head))
    library_ms = {}
    for name, energy, x, width, layers, batch, n_it in settings:
        for scheme in ("backward", "forward"):
            variants = {"library": (energy, "auto")} if args.library_only else {"library": (energy, "auto"), "lib-ag": (energy, "autograd"),
                        "previous": (_Patched(energy, previous_batch_estimate, previous_directional_derivative), "auto"),
                        "autograd": (_Patched(energy, autograd_batch_estimate, autograd_directional_derivative), "auto")}
            ms = dict.fromkeys(variants, float("inf"))
            for _ in range(args.repeats):      # interleaved, so that a change of the machine's load hits all variants
                for k, (e, engine) in variants.items():
                    ms[k] = min(ms[k], time_iterations(scheme, e, x, width=width, hidden_layers=layers, batch=batch,
                                                       iterations=n_it, engine=engine))
            library_ms[name, scheme] = ms["library"]
            ms = {k: ms.get(k, float("nan")) for k in ("library", "lib-ag", "previous", "autograd")}
            print(f"{name:<36} {scheme:<9} {ms['library']:9.3f} {ms['lib-ag']:9.3f} {ms['previous']:9.3f} "
                  f"{ms['autograd']:9.3f} {ms['autograd'] / ms['library']:8.2f} {ms['previous'] / ms['library']:8.2f}",
                  flush=True)
        print(f"{name:<36} forward / backward (library): {library_ms[name, 'forward'] / library_ms[name, 'backward']:.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
