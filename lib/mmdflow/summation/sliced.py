r"""Sliced kernel sums for the Riesz kernel with ``r = 1`` (the energy distance).

**Slicing** (Hertrich, Wald, Altekrüger, Hagemann, ICLR 2024, Thm. "MMD =
sliced MMD"; Hertrich, SIMODS 2024): for :math:`r \in (0, 2)` and
:math:`\xi` uniform on the sphere :math:`S^{d-1}`,

.. math::
    \|z\|^r = c_{d,r}\,\mathbb E_\xi\,|\langle \xi, z\rangle|^r, \qquad
    c_{d,r} = \frac{\sqrt\pi\,\Gamma(\tfrac{d+r}{2})}{\Gamma(\tfrac d2)\,\Gamma(\tfrac{r+1}{2})}
            = \frac{1}{\mathbb E|\xi_1|^r},

so a Riesz kernel sum is an average of one-dimensional sums over directions.
With :math:`P` directions :math:`\xi_p`,

.. math::
    \sum_k v_k K(x_i, y_k) \approx -\frac{c_{d,1}}{P}\sum_{p=1}^P \sum_k v_k
        |\langle\xi_p, x_i\rangle - \langle\xi_p, y_k\rangle|,

and for ``r = 1`` each one-dimensional sum and its derivative
:math:`\sum_k v_k \operatorname{sign}(s_i - t_k)` follow from one sort of the
projected points (:mod:`mmdflow.summation.sort1d`). The gradient is the back-projection
:math:`-\frac{c_{d,1}}{P}\sum_p g_{p,i}\,\xi_p`. Cost:
:math:`O(P (N+M) \log(N+M) + P (N+M) d)` instead of :math:`O(N M d)`; memory is
bounded by processing the directions in chunks.

**Directions** (``directions=``):

* ``"iid"``: independent uniform directions; the gradient error falls like
  :math:`\sqrt{(c_d^2-1)/P}` (relative), i.e. about :math:`\sqrt{\pi d / (2P)}`.
* ``"orthogonal"``: blocks of ``d`` orthonormal directions, each block a Haar
  random rotation (Hertrich, Jahn, Quellmalz, ICLR 2025); the same cost, a
  smaller error (about :math:`0.755/\sqrt{P/d}` for large ``d``).
* ``"equispaced"`` (``d = 2`` only): angles :math:`\pi (p + u)/P` with one
  random offset ``u``, a randomised quadrature rule whose error falls much
  faster than :math:`P^{-1/2}`.
* ``"auto"``: ``"equispaced"`` in ``d = 2``, else ``"orthogonal"``.

Every rule is unbiased: each direction is marginally uniform on the sphere.
A tensor ``[P, d]`` of unit vectors may also be passed (and is used as is).

**Slicing in the span of the points** (``subspace=``): when there are fewer
points than dimensions, :math:`n = N + M < d`, all differences
:math:`x_i - y_j` lie in the span ``V`` of the centred points, of dimension
:math:`k \le n - 1` (:func:`span_basis`: a float64 SVD, :math:`O(d n^2)`).
Distances are unchanged in the coordinates :math:`x \mapsto (x - m) Q`, so the
sums may be sliced in :math:`\mathbb R^k` with the constant :math:`c_{k,1}`
and the gradient mapped back by :math:`Q^\top`. The estimator stays unbiased
(directions uniform on the sphere of ``V``) with a smaller constant: the
relative error of ``P`` iid directions falls from about
:math:`\sqrt{\pi d/(2P)}` to :math:`\sqrt{\pi k/(2P)}`, and each projection
costs ``k`` multiplications instead of ``d``. Collinear points (``k = 1``)
are summed exactly with one direction. ``"auto"`` (the default) reduces when
``n < d`` and the directions are given by a rule (not a tensor); the rule
``"auto"`` is then resolved in ``k`` dimensions (``"equispaced"`` when ``k = 2``).
This is what makes the sliced backend cheap for the 25 particles and 100
digits of the MNIST chapter (``k = 124`` instead of ``d = 784``).

Only ``Riesz(1.0)`` has the sorting formula; any other kernel raises a
``ValueError`` (other kernels need a fast Fourier summation per slice, not
implemented here).
"""

