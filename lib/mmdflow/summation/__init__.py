r"""Kernel sums and their gradients, the operation every flow of the book spends its time in.

Layers (each imports only those below it; no backend imports the dispatcher):

* :mod:`.dispatch` -- :class:`Backend`, :data:`BACKENDS`, ``auto``, :func:`kernel_sum`,
  :func:`kernel_sum_grad`, :func:`kernel_sum_and_grad`, :func:`directional_derivative`;
* the backends :mod:`.dense` (the reference, and :func:`kernel_matrix`), :mod:`.blocked`,
  :mod:`.sliced` (Riesz ``r = 1``), :mod:`.keops` (optional);
* :mod:`.directions` (direction rules, :func:`span_basis`) and :mod:`.sort1d` (the 1-D sorting engine)
  below the sliced backend.
"""

from . import blocked, dense, directions, dispatch, sliced, sort1d
from .dense import kernel_matrix
from .dispatch import (BACKENDS, BLOCK_ELEMS, DENSE_LIMIT, KEOPS_MIN_PAIRS, Backend, available_backends, backends_for,
                       choose_backend, directional_derivative, double_sum, kernel_sum, kernel_sum_and_grad, kernel_sum_grad,
                       pair_sum_and_grads, register_backend)

__all__ = ["kernel_sum", "kernel_sum_grad", "kernel_sum_and_grad", "double_sum", "directional_derivative", "pair_sum_and_grads", "kernel_matrix", "Backend", "BACKENDS",
           "register_backend", "available_backends", "backends_for", "choose_backend", "DENSE_LIMIT", "BLOCK_ELEMS",
           "KEOPS_MIN_PAIRS", "dispatch", "dense", "blocked", "sliced", "directions", "sort1d"]
