"""Input validation shared by every module.

The checks raise ``ValueError``/``TypeError`` with messages that name the offending
argument and value, so that a reader who passes a wrong shape, a NaN or an
out-of-range parameter learns what to fix.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from numbers import Integral, Real

import torch

__all__ = [
    "check_points",
    "check_weights",
    "check_same_space",
    "check_clouds",
    "check_positive",
    "check_riesz_exponent",
    "check_int",
    "check_finite",
    "check_float_dtype",
    "MEMORY_BUDGET",
    "MEMORY_FRACTION",
    "MemoryBudgetError",
    "memory_budget",
    "check_memory",
    "check_pairs_memory",
]


def check_points(x, name: str = "x", *, finite: bool = True) -> torch.Tensor:
    """Validate a point cloud: a floating ``(N, d)`` tensor, non-empty, finite.

    Args:
        x: the points, shape ``[N, d]``.
        name: the argument's name, used in error messages.
        finite: also check that every entry is finite (``False``: the caller checks it, e.g. with
            :func:`check_finite` for several clouds at once).

    Returns:
        ``x`` unchanged.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, d), got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (N, d), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    if not finite:
        return x
    # One sum reduction (it propagates NaN and inf) clears valid inputs with one host synchronisation, as fast
    # as a memory pass (0.02 s at 1e5 x 784, where isfinite().all() takes 0.6 s); an overflowing sum of finite
    # values only sends the input to the full check below.
    if math.isfinite(x.detach().sum().item()):
        return x
    if not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise ValueError(f"{name} contains a non-finite value {x[bad[0], bad[1]].item()} at index {tuple(bad)}")
    return x


def _square_sum(t: torch.Tensor) -> torch.Tensor:
    """``sum(t**2)`` in one pass without a temporary (a BLAS dot): NaN when an entry is NaN, inf when one is
    infinite or when the squares overflow."""
    flat = t.detach().reshape(-1)
    return torch.dot(flat, flat) if flat.dtype in (torch.float32, torch.float64) else (flat * flat).sum()


def check_finite(*named: tuple[torch.Tensor, str]) -> None:
    r"""Check that the ``(tensor, name)`` pairs hold only finite values of a safe size, with one host synchronisation.

    The sum of the tensors' squared entries is finite exactly when no entry is NaN or infinite and no square
    overflows. Otherwise each tensor is checked entry by entry (:func:`check_points`) and then for its size: a
    point cloud whose entries reach :math:`\sqrt{\max/(4d)}` (``max`` the largest number of its dtype,
    ``6.5e18`` for float32 in ``d = 2``) can have squared distances :math:`\|x_i - y_j\|^2 \le 4d\max_k|x_k|^2`
    that overflow to ``inf``, which would turn kernel sums into ``-inf`` and gradients into zeros.

    Args:
        *named: ``(tensor, name)`` pairs; the names appear in the messages.

    Raises:
        ValueError: a tensor holds a non-finite value or entries large enough for squared distances to overflow.
    """
    total = _square_sum(named[0][0])
    for t, _ in named[1:]:
        total = total + _square_sum(t)
    if math.isfinite(total.item()):
        return
    for t, name in named:
        check_points(t, name)
    for t, name in named:
        big = float(t.detach().abs().max())
        limit = torch.finfo(t.dtype).max
        if 4.0 * t.shape[1] * big * big > limit:
            raise ValueError(f"{name} has entries as large as {big:.3g}: in {t.dtype} its squared distances can reach "
                             f"4 d max|{name}|^2 = {4.0 * t.shape[1] * big * big:.3g}, beyond the largest {t.dtype} "
                             f"number {limit:.3g}, and overflow to inf; rescale the points or use float64")


def check_same_space(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str] = ("x", "y")) -> None:
    """Check that two point clouds share dimension, dtype and device.

    Args:
        x: points ``[N, d]``.
        y: points ``[M, d']``.
        names: the names used in the messages.

    Raises:
        ValueError: the dimensions or the devices differ.
        TypeError: the dtypes differ.
    """
    a, b = names
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{a} and {b} must have the same dimension d, got {x.shape[1]} and {y.shape[1]}")
    if x.dtype != y.dtype:
        raise TypeError(f"{a} and {b} must have the same dtype, got {x.dtype} and {y.dtype}")
    if x.device != y.device:
        raise ValueError(f"{a} and {b} must be on the same device, got {x.device} and {y.device}")


def check_clouds(x, y, *, finite: bool = True) -> None:
    """Check two point clouds ``x`` ``[N, d]`` and ``y`` ``[M, d]`` of one space: :func:`check_points` of each (named
    ``x`` and ``y`` in the messages), then :func:`check_same_space`.

    Args:
        x: points ``[N, d]``.
        y: points ``[M, d]``.
        finite: as in :func:`check_points`.

    Raises:
        TypeError: a cloud is not a floating tensor, or the dtypes differ.
        ValueError: a cloud is not a non-empty ``[*, d]`` tensor (or, with ``finite``, not finite), or the dimensions
            or devices differ.
    """
    check_points(x, "x", finite=finite)
    check_points(y, "y", finite=finite)
    check_same_space(x, y)