from __future__ import annotations

import torch

from . import sort1d as _sort1d
from .._checks import check_clouds, check_weights
from ..kernels import RadialKernel, riesz_exponent
from .directions import directions_for as _directions_for, slicing_constant, span_basis

__all__ = [
    "DEFAULT_CHUNK_ELEMS",
    "sliced_kernel_sum",
    "sliced_kernel_sum_grad",
    "sliced_discrepancy_and_gradient",
    "check_sliced_kernel",
    "abs_sums_1d",
]

#: projected values held at once (directions are processed in chunks of about this many ``P * (N + M)``;
#: 2^26 float32 values: 256 MB, plus the [P, N] signs. Larger chunks keep the projection GEMM at BLAS speed).
DEFAULT_CHUNK_ELEMS = 2**26


def check_sliced_kernel(kernel) -> None:
    """The kernel is ``-|x - y|`` (its own ``riesz_exponent()`` is 1): the only kernel with the sorting formula.

    Args:
        kernel: the kernel to check.

    Raises:
        ValueError: the kernel is not its own Riesz kernel with ``r = 1``.
    """
    if not isinstance(kernel, RadialKernel) or riesz_exponent(kernel) != 1.0:
        raise ValueError("the sliced backend needs the Riesz kernel with r=1 (its sorting formula); "
                         f"got {kernel!r}. Use backend='blocked' (exact) for other kernels")


def _reduce(x, y, basis):
    """Coordinates ``(z - m) Q`` of ``x`` and ``y`` in the span (``y is x`` is kept)."""
    if basis is None:
        return x, y
    m, q = basis
    xr = (x - m) @ q
    return xr, (xr if y is x else (y - m) @ q)


def _setup(x, y, n_directions, directions, generator, subspace):
    """Span basis (or ``None``), the coordinates of ``x`` and ``y`` there, and the directions in that space."""
    basis = span_basis(x, y, subspace=subspace, directions=directions)
    xr, yr = _reduce(x, y, basis)
    return basis, xr, yr, _directions_for(xr, n_directions, directions, generator, d_full=x.shape[1])


def _lift(g, basis):
    """Map a gradient ``[N, k]`` in span coordinates back to ``[N, d]``."""
    return g if basis is None else g @ basis[1].T


