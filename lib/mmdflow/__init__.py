"""mmdflow: Wasserstein gradient flows of MMD functionals with Riesz kernels.

The library behind the mmdflow book. Layers: :mod:`~mmdflow.kernels` ->
:mod:`~mmdflow.summation` -> :mod:`~mmdflow.energies` -> schemes -> results.
Tensors are ``(N, d)`` point clouds with optional ``(N,)`` weights (``None`` =
uniform); outputs keep the inputs' dtype and device; randomness goes through
an explicit ``torch.Generator``.
"""

from . import energies, kernels, summation
from .device import default_device, for_profile

__all__ = ["kernels", "summation", "energies", "default_device", "for_profile"]
__version__ = "0.1.0"