_LOW_PRECISION = (torch.float16, torch.bfloat16, torch.float32)
#: tolerance on the sum of weights given in (or normalised in) float32 or lower precision
_LOW_PRECISION_ATOL = 1e-4


def check_weights(w, x: torch.Tensor, name: str = "w", *, atol: float | None = None) -> torch.Tensor:
    """Return probability weights for the points ``x``.

    ``None`` means uniform weights ``1/N``. Otherwise ``w`` must be a finite,
    non-negative ``(N,)`` tensor summing to one (within ``atol``), on the device
    and with the dtype of ``x``. The default tolerance is ``1e-4`` for float32 and lower precisions and
    ``1e-8`` for float64, except for float64 weights whose every entry is a float32 number (weights normalised
    in float32, then cast), which get the float32 tolerance.

    Args:
        w: weights ``[N]`` or ``None``.
        x: the points ``[N, d]`` they weight.
        name: the name used in the messages.
        atol: the tolerance on the sum, or ``None`` (the default above).

    Returns:
        ``[N]`` tensor, dtype and device of ``x``.

    Raises:
        TypeError: ``w`` is not a tensor, or has another dtype or device than ``x``.
        ValueError: ``w`` has the wrong shape, a non-finite or negative entry, or does not sum to one.
    """
    n = x.shape[0]
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=x.dtype, device=x.device)
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape ({n},) or None, got {type(w).__name__}")
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the points, got {tuple(w.shape)}")
    if w.dtype != x.dtype or w.device != x.device:
        raise TypeError(f"{name} must have the dtype and device of the points ({x.dtype}, {x.device}), "
                        f"got ({w.dtype}, {w.device})")
    wmin, total = torch.stack((w.detach().min(), w.detach().sum())).tolist()   # one synchronisation
    if not (math.isfinite(wmin) and math.isfinite(total)):
        raise ValueError(f"{name} contains a non-finite value")
    if wmin < 0:
        raise ValueError(f"{name} must be non-negative, got a weight {wmin:.3g}")
    if atol is not None:
        tol = atol
    elif w.dtype in _LOW_PRECISION:
        tol = _LOW_PRECISION_ATOL
    else:
        tol = 1e-8
        # weights normalised in float32 and then cast (every entry a float32 number) carry float32 rounding
        if tol < abs(total - 1.0) <= _LOW_PRECISION_ATOL and torch.equal(w.detach().to(torch.float32).to(w.dtype),
                                                                          w.detach()):
            tol = _LOW_PRECISION_ATOL
    if abs(total - 1.0) > tol:
        raise ValueError(f"{name} must sum to one (probability weights), got sum {total!r} "
                         f"(off by {total - 1.0:.3g}, tolerance {tol:g})")
    return w


def check_positive(value, name: str) -> float:
    """A finite, strictly positive real number.

    Args:
        value: the value to check.
        name: the name used in the error message.

    Returns:
        ``value`` as a float.

    Raises:
        TypeError: ``value`` is not a real number (or is a bool).
        ValueError: ``value`` is not finite or not positive.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return value


def check_riesz_exponent(r) -> float:
    """The Riesz exponent ``r`` must lie in the open interval (0, 2).

    Args:
        r: the exponent.

    Returns:
        ``r`` as a float.

    Raises:
        TypeError: ``r`` is not a real number (or is a bool).
        ValueError: ``r`` is outside :math:`(0, 2)`.
    """
    if isinstance(r, bool) or not isinstance(r, Real):
        raise TypeError(f"the Riesz exponent r must be a real number, got {r!r}")
    r = float(r)
    if not (0.0 < r < 2.0):
        raise ValueError(f"the Riesz exponent r must lie in (0, 2), got r={r!r}")
    return r


def check_int(value, name: str, minimum: int = 0) -> int:
    """An integer (``int`` or NumPy integer, not a bool) that is at least ``minimum``; returned as ``int``.

    Args:
        value: the value to check.
        name: the name used in the error message.
        minimum: the least allowed value.

    Returns:
        ``value`` as an int.

    Raises:
        TypeError: ``value`` is not an integer (or is a bool).
        ValueError: ``value < minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    return int(value)


def check_float_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """A floating ``torch.dtype`` (an integer dtype would truncate coordinates and intensities to integers).

    Args:
        dtype: the dtype to check.
        name: the name used in the error message.

    Returns:
        ``dtype``.

    Raises:
        TypeError: ``dtype`` is not a floating ``torch.dtype``.
    """
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name} must be a floating torch.dtype such as torch.float32, got {name}={dtype!r}")
    if not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating torch.dtype (torch.float32, torch.float64, ...), got {name}={dtype}: "
                        "an integer dtype would truncate the values")
    return dtype


