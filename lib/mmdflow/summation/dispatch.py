r"""The dispatcher above the kernel-sum backends: the one operation every flow spends its time in.

For points ``x`` ``[N, d]``, sources ``y`` ``[M, d]`` with weights ``v`` ``[M]``,

.. math::
    s_i = \sum_j v_j K(x_i, y_j), \qquad
    g_i = \nabla_{x_i} s_i = \sum_j v_j\, 2\phi'(\|x_i-y_j\|^2)\,(x_i - y_j).

:func:`kernel_sum` returns ``s`` (differentiable in ``x``, ``y`` and ``v``) and
:func:`kernel_sum_grad` returns ``g`` directly, without autograd. Backends:

* ``"dense"`` (:mod:`.dense`): the reference. Builds the ``[N, M]`` kernel matrix from exact
  differences (``O(N M d)`` memory) and differentiates it with autograd.
* ``"blocked"`` (:mod:`.blocked`): exact and memory-bounded, row blocks of at most
  ``block_elems`` kernel entries, a written-out backward pass.
* ``"sliced"`` (:mod:`.sliced`): Riesz ``r = 1`` only. Averages one-dimensional sums over
  ``P`` directions (:mod:`.directions`), each computed by sorting (:mod:`.sort1d`); cost
  ``O(P (N+M) (log(N+M) + d))``. An unbiased *estimate*, not exact: options
  ``n_directions``, ``directions`` (``"iid"``, ``"orthogonal"``,
  ``"equispaced"``, ``"auto"`` or a ``[P, d]`` tensor), ``generator``,
  ``engine``.
* ``"keops"``: exact, with symbolic KeOps reductions (no ``[N, M]`` matrix in
  memory); available only when ``pykeops`` is installed
  (:mod:`.keops`, imported on first use).
* ``"auto"``: only *exact* backends that evaluate the kernel's own formula (:func:`backends_for`: ``keops``
  only for a kernel with a ``keops_formula``, see :meth:`mmdflow.kernels.RadialKernel.fast_form`). On the CPU in ``d <= 8`` with numba: ``blocked`` (its compiled
  low-dimensional loop), except ``dense`` under autograd below ``FUSED_AUTOGRAD_PAIRS`` pairs. Otherwise
  ``dense`` while ``N M d <= DENSE_LIMIT``, then ``keops`` when it is installed and the problem is large and
  either on a GPU or in low dimension (``d <= 8``), else ``blocked``. ``auto`` never
  picks ``sliced``: an approximation must be asked for by name, e.g.
  ``backend="sliced"`` or ``backend=Backend("sliced", n_directions=1000)``.

``backend`` may be a name or a :class:`Backend` (a name with options), so
objects that only forward ``backend=`` (the energies) can carry options.
Every backend is in :data:`BACKENDS` (``name -> (value function, gradient
function)``); :func:`register_backend` adds one. Backends ask the kernel for its fast forms, never its type: a
kernel without a backend's form is refused by that backend with an error naming the backends that can.
"""

from __future__ import annotations

import importlib.util
from types import MappingProxyType
from typing import Callable

import torch

from .._checks import check_clouds, check_finite, check_points, check_same_space, check_weights
from ..kernels import RadialKernel, check_kernel_dtype, riesz_exponent, zero_slope
from .blocked import BLOCK_ELEMS, blocked_grad, blocked_self_double_sum, blocked_sum, blocked_sum_and_grad
from .fused import supported as fused_supported
from .coinciding import CoincidingGroups, coinciding_groups, grouped_coincidence_term
from .dense import (_coincidence_and_grads, _weight_vector, dense_directional_derivative, dense_grad,
                    dense_pair_sum_and_grads, dense_sum, riesz_distance_power)
from .sliced import sliced_kernel_sum, sliced_kernel_sum_grad

__all__ = ["kernel_sum", "kernel_sum_grad", "kernel_sum_and_grad", "double_sum", "directional_derivative",
           "pair_sum_and_grads", "pair_terms", "directional_terms", "Backend", "BACKENDS", "register_backend",
           "available_backends", "backends_for", "choose_backend", "DENSE_LIMIT", "BLOCK_ELEMS", "KEOPS_MIN_PAIRS"]

