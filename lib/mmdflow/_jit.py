"""numba kernels compiled twice, parallel and serial, and called according to torch's thread count.

A ``parallel=True`` kernel runs on numba's own OpenMP thread pool, sized at import time (one thread
per core), even after ``numba.set_num_threads(1)``. When another busy process shares the cores (two
chapters or two test workers on two cores), the idle pool threads then cost more than the work:
measured 18 ms against 66 ms per sliced MNIST gradient. With one torch thread the serial twin runs
instead (``prange`` is a plain ``range`` there) and the pool is never entered.
"""

from __future__ import annotations

import types

import torch

try:  # numba is optional: every caller has a pure-torch path
    import numba
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

__all__ = ["HAVE_NUMBA", "numba", "threaded", "sync_numba_threads"]

#: whether numba is importable (the compiled 1-D paths use it).
HAVE_NUMBA = numba is not None


def sync_numba_threads() -> None:
    """Let numba's parallel loops use as many threads as torch (e.g. one under ``OMP_NUM_THREADS=1``)."""
    if HAVE_NUMBA:
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def threaded(**options):
    """Decorator: compile ``fn`` with ``parallel=True`` and, as a separately cached twin, without.

    The returned callable runs the serial twin when torch uses one thread, else the parallel kernel
    with numba's thread count set to torch's. ``options`` go to :func:`numba.njit` (e.g. ``cache=True``).
    """
    def wrap(fn):
        twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__,
                                  fn.__closure__)
        twin.__qualname__ = fn.__qualname__ + "_serial"     # its own on-disk cache entry
        parallel = numba.njit(parallel=True, **options)(fn)
        serial = numba.njit(**options)(twin)

        def call(*args):
            if torch.get_num_threads() == 1:
                return serial(*args)
            sync_numba_threads()
            return parallel(*args)

        call.parallel, call.serial = parallel, serial
        call.__doc__, call.__name__ = fn.__doc__, fn.__name__
        return call

    return wrap
