"""mmdflow: Wasserstein gradient flows of MMD functionals with Riesz kernels.

The library behind the mmdflow book. Layers:

* :mod:`~mmdflow.kernels` (Riesz, Gaussian, inverse multiquadric, Laplace)
* :mod:`~mmdflow.summation` (kernel sums and their gradients: dense, blocked, sliced, KeOps backends)
* :mod:`~mmdflow.energies` (interaction / potential energy, discrepancy, MMD, Wasserstein gradients),
  :mod:`~mmdflow.functionals` (further functionals, e.g. Appendix F of Altekrüger et al.)
* schemes: :mod:`~mmdflow.flows` (particle flows), :mod:`~mmdflow.neural` (neural backward/forward
  schemes), :mod:`~mmdflow.wfr` (weighted particles: IFT, WFR, MMD flows)
* results: :mod:`~mmdflow.trajectory`, :mod:`~mmdflow.metrics`, :mod:`~mmdflow.plots`
* references: :mod:`~mmdflow.analytic` (flows from a Dirac), :mod:`~mmdflow.closed_forms`;
  data: :mod:`~mmdflow.data` (drawn 2D targets, images, MNIST)

Tensors are ``(N, d)`` point clouds with optional ``(N,)`` weights (``None`` = uniform); outputs keep the
inputs' dtype and device; randomness goes through an explicit ``torch.Generator``.
"""

from . import (analytic, closed_forms, data, energies, experiments, flows, functionals, kernels, metrics, neural,
               summation, trajectory, wfr)
from .device import default_device, for_profile
from .trajectory import Trajectory

__all__ = ["kernels", "summation", "energies", "functionals", "flows", "neural", "wfr", "experiments", "analytic", "closed_forms",
           "metrics", "data", "trajectory", "Trajectory", "default_device", "for_profile"]
__version__ = "0.1.0"
