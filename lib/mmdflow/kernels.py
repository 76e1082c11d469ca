r"""Radial kernels :math:`K(x, y) = \phi(\|x - y\|^2)`.

Every kernel is a small frozen object holding its parameter. Calling it on
``x`` of shape ``[N, d]`` and ``y`` of shape ``[M, d]`` returns the kernel
matrix ``[N, M]``. The library works with the profile as a function of the
*squared* distance ``s = |x - y|^2``:

* :meth:`RadialKernel.profile` returns :math:`\phi(s)`,
* :meth:`RadialKernel.dprofile` returns :math:`\phi'(s)`, so that
  :math:`\nabla_x K(x, y) = 2\,\phi'(\|x-y\|^2)\,(x - y)`.

Kernels that are not differentiable at coinciding points (Riesz with
``r <= 1``, Laplace) use the convention of Altekrüger et al. (2023): a pair of
coinciding points exerts no force, i.e. ``dprofile(0) = 0``. The profile is
written so that autograd through it never produces NaN at ``s = 0``.

A kernel is one class: the profile, its derivative, the slope at 0 and the fast forms the backends use
(:meth:`RadialKernel.fast_form`) are defined on it, and a backend never asks ``isinstance``.

Riesz kernel (Altekrüger, Hertrich, Steidl 2023, Sec. 2):
:math:`K(x, y) = -\|x - y\|^r` with :math:`r \in (0, 2)`; it is conditionally
positive definite, so the discrepancy :math:`\mathcal D_K` is a metric.

The distance routines are in :mod:`mmdflow.distances` (their names are exported here too).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from ._checks import (check_finite, check_pairs_memory, check_points, check_positive, check_riesz_exponent,
                      check_same_space)
from .distances import EXPLICIT_DIFF_MAX_D, centred, pairwise_squared_distances, squared_distances

__all__ = [
    "RadialKernel",
    "Riesz",
    "Gaussian",
    "InverseMultiquadric",
    "Laplace",
    "zero_slope",
    "riesz_exponent",
    "check_bandwidth",
    "SIGMA_RANGE",
    "FAST_FORMS",
    "SUPPORTED_DTYPES",
    "check_kernel_dtype",
    "squared_distances",
    "pairwise_squared_distances",
    "centred",
    "EXPLICIT_DIFF_MAX_D",
]

#: the dtypes kernel sums accept: half precision (float16, bfloat16) has too few digits for the distances and sums
#: of the book (and several backends cannot run it), so it is refused by name rather than half supported.
SUPPORTED_DTYPES = (torch.float32, torch.float64)


def check_kernel_dtype(x: torch.Tensor, name: str = "x") -> None:
    """Refuse points whose dtype is not in :data:`SUPPORTED_DTYPES`, naming it.

    Args:
        x: points of any shape.
        name: the name used in the error message.

    Raises:
        TypeError: ``x`` is a floating-point tensor of a dtype other than float32 or float64.
    """
    if x.is_floating_point() and x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} has dtype {x.dtype}: kernel sums need float32 or float64 points (half precision "
                        f"is not supported by the backends); convert with {name}.float()")


def _check_pair(x, y, per_coordinate: int, what: str) -> None:
    """Two finite point clouds of one space whose ``N x M x (per_coordinate d + 3)`` temporaries fit the memory
    budget (:func:`mmdflow._checks.memory_budget`)."""
    check_points(x, "x", finite=False)
    check_points(y, "y", finite=False)
    check_kernel_dtype(x, "x")
    check_kernel_dtype(y, "y")
    check_same_space(x, y)
    check_finite((x, "x"), (y, "y"))
    check_pairs_memory(x, y, per_coordinate * x.shape[1] + 3, what, instead="mmdflow.summation.kernel_sum / kernel_sum_grad with "
                       "backend='blocked' (memory-bounded sums), or mmdflow.summation.kernel_matrix (no [N, M, d] "
                       "tensor)")


def _safe_pow(s: torch.Tensor, p: float) -> torch.Tensor:
    """``s ** p`` for ``s >= 0`` with value 0 and gradient 0 where ``s == 0``."""
    pos = s > 0
    return torch.where(pos, torch.where(pos, s, torch.ones_like(s)) ** p, torch.zeros_like(s))


#: the bandwidths a kernel accepts: ``sigma^2`` and ``1/sigma^2`` stay normal numbers in float32 (and float64),
#: so every backend (torch, the compiled loops, KeOps) evaluates the profile without overflow or a 0/0.
SIGMA_RANGE = (1e-18, 1e18)


def check_bandwidth(sigma, name: str = "sigma") -> float:
    """A bandwidth in :data:`SIGMA_RANGE` (finite and positive, and not so extreme that ``sigma**2`` or its inverse
    leaves the float32 range).

    Args:
        sigma: the bandwidth :math:`\\sigma` (a number).
        name: the name used in the error message.

    Returns:
        ``sigma`` as a float.

    Raises:
        ValueError: ``sigma`` is not finite and positive, or lies outside :data:`SIGMA_RANGE`.
    """
    sigma = check_positive(sigma, name)
    lo, hi = SIGMA_RANGE
    if not lo <= sigma <= hi:
        raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}] ({name}^2 and its inverse must be normal float32 "
                         f"numbers), got {name}={sigma!r}; rescale the data instead")
    return sigma


#: the optional per-backend forms a kernel class may define (see :meth:`RadialKernel.fast_form`).
FAST_FORMS = ("slope_at_zero", "compiled_form", "keops_formula", "riesz_exponent")


def _owner(cls: type, name: str) -> type | None:
    """The class of ``cls``'s MRO whose ``__dict__`` defines ``name`` (``None``: nowhere)."""
    return next((c for c in cls.__mro__ if name in c.__dict__), None)


