"""mmdflow: Wasserstein gradient flows of MMD functionals with Riesz kernels.

The library behind the mmdflow book. Layers:

* :mod:`~mmdflow.kernels` (Riesz, Gaussian, inverse multiquadric, Laplace)
* :mod:`~mmdflow.summation` (kernel sums and their gradients: a dispatcher above the dense, blocked,
  sliced and KeOps backends)
* :mod:`~mmdflow.energies` (interaction / potential energy, discrepancy, MMD, their Wasserstein gradients
  and the two-batch estimates of the neural schemes), :mod:`~mmdflow.functionals` (Appendix F),
  :mod:`~mmdflow.simplex` (the simplex QPs of the weight steps)
* schemes, siblings that share :mod:`~mmdflow.trajectory` (the one step loop): :mod:`~mmdflow.flows`
  (particle flows), :mod:`~mmdflow.neural` (neural backward/forward schemes), :mod:`~mmdflow.wfr`
  (weighted particles: IFT, WFR, MMD flows); :mod:`~mmdflow.schemes` (the registry: one record and one
  ``run(energy, x0, config, ...)`` interface per scheme)
* references and measures: :mod:`~mmdflow.analytic` (flows from a Dirac), :mod:`~mmdflow.closed_forms`,
  :mod:`~mmdflow.metrics`; data: :mod:`~mmdflow.data` (drawn 2D targets, images, MNIST, mixtures)
* :mod:`~mmdflow.experiments` (the chapters' runs: schemes + metrics + data) and :mod:`~mmdflow.plots`

Tensors are ``(N, d)`` point clouds with optional ``(N,)`` weights (``None`` = uniform); outputs keep the
inputs' dtype and device; randomness goes through an explicit ``torch.Generator``.
"""

from . import (analytic, closed_forms, data, energies, experiments, flows, functionals, kernels, metrics, neural,
               schemes, simplex, summation, trajectory, wfr)
from .runtime import default_device, for_profile
from .trajectory import Trajectory

__all__ = ["kernels", "summation", "energies", "functionals", "simplex", "flows", "neural", "wfr", "schemes", "experiments", "analytic", "closed_forms",
           "metrics", "data", "trajectory", "Trajectory", "default_device", "for_profile"]
#: the version of the library and of the book (the one place it is written; lib/pyproject.toml reads it)
__version__ = "0.1.0"
