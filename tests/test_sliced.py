"""The sliced backend: slicing constant, directions, 1D engines, autograd, error rate, discrepancy."""

import importlib.util
import math

import numpy as np
import pytest
import torch

from mmdflow import energies
from mmdflow.summation import directions, sliced
from mmdflow.summation import sort1d as _sort1d
from mmdflow.kernels import Riesz
from mmdflow.summation import kernel_sum, kernel_sum_grad

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
K1 = Riesz(1.0)


def test_slicing_constant_closed_forms():
    assert directions.slicing_constant(1) == pytest.approx(1.0, rel=1e-13)
    assert directions.slicing_constant(2) == pytest.approx(math.pi / 2, rel=1e-13)
    assert directions.slicing_constant(3) == pytest.approx(2.0, rel=1e-13)
    assert directions.slicing_constant(4) == pytest.approx(3 * math.pi / 4, rel=1e-13)
    # large d: c_d ~ sqrt(pi d / 2) (1 - 1/(4d) + ...), no overflow thanks to lgamma
    for d in (784, 10_000):
        assert directions.slicing_constant(d) / math.sqrt(math.pi * d / 2) == pytest.approx(1 - 1 / (4 * d), abs=1e-6)


def test_slicing_constant_general_r_by_quadrature():
    """c_{2,r} = 1 / E|cos(theta)|^r for theta uniform, computed by the midpoint rule."""
    theta = (np.arange(200_000) + 0.5) * (np.pi / 2) / 200_000
    for r in (0.5, 1.0, 1.5):
        mean = np.mean(np.cos(theta) ** r)
        assert directions.slicing_constant(2, r) == pytest.approx(1 / mean, rel=1e-6)
    with pytest.raises(ValueError, match="r=2"):
        directions.slicing_constant(2, 2)
    with pytest.raises(ValueError, match="d"):
        directions.slicing_constant(0)


@pytest.mark.parametrize("rule", ["iid", "orthogonal", "equispaced"])
def test_directions_are_unit_and_structured(rule):
    d = 2 if rule == "equispaced" else 5
    g = torch.Generator().manual_seed(3)
    xi = directions.sample_directions(d, 12, rule, generator=g, dtype=torch.float64)
    assert xi.shape == (12, d)
    torch.testing.assert_close(xi.norm(dim=1), torch.ones(12, dtype=torch.float64))
    if rule == "orthogonal":   # blocks of d orthonormal rows (5 + 5 + 2)
        for blk in (xi[:5], xi[5:10], xi[10:]):
            torch.testing.assert_close(blk @ blk.T, torch.eye(len(blk), dtype=torch.float64), atol=1e-12, rtol=0)
    if rule == "equispaced":   # consecutive angles differ by pi / P
        ang = torch.atan2(xi[:, 1], xi[:, 0])
        torch.testing.assert_close(ang.diff(), torch.full((11,), math.pi / 12, dtype=torch.float64))
    # reproducible with the same seed
    torch.testing.assert_close(xi, directions.sample_directions(d, 12, rule, generator=torch.Generator().manual_seed(3),
                                                            dtype=torch.float64))


def test_partial_orthogonal_block_is_uniform():
    """A partial block (k < d rows, from a [d, k] QR) is orthonormal and each row is uniform on the sphere:
    E[xi xi^T] = I/d and E|xi_1| = 1/c_{d,1}."""
    d, k, reps = 4, 2, 3000
    g = torch.Generator().manual_seed(11)
    xi = torch.stack([directions.sample_directions(d, k, "orthogonal", generator=g, dtype=torch.float64)
                      for _ in range(reps)])                                   # [reps, k, d]
    torch.testing.assert_close(xi @ xi.transpose(1, 2), torch.eye(k, dtype=torch.float64).expand(reps, k, k),
                               atol=1e-12, rtol=0)
    rows = xi.reshape(-1, d)
    torch.testing.assert_close(rows.T @ rows / len(rows), torch.eye(d, dtype=torch.float64) / d, atol=0.02, rtol=0)
    assert abs(rows[:, 0].abs().mean().item() - 1 / directions.slicing_constant(d)) < 0.02