#: ``auto`` uses the dense backend while ``N * M * d`` stays below this.
DENSE_LIMIT = 2**22
#: ``auto`` prefers KeOps (when installed) from this many pairs ``N * M`` on, on a GPU, or on the CPU in low
#: dimension when the compiled loop of the blocked backend is not available (no numba). Where that loop runs, it
#: is faster than KeOps at every size measured (one CPU thread, d = 2, gradient: N = M = 1e3 9.1 ms against
#: 1.0 ms, 1e4 0.62 s against 0.12 s, 3e4 6.2 s against 1.3 s), so ``auto`` never picks KeOps there.
KEOPS_MIN_PAIRS = 2**24
#: where the compiled low-d loop of the blocked backend does not apply (no numba, GPU), ``auto`` keeps the dense
#: ``torch.cdist`` form under autograd for the Riesz kernel in ``d <= 8`` up to this many pairs (``O(N M)``
#: memory): the torch blocks' backward pass recomputes every block, which costs more there (two-batch loss of the
#: neural backward scheme at 4000 x 2000 pairs, d = 2: 168 against 265 ms per iteration).
DENSE_AUTOGRAD_PAIRS = 2**24
#: with the compiled low-d loop, ``auto`` uses it from this many pairs on under autograd, and always for explicit
#: gradients (measured one thread, d = 2: autograd 100 x 100 pairs 0.40 ms dense against 0.47 ms fused,
#: 1000 x 1000 15 ms against 2.5 ms; explicit gradient 100 x 100: 0.66 ms against 0.12 ms).
FUSED_AUTOGRAD_PAIRS = 2**14


def _sliced_sum(x, y, v, kernel, **options):
    return sliced_kernel_sum(x, y, kernel, v, **options)


def _sliced_grad(x, y, v, kernel, **options):
    return sliced_kernel_sum_grad(x, y, kernel, v, **options)


def _keops_sum(x, y, v, kernel, **options):
    from .keops import keops_kernel_sum   # imported on first use: pykeops is optional
    return keops_kernel_sum(x, y, kernel, v, **options)


def _keops_grad(x, y, v, kernel, **options):
    from .keops import keops_kernel_sum_grad
    return keops_kernel_sum_grad(x, y, kernel, v, **options)


#: name -> (value function, gradient function); both take ``(x, y, v, kernel, **options)``.
BACKENDS: dict[str, tuple[Callable, Callable]] = {
    "dense": (dense_sum, dense_grad),
    "blocked": (blocked_sum, blocked_grad),
    "sliced": (_sliced_sum, _sliced_grad),
    "keops": (_keops_sum, _keops_grad),
}
_EXACT = {"dense", "blocked", "keops"}
_BUILTIN = frozenset(BACKENDS)


def register_backend(name: str, value_fn: Callable, grad_fn: Callable, *, replace: bool = False) -> None:
    """Add a backend: ``value_fn`` and ``grad_fn`` take ``(x, y, v, kernel, **options)``.

    ``value_fn`` returns ``[N]`` (differentiable), ``grad_fn`` returns ``[N, d]``. A name that is already
    registered (the built-in ``dense``, ``blocked``, ``sliced``, ``keops`` among them) is refused unless
    ``replace=True``: replacing ``dense`` replaces the reference every other backend is tested against.

    Args:
        name: the new backend's name (not ``"auto"``).
        value_fn: ``(x [N, d], y [M, d], v [M], kernel, **options) -> s [N]``.
        grad_fn: ``(x [N, d], y [M, d], v [M], kernel, **options) -> g [N, d]``.
        replace: allow replacing a registered backend.

    Raises:
        ValueError: the name is empty, ``"auto"``, or already registered without ``replace``.
        TypeError: ``value_fn`` or ``grad_fn`` is not callable.
    """
    if not isinstance(name, str) or not name or name == "auto":
        raise ValueError(f"a backend name must be a non-empty string other than 'auto', got {name!r}")
    if not (callable(value_fn) and callable(grad_fn)):
        raise TypeError(f"value_fn and grad_fn must be callables, got {type(value_fn).__name__} and "
                        f"{type(grad_fn).__name__}")
    if name in BACKENDS and not replace:
        kind = "built-in" if name in _BUILTIN else "registered"
        raise ValueError(f"backend {name!r} is already {kind}; pass replace=True to replace it, or choose another name")
    BACKENDS[name] = (value_fn, grad_fn)