def _sliced_pass(q, cq, s, cs, xi, *, want_h: bool, want_g: bool, alpha: float = 1.0, engine: str = "auto",
                 chunk_elems: int = DEFAULT_CHUNK_ELEMS):
    r"""Unscaled sliced sums over the directions ``xi`` ``[P, d]``.

    Sources are the queries ``q`` ``[N, d]`` with weights ``cq`` (may be zero)
    and, when given, ``s`` ``[M, d]`` with weights ``cs`` (real, any sign).

    Returns:
        ``h`` ``[N]``: :math:`\sum_p\sum_k c_k|\langle\xi_p, q_i - u_k\rangle|` (queries' own weights times ``alpha``;
        with ``want_h="weighted"`` the scalar :math:`\sum_i c^q_i h_i`),
        ``G`` ``[N, d]``: :math:`\sum_p (\sum_k c_k\,\mathrm{sign}\langle\xi_p, q_i - u_k\rangle)\,\xi_p`;
        each ``None`` unless requested. Memory: ``O(chunk_elems + (N + M) d)``.
    """
    n_dir = xi.shape[0]
    n = q.shape[0]
    total = n + (0 if s is None else s.shape[0])
    step = max(1, min(n_dir, chunk_elems // total))
    h = (q.new_zeros((), dtype=torch.float64) if want_h == "weighted" else q.new_zeros(n, dtype=torch.float64)
         ) if want_h else None
    grad = None
    # buffers re-used by every chunk: a fresh allocation per chunk costs its page faults each time
    # (about 0.1 s per chunk at N = M = 1e5, 167 directions)
    zq_buf = q.new_empty(step, n)
    zs_buf = None if s is None else s.new_empty(step, s.shape[0])
    g_buf = q.new_empty(step, n) if _sort1d.resolve_engine(engine, q) == "numba" else None
    for start in range(0, n_dir, step):
        xc = xi[start:start + step]
        rows = xc.shape[0]
        zq = torch.mm(xc, q.T, out=zq_buf[:rows])                               # [Pc, N]
        zs = None if s is None else torch.mm(xc, s.T, out=zs_buf[:rows])        # [Pc, M]
        g, hh = _sort1d.sign_sums(zq, cq, zs, cs, want_h=want_h, alpha=alpha, engine=engine,
                                  out=None if g_buf is None else g_buf[:rows])
        if want_g:   # the first chunk writes the [N, d] result, later ones accumulate (no zero fill)
            grad = torch.mm(g.T, xc) if grad is None else grad.addmm_(g.T, xc)
        if want_h:
            h += hh.to(torch.float64)
    return (h.to(q.dtype) if want_h else None), grad


class _SlicedKernelSum(torch.autograd.Function):
    """``s_i = scale * sum_p sum_k v_k |<xi_p, x_i - y_k>|`` with a hand-written backward pass
    (``scale = -c_d / P`` for the sliced kernel sum)."""

    @staticmethod
    def forward(ctx, x, y, v, xi, same, engine, chunk_elems, scale):
        need_x = ctx.needs_input_grad[0]
        if same:
            h, grad = _sliced_pass(x, v, None, None, xi, want_h=True, want_g=need_x, engine=engine,
                                   chunk_elems=chunk_elems)
        else:
            h, grad = _sliced_pass(x, torch.zeros_like(x[:, 0]), y, v, xi, want_h=True, want_g=need_x,
                                   engine=engine, chunk_elems=chunk_elems)
        ctx.save_for_backward(x, y, v, xi, grad)
        ctx.scale, ctx.same, ctx.engine, ctx.chunk_elems = scale, same, engine, chunk_elems
        return scale * h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, go):
        x, y, v, xi, grad = ctx.saved_tensors
        need_x, need_y, need_v = ctx.needs_input_grad[:3]
        gx = gy = gv = None
        if need_x:
            gx = ctx.scale * go[:, None] * grad
        if need_y or need_v:
            # transposed problem: queries y, sources x weighted by the incoming gradient
            if ctx.same:
                h, g = _sliced_pass(y, go, None, None, xi, want_h=need_v, want_g=need_y, engine=ctx.engine,
                                    chunk_elems=ctx.chunk_elems)
            else:
                h, g = _sliced_pass(y, torch.zeros_like(y[:, 0]), x, go, xi, want_h=need_v, want_g=need_y,
                                    engine=ctx.engine, chunk_elems=ctx.chunk_elems)
            if need_y:
                gy = ctx.scale * v[:, None] * g
            if need_v:
                gv = ctx.scale * h
        return gx, gy, gv, None, None, None, None, None


def _prepare(x, y, v, kernel):
    check_clouds(x, y)
    check_sliced_kernel(kernel)
    return check_weights(v, y, "v")


def sliced_kernel_sum(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor | None = None, *,
                      n_directions: int | None = None, directions="auto", generator: torch.Generator | None = None,
                      engine: str = "auto", chunk_elems: int = DEFAULT_CHUNK_ELEMS,
                      subspace="auto") -> torch.Tensor:
    r"""Sliced estimate of :math:`s_i = \sum_k v_k K(x_i, y_k)` for ``K = Riesz(1)``, shape ``[N]``.

    Differentiable in ``x``, ``y`` and ``v`` (first order; the backward pass
    re-uses the same directions and costs one more sort per direction when
    gradients to ``y`` or ``v`` are needed). When ``y is x`` the points are
    sorted once per direction.

    Args:
        x: ``[N, d]``.
        y: ``[M, d]``.
        kernel: must be ``Riesz(1.0)``.
        v: ``[M]`` or ``None`` (uniform).
        n_directions: ``P`` (default :func:`default_n_directions`).
        directions: a rule of :data:`DIRECTION_RULES` or a ``[P, d]`` tensor of unit vectors.
        generator: randomness for the directions.
        engine: 1D engine, ``"auto"`` (numba on CPU when installed, torch otherwise), ``"numba"`` or ``"torch"``.
        chunk_elems: bound on the projected values held at once.
        subspace: slice in the span of the points when there are fewer points than dimensions
            (``"auto"``, ``True`` or ``False``; see :func:`span_basis`). The basis is held fixed
            under autograd: the gradients stay in the span, like the exact ones.

    Returns:
        ``[N]`` tensor, differentiable in ``x``, ``y`` and ``v``.

    Raises:
        ValueError: the kernel is not ``Riesz(1.0)``, or the directions do not fit the points.
    """
    v = _prepare(x, y, v, kernel)
    _, xr, yr, xi = _setup(x, y, n_directions, directions, generator, subspace)
    return _SlicedKernelSum.apply(xr, yr, v, xi, yr is xr, engine, chunk_elems,
                                  -slicing_constant(xr.shape[1]) / xi.shape[0])


def abs_sums_1d(x: torch.Tensor, y: torch.Tensor, v: torch.Tensor, *, engine: str = "auto") -> torch.Tensor:
    r"""Exact one-dimensional sums :math:`h_i = \sum_k v_k\,|x_i - y_k|` by sorting, shape ``[N]``.

    The one-direction case of the sliced sums (no slicing error, no scale): the weights are real, of any sign and
    any total (e.g. a measure restricted to a half-plane), so they are not checked against the simplex.
    Differentiable in ``x``, ``y`` and ``v`` (first order); the derivative in :math:`x_i` is
    :math:`\sum_k v_k\operatorname{sign}(x_i - y_k)` with :math:`\operatorname{sign}(0) = 0`. When ``y is x``
    the points are sorted once.

    Args:
        x: query points ``[N]``.
        y: source points ``[M]`` (or ``x`` itself).
        v: source weights ``[M]`` (real), dtype and device of ``y``.
        engine: 1D engine of :mod:`mmdflow.summation.sort1d` (``"auto"``, ``"numba"`` or ``"torch"``).

    Returns:
        ``[N]`` in the dtype of ``x``.
    """
    for t, name in ((x, "x"), (y, "y"), (v, "v")):
        if not isinstance(t, torch.Tensor) or t.dim() != 1:
            raise ValueError(f"{name} must be a 1-D tensor, got {getattr(t, 'shape', type(t).__name__)}")
    if v.shape != y.shape:
        raise ValueError(f"v must have the shape of y {tuple(y.shape)}, got {tuple(v.shape)}")
    xi = x.new_ones(1, 1)
    x2 = x[:, None]
    return _SlicedKernelSum.apply(x2, x2 if y is x else y[:, None], v, xi, y is x, engine, DEFAULT_CHUNK_ELEMS, 1.0)


def sliced_kernel_sum_grad(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor | None = None, *,
                           n_directions: int | None = None, directions="auto",
                           generator: torch.Generator | None = None, engine: str = "auto",
                           chunk_elems: int = DEFAULT_CHUNK_ELEMS, subspace="auto") -> torch.Tensor:
    r"""Sliced estimate of :math:`g_i = \sum_k v_k \nabla_1 K(x_i, y_k)`, shape ``[N, d]`` (no autograd graph).

    :math:`g_i \approx \frac{c_{d,1}}{P}\sum_p \big(\sum_k v_k \operatorname{sign}\langle\xi_p, y_k - x_i\rangle\big)\xi_p`.
    Same options as :func:`sliced_kernel_sum`.

    Args:
        x: ``[N, d]``.
        y: ``[M, d]``.
        kernel: must be ``Riesz(1.0)``.
        v: ``[M]`` or ``None`` (uniform).
        n_directions: ``P`` (default :func:`default_n_directions`).
        directions: a rule of :data:`DIRECTION_RULES` or a ``[P, d]`` tensor of unit vectors.
        generator: randomness for the directions.
        engine: 1D engine, ``"auto"``, ``"numba"`` or ``"torch"``.
        chunk_elems: bound on the projected values held at once.
        subspace: slice in the span of the points (see :func:`sliced_kernel_sum`).

    Returns:
        ``[N, d]`` tensor (detached), dtype and device of ``x``.

    Raises:
        ValueError: the kernel is not ``Riesz(1.0)``, or the directions do not fit the points.
    """
    v = _prepare(x, y, v, kernel)
    with torch.no_grad():
        basis, xr, yr, xi = _setup(x, y, n_directions, directions, generator, subspace)
        scale = -slicing_constant(xr.shape[1]) / xi.shape[0]
        if yr is xr:
            _, g = _sliced_pass(xr, v, None, None, xi, want_h=False, want_g=True, engine=engine,
                                chunk_elems=chunk_elems)
        else:
            _, g = _sliced_pass(xr, torch.zeros_like(xr[:, 0]), yr, v, xi, want_h=False, want_g=True,
                                engine=engine, chunk_elems=chunk_elems)
        g.mul_(scale)
        return _lift(g, basis)


def sliced_discrepancy_and_gradient(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None,
                                    v: torch.Tensor | None = None, *, n_directions: int | None = None,
                                    directions="auto", generator: torch.Generator | None = None,
                                    want_value: bool = True, engine: str = "auto",
                                    chunk_elems: int = DEFAULT_CHUNK_ELEMS, subspace="auto"):
    r"""Value and Wasserstein gradient of the Riesz(1) discrepancy, sliced, with one sort per direction.

    With :math:`K(x,y) = -|x-y|` and the same directions for both terms:

    .. math::
        F(\mu) = \mathcal E_K(\mu) + \mathcal V_{K,\nu}(\mu)
               = \mathcal D_K^2(\mu,\nu) - \mathcal E_K(\nu), \qquad
        \nabla\tfrac{\delta F}{\delta\mu}(x_i) = \sum_j w_j\nabla_1K(x_i,x_j) - \sum_l v_l\nabla_1 K(x_i,y_l)

    (Altekrüger et al. 2023, Sec. 2; the ``y``-``y`` term does not depend on
    ``x`` and is left out of the value). Sharing the directions between the
    interaction and the potential term makes their slicing errors cancel
    where the two forces balance, near the target.

    Args:
        x: particles ``[N, d]``.
        y: target ``[M, d]``.
        w: weights ``[N]`` of ``x`` (``None``: uniform).
        v: weights ``[M]`` of ``y`` (``None``: uniform).
        want_value: ``False`` skips the value.
        n_directions, directions, generator, engine, chunk_elems, subspace: as in :func:`sliced_kernel_sum`
            (``subspace`` included: with ``N + M < d`` the particles and the target are sliced in their common
            span).

    Returns:
        ``(value, gradient)``: a 0-d tensor (or ``None``) and ``[N, d]``.
    """
    check_clouds(x, y)
    w = check_weights(w, x, "w")
    v = check_weights(v, y, "v")
    with torch.no_grad():
        basis, xr, yr, xi = _setup(x.detach(), y.detach(), n_directions, directions, generator, subspace)
        scale = -slicing_constant(xr.shape[1]) / xi.shape[0]
        h, g = _sliced_pass(xr, w, yr, -v, xi, want_h="weighted" if want_value else False,
                            want_g=True, alpha=0.5, engine=engine, chunk_elems=chunk_elems)
        value = scale * h if want_value else None
        g.mul_(scale)   # g is this function's own [N, k] tensor: scaled in place
        return value, _lift(g, basis)