@functools.lru_cache(maxsize=None)
def _form_applies(cls: type, name: str) -> bool:
    """The form ``name`` is defined on ``cls`` by the class that defines its profile and derivative, or below it."""
    owner = _owner(cls, name)
    return owner is not None and all(issubclass(owner, _owner(cls, m)) for m in ("profile", "dprofile"))


class RadialKernel:
    r"""Base class of the radial kernels :math:`K(x, y) = \phi(\|x - y\|^2)`: one class holds everything a backend needs.

    A kernel class must define the torch profile :meth:`profile` :math:`\phi(s)` and its derivative
    :meth:`dprofile` :math:`\phi'(s)` (with ``0`` at ``s = 0`` where :math:`\phi` is singular, and no NaN under
    autograd at ``s = 0``): with these two the generic paths of every exact backend (``dense``, ``blocked``)
    evaluate it. It may define, for the backends that have a faster form:

    * ``slope_at_zero(self) -> float``: the one-sided slope :math:`c` with
      :math:`K(0, t w) = K(0, 0) + c\,t\|w\| + o(t)` (needed when ``singular_at_zero``; 0 otherwise);
    * ``compiled_form(self) -> (name, parameter)``: the formula of the compiled low-dimensional loop
      (:data:`mmdflow.summation.fused.FORMULAS`) and its parameter;
    * ``keops_formula(self, sq) -> (phi, dphi)``: the profile and its derivative on KeOps' symbolic squared
      distances (the ``keops`` backend refuses a kernel without it);
    * ``riesz_exponent(self) -> float``: for a kernel :math:`-\|x-y\|^r`, the exponent ``r`` (the Riesz passes:
      ``torch.cdist`` in ``dense``, the fused GEMM pass of ``blocked`` in high dimension, the sorting formula of
      ``sliced`` for ``r = 1``).

    Backends ask :meth:`fast_form`, never ``isinstance``: a form counts only when it is defined by the class that
    defines the profile, or below it, so a subclass that overrides :meth:`profile` or :meth:`dprofile` is never
    given its parent's formula (it runs on the generic paths until it defines its own forms).
    """

    #: True for kernels whose profile is singular (not differentiable) at 0.
    singular_at_zero: bool = False

    def profile(self, s: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        r"""The profile :math:`\phi(s)` at squared distances ``s``.

        Args:
            s: squared distances :math:`s = \|x - y\|^2 \ge 0`, any shape.

        Returns:
            :math:`\phi(s)`, same shape, dtype and device as ``s``.
        """
        raise NotImplementedError(f"{type(self).__name__} must define profile(s)")

    def dprofile(self, s: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        r"""The derivative :math:`\phi'(s)`, with ``0`` at ``s = 0`` for singular kernels.

        Args:
            s: squared distances :math:`s \ge 0`, any shape.

        Returns:
            :math:`\phi'(s)`, same shape, dtype and device as ``s``.
        """
        raise NotImplementedError(f"{type(self).__name__} must define dprofile(s)")

    def fast_form(self, name: str):
        """The bound method ``name`` (one of :data:`FAST_FORMS`) when this kernel's class may use it, else ``None``.

        A form is used only when the class defining it is the class defining both :meth:`profile` and
        :meth:`dprofile`, or a subclass of it: the form then describes this kernel's own formula.

        Args:
            name: one of :data:`FAST_FORMS`.

        Returns:
            The bound method (callable), or ``None`` when the class does not define that form or defines it above the
            class of its profile.

        Raises:
            ValueError: ``name`` is not in :data:`FAST_FORMS`.
        """
        if name not in FAST_FORMS:
            raise ValueError(f"unknown fast form {name!r}; the kernel forms are {FAST_FORMS}")
        return getattr(self, name) if _form_applies(type(self), name) else None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Kernel matrix ``[N, M]`` with entries ``K(x_i, y_j)`` (from an ``[N, M, d]`` tensor of differences)."""
        _check_pair(x, y, 2, "the kernel matrix's [N, M, d] differences")
        return self.profile(squared_distances(x, y))

    def grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r"""Gradients :math:`\nabla_x K(x_i, y_j) = 2\phi'(|x_i-y_j|^2)(x_i-y_j)`, shape ``[N, M, d]``.

        Args:
            x: ``[N, d]``.
            y: ``[M, d]``.

        Returns:
            ``[N, M, d]`` tensor, dtype and device of ``x``.

        Raises:
            ValueError: the points are not finite ``[*, d]`` tensors of one space.
            TypeError: the points are not float32/float64 tensors of one dtype.
            MemoryError: the ``[N, M, d]`` temporaries exceed the memory budget
                (:class:`mmdflow._checks.MemoryBudgetError`).
        """
        _check_pair(x, y, 3, "the kernel gradients' [N, M, d] tensors")
        diff = x[:, None, :] - y[None, :, :]
        return 2.0 * self.dprofile((diff**2).sum(-1))[..., None] * diff

    def value_at_zero(self) -> float:
        """``K(x, x)``: the kernel on the diagonal.

        Returns:
            :math:`\\phi(0)` as a Python float (e.g. 1 for the Gaussian, 0 for Riesz).
        """
        return float(self.profile(torch.zeros((), dtype=torch.float64)))


def zero_slope(kernel: RadialKernel) -> float:
    r"""One-sided slope :math:`c` with :math:`K(0, t w) = K(0, 0) + c\,t\|w\| + o(t)` as :math:`t\downarrow0`.

    The kernel's own ``slope_at_zero()`` (Riesz: :math:`-1` for ``r = 1``, ``0`` for ``r > 1``, :math:`-\infty`
    for ``r < 1``; Laplace: :math:`-1/\sigma`); 0 for a kernel differentiable at 0; a kernel singular at 0 without
    its own ``slope_at_zero`` is refused.

    Args:
        kernel: the kernel.

    Returns:
        The slope :math:`c` (a float, possibly :math:`-\infty`).

    Raises:
        NotImplementedError: the kernel is singular at 0 and defines no ``slope_at_zero``.
    """
    slope = kernel.fast_form("slope_at_zero")
    if slope is not None:
        return float(slope())
    if kernel.singular_at_zero:
        raise NotImplementedError(f"the kernel {kernel!r} is singular at 0 but its class {type(kernel).__name__} "
                                  "defines no slope_at_zero() (the one-sided slope c of K(0, t w) = K(0, 0) + c t |w|)")
    return 0.0


def riesz_exponent(kernel: RadialKernel) -> float | None:
    """``r`` when the kernel is its own :math:`-\\|x - y\\|^r` (its ``riesz_exponent()`` form, see
    :meth:`RadialKernel.fast_form`), else ``None``: the Riesz passes of the backends apply only then.

    Args:
        kernel: the kernel.

    Returns:
        The exponent ``r`` as a float, or ``None``.
    """
    form = kernel.fast_form("riesz_exponent")
    return None if form is None else float(form())


@dataclass(frozen=True)
class Riesz(RadialKernel):
    r"""Riesz kernel :math:`K(x, y) = -\|x - y\|^r`, :math:`r \in (0, 2)`.

    ``r = 1`` is the distance kernel (energy distance). Conditionally positive
    definite: :math:`\sum_{ij} a_i a_j K(x_i, x_j) \ge 0` whenever :math:`\sum a_i = 0`.
    """

    r: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "r", check_riesz_exponent(self.r))

    @property
    def singular_at_zero(self) -> bool:  # type: ignore[override]
        return self.r <= 1.0

    def profile(self, s):
        r"""The Riesz profile :math:`\phi(s) = -s^{r/2}`.

        Args:
            s: squared distances :math:`s \ge 0`, any shape.

        Returns:
            :math:`-s^{r/2}`, same shape, dtype and device as ``s`` (gradient 0 at ``s = 0``).
        """
        return -_safe_pow(s, self.r / 2)

    def dprofile(self, s):
        r"""The derivative :math:`\phi'(s) = -\tfrac r2 s^{r/2-1}`, set to 0 at ``s = 0`` (no force at coinciding points).

        Args:
            s: squared distances :math:`s \ge 0`, any shape.

        Returns:
            :math:`\phi'(s)`, same shape, dtype and device as ``s``.
        """
        return -(self.r / 2) * _safe_pow(s, self.r / 2 - 1)

    def slope_at_zero(self) -> float:
        r"""The one-sided slope :math:`c` of :math:`K(0, t w) = K(0, 0) + c\,t\|w\| + o(t)`.

        Returns:
            :math:`-1` for ``r = 1``, ``0`` for ``r > 1``, :math:`-\infty` for ``r < 1``.
        """
        return -1.0 if self.r == 1.0 else (0.0 if self.r > 1.0 else -math.inf)

    def riesz_exponent(self) -> float:
        r"""The exponent of :math:`-\|x-y\|^r` (the Riesz passes of the backends).

        Returns:
            ``r``.
        """
        return self.r

    def compiled_form(self):
        """The formula of the compiled low-dimensional loop (:data:`mmdflow.summation.fused.FORMULAS`).

        Returns:
            ``(name, r)``: ``"riesz_1"``, ``"riesz_half"`` or ``"riesz_3half"`` for ``r`` = 1, 1/2, 3/2, else
            ``"riesz"``.
        """
        return {1.0: "riesz_1", 0.5: "riesz_half", 1.5: "riesz_3half"}.get(self.r, "riesz"), self.r

    def keops_formula(self, sq):
        r"""The profile and its derivative on KeOps' symbolic squared distances.

        Args:
            sq: KeOps symbolic squared distances :math:`s`.

        Returns:
            ``(phi, dphi)``: :math:`-s^{r/2}` and :math:`-\tfrac r2 s^{r/2-1}` (0 at ``s = 0``) as KeOps formulas.
        """
        r = self.r
        inv = sq.rsqrt()                                   # 0 where sq == 0
        if r in (0.5, 1.0, 1.5):
            # square roots only: KeOps' general power is accurate to about 1e-6 relative in float64
            root, quarter = sq.sqrt(), inv.sqrt()           # s^(1/2), s^(-1/4)
            phi = {0.5: -root.sqrt(), 1.0: -root, 1.5: -(root * root.sqrt())}[r]
            dphi = {0.5: -0.25 * inv * quarter, 1.0: -0.5 * inv, 1.5: -0.75 * quarter}[r]
            return phi, dphi
        return -(sq ** (r / 2)), -(r / 2) * inv ** (2 - r)


@dataclass(frozen=True)
class _BandwidthKernel(RadialKernel):
    """A kernel with one bandwidth ``sigma`` (validated by :func:`check_bandwidth`)."""

    sigma: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "sigma", check_bandwidth(self.sigma))


@dataclass(frozen=True)
class Gaussian(_BandwidthKernel):
    r"""Gaussian kernel :math:`K(x, y) = \exp(-\|x - y\|^2 / (2\sigma^2))`."""

    def profile(self, s):
        r"""The Gaussian profile :math:`\phi(s) = \exp(-s / (2\sigma^2))`.

        Args:
            s: squared distances, any shape.

        Returns:
            :math:`\phi(s)`, same shape, dtype and device as ``s``.
        """
        return torch.exp(-s / (2 * self.sigma**2))

    def dprofile(self, s):
        r"""The derivative :math:`\phi'(s) = -\exp(-s/(2\sigma^2)) / (2\sigma^2)`.

        Args:
            s: squared distances, any shape.

        Returns:
            :math:`\phi'(s)`, same shape, dtype and device as ``s``.
        """
        return -torch.exp(-s / (2 * self.sigma**2)) / (2 * self.sigma**2)

    def compiled_form(self):
        r"""The formula of the compiled low-dimensional loop (:data:`mmdflow.summation.fused.FORMULAS`).

        Returns:
            ``("gaussian", a)`` with :math:`a = 1/(2\sigma^2)`.
        """
        return "gaussian", 1.0 / (2.0 * self.sigma ** 2)

    def keops_formula(self, sq):
        r"""The profile and its derivative on KeOps' symbolic squared distances.

        Args:
            sq: KeOps symbolic squared distances :math:`s`.

        Returns:
            ``(phi, dphi)``: :math:`e^{-a s}` and :math:`-a e^{-a s}`, :math:`a = 1/(2\sigma^2)`, as KeOps formulas.
        """
        a = 1.0 / (2 * self.sigma**2)
        e = (-a * sq).exp()
        return e, -a * e


@dataclass(frozen=True)
class InverseMultiquadric(_BandwidthKernel):
    r"""Inverse multiquadric :math:`K(x, y) = (1 + \|x - y\|^2/\sigma^2)^{-1/2}`."""

    def profile(self, s):
        r"""The profile :math:`\phi(s) = (1 + s/\sigma^2)^{-1/2}`.

        Args:
            s: squared distances, any shape.

        Returns:
            :math:`\phi(s)`, same shape, dtype and device as ``s``.
        """
        return (1 + s / self.sigma**2) ** -0.5

    def dprofile(self, s):
        r"""The derivative :math:`\phi'(s) = -\tfrac{1}{2\sigma^2}(1 + s/\sigma^2)^{-3/2}`.

        Args:
            s: squared distances, any shape.

        Returns:
            :math:`\phi'(s)`, same shape, dtype and device as ``s``.
        """
        return -0.5 / self.sigma**2 * (1 + s / self.sigma**2) ** -1.5

    def compiled_form(self):
        """The formula of the compiled low-dimensional loop (:data:`mmdflow.summation.fused.FORMULAS`).

        Returns:
            ``("imq", 1/sigma^2)``.
        """
        return "imq", 1.0 / self.sigma ** 2

    def keops_formula(self, sq):
        r"""The profile and its derivative on KeOps' symbolic squared distances.

        Args:
            sq: KeOps symbolic squared distances :math:`s`.

        Returns:
            ``(phi, dphi)``: :math:`(1+s/\sigma^2)^{-1/2}` and :math:`-\tfrac{1}{2\sigma^2}(1+s/\sigma^2)^{-3/2}` as KeOps
            formulas.
        """
        s2 = self.sigma**2
        base = 1 + sq / s2
        return base.rsqrt(), (-0.5 / s2) * base.rsqrt() ** 3


@dataclass(frozen=True)
class Laplace(_BandwidthKernel):
    r"""Laplace kernel :math:`K(x, y) = \exp(-\|x - y\|/\sigma)` (not differentiable at 0)."""

    singular_at_zero = True

    def profile(self, s):
        r"""The profile :math:`\phi(s) = \exp(-\sqrt s/\sigma)`.

        Args:
            s: squared distances, any shape.

        Returns:
            :math:`\phi(s)`, same shape, dtype and device as ``s`` (gradient 0 at ``s = 0``).
        """
        return torch.exp(-_safe_pow(s, 0.5) / self.sigma)

    def dprofile(self, s):
        # d/ds exp(-sqrt(s)/sigma) = -exp(-sqrt(s)/sigma) / (2 sigma sqrt(s)); 0 at s = 0 by convention.
        r"""The derivative :math:`\phi'(s) = -\exp(-\sqrt s/\sigma) / (2\sigma\sqrt s)`, set to 0 at ``s = 0``.

        Args:
            s: squared distances, any shape.

        Returns:
            :math:`\phi'(s)`, same shape, dtype and device as ``s``.
        """
        return -torch.exp(-_safe_pow(s, 0.5) / self.sigma) * _safe_pow(s, -0.5) / (2 * self.sigma)

    def slope_at_zero(self) -> float:
        r"""The one-sided slope :math:`c` of :math:`K(0, t w) = K(0, 0) + c\,t\|w\| + o(t)`.

        Returns:
            :math:`-1/\sigma`.
        """
        return -1.0 / self.sigma

    def compiled_form(self):
        """The formula of the compiled low-dimensional loop (:data:`mmdflow.summation.fused.FORMULAS`).

        Returns:
            ``("laplace", 1/sigma)``.
        """
        return "laplace", 1.0 / self.sigma

    def keops_formula(self, sq):
        r"""The profile and its derivative on KeOps' symbolic squared distances.

        Args:
            sq: KeOps symbolic squared distances :math:`s`.

        Returns:
            ``(phi, dphi)``: :math:`e^{-\sqrt s/\sigma}` and :math:`-e^{-\sqrt s/\sigma}/(2\sigma\sqrt s)` as KeOps formulas.
        """
        e = (-sq.sqrt() / self.sigma).exp()
        return e, -e * sq.rsqrt() / (2 * self.sigma)