def _have_keops() -> bool:
    return importlib.util.find_spec("pykeops") is not None


def available_backends() -> list[str]:
    """Registered backends that can run here (``keops`` only when pykeops is installed).

    Returns:
        The names, in registration order.
    """
    return [b for b in BACKENDS if b != "keops" or _have_keops()]


def _can_evaluate(name: str, kernel: RadialKernel) -> bool:
    """The built-in backend ``name`` evaluates ``kernel``'s own formula: ``dense`` and ``blocked`` always (their
    generic paths use only ``profile`` / ``dprofile``), ``keops`` with the kernel's ``keops_formula``, ``sliced``
    for its own ``-|x - y|`` (``riesz_exponent() == 1``); a registered backend is trusted with any kernel."""
    if name == "keops":
        return kernel.fast_form("keops_formula") is not None
    if name == "sliced":
        return riesz_exponent(kernel) == 1.0
    return True


def backends_for(kernel: RadialKernel) -> list[str]:
    """The available backends that evaluate ``kernel`` (exactly, except ``sliced``: an estimate).

    Args:
        kernel: a kernel from :mod:`mmdflow.kernels`.

    Returns:
        The backend names, a subset of :func:`available_backends`.
    """
    return [b for b in available_backends() if _can_evaluate(b, kernel)]


