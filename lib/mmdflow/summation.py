r"""Kernel sums: the one operation every flow in the book spends its time in.

For points ``x`` ``[N, d]``, sources ``y`` ``[M, d]`` with weights ``v`` ``[M]``,

.. math::
    s_i = \sum_j v_j K(x_i, y_j), \qquad
    g_i = \nabla_{x_i} s_i = \sum_j v_j\, 2\phi'(\|x_i-y_j\|^2)\,(x_i - y_j).

:func:`kernel_sum` returns ``s`` (differentiable in ``x``, ``y`` and ``v``) and
:func:`kernel_sum_grad` returns ``g`` directly, without autograd. Backends:

* ``"dense"``: the reference. Builds the ``[N, M]`` kernel matrix from exact
  differences (``O(N M d)`` memory) and differentiates it with autograd.
* ``"blocked"``: exact and memory-bounded. Works on row blocks of at most
  ``block_elems`` kernel entries; distances from explicit differences when
  ``d <= 8`` and from a GEMM (``|x|^2 + |y|^2 - 2 x y^T``) otherwise. Its
  backward pass is written out, so no ``[N, M]`` matrix is ever stored.
* ``"sliced"``: Riesz ``r = 1`` only. Averages one-dimensional sums over
  ``P`` directions, each computed by sorting (:mod:`mmdflow.sliced`); cost
  ``O(P (N+M) (log(N+M) + d))``. An unbiased *estimate*, not exact: options
  ``n_directions``, ``directions`` (``"iid"``, ``"orthogonal"``,
  ``"equispaced"``, ``"auto"`` or a ``[P, d]`` tensor), ``generator``,
  ``engine``.
* ``"keops"``: exact, with symbolic KeOps reductions (no ``[N, M]`` matrix in
  memory); available only when ``pykeops`` is installed
  (:mod:`mmdflow.keops_backend`, imported on first use).
* ``"auto"``: only *exact* backends: ``dense`` while ``N M d <= DENSE_LIMIT``,
  then ``keops`` when it is installed and the problem is large and either on
  a GPU or in low dimension (``d <= 8``), else ``blocked``. ``auto`` never
  picks ``sliced``: an approximation must be asked for by name, e.g.
  ``backend="sliced"`` or ``backend=Backend("sliced", n_directions=1000)``.

``backend`` may be a name or a :class:`Backend` (a name with options), so
objects that only forward ``backend=`` (the energies) can carry options.
Every backend is in :data:`BACKENDS` (``name -> (value function, gradient
function)``); :func:`register_backend` adds one.
"""

from __future__ import annotations

import importlib.util
from types import MappingProxyType
from typing import Callable

import torch

from ._checks import check_points, check_same_space, check_weights
from .kernels import RadialKernel, Riesz, squared_distances

__all__ = ["kernel_sum", "kernel_sum_grad", "kernel_sum_and_grad", "Backend", "BACKENDS", "register_backend",
           "available_backends", "choose_backend", "DENSE_LIMIT", "BLOCK_ELEMS", "KEOPS_MIN_PAIRS"]

#: ``auto`` uses the dense backend while ``N * M * d`` stays below this.
DENSE_LIMIT = 2**22
#: ``auto`` prefers KeOps (when installed) from this many pairs ``N * M`` on.
KEOPS_MIN_PAIRS = 2**24
#: kernel entries per block in the blocked backend.
BLOCK_ELEMS = 2**22
_EXPLICIT_DIFF_MAX_D = 8


def _block_sqdist(xb: torch.Tensor, y: torch.Tensor, y_sq: torch.Tensor | None) -> torch.Tensor:
    if y_sq is None:
        # exact differences, one coordinate at a time: no [B, M, d] temporary, no reduction over a short last axis
        yt = y.T.contiguous()
        diff = xb[:, :1] - yt[0]
        sq = diff * diff
        for k in range(1, xb.shape[1]):
            torch.sub(xb[:, k:k + 1], yt[k], out=diff)
            sq.addcmul_(diff, diff)
        return sq
    norms = (xb * xb).sum(1, keepdim=True) + y_sq[None, :]
    s = norms - 2.0 * (xb @ y.T)
    # The GEMM form has an absolute rounding error of about eps * (|x|^2 + |y|^2). Below that level a pair cannot
    # be told apart from a coinciding pair; set it to exactly 0, so that singular kernels (Riesz r <= 1, Laplace)
    # see no spurious self-interaction (e.g. s_ii ~ 1e-15 would give |x_i - x_i|^0.5 ~ 1e-4).
    tol = 8 * torch.finfo(s.dtype).eps
    return torch.where(s > tol * norms, s, torch.zeros_like(s))


