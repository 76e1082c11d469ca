"""Every fast path of the kernel sums against the dense reference, in one place.

The reference is the textbook formula on ``[N, M, d]`` differences (``mmdflow.summation.dense.reference_sum``,
``RadialKernel.grad``, ``reference_directional_derivative``), differentiated by autograd where a gradient is
needed. The fast paths: the dense ``torch.cdist`` form, the blocked backend (small blocks, explicit
differences in d = 2 and the GEMM form in d = 12, the fused numba pass), the sliced backend where it is exact
(d = 1, one direction), KeOps when installed, and the neural schemes' two-batch estimates and directional
derivatives (``double_sum`` and ``directional_derivative``) with every backend.
"""

import importlib.util

import pytest
import torch

from mmdflow import energies, summation
from mmdflow.kernels import Gaussian, InverseMultiquadric, Laplace, Riesz
from mmdflow.summation import dense

KERNELS = [Riesz(0.5), Riesz(1.0), Riesz(1.5), Gaussian(0.8), InverseMultiquadric(1.3), Laplace(0.7)]
HAVE_KEOPS = importlib.util.find_spec("pykeops") is not None

# name -> (backend, options, dimension, kernels it applies to)
PATHS = {
    "dense": ("dense", {}, 2, KERNELS),
    "blocked d=2": ("blocked", {"block_elems": 23 * 4}, 2, KERNELS),
    "blocked d=12 (GEMM)": ("blocked", {"block_elems": 23 * 4}, 12, KERNELS),
    "blocked d=12 fused": ("blocked", {}, 12, [Riesz(0.5), Riesz(1.0), Riesz(1.5)]),
    "sliced d=1": ("sliced", {"directions": torch.ones(1, 1, dtype=torch.float64)}, 1, [Riesz(1.0)]),
    "keops": ("keops", {}, 3, KERNELS),
}
CASES = [(name, k) for name, (_, _, _, ks) in PATHS.items() for k in ks]


def _tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-11)