class Backend:
    """A backend name with options, e.g. ``Backend("sliced", n_directions=1000, directions="orthogonal")``.

    Pass it wherever ``backend=`` is accepted (:func:`kernel_sum`, the energies);
    keyword options given to :func:`kernel_sum` directly take precedence.
    """

    __slots__ = ("name", "options")

    def __init__(self, name: str, **options):
        if name != "auto" and name not in BACKENDS:
            raise ValueError(f"unknown backend {name!r}; available: {sorted(BACKENDS) + ['auto']}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "options", MappingProxyType(dict(options)))

    def __setattr__(self, key, value):
        raise AttributeError("Backend is immutable")

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"Backend({self.name!r}{', ' if opts else ''}{opts})"

    def __eq__(self, other):
        return isinstance(other, Backend) and (self.name, dict(self.options)) == (other.name, dict(other.options))

    def __hash__(self):
        return hash(self.name)


def choose_backend(backend, x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, *,
                   differentiable: bool = False) -> str:
    """The backend name that ``backend`` (a name, a :class:`Backend` or ``"auto"``) resolves to for these inputs.

    ``differentiable``: the sum will be differentiated by autograd (see :data:`DENSE_AUTOGRAD_PAIRS`).

    Args:
        backend: a backend name, a :class:`Backend`, or ``"auto"``.
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        differentiable: the sum will be differentiated by autograd.

    Returns:
        The name of a registered backend that evaluates ``kernel``.

    Raises:
        TypeError: ``backend`` is neither a name nor a :class:`Backend`.
        ValueError: the name is not registered, or the backend cannot evaluate this kernel.
    """
    if isinstance(backend, Backend):
        backend = backend.name
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a name or a Backend, got {backend!r}")
    n, d = x.shape
    m = y.shape[0]
    if backend == "auto":
        # only backends that evaluate this kernel's own formula exactly
        if fused_supported(x, y, None, kernel):
            return "dense" if (differentiable and n * m < FUSED_AUTOGRAD_PAIRS) else "blocked"
        if n * m * d <= DENSE_LIMIT:
            return "dense"
        if differentiable and riesz_exponent(kernel) is not None and d <= 8 and n * m <= DENSE_AUTOGRAD_PAIRS:
            return "dense"
        if (n * m >= KEOPS_MIN_PAIRS and (x.is_cuda or d <= 8) and _have_keops()
                and _can_evaluate("keops", kernel)):
            return "keops"
        return "blocked"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available: {sorted(BACKENDS) + ['auto']}")
    if backend == "keops" and not _have_keops():
        raise ValueError("backend 'keops' needs pykeops, which is not installed; use 'blocked' (exact) instead")
    if not _can_evaluate(backend, kernel):
        why = (f"the keops backend has no formula for {kernel!r} (its class {type(kernel).__name__} defines no "
               "keops_formula)" if backend == "keops" else
               f"the sliced backend needs the Riesz kernel with r=1 (its sorting formula), got {kernel!r}")
        raise ValueError(f"{why}; backends that can evaluate it: {backends_for(kernel) + ['auto']}")
    return backend


def _resolve(backend, x, y, kernel, options, differentiable=False):
    name = choose_backend(backend, x, y, kernel, differentiable=differentiable)
    if isinstance(backend, Backend):
        options = {**backend.options, **options}
    return name, options


def _prepare(x, y, v, kernel, *, uniform_ok: bool = False):
    """Validate the inputs of a sum (one host synchronisation for the finiteness of both clouds); returns the
    weights ``v`` (uniform for ``None``, or ``None`` itself when ``uniform_ok``)."""
    check_clouds(x, y, finite=False)
    check_kernel_dtype(x, "x")
    check_kernel_dtype(y, "y")
    check_finite((x, "x")) if y is x else check_finite((x, "x"), (y, "y"))
    if not isinstance(kernel, RadialKernel):
        raise TypeError(f"kernel must be an mmdflow.kernels kernel, got {type(kernel).__name__}")
    return None if (v is None and uniform_ok) else check_weights(v, y, "v")


def kernel_sum(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor | None = None, *,
               backend: str = "auto", **options) -> torch.Tensor:
    r"""Weighted kernel sums :math:`s_i = \sum_j v_j K(x_i, y_j)`.

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        v: probability weights ``[M]`` of ``y``; ``None`` means uniform ``1/M``.
        backend: ``"auto"``, ``"dense"``, ``"blocked"``, ``"sliced"``, ``"keops"``, a registered
            name, or a :class:`Backend` carrying options.
        **options: backend options (``block_elems`` for ``blocked``; ``n_directions``,
            ``directions``, ``generator``, ``engine`` for ``sliced``, ...).

    Returns:
        ``[N]`` tensor, differentiable with respect to ``x``, ``y`` and ``v``.
    """
    v = _prepare(x, y, v, kernel)
    name, options = _resolve(backend, x, y, kernel, options, _needs_grad(x, y, v))
    return BACKENDS[name][0](x, y, v, kernel, **options)


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def double_sum(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, w: torch.Tensor | None = None,
               v: torch.Tensor | None = None, *, backend: str = "auto", **options) -> torch.Tensor:
    r"""The weighted double sum :math:`\sum_{i,j} w_i v_j K(x_i, y_j)`, a 0-d tensor (differentiable).

    ``None`` weights are uniform, so the default is the mean of the kernel over all pairs: the interaction
    (``y = x``) and potential terms of the energies and their two-batch estimates (Altekrüger et al. 2023,
    Sec. 3) are such sums. For the dense backend and uniform ``w`` it is the mean of the ``[N, M]`` matrix
    (no matrix-vector product in the autograd graph); else :math:`w^\top s` with :math:`s` from
    :func:`kernel_sum`.

    Args:
        x: points ``[N, d]``.
        y: points ``[M, d]`` (``x`` itself for an interaction term).
        kernel: a kernel from :mod:`mmdflow.kernels`.
        w: weights ``[N]`` of ``x``; ``None``: uniform ``1/N``.
        v: weights ``[M]`` of ``y``; ``None``: uniform ``1/M``.
        backend: as in :func:`kernel_sum`.
        **options: backend options, as in :func:`kernel_sum`.

    Returns:
        0-d tensor, differentiable with respect to ``x``, ``y``, ``w`` and ``v``.
    """
    same = w is not None and w is v and y is x
    v = _prepare(x, y, v, kernel, uniform_ok=True)
    if w is not None:
        w = v if same else check_weights(w, x, "w")
    name, options = _resolve(backend, x, y, kernel, options, _needs_grad(x, y, *(t for t in (v, w) if t is not None)))
    r = riesz_exponent(kernel)
    if name == "dense" and w is None and r is not None:
        p = riesz_distance_power(x, y, r)
        return -p.mean() if v is None else -(p @ v).mean()
    if name == "blocked" and y is x and (w is v):
        # one weighted cloud against itself: w^T K w, both gradients from one pass (K is symmetric)
        return blocked_self_double_sum(x, check_weights(w, x, "w") if w is None else w, kernel, **options)
    s = BACKENDS[name][0](x, y, check_weights(v, y, "v") if v is None else v, kernel, **options)
    return s.mean() if w is None else w @ s


def kernel_sum_grad(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor | None = None, *,
                    backend: str = "auto", **options) -> torch.Tensor:
    r"""Gradients :math:`g_i = \sum_j v_j \nabla_1 K(x_i, y_j)`, shape ``[N, d]`` (no autograd graph).

    Coinciding pairs ``x_i = y_j`` contribute zero (Altekrüger et al. 2023, Sec. 5).

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        v: weights ``[M]`` of ``y``; ``None``: uniform ``1/M``.
        backend: as in :func:`kernel_sum`.
        **options: backend options, as in :func:`kernel_sum`.

    Returns:
        ``[N, d]`` tensor (detached), dtype and device of ``x``.
    """
    name, options, xd, yd, vd = _detached_inputs(x, y, v, kernel, backend, options)
    with torch.no_grad():
        return BACKENDS[name][1](xd, yd, vd, kernel, **options)


def _detached_inputs(x, y, v, kernel, backend, options):
    """The backend and options of a sum without autograd, and its checked inputs detached (``y`` stays ``x``)."""
    v, (name, options) = _prepare(x, y, v, kernel), _resolve(backend, x, y, kernel, options)
    xd = x.detach()
    return name, options, xd, xd if y is x else y.detach(), v.detach()


def kernel_sum_and_grad(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor | None = None, *,
                        backend: str = "auto", **options) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Both :math:`s_i` ``[N]`` and :math:`g_i` ``[N, d]`` without autograd.

    The ``blocked`` backend computes them in one pass over the blocks (each
    distance block is formed once); other backends call their value and
    gradient functions (for ``sliced`` with the same directions when these are
    given as a tensor, else with independent ones).

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        v: weights ``[M]`` of ``y``; ``None``: uniform ``1/M``.
        backend: as in :func:`kernel_sum`.
        **options: backend options, as in :func:`kernel_sum`.

    Returns:
        ``(s, g)``: :math:`s_i = \sum_j v_j K(x_i, y_j)` ``[N]`` and :math:`g_i = \sum_j v_j\nabla_1 K(x_i, y_j)`
        ``[N, d]``, both detached.
    """
    name, options, xd, yd, vd = _detached_inputs(x, y, v, kernel, backend, options)
    with torch.no_grad():
        if name == "blocked":
            return blocked_sum_and_grad(xd, yd, vd, kernel, **options)
        value_fn, grad_fn = BACKENDS[name]
        return value_fn(xd, yd, vd, kernel, **options), grad_fn(xd, yd, vd, kernel, **options)


def _column_weights(w, x):
    """``[N]`` weights from the ``[N, 1]`` column or the scalar ``1/N`` used by :func:`directional_derivative`."""
    return x.new_full((x.shape[0],), w) if isinstance(w, float) else w[:, 0]


def directional_derivative(xa: torch.Tensor, ua: torch.Tensor, xb: torch.Tensor, ub: torch.Tensor | None,
                           kernel: RadialKernel, wa: torch.Tensor | None = None, wb: torch.Tensor | None = None, *,
                           backend: str = "auto", **options) -> torch.Tensor:
    r"""One-sided derivative of a double kernel sum along moving points, a 0-d tensor differentiable in ``ua``, ``ub``.

    .. math::
        D = \sum_{i,j} w^a_i w^b_j\,\frac{d}{dt}\Big|_{t=0^+} K(x^a_i + t u^a_i,\ x^b_j + t u^b_j)
          = \sum_i w^a_i\langle g^a_i, u^a_i\rangle + \sum_j w^b_j\langle g^b_j, u^b_j\rangle
            + c\!\!\sum_{x^a_i = x^b_j}\!\! w^a_i w^b_j\|u^a_i - u^b_j\|,

    with :math:`g^a = \sum_j w^b_j\nabla_1 K(x^a_i, x^b_j)` and :math:`g^b = \sum_i w^a_i\nabla_1 K(x^b_j, x^a_i)`
    (:func:`kernel_sum_grad` with ``backend``) and the kernel's slope :math:`c` at coinciding points
    (``-1`` for Riesz ``r = 1``, ``-inf`` for ``r < 1``; Altekrüger et al. 2023, Sec. 4). This is what the
    neural forward scheme's loss needs (directional derivatives of the interaction and potential energies
    along a velocity plan). ``dense`` forms the gradients from one ``[N, M]`` matrix
    (:func:`.dense.dense_directional_derivative`); other backends call :func:`kernel_sum_grad` and find the
    coinciding pairs by grouping equal rows.

    Args:
        xa: points ``[N, d]``.
        ua: their velocities ``[N, d]``.
        xb: points ``[M, d]``.
        ub: their velocities ``[M, d]``, or ``None`` (fixed points).
        kernel: a kernel from :mod:`mmdflow.kernels`.
        wa: probability weights ``[N]`` of ``xa``; ``None``: uniform ``1/N``.
        wb: probability weights ``[M]`` of ``xb``; ``None``: uniform ``1/M`` (both ``None``: ``D`` is a mean over
            the pairs).
        backend: as in :func:`kernel_sum`.
        **options: backend options, as in :func:`kernel_sum`.

    Returns:
        0-d tensor :math:`D`, differentiable in ``ua`` and ``ub`` (not in the points), dtype of ``xa``;
        :math:`-\infty` for a Riesz kernel with ``r < 1`` when a coinciding pair of positive weight separates.

    Raises:
        TypeError: the points or velocities are not tensors, ``kernel`` is not an :mod:`mmdflow.kernels` kernel, or
            ``backend`` is neither a name nor a :class:`Backend`.
        ValueError: points that are not ``[*, d]`` tensors of one space, velocities of other shapes than their
            points, non-finite values, weights off the simplex, or an unknown or unfit ``backend``.
    """
    check_points(xa, "xa", finite=False)
    check_points(xb, "xb", finite=False)
    check_same_space(xa, xb, ("xa", "xb"))
    if not isinstance(ua, torch.Tensor) or (ub is not None and not isinstance(ub, torch.Tensor)):
        raise TypeError(f"velocities must be tensors, got ua {type(ua).__name__} and ub {type(ub).__name__}")
    if ua.shape != xa.shape or (ub is not None and ub.shape != xb.shape):
        raise ValueError(f"velocities must have the shapes of their points, got ua {tuple(ua.shape)} for xa "
                         f"{tuple(xa.shape)} and ub {None if ub is None else tuple(ub.shape)} for xb {tuple(xb.shape)}")
    check_finite((xa, "xa"), (xb, "xb"), (ua, "ua"), *(() if ub is None else ((ub, "ub"),)))
    if not isinstance(kernel, RadialKernel):
        raise TypeError(f"kernel must be an mmdflow.kernels kernel, got {type(kernel).__name__}")
    wa = 1.0 / xa.shape[0] if wa is None else check_weights(wa, xa, "wa")[:, None]
    wb = 1.0 / xb.shape[0] if wb is None else check_weights(wb, xb, "wb")[:, None]
    name, options = _resolve(backend, xa, xb, kernel, options, differentiable=True)   # differentiated in u
    xa, xb = xa.detach(), xb.detach()
    if ub is not None:
        # D depends only on the relative velocities u^a_i - u^b_j: remove a common one, so that a rigid
        # translation (all velocities equal) gives exactly 0 and the two sums below do not cancel
        ubar = 0.5 * ((ua * wa).sum(0) + (ub * wb).sum(0))       # weights: [N, 1] columns or 1/N
        ua, ub = ua - ubar, ub - ubar
    if name == "dense":
        return dense_directional_derivative(xa, ua, xb, ub, kernel, wa, wb)
    grad = BACKENDS[name][1]
    with torch.no_grad():
        ga = grad(xa, xb, _column_weights(wb, xb), kernel, **options)
        gb = None if ub is None else grad(xb, xa, _column_weights(wa, xa), kernel, **options)
    value = (wa * ga * ua).sum()
    if ub is not None:
        value = value + (wb * gb * ub).sum()
    slope = zero_slope(kernel)
    if slope != 0.0:
        value = value + grouped_coincidence_term(ua, ub, coinciding_groups(xa, xb), wa, wb, slope)
    return value


# ------------------------------------------------------------------------------------------------
# value and gradients of a double sum in both clouds (the neural schemes' explicit training loop)
# ------------------------------------------------------------------------------------------------

def _explicit_backend(backend, a, b, kernel) -> tuple[str, dict]:
    """The backend of :func:`pair_terms`: ``auto`` is ``dense`` while ``Na Nb d <= DENSE_LIMIT`` (one ``[Na, Nb]``
    matrix per coordinate), else the exact backend :func:`choose_backend` picks."""
    name = backend.name if isinstance(backend, Backend) else backend
    if name == "auto" and a.shape[0] * b.shape[0] * a.shape[1] <= DENSE_LIMIT:
        return "dense", {}
    return _resolve(backend, a, b, kernel, {})


def pair_terms(a: torch.Tensor, b: torch.Tensor, kernel: RadialKernel, wa: torch.Tensor, wb: torch.Tensor, *,
               want_b: bool = True, want_coinciding: bool = False, backend="auto"):
    r"""Internal, unchecked form of :func:`pair_sum_and_grads`, for loops over inputs that were checked once.

    ``wa`` ``[Na]``, ``wb`` ``[Nb]`` are tensors or Python floats (uniform weights ``1/N``; no ``None``). Returns ``(S, ga, gb, coinciding)``, where
    ``coinciding`` (with ``want_coinciding``) is an ``[Na, Nb]`` bool mask (dense backend) or a pair of index
    groups (:class:`.coinciding.CoincidingGroups` from :func:`.coinciding.coinciding_groups`, other backends). The dense backend synchronises with
    the host nowhere; the others find coinciding pairs by grouping equal rows (a host synchronisation).

    Args:
        a: points ``[Na, d]``.
        b: points ``[Nb, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        wa: weights ``[Na]`` or a Python float (uniform ``1/Na``).
        wb: weights ``[Nb]`` or a Python float (uniform ``1/Nb``).
        want_b: also form ``gb`` (else it is ``None``).
        want_coinciding: also find the coinciding pairs (else ``None``).
        backend: a backend name or ``"auto"``.

    Returns:
        ``(S, ga, gb, coinciding)``: the 0-d value, ``[Na, d]``, ``[Nb, d]`` or ``None``, and an ``[Na, Nb]`` bool mask
        (dense backend) or a pair of index tensors ``(ia, ib)`` (other backends), or ``None``.
    """
    name, options = _explicit_backend(backend, a, b, kernel)
    if name == "dense":
        return dense_pair_sum_and_grads(a, b, kernel, wa, wb, want_b=want_b, want_mask=want_coinciding)
    wa, wb = _weight_vector(wa, a), _weight_vector(wb, b)
    s, g = kernel_sum_and_grad(a, b, kernel, wb, backend=name, **options)
    ga = g.mul_(wa[:, None])
    gb = kernel_sum_grad(b, a, kernel, wa, backend=name, **options).mul_(wb[:, None]) if want_b else None
    return wa @ s, ga, gb, (coinciding_groups(a, b) if want_coinciding else None)


def pair_sum_and_grads(a: torch.Tensor, b: torch.Tensor, kernel: RadialKernel, wa: torch.Tensor | None = None,
                       wb: torch.Tensor | None = None, *, backend="auto") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Value and gradients in both clouds of :math:`S = \sum_{i,j} w^a_i w^b_j K(a_i, b_j)`, without autograd.

    .. math::
        \nabla_{a_i} S = w^a_i \sum_j w^b_j \nabla_1 K(a_i, b_j), \qquad
        \nabla_{b_j} S = w^b_j \sum_i w^a_i \nabla_1 K(b_j, a_i),

    coinciding pairs contributing zero (Altekrüger et al. 2023, Sec. 5). This is the gradient of the two-batch
    estimates of the neural schemes (Secs. 3-4) with respect to both batches. ``dense`` (``auto`` while
    ``Na Nb d <= DENSE_LIMIT``) forms everything from one ``[Na, Nb]`` matrix per coordinate
    (:func:`.dense.dense_pair_sum_and_grads`); other backends call :func:`kernel_sum_and_grad` and
    :func:`kernel_sum_grad`. The reference is autograd of :func:`double_sum`.

    Args:
        a: points ``[Na, d]``.
        b: points ``[Nb, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        wa: weights ``[Na]``; ``None``: uniform.
        wb: weights ``[Nb]``; ``None``: uniform.
        backend: a backend name or ``"auto"``.

    Returns:
        ``(S, ga, gb)``: the 0-d value, ``[Na, d]`` and ``[Nb, d]`` gradients, all detached.

    Raises:
        TypeError: ``kernel`` is not a :class:`~mmdflow.kernels.RadialKernel`.
        ValueError: the points are not finite ``[*, d]`` tensors of one space, or the weights do not match them.
    """
    check_points(a, "a")
    check_points(b, "b")
    check_same_space(a, b, ("a", "b"))
    if not isinstance(kernel, RadialKernel):
        raise TypeError(f"kernel must be an mmdflow.kernels kernel, got {type(kernel).__name__}")
    wa = check_weights(wa, a, "wa")
    wb = check_weights(wb, b, "wb")
    with torch.no_grad():
        s, ga, gb, _ = pair_terms(a.detach(), b.detach(), kernel, wa.detach(), wb.detach(), backend=backend)
    return s, ga, gb


def directional_terms(xa, ua, xb, ub, kernel: RadialKernel, wa, wb, *, backend="auto"):
    r"""Internal, unchecked: the one-sided directional derivative :math:`D` of :func:`directional_derivative` and its
    gradients in the velocities, ``(D, gua [Na, d], gub [Nb, d] or None)``, without autograd.

    :math:`D` is linear in the velocities away from coinciding points: :math:`\nabla_{u^a_i} D = \nabla_{a_i}S`
    and :math:`\nabla_{u^b_j} D = \nabla_{b_j}S` (:func:`pair_terms`), plus the gradient of the coinciding pairs'
    term :math:`c\sum w^a_i w^b_j\|u^a_i - u^b_j\|`. ``ub = None``: the points ``xb`` are fixed.
    On the CPU the coinciding-pairs term is skipped when there are none (a cheap host check); on other devices it
    is always formed, so that the loop never waits for the device.

    Args:
        xa: points ``[Na, d]``.
        ua: their velocities ``[Na, d]``.
        xb: points ``[Nb, d]``.
        ub: their velocities ``[Nb, d]``, or ``None`` (fixed points).
        kernel: a kernel from :mod:`mmdflow.kernels`.
        wa: weights ``[Na]`` or a Python float (uniform).
        wb: weights ``[Nb]`` or a Python float (uniform).
        backend: a backend name or ``"auto"``.

    Returns:
        ``(D, gua, gub)``: the 0-d derivative, ``[Na, d]``, and ``[Nb, d]`` or ``None``.
    """
    slope = zero_slope(kernel)
    _, ga, gb, coinc = pair_terms(xa, xb, kernel, wa, wb, want_b=ub is not None, want_coinciding=slope != 0.0,
                                  backend=backend)
    value = (ga * ua).sum()
    if ub is not None:
        value = value + (gb * ub).sum()
    if coinc is not None:
        empty = coinc.empty() if isinstance(coinc, CoincidingGroups) else (xa.device.type == "cpu" and not bool(coinc.any()))
        if not empty:
            extra, gca, gcb = _coincidence_and_grads(ua, ub, coinc, _weight_vector(wa, xa), _weight_vector(wb, xb),
                                                     slope)
            value = value + extra
            ga = ga + gca
            if ub is not None:
                gb = gb + gcb
    return value, ga, gb