def _rows_per_block(n: int, m: int, d: int, block_elems: int) -> int:
    per_row = m
    return max(1, min(n, block_elems // max(per_row, 1)))


def _profiles(kernel: RadialKernel, sq: torch.Tensor, want_phi: bool, want_dphi: bool):
    """``phi(sq)`` and a fresh ``phi'(sq)`` block; the Riesz kernel in fewer passes over the block.

    Riesz: with ``t = s^(r/2 - 1)`` (set to 0 at ``s = 0``), ``phi = -s t`` and ``phi' = -(r/2) t``,
    the same values as :meth:`Riesz.profile` / :meth:`Riesz.dprofile` (zero force at coinciding points).
    """
    if isinstance(kernel, Riesz):
        r = kernel.r
        t = sq.clamp_min(torch.finfo(sq.dtype).tiny).pow_(r / 2 - 1)   # finite for r in (0, 2)
        t.masked_fill_(sq <= 0, 0.0)
        phi = -(sq * t) if want_phi else None
        return phi, (t.mul_(-r / 2) if want_dphi else None)
    return (kernel.profile(sq) if want_phi else None), (kernel.dprofile(sq) if want_dphi else None)


def _blocked_pass(x, y, v, kernel: RadialKernel, *, want_value: bool, want_grad: bool, block_elems: int,
                  go: torch.Tensor | None = None, want_y: bool = False, want_v: bool = False):
    """One pass over row blocks. Returns (s, gx, gy, gv), each possibly None.

    With ``go`` given (the incoming gradient of ``s``), ``gx``, ``gy``, ``gv``
    are the vector-Jacobian products of ``s`` with respect to ``x``, ``y``, ``v``.
    """
    n, d = x.shape
    m = y.shape[0]
    y_sq = None if d <= _EXPLICIT_DIFF_MAX_D else (y * y).sum(1)
    rows = _rows_per_block(n, m, d, block_elems)
    s = x.new_empty(n) if want_value else None
    gx = x.new_empty(n, d) if want_grad else None
    gy = torch.zeros_like(y) if want_y else None
    gv = torch.zeros_like(v) if want_v else None
    for start in range(0, n, rows):
        xb = x[start:start + rows]
        sq = _block_sqdist(xb, y, y_sq)                       # (B, M)
        phi, dphi = _profiles(kernel, sq, want_value or want_v, want_grad or want_y)
        if want_value:
            s[start:start + rows] = phi @ v
        if want_v:
            gv += go[start:start + rows] @ phi
        if want_grad or want_y:
            c = dphi.mul_(2.0 * v[None, :])                   # (B, M)
            if go is not None:
                c = c * go[start:start + rows, None]
            if want_grad:
                gx[start:start + rows] = c.sum(1, keepdim=True) * xb - c @ y
            if want_y:
                gy += c.sum(0)[:, None] * y - c.T @ xb
    return s, gx, gy, gv


class _BlockedKernelSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, v, kernel, block_elems):
        s, _, _, _ = _blocked_pass(x, y, v, kernel, want_value=True, want_grad=False, block_elems=block_elems)
        ctx.save_for_backward(x, y, v)
        ctx.kernel, ctx.block_elems = kernel, block_elems
        return s

    @staticmethod
    def backward(ctx, go):
        x, y, v = ctx.saved_tensors
        need_x, need_y, need_v = ctx.needs_input_grad[:3]
        _, gx, gy, gv = _blocked_pass(x, y, v, ctx.kernel, want_value=False, want_grad=need_x,
                                      block_elems=ctx.block_elems, go=go, want_y=need_y, want_v=need_v)
        return gx, gy, gv, None, None


def _dense_sum(x, y, v, kernel, **_):
    return kernel.profile(squared_distances(x, y)) @ v


def _dense_grad(x, y, v, kernel, **_):
    return (kernel.grad(x, y) * v[None, :, None]).sum(1)


def _blocked_sum(x, y, v, kernel, *, block_elems=BLOCK_ELEMS, **_):
    return _BlockedKernelSum.apply(x, y, v, kernel, block_elems)


def _blocked_grad(x, y, v, kernel, *, block_elems=BLOCK_ELEMS, **_):
    with torch.no_grad():
        return _blocked_pass(x, y, v, kernel, want_value=False, want_grad=True, block_elems=block_elems)[1]


def _sliced_sum(x, y, v, kernel, **options):
    from .sliced import sliced_kernel_sum
    return sliced_kernel_sum(x, y, kernel, v, **options)


def _sliced_grad(x, y, v, kernel, **options):
    from .sliced import sliced_kernel_sum_grad
    return sliced_kernel_sum_grad(x, y, kernel, v, **options)


def _keops_sum(x, y, v, kernel, **options):
    from .keops_backend import keops_kernel_sum
    return keops_kernel_sum(x, y, kernel, v, **options)


def _keops_grad(x, y, v, kernel, **options):
    from .keops_backend import keops_kernel_sum_grad
    return keops_kernel_sum_grad(x, y, kernel, v, **options)


#: name -> (value function, gradient function); both take ``(x, y, v, kernel, **options)``.
BACKENDS: dict[str, tuple[Callable, Callable]] = {
    "dense": (_dense_sum, _dense_grad),
    "blocked": (_blocked_sum, _blocked_grad),
    "sliced": (_sliced_sum, _sliced_grad),
    "keops": (_keops_sum, _keops_grad),
}
_EXACT = {"dense", "blocked", "keops"}


def register_backend(name: str, value_fn: Callable, grad_fn: Callable) -> None:
    """Add a backend: ``value_fn`` and ``grad_fn`` take ``(x, y, v, kernel, **options)``.

    ``value_fn`` returns ``[N]`` (differentiable), ``grad_fn`` returns ``[N, d]``.
    """
    if not isinstance(name, str) or not name or name == "auto":
        raise ValueError(f"a backend name must be a non-empty string other than 'auto', got {name!r}")
    BACKENDS[name] = (value_fn, grad_fn)


def _have_keops() -> bool:
    return importlib.util.find_spec("pykeops") is not None


def available_backends() -> list[str]:
    """Registered backends that can run here (``keops`` only when pykeops is installed)."""
    return [b for b in BACKENDS if b != "keops" or _have_keops()]


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


def choose_backend(backend, x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel) -> str:
    """The backend name that ``backend`` (a name, a :class:`Backend` or ``"auto"``) resolves to for these inputs."""
    if isinstance(backend, Backend):
        backend = backend.name
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a name or a Backend, got {backend!r}")
    n, d = x.shape
    m = y.shape[0]
    if backend == "auto":
        if n * m * d <= DENSE_LIMIT:
            return "dense"
        if n * m >= KEOPS_MIN_PAIRS and (x.is_cuda or d <= 8) and _have_keops():
            return "keops"
        return "blocked"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available: {sorted(BACKENDS) + ['auto']}")
    if backend == "keops" and not _have_keops():
        raise ValueError("backend 'keops' needs pykeops, which is not installed; use 'blocked' (exact) instead")
    return backend


def _resolve(backend, x, y, kernel, options):
    name = choose_backend(backend, x, y, kernel)
    if isinstance(backend, Backend):
        options = {**backend.options, **options}
    return name, options


def _prepare(x, y, v, kernel):
    check_points(x, "x")
    check_points(y, "y")
    check_same_space(x, y)
    if not isinstance(kernel, RadialKernel):
        raise TypeError(f"kernel must be an mmdflow.kernels kernel, got {type(kernel).__name__}")
    return check_weights(v, y, "v")


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
    name, options = _resolve(backend, x, y, kernel, options)
    return BACKENDS[name][0](x, y, v, kernel, **options)


def kernel_sum_grad(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor | None = None, *,
                    backend: str = "auto", **options) -> torch.Tensor:
    r"""Gradients :math:`g_i = \sum_j v_j \nabla_1 K(x_i, y_j)`, shape ``[N, d]`` (no autograd graph).

    Coinciding pairs ``x_i = y_j`` contribute zero (Altekrüger et al. 2023, Sec. 5).
    """
    v = _prepare(x, y, v, kernel)
    name, options = _resolve(backend, x, y, kernel, options)
    with torch.no_grad():
        xd = x.detach()
        return BACKENDS[name][1](xd, xd if y is x else y.detach(), v.detach(), kernel, **options)


def kernel_sum_and_grad(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor | None = None, *,
                        backend: str = "auto", **options) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Both :math:`s_i` ``[N]`` and :math:`g_i` ``[N, d]`` without autograd.

    The ``blocked`` backend computes them in one pass over the blocks (each
    distance block is formed once); other backends call their value and
    gradient functions (for ``sliced`` with the same directions when these are
    given as a tensor, else with independent ones).
    """
    v = _prepare(x, y, v, kernel)
    name, options = _resolve(backend, x, y, kernel, options)
    with torch.no_grad():
        xd, vd = x.detach(), v.detach()
        yd = xd if y is x else y.detach()
        if name == "blocked":
            s, g, _, _ = _blocked_pass(xd, yd, vd, kernel, want_value=True, want_grad=True,
                                       block_elems=options.get("block_elems", BLOCK_ELEMS))
            return s, g
        value_fn, grad_fn = BACKENDS[name]
        return value_fn(xd, yd, vd, kernel, **options), grad_fn(xd, yd, vd, kernel, **options)