def test_direction_errors():
    with pytest.raises(ValueError, match="d=3"):
        directions.sample_directions(3, 10, "equispaced")
    with pytest.raises(ValueError, match="'sobol'"):
        directions.sample_directions(3, 10, "sobol")
    with pytest.raises(ValueError, match="n_directions"):
        directions.sample_directions(3, 0, "iid")
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="unit vectors"):
        kernel_sum(x, x, K1, backend="sliced", directions=torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"\[P, 2\]"):
        kernel_sum(x, x, K1, backend="sliced", directions=torch.ones(3, 3))


def _engine_inputs(gen, dtype):
    p, n, m = 6, 70, 50
    zq = torch.randn(p, n, generator=gen).to(dtype)
    zs = torch.randn(p, m, generator=gen).to(dtype)
    zq[:, 3] = zq[:, 7]          # ties inside the queries
    zs[:, 2] = zq[:, 5]          # ties between queries and sources
    zq[:, 0], zs[:, 0] = -0.0, 0.0
    cq = torch.rand(n, generator=gen, dtype=torch.float64)
    cs = -torch.rand(m, generator=gen, dtype=torch.float64)
    return zq, cq, zs, cs


def _brute(zq, cq, zs, cs, alpha):
    z = zq if zs is None else torch.cat([zq, zs], 1)
    c = cq if zs is None else torch.cat([cq, cs])
    ch = c.clone()
    ch[:zq.shape[1]] *= alpha
    diff = z[:, :zq.shape[1], None].double() - z[:, None, :].double()
    return (torch.sign(diff) * c).sum(-1), (diff.abs() * ch).sum(-1).sum(0)


@pytest.mark.parametrize("engine", ["numba", "torch"])
@pytest.mark.parametrize("case", ["sources", "self", "queries-only", "uniform"])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_1d_engines_against_brute_force(gen, engine, case, alpha, dtype):
    if engine == "numba" and not HAVE_NUMBA:
        pytest.skip("numba is not installed")
    zq, cq, zs, cs = _engine_inputs(gen, dtype)
    if case == "self":
        zs = cs = None
    elif case == "queries-only":
        cq = torch.zeros_like(cq)
    elif case == "uniform":
        cq, cs = torch.full_like(cq, 0.02), torch.full_like(cs, -0.03)
    g_ref, h_ref = _brute(zq, cq, zs, cs, alpha)
    g, h = _sort1d.sign_sums(zq, cq, zs, cs, alpha=alpha, engine=engine)
    assert g.dtype == dtype and h.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g.double(), g_ref, rtol=0, atol=2e-6 if dtype == torch.float32 else 1e-13)
    torch.testing.assert_close(h.double(), h_ref, **tol)
    _, hw = _sort1d.sign_sums(zq, cq, zs, cs, alpha=alpha, engine=engine, want_h="weighted")
    assert hw.dim() == 0
    torch.testing.assert_close(hw.double(), (cq * h_ref).sum(), **tol)
    assert _sort1d.sign_sums(zq, cq, zs, cs, engine=engine, want_h=False)[1] is None


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
def test_numba_and_torch_engines_agree_on_large_rows(gen):
    zq = torch.randn(5, 3000, generator=gen)
    zs = torch.randn(5, 2000, generator=gen) * 2
    zs[:, :100] = zq[:, :100]
    cq = torch.full((3000,), 1 / 3000, dtype=torch.float64)
    cs = -torch.rand(2000, generator=gen, dtype=torch.float64) / 1000
    a = _sort1d.sign_sums(zq, cq, zs, cs, engine="numba")
    b = _sort1d.sign_sums(zq, cq, zs, cs, engine="torch")
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(a[1], b[1], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="engine"):
        _sort1d.sign_sums(zq, cq, zs, cs, engine="radix")
    # a caller's buffer receives g (the chunked sliced pass re-uses one per call)
    buf = torch.full_like(zq, float("nan"))
    g, _ = _sort1d.sign_sums(zq, cq, zs, cs, engine="numba", out=buf)
    assert g.data_ptr() == buf.data_ptr()
    torch.testing.assert_close(buf, b[0], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"out must be a contiguous torch.float32 tensor of shape \(5, 3000\)"):
        _sort1d.sign_sums(zq, cq, zs, cs, engine="numba", out=buf[:, :2999])


