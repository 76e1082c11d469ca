"""Input validation shared by every module.

The checks raise ``ValueError``/``TypeError`` with messages that name the offending
argument and value, so that a reader who passes a wrong shape, a NaN or an
out-of-range parameter learns what to fix.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

__all__ = [
    "check_points",
    "check_weights",
    "check_same_space",
    "check_positive",
    "check_riesz_exponent",
    "check_int",
    "check_finite",
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


def check_finite(*named: tuple[torch.Tensor, str]) -> None:
    """Check that the ``(tensor, name)`` pairs hold only finite values, with one host synchronisation.

    The sum of the tensors' sums is finite exactly when no entry is NaN or infinite (up to an overflow of
    finite values, which sends every tensor to the entry-wise check of :func:`check_points`).
    """
    total = named[0][0].detach().sum()
    for t, _ in named[1:]:
        total = total + t.detach().sum()
    if math.isfinite(total.item()):
        return
    for t, name in named:
        check_points(t, name)


def check_same_space(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str] = ("x", "y")) -> None:
    """Check that two point clouds share dimension, dtype and device."""
    a, b = names
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{a} and {b} must have the same dimension d, got {x.shape[1]} and {y.shape[1]}")
    if x.dtype != y.dtype:
        raise TypeError(f"{a} and {b} must have the same dtype, got {x.dtype} and {y.dtype}")
    if x.device != y.device:
        raise ValueError(f"{a} and {b} must be on the same device, got {x.device} and {y.device}")


def check_weights(w, x: torch.Tensor, name: str = "w", *, atol: float | None = None) -> torch.Tensor:
    """Return probability weights for the points ``x``.

    ``None`` means uniform weights ``1/N``. Otherwise ``w`` must be a finite,
    non-negative ``(N,)`` tensor summing to one (within ``atol``), on the device
    and with the dtype of ``x``.
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
    tol = atol if atol is not None else (1e-4 if w.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-8)
    if abs(total - 1.0) > tol:
        raise ValueError(f"{name} must sum to one (probability weights), got sum {total:.6g}")
    return w


def check_positive(value, name: str) -> float:
    """A finite, strictly positive real number."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return value


def check_riesz_exponent(r) -> float:
    """The Riesz exponent ``r`` must lie in the open interval (0, 2)."""
    if isinstance(r, bool) or not isinstance(r, Real):
        raise TypeError(f"the Riesz exponent r must be a real number, got {r!r}")
    r = float(r)
    if not (0.0 < r < 2.0):
        raise ValueError(f"the Riesz exponent r must lie in (0, 2), got r={r!r}")
    return r


def check_int(value, name: str, minimum: int = 0) -> int:
    """An integer (``int`` or NumPy integer, not a bool) that is at least ``minimum``; returned as ``int``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    return int(value)
