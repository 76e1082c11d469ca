r"""The fast-summation studies of chapter 7: slicing error against directions, time against size, MMD per second.

* :func:`sliced_gradient_errors` -- relative error of the sliced Wasserstein gradient of
  :math:`\mathcal D_K^2` (Riesz ``r = 1``) against the exact one, for several direction rules and counts;
* :func:`time_backends` -- median wall time of one value-and-gradient evaluation against ``N = M`` per backend;
* :func:`flow_merit` -- the exact :math:`\mathrm{MMD}^2` of a particle flow against the wall time of its steps.

The 2-D data are the book's two-Gaussian target (:func:`two_gaussians`); in ``d = 784`` uniform noise flows to
MNIST digits.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..flows import ParticleFlowConfig, particle_flow
from ..kernels import Riesz
from ..runtime import timed
from ..summation import kernel_sum_and_grad, kernel_sum_grad
from ..summation.sliced import sliced_discrepancy_and_gradient

__all__ = ["two_gaussians", "exact_gradient", "sliced_gradient_errors", "one_evaluation", "time_backends",
           "flow_merit"]

_K = Riesz(1.0)


def two_gaussians(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points ``[n, 2]`` (float32) of the equal mixture of N((2, 0), 0.3^2 I) and N((-1, 1.5), 0.3^2 I)."""
    comp = torch.rand(n, generator=generator) < 0.5
    return torch.randn(n, 2, generator=generator) * 0.3 + torch.where(comp[:, None], torch.tensor([2.0, 0.0]),
                                                                     torch.tensor([-1.0, 1.5]))


def exact_gradient(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The exact Wasserstein gradient ``[N, d]`` of :math:`\mathcal D_K^2(\cdot, \nu)`, Riesz ``r = 1``, uniform
    weights (blocked, in float64, returned in float32)."""
    xd, yd = x.double(), y.double()
    return (kernel_sum_grad(xd, xd, _K, backend="blocked") - kernel_sum_grad(xd, yd, _K, backend="blocked")).float()


def sliced_gradient_errors(x: torch.Tensor, y: torch.Tensor, rules: Sequence[str], ps: Sequence[int], *,
                           repeats: int = 3, seed: int = 0) -> dict[str, tuple[list[int], list[float]]]:
    r"""Root-mean-square relative error :math:`\|g_P - g\|/\|g\|` of the sliced gradient over ``repeats`` draws.

    One generator seeded ``seed`` per rule, so that every rule sees its own fixed stream. Returns
    ``{rule: (ps, errors)}``.
    """
    exact = exact_gradient(x, y)
    out = {}
    for rule in rules:
        gen = torch.Generator().manual_seed(seed)
        errs = []
        for p in ps:
            sq = [float(((sliced_discrepancy_and_gradient(x, y, n_directions=p, directions=rule, generator=gen,
                                                           want_value=False)[1] - exact).norm() / exact.norm()) ** 2)
                  for _ in range(repeats)]
            errs.append(math.sqrt(sum(sq) / repeats))
        out[rule] = (list(ps), errs)
    return out


def one_evaluation(backend, x: torch.Tensor, y: torch.Tensor, *, seed: int = 0) -> None:
    """One value-and-gradient evaluation of :math:`\\mathcal D_K^2` (without the target term): ``"dense"``,
    ``"blocked"``, or ``(rule, P)`` for the sliced backend (in the ambient space)."""
    if backend in ("dense", "blocked"):
        kernel_sum_and_grad(x, x, _K, backend=backend)
        kernel_sum_and_grad(x, y, _K, backend=backend)
    else:
        rule, p = backend
        sliced_discrepancy_and_gradient(x, y, n_directions=p, directions=rule, subspace=False,
                                        generator=torch.Generator().manual_seed(seed))


def time_backends(d: int, sizes: Sequence[int], backends, *, digits: torch.Tensor | None = None, seed: int = 0,
                  device=None, repeats: int = 5) -> dict[str, tuple[list[int], list[float]]]:
    """Median seconds of :func:`one_evaluation` over ``repeats`` runs against ``N = M`` for each
    ``(label, backend, largest N)``.

    ``d = 2``: standard normal particles against :func:`two_gaussians`; otherwise uniform particles in
    ``[0, 1]^d`` against ``digits`` ``[K, d]`` (cycled). One warm-up call at ``N = 50`` per size, then ``repeats``
    timed calls on the same points (:func:`mmdflow.runtime.timed`: on a GPU the clock waits for the kernels); the
    median is robust to the pauses of a shared machine. Returns
    ``{label: (sizes, median seconds)}``.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for label, backend, n_max in backends:
        ns, ts = [], []
        for n in [n for n in sizes if n <= n_max]:
            x = (torch.randn(n, 2, generator=gen) if d == 2 else torch.rand(n, d, generator=gen)).to(device)
            y = (two_gaussians(n, gen) if d == 2 else digits[torch.arange(n) % len(digits)]).to(device)
            one_evaluation(backend, x[:50], y[:50], seed=seed)            # warm-up
            runs = [timed(lambda: one_evaluation(backend, x, y, seed=seed), device=x.device)[1]
                    for _ in range(repeats)]
            ns.append(n)
            ts.append(float(np.median(runs)))
        out[label] = (ns, ts)
    return out


def flow_merit(energy, exact, x0: torch.Tensor, *, tau: float, n_steps: int) -> tuple[np.ndarray, np.ndarray, float]:
    r"""A particle flow of ``energy`` and the exact :math:`\mathrm{MMD}^2 = 2\mathcal D_K^2` (``exact.value``) of
    about four snapshots against the wall time of the steps before them (every step costs the same).

    Returns ``(wall seconds [S], MMD^2 [S], total seconds)``.
    """
    cfg = ParticleFlowConfig(tau=tau, n_steps=n_steps, snapshot_every=max(1, n_steps // 4))
    tr = particle_flow(energy, x0, cfg, progress=False)
    steps = np.round(tr.times.numpy() / tau)
    wall = tr.wall_time * steps / n_steps
    with torch.no_grad():
        mmd = np.array([2 * float(exact.value(p)) for p in tr.positions])
    return wall, mmd, tr.wall_time