def _data(d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(31, d, generator=g, dtype=torch.float64)
    y = torch.randn(23, d, generator=g, dtype=torch.float64)
    y[4] = x[3]                                      # a coinciding pair: zero force, the slope term
    v = torch.rand(23, generator=g, dtype=torch.float64) + 0.1
    return x.to(dtype), y.to(dtype), (v / v.sum()).to(dtype)


def _reference(x, y, v, kernel, go):
    """Value, its VJPs (x, y, v) and the explicit gradient, from the [N, M, d] formula."""
    xr, yr, vr = (t.detach().clone().requires_grad_(True) for t in (x, y, v))
    s = dense.reference_sum(xr, yr, vr, kernel)
    gx, gy, gv = torch.autograd.grad(s, (xr, yr, vr), go)
    return s.detach(), gx, gy, gv, (kernel.grad(x, y) * v[None, :, None]).sum(1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("path,kernel", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_fast_path_matches_the_dense_reference(path, kernel, dtype, monkeypatch):
    backend, options, d, _ = PATHS[path]
    if backend == "keops" and not HAVE_KEOPS:
        pytest.skip("pykeops is not installed")
    if backend == "keops" and dtype == torch.float64 and not isinstance(kernel, Riesz):
        pytest.skip("float64 KeOps formulas are compiled for the Riesz kernels only (compile time)")
    if "fused" in path:
        monkeypatch.setattr(summation.blocked, "FUSED_MIN_PAIRS", 0)
    options = {k: (o.to(dtype) if isinstance(o, torch.Tensor) else o) for k, o in options.items()}
    x, y, v = _data(d, dtype)
    go = torch.linspace(-1.0, 1.0, x.shape[0], dtype=dtype)
    ref = _reference(x, y, v, kernel, go)
    tol = _tol(dtype)

    # value and its vector-Jacobian products through the backend's autograd
    xr, yr, vr = (t.clone().requires_grad_(True) for t in (x, y, v))
    s = summation.kernel_sum(xr, yr, kernel, vr, backend=backend, **options)
    got = (s.detach(), *torch.autograd.grad(s, (xr, yr, vr), go))
    for name, a, b in zip(["value", "d/dx", "d/dy", "d/dv"], got, ref[:4]):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b, **tol, msg=f"{path} {kernel}: {name}")
    # explicit gradient, and value + gradient in one pass
    torch.testing.assert_close(summation.kernel_sum_grad(x, y, kernel, v, backend=backend, **options), ref[4], **tol)
    s2, g2 = summation.kernel_sum_and_grad(x, y, kernel, v, backend=backend, **options)
    torch.testing.assert_close(s2, ref[0], **tol)
    torch.testing.assert_close(g2, ref[4], **tol)

    # the neural schemes' estimates: a double sum, and a directional derivative along moving points
    w = torch.rand(x.shape[0], generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype) + 0.1
    w = w / w.sum()
    xr = x.clone().requires_grad_(True)
    ds = summation.double_sum(xr, y, kernel, w, v, backend=backend, **options)
    ref_ds = w @ dense.reference_sum(x, y, v, kernel)
    torch.testing.assert_close(ds.detach(), ref_ds, **tol)
    torch.testing.assert_close(torch.autograd.grad(ds, xr)[0], w[:, None] * ref[4], **tol)
    if not (isinstance(kernel, Riesz) and kernel.r < 1):          # r < 1: -inf at the coinciding pair
        g = torch.Generator().manual_seed(2)
        ua = torch.randn(x.shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_(True)
        ub = torch.randn(y.shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_(True)
        dd = summation.directional_derivative(x, ua, y, ub, kernel, w, v, backend=backend, **options)
        ref_dd = dense.reference_directional_derivative(x, ua, y, ub, kernel, w[:, None], v[:, None])
        torch.testing.assert_close(dd.detach(), ref_dd.detach(), **tol)
        for a, b in zip(torch.autograd.grad(dd, (ua, ub)), torch.autograd.grad(ref_dd, (ua, ub))):
            torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("backend", ["dense", "blocked"] + (["keops"] if HAVE_KEOPS else []))
def test_energy_batch_estimates_with_every_backend_match_the_textbook_formula(backend):
    """The energies' two-batch estimate and directional derivative honour ``backend`` and agree with the
    formula (Altekrüger et al. 2023, Secs. 3-4), here with an exact Dirac start: every cross pair coincides."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(9, 2, generator=g, dtype=torch.float64)
    x1, x2 = torch.zeros(6, 2, dtype=torch.float64), torch.zeros(5, 2, dtype=torch.float64)
    u1, u2 = torch.randn(6, 2, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g, dtype=torch.float64)
    k = Riesz(1.0)
    e = energies.DiscrepancyEnergy(k, y, backend=backend)
    ref = energies.DiscrepancyEnergy(k, y, backend="dense")
    torch.testing.assert_close(e.batch_estimate(x1, x2), ref.batch_estimate(x1, x2))
    # interaction: every cross pair coincides, d/dt -|t (u1_i - u2_j)| = -|u1_i - u2_j|; potential: a particle at 0
    # moving with u gets d/dt -(-|t u - y_l|) = -<y_l / |y_l|, u>, averaged over the 11 particles and the targets
    y_hat = (y / y.norm(dim=1, keepdim=True)).mean(0)
    by_hand = -0.5 * torch.cdist(u1, u2).mean() - (torch.cat([u1, u2]) @ y_hat).mean()
    torch.testing.assert_close(e.batch_directional_derivative(x1, u1, x2, u2), by_hand)


def test_sliced_energy_estimates_are_unbiased_for_the_batch_losses():
    """The sliced energy's batch estimate and directional derivative average to the exact ones (d = 3)."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(20, 3, generator=g, dtype=torch.float64)
    x1, x2 = torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randn(8, 3, generator=g, dtype=torch.float64)
    u1, u2 = torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randn(8, 3, generator=g, dtype=torch.float64)
    exact = energies.DiscrepancyEnergy(Riesz(1.0), y)
    sl = energies.SlicedDiscrepancyEnergy(Riesz(1.0), y, n_directions=2000, directions="iid",
                                          generator=torch.Generator().manual_seed(1), subspace=False)
    torch.testing.assert_close(sl.batch_estimate(x1, x2), exact.batch_estimate(x1, x2), rtol=0.05, atol=0.02)
    torch.testing.assert_close(sl.batch_directional_derivative(x1, u1, x2, u2),
                               exact.batch_directional_derivative(x1, u1, x2, u2), rtol=0.1, atol=0.05)


@pytest.mark.parametrize("d", [2, 20])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("r", [0.5, 1.0, 1.5])
def test_auto_is_translation_invariant_at_every_offset_and_scale(d, dtype, r):
    """``auto`` (the compiled low-d loop in d = 2, the centred GEMM form in d = 20) against float64 explicit
    differences of the same inputs: float32 gradients within 2e-6 relative, float64 within 1e-12."""
    g = torch.Generator().manual_seed(d)
    k = Riesz(r)
    tol = 2e-6 if dtype == torch.float32 else 1e-12
    for scale in (1e-3, 1.0, 1e2):
        for offset in (0.0, 1.0, 10.0, 1e3):
            x = (torch.randn(600, d, generator=g, dtype=torch.float64) * scale + offset).to(dtype)
            y = (torch.randn(500, d, generator=g, dtype=torch.float64) * scale + offset).to(dtype)
            assert summation.choose_backend("auto", x, y, k) == "blocked"
            for a, b in ((x, y), (x, x)):
                ref = (k.grad(a.double(), b.double())).mean(1)
                got = summation.kernel_sum_grad(a, b, k)
                err = float((got.double() - ref).norm() / ref.norm())
                assert err < tol, f"scale {scale}, offset {offset}: relative gradient error {err:.2e}"


def test_a_compact_cloud_far_from_the_origin_still_feels_its_forces():
    """The GEMM form without centring lost these short distances (all-zero gradients at offset 10)."""
    x = torch.randn(1200, 20, generator=torch.Generator().manual_seed(0)) * 1e-3 + 10
    got = summation.kernel_sum_grad(x, x, Riesz(1.0))
    ref = summation.kernel_sum_grad(x.double(), x.double(), Riesz(1.0), backend="blocked", fused=False)
    assert float(got.abs().max()) > 0.1
    assert float((got.double() - ref).norm() / ref.norm()) < 2e-6


@pytest.mark.parametrize("backend,d", [("blocked", 2), ("blocked", 12), ("dense", 2)])
@pytest.mark.parametrize("kernel", [Riesz(0.5), Riesz(1.0), Gaussian(0.8)], ids=str)
def test_self_double_sum_and_its_gradients_match_the_reference(backend, d, kernel, monkeypatch):
    """``w^T K w`` of one cloud against itself (the interaction energy): value and both gradients in one pass."""
    monkeypatch.setattr(summation.blocked, "FUSED_MIN_PAIRS", 0)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(40, d, generator=g, dtype=torch.float64)
    x[7] = x[2]
    w = torch.rand(40, generator=g, dtype=torch.float64) + 0.1
    w = w / w.sum()
    xr, wr = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    got = summation.double_sum(xr, xr, kernel, wr, wr, backend=backend)
    xa, wa = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    ref = wa @ dense.reference_sum(xa, xa, wa, kernel)
    torch.testing.assert_close(got, ref)
    for a, b in zip(torch.autograd.grad(got, (xr, wr)), torch.autograd.grad(ref, (xa, wa))):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


# ------------------------------------------------------------------------------------------------
# the explicit gradients of the neural schemes' batch estimates (references: autograd of the textbook formula)
# ------------------------------------------------------------------------------------------------

def _textbook_double_sum(a, b, kernel, wa, wb):
    """sum_ij wa_i wb_j K(a_i, b_j) from the [Na, Nb, d] differences (kernel.__call__)."""
    return wa @ kernel(a, b) @ wb


@pytest.mark.parametrize("backend", ["auto", "dense", "blocked"])
@pytest.mark.parametrize("d", [2, 12])
@pytest.mark.parametrize("kernel", [Riesz(1.0), Riesz(0.5), Riesz(1.5), Gaussian(0.8)], ids=repr)
def test_pair_sum_and_grads_match_autograd_of_the_textbook_sum(backend, d, kernel):
    gen = torch.Generator().manual_seed(d)
    a = torch.randn(23, d, generator=gen, dtype=torch.float64) + 3.0     # offset: the GEMM form must centre
    b = torch.randn(17, d, generator=gen, dtype=torch.float64) + 3.0
    b[:4] = a[:4]                                                       # coinciding pairs contribute zero
    wa, wb = torch.rand(23, generator=gen, dtype=torch.float64), torch.rand(17, generator=gen, dtype=torch.float64)
    wa, wb = wa / wa.sum(), wb / wb.sum()          # probability weights
    ar, br = a.clone().requires_grad_(), b.clone().requires_grad_()
    ref = _textbook_double_sum(ar, br, kernel, wa, wb)
    ga_ref, gb_ref = torch.autograd.grad(ref, [ar, br])
    s, ga, gb = summation.pair_sum_and_grads(a, b, kernel, wa, wb, backend=backend)
    assert s.item() == pytest.approx(ref.item(), rel=1e-12, abs=1e-12)
    torch.testing.assert_close(ga, ga_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gb, gb_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["dense", "blocked"])
@pytest.mark.parametrize("energy_kind", ["interaction", "discrepancy"])
@pytest.mark.parametrize("r", [1.0, 1.5])
def test_energy_batch_gradients_match_autograd_of_the_batch_estimates(backend, energy_kind, r):
    """batch_estimate_and_grad / batch_directional_derivative_and_grad against autograd of batch_estimate and
    of the reference directional derivative, with coinciding points inside and between the batches."""
    gen = torch.Generator().manual_seed(7)
    y = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    e = (energies.InteractionEnergy(Riesz(r), backend=backend) if energy_kind == "interaction"
         else energies.DiscrepancyEnergy(Riesz(r), y, backend=backend))
    x1 = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    x2 = torch.randn(25, 2, generator=gen, dtype=torch.float64)
    x2[:6] = x1[:6]
    x1[10:15] = 0.0                                     # a Dirac inside x1 and across the batches
    x2[10:12] = 0.0
    x1[20] = y[3]                                       # a particle on a target point
    u1 = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    u2 = torch.randn(25, 2, generator=gen, dtype=torch.float64)
    xr1, xr2 = x1.clone().requires_grad_(), x2.clone().requires_grad_()
    f_ref = energies.InteractionEnergy(Riesz(r), backend="dense").batch_estimate(xr1, xr2) \
        if energy_kind == "interaction" else energies.DiscrepancyEnergy(Riesz(r), y, backend="dense").batch_estimate(xr1, xr2)
    g1_ref, g2_ref = torch.autograd.grad(f_ref, [xr1, xr2])
    f, g1, g2 = e.batch_estimate_and_grad(x1, x2)
    assert f.item() == pytest.approx(f_ref.item(), rel=1e-12)
    torch.testing.assert_close(g1, g1_ref, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(g2, g2_ref, rtol=1e-10, atol=1e-13)

    ur1, ur2 = u1.clone().requires_grad_(), u2.clone().requires_grad_()
    pot = 0.0
    inter = 0.5 * dense.reference_directional_derivative(x1, ur1, x2, ur2, Riesz(r), 1 / 30, 1 / 25)
    if energy_kind == "discrepancy":
        both, ub = torch.cat([x1, x2]), torch.cat([ur1, ur2])
        pot = -dense.reference_directional_derivative(both, ub, y, None, Riesz(r), 1 / 55, torch.full((40, 1), 1 / 40,
                                                                                                    dtype=torch.float64))
    d_ref = inter + pot
    h1_ref, h2_ref = torch.autograd.grad(d_ref, [ur1, ur2])
    dd, h1, h2 = e.batch_directional_derivative_and_grad(x1, u1, x2, u2)
    assert dd.item() == pytest.approx(d_ref.item(), rel=1e-10, abs=1e-13)
    torch.testing.assert_close(h1, h1_ref, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(h2, h2_ref, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("d, dtype", [(2, torch.float32), (7, torch.float64), (784, torch.float32)])
def test_coinciding_pairs_match_the_equality_matrix(d, dtype):
    """The hashed grouping finds exactly the pairs of the [N, M] row-equality matrix (repeats on both sides,
    -0.0 equal to 0.0), in any order."""
    gen = torch.Generator().manual_seed(d)
    a = torch.randint(0, 3, (300, d), generator=gen).to(dtype)      # few values: many equal rows
    b = torch.randint(0, 3, (200, d), generator=gen).to(dtype)
    if d > 2:
        a[:, 2:], b[:, 2:] = 0.0, 0.0
    a[:20], b[:20] = b[30:50].clone(), b[30:50].clone()
    a[5, 0], b[31, 0] = -0.0, 0.0
    b[32, 0] = -0.0
    ia, ib = dense.coinciding_pairs(a, b)
    ref = (a[:, None, :] == b[None, :, :]).all(-1).nonzero()
    assert len(ref) > 100
    assert sorted(zip(ia.tolist(), ib.tolist())) == sorted(map(tuple, ref.tolist()))