# ------------------------------------------------------------------------------------------------ memory guards

#: fraction of the machine's memory (of the GPU's for CUDA tensors) that one O(N M) allocation may use.
MEMORY_FRACTION = 0.5
#: the budget in bytes of one O(N M) allocation; ``None``: the environment variable ``MMDFLOW_MEMORY_BUDGET``
#: (bytes, or a number with a suffix ``K``, ``M``, ``G``, ``T``) when set, else :data:`MEMORY_FRACTION` of the
#: machine's memory.
MEMORY_BUDGET: int | None = None

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class MemoryBudgetError(MemoryError):
    """An O(N M) allocation would exceed the memory budget (:func:`memory_budget`)."""


def _human(n_bytes: float) -> str:
    if n_bytes < 1024:
        return f"{n_bytes:.0f} B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.3g} PiB"  # pragma: no cover


@lru_cache(maxsize=None)
def _machine_memory(device_type: str, index: int | None) -> int:
    """Total memory of the GPU (CUDA) or of this machine, capped by a cgroup (container) limit when there is one."""
    if device_type == "cuda":
        return int(torch.cuda.get_device_properties(index if index is not None else torch.cuda.current_device())
                   .total_memory)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(limit_file).read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return int(total)


def _parse_bytes(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1] if t and t[-1] in _UNITS else ""
    try:
        value = float(t[:-1] if unit else t)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"MMDFLOW_MEMORY_BUDGET must be a positive number of bytes (optionally with a suffix K, M, G "
                         f"or T), got {text!r}")
    return int(value * _UNITS[unit])


def memory_budget(device=None) -> tuple[int, str]:
    """The budget in bytes of one O(N M) allocation on ``device`` and where it comes from (for messages).

    In order: :data:`MEMORY_BUDGET` when set, the environment variable ``MMDFLOW_MEMORY_BUDGET``,
    :data:`MEMORY_FRACTION` of the device's memory (the machine's for the CPU).

    Args:
        device: a device (or its name), or ``None`` (the CPU).

    Returns:
        ``(n_bytes, source)``: the budget and a description of where it comes from.

    Raises:
        ValueError: ``MMDFLOW_MEMORY_BUDGET`` is not a positive number of bytes.
    """
    if MEMORY_BUDGET is not None:
        return int(MEMORY_BUDGET), "mmdflow._checks.MEMORY_BUDGET"
    env = os.environ.get("MMDFLOW_MEMORY_BUDGET")
    if env:
        return _parse_bytes(env), f"MMDFLOW_MEMORY_BUDGET={env}"
    device = torch.device(device if device is not None else "cpu")
    total = _machine_memory(device.type, device.index)
    return int(MEMORY_FRACTION * total), f"{MEMORY_FRACTION:g} of the {_human(total)} of {device.type} memory"


def check_memory(n_bytes: float, what: str, *, device=None, instead: str) -> None:
    """Raise :class:`MemoryBudgetError` when ``what`` would allocate more than :func:`memory_budget` bytes.

    The message names the size, the budget and ``instead``: what to use instead.

    Args:
        n_bytes: the size of the allocation.
        what: what would be allocated, for the message.
        device: the device, or ``None`` (the CPU).
        instead: what to use instead, for the message.

    Raises:
        MemoryBudgetError: ``n_bytes`` exceeds the budget.
    """
    budget, source = memory_budget(device)
    if n_bytes > budget:
        raise MemoryBudgetError(f"{what} would allocate about {_human(n_bytes)}, above the memory budget of "
                                f"{_human(budget)} ({source}); use {instead} instead, or raise the budget "
                                "(mmdflow._checks.MEMORY_BUDGET or the environment variable MMDFLOW_MEMORY_BUDGET)")


#: what to use instead of a dense O(N M) kernel computation.
BLOCKED_INSTEAD = "backend='blocked' (exact, memory-bounded row blocks) or backend='keops'"


def check_pairs_memory(x: torch.Tensor, y: torch.Tensor, per_pair: float, what: str, *,
                       instead: str = BLOCKED_INSTEAD) -> None:
    """:func:`check_memory` for ``per_pair`` numbers of the dtype of ``x`` for each of the ``N x M`` pairs of
    ``x`` ``[N, d]`` and ``y`` ``[M, d]``.

    Args:
        x: points ``[N, d]``.
        y: points ``[M, d]``.
        per_pair: numbers of ``x``'s dtype allocated per pair.
        what: what would be allocated, for the message.
        instead: what to use instead, for the message.

    Raises:
        MemoryBudgetError: the allocation exceeds the budget.
    """
    n, m = x.shape[0], y.shape[0]
    n_bytes = float(n) * float(m) * per_pair * x.element_size()
    if n_bytes > 2**24:   # below 16 MiB: no need to look up the budget
        check_memory(n_bytes, f"{what} for {n} x {m} points in d={x.shape[1]} ({x.dtype})", device=x.device,
                     instead=instead)