def test_autograd_matches_finite_differences(gen):
    """Fixed directions make the sliced sum piecewise linear: gradcheck the hand-written backward (x, y, v)."""
    xi = directions.sample_directions(3, 7, "iid", generator=gen, dtype=torch.float64)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    v = torch.rand(5, generator=gen, dtype=torch.float64)
    v = (v / v.sum()).requires_grad_()
    scale = -directions.slicing_constant(3) / 7

    def f(x, y, v):
        return sliced._SlicedKernelSum.apply(x, y, v, xi, False, "auto", sliced.DEFAULT_CHUNK_ELEMS, scale)

    assert torch.autograd.gradcheck(f, (x, y, v), eps=1e-6, atol=1e-6)

    def f_self(x, w):
        return sliced._SlicedKernelSum.apply(x, x, w, xi, True, "auto", sliced.DEFAULT_CHUNK_ELEMS, scale)

    w = torch.full((6,), 1 / 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f_self, (x, w), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("engine", ["numba", "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_abs_sums_1d_against_dense_with_ties_signed_weights_and_autograd(gen, engine, dtype):
    """h_i = sum_k c_k |x_i - y_k| for real weights of any total, its x-derivative sum_k c_k sign(x_i - y_k)
    with sign(0) = 0 (ties with the sources included), and its derivatives in y and c, against dense sums."""
    if engine == "numba" and not HAVE_NUMBA:
        pytest.skip("numba is not installed")
    x = torch.randn(40, generator=gen, dtype=torch.float64)
    y = torch.randn(30, generator=gen, dtype=torch.float64)
    y[:10] = x[:10]                                                    # ties between queries and sources
    c = torch.rand(30, generator=gen, dtype=torch.float64) - 0.3      # signed, total not one
    x, y, c = (t.to(dtype).requires_grad_() for t in (x, y, c))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    h = sliced.abs_sums_1d(x, y, c, engine=engine)
    diff = x.detach()[:, None] - y.detach()[None, :]
    assert h.dtype == dtype
    torch.testing.assert_close(h.detach(), (diff.abs() * c.detach()).sum(1), **tol)
    go = torch.randn(40, generator=gen, dtype=torch.float64).to(dtype)
    gx, gy, gc = torch.autograd.grad(h, (x, y, c), go)
    sign = torch.sign(diff)
    torch.testing.assert_close(gx, go * (sign * c.detach()).sum(1), **tol)
    torch.testing.assert_close(gy, -c.detach() * (go[:, None] * sign).sum(0), **tol)
    torch.testing.assert_close(gc, (go[:, None] * diff.abs()).sum(0), **tol)
    # y is x: one sort, and the derivative counts each point as a query and as a source
    w = torch.rand(40, generator=gen, dtype=torch.float64).to(dtype)
    e = (w * sliced.abs_sums_1d(x, x, w, engine=engine)).sum()
    (ge,) = torch.autograd.grad(e, x)
    dxx = x.detach()[:, None] - x.detach()[None, :]
    torch.testing.assert_close(e.detach(), w @ dxx.abs() @ w, **tol)
    torch.testing.assert_close(ge, 2 * w * (torch.sign(dxx) * w).sum(1), **tol)
    with pytest.raises(ValueError, match="v must have the shape of y"):
        sliced.abs_sums_1d(x, y, c[:5])
    with pytest.raises(ValueError, match="x must be a 1-D tensor"):
        sliced.abs_sums_1d(x[:, None], y, c)


def test_autograd_gradient_equals_kernel_sum_grad_and_chunks(gen):
    x = torch.randn(200, 4, generator=gen, requires_grad=True)
    y = torch.randn(150, 4, generator=gen)
    xi = directions.sample_directions(4, 64, "orthogonal", generator=gen)
    s = kernel_sum(x, y, K1, backend="sliced", directions=xi)
    (gx,) = torch.autograd.grad(s.sum(), x)
    g = kernel_sum_grad(x, y, K1, backend="sliced", directions=xi, chunk_elems=7 * 350)   # 10 chunks
    torch.testing.assert_close(gx, g, rtol=1e-5, atol=1e-6)
    # the y-is-x path (one sort) equals the general path on a copy
    w = torch.full((200,), 1 / 200)
    torch.testing.assert_close(kernel_sum(x, x, K1, w, backend="sliced", directions=xi),
                               kernel_sum(x, x.detach().clone(), K1, w, backend="sliced", directions=xi),
                               rtol=1e-5, atol=1e-5)


def test_gradient_error_falls_like_inverse_sqrt_p():
    """iid directions: the relative gradient error is about sqrt((c_d^2 - 1) / P); fit the log-log slope."""
    g = torch.Generator().manual_seed(11)
    d = 3
    x = torch.randn(150, d, generator=g)
    y = torch.randn(120, d, generator=g) * 0.5 + 1.0
    exact = kernel_sum_grad(x.double(), y.double(), K1, backend="dense").float()
    ps = [16, 64, 256, 1024, 4096]
    rms = []
    for p in ps:
        errs = [((kernel_sum_grad(x, y, K1, backend="sliced", n_directions=p, directions="iid", generator=g)
                  - exact).norm() / exact.norm()) ** 2 for _ in range(6)]
        rms.append(float(torch.stack(errs).mean().sqrt()))
    slope = np.polyfit(np.log(ps), np.log(rms), 1)[0]
    assert -0.62 < slope < -0.38, f"slope {slope:.3f}, errors {rms}"
    # the level matches the per-pair estimate sqrt((c_d^2 - 1)/P) within a factor 2 (c_3 = 2: sqrt(3/P))
    for p, e in zip(ps, rms):
        assert 0.5 < e / math.sqrt(3 / p) < 2.0


def test_structured_directions_beat_iid():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(300, 2, generator=g, dtype=torch.float64)
    y = torch.randn(300, 2, generator=g, dtype=torch.float64) + 0.5
    exact = kernel_sum_grad(x, y, K1, backend="dense")

    def err(rule):
        gs = kernel_sum_grad(x, y, K1, backend="sliced", n_directions=100, directions=rule, generator=g)
        return float((gs - exact).norm() / exact.norm())

    assert err("equispaced") < 0.1 * err("iid")


def test_discrepancy_and_energy(gen):
    x = torch.randn(80, 1, generator=gen, dtype=torch.float64)
    y = torch.randn(60, 1, generator=gen, dtype=torch.float64) + 1
    w = torch.rand(80, generator=gen, dtype=torch.float64)
    w = w / w.sum()
    one = torch.ones(1, 1, dtype=torch.float64)
    val, grad = sliced.sliced_discrepancy_and_gradient(x, y, w, directions=one)
    exact_val = energies.discrepancy(x, y, K1, w) - energies.interaction_energy(y, K1)
    torch.testing.assert_close(val, exact_val)
    torch.testing.assert_close(grad, energies.discrepancy_gradient(x, y, K1, w))
    # d=3: the energy object is close to the exact discrepancy with many orthogonal directions
    x3 = torch.randn(100, 3, generator=gen)
    y3 = torch.randn(90, 3, generator=gen) + 0.5
    e = energies.SlicedDiscrepancyEnergy(K1, y3, n_directions=3000, generator=torch.Generator().manual_seed(0))
    ref = energies.DiscrepancyEnergy(K1, y3, backend="dense")
    assert abs(float(e.value(x3) - ref.value(x3))) < 0.02 * float(ref.value(x3))
    g_ref = ref.gradient(x3)
    assert float((e.gradient(x3) - g_ref).norm() / g_ref.norm()) < 0.1
    with pytest.raises(ValueError, match="Riesz kernel with r=1"):
        energies.SlicedDiscrepancyEnergy(Riesz(0.5), y3)


def test_sliced_on_device(gen, device):
    """GPU runs use the torch engine; results keep dtype and device (exact in d=1)."""
    x = torch.randn(50, 1, generator=gen).to(device)
    y = torch.randn(40, 1, generator=gen).to(device)
    one = torch.ones(1, 1, device=device)
    s = kernel_sum(x, y, K1, backend="sliced", directions=one)
    assert s.device.type == device.type and s.dtype == torch.float32
    torch.testing.assert_close(s, kernel_sum(x, y, K1, backend="dense"), rtol=1e-5, atol=1e-5)


def test_span_basis_preserves_distances_and_finds_the_rank(gen):
    """Points in a random 5-dim affine subspace of R^40: rank 5, distances kept to float64 rounding."""
    base = torch.randn(5, 40, generator=gen, dtype=torch.float64)
    shift = torch.randn(40, generator=gen, dtype=torch.float64)
    x = torch.randn(12, 5, generator=gen, dtype=torch.float64) @ base + shift
    y = torch.randn(9, 5, generator=gen, dtype=torch.float64) @ base + shift
    m, q = directions.span_basis(x, y)
    assert q.shape == (40, 5) and q.dtype == torch.float64
    torch.testing.assert_close(q.T @ q, torch.eye(5, dtype=torch.float64), rtol=0, atol=1e-12)
    xr, yr = sliced._reduce(x, y, (m, q))
    torch.testing.assert_close(torch.cdist(xr, yr), torch.cdist(x, y), rtol=1e-12, atol=1e-12)
    # the rank of generic points is n - 1 (centred), a single repeated point keeps one axis
    assert directions.span_basis(torch.randn(30, 40, generator=gen))[1].shape == (40, 29)
    assert directions.span_basis(torch.ones(4, 40))[1].shape == (40, 1)
    # no reduction: n >= d under "auto", subspace=False, given or equispaced directions
    assert directions.span_basis(torch.randn(50, 40, generator=gen)) is None
    assert directions.span_basis(x, y, subspace=False) is None
    assert directions.span_basis(x, y, directions=torch.eye(40, dtype=torch.float64)[:3]) is None
    assert directions.span_basis(torch.randn(50, 40, generator=gen), subspace=True)[1].shape == (40, 40)
    with pytest.raises(ValueError, match="subspace=True needs directions given by the rule"):
        directions.span_basis(x, y, subspace=True, directions="equispaced")
    with pytest.raises(ValueError, match="subspace must be 'auto', True or False, got 'yes'"):
        directions.span_basis(x, y, subspace="yes")
    with pytest.raises(ValueError, match="got 1"):
        directions.span_basis(x, y, subspace=1)


def test_collinear_points_in_high_dimension_are_summed_exactly(gen):
    """On a line (k = 1 after centring) one direction is exact, whatever the ambient dimension."""
    u = torch.randn(60, generator=gen, dtype=torch.float64)
    u = u / u.norm()
    a = torch.randn(60, generator=gen, dtype=torch.float64)
    x = a + torch.randn(15, 1, generator=gen, dtype=torch.float64) * u
    y = a + (torch.randn(10, 1, generator=gen, dtype=torch.float64) + 1) * u
    val, grad = sliced.sliced_discrepancy_and_gradient(x, y, n_directions=1, generator=gen)
    exact_val = energies.discrepancy(x, y, K1) - energies.interaction_energy(y, K1)
    torch.testing.assert_close(val, exact_val, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, energies.discrepancy_gradient(x, y, K1), rtol=1e-10, atol=1e-12)
    # the default P is 1 on a line; kernel sums and their autograd gradient are exact too
    torch.testing.assert_close(kernel_sum(x, y, K1, backend="sliced"), kernel_sum(x, y, K1, backend="dense"))
    xg = x.clone().requires_grad_()
    (gx,) = torch.autograd.grad(kernel_sum(xg, y, K1, backend="sliced").sum(), xg)
    torch.testing.assert_close(gx, kernel_sum_grad(x, y, K1, backend="dense"))


def test_slicing_in_the_span_is_unbiased_and_more_accurate():
    """N + M = 40 points in d = 300 (k = 39): same mean as the exact gradient, error ~ sqrt(k / d) smaller."""
    g = torch.Generator().manual_seed(3)
    d = 300
    x = torch.randn(25, d, generator=g, dtype=torch.float64)
    y = torch.randn(15, d, generator=g, dtype=torch.float64) * 0.7 + 0.3
    exact = energies.discrepancy_gradient(x, y, K1)

    def draws(subspace, n=40):
        return torch.stack([sliced.sliced_discrepancy_and_gradient(
            x, y, n_directions=100, directions="iid", generator=g, subspace=subspace)[1] for _ in range(n)])

    reduced, full = draws("auto"), draws(False)
    err = {k: float(((v - exact).norm(dim=(1, 2)) / exact.norm()).pow(2).mean().sqrt())
           for k, v in (("reduced", reduced), ("full", full))}
    ratio = err["reduced"] / err["full"]
    expected = math.sqrt((directions.slicing_constant(39) ** 2 - 1) / (directions.slicing_constant(d) ** 2 - 1))
    assert 0.6 * expected < ratio < 1.5 * expected, (err, expected)
    # unbiased: the mean of 40 draws is within 3 standard errors of the exact gradient
    assert float((reduced.mean(0) - exact).norm() / exact.norm()) < 3 * err["reduced"] / math.sqrt(40)
    # the reduced gradient lies in the span of the points' differences, like the exact one
    m, q = directions.span_basis(x, y)
    torch.testing.assert_close(reduced[0] @ q @ q.T, reduced[0], rtol=1e-10, atol=1e-12)
