"""Kernel-sum backends against the dense reference (values, gradients, autograd), errors and dispatch."""

import importlib.util

import pytest
import torch

from mmdflow import energies, summation
from mmdflow.kernels import Gaussian, InverseMultiquadric, Laplace, Riesz
from mmdflow.summation import Backend, choose_backend, kernel_sum, kernel_sum_and_grad, kernel_sum_grad

KERNELS = [Riesz(0.5), Riesz(1.0), Riesz(1.5), Gaussian(0.8), InverseMultiquadric(1.3), Laplace(0.7)]
HAVE_KEOPS = importlib.util.find_spec("pykeops") is not None


def _data(gen, n, m, d, dtype, device, coincide=True):
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randn(m, d, generator=gen, dtype=torch.float64) + 0.3
    if coincide:
        y[:3] = x[:3]                               # coinciding pairs exercise the zero-force convention
    v = torch.rand(m, generator=gen, dtype=torch.float64) + 0.1
    v = v / v.sum()
    return x.to(device, dtype), y.to(device, dtype), v.to(device, dtype)


def _tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-10)


def _all_grads(x, y, v, kernel, backend, go, **options):
    x, y, v = (t.detach().clone().requires_grad_() for t in (x, y, v))
    s = kernel_sum(x, y, kernel, v, backend=backend, **options)
    gx, gy, gv = torch.autograd.grad((s * go).sum(), (x, y, v))
    return s.detach(), gx, gy, gv, kernel_sum_grad(x, y, kernel, v, backend=backend, **options)


@pytest.mark.parametrize("kernel", KERNELS, ids=str)
@pytest.mark.parametrize("d", [2, 12])
@pytest.mark.parametrize("fused", [False, None], ids=["torch-blocks", "default"])
def test_blocked_matches_dense(gen, kernel, d, dtype, device, fused):
    x, y, v = _data(gen, 37, 29, d, dtype, device)
    go = torch.randn(37, generator=gen, dtype=torch.float64).to(device, dtype)
    ref = _all_grads(x, y, v, kernel, "dense", go)
    # tiny blocks: several row blocks, including a ragged last one
    got = _all_grads(x, y, v, kernel, "blocked", go, block_elems=29 * 5, fused=fused)
    for name, a, b in zip(["value", "dx", "dy", "dv", "grad"], got, ref):
        assert a.dtype == dtype and a.device.type == device.type
        torch.testing.assert_close(a, b, **_tol(dtype), msg=f"{name} differs for {kernel}, d={d}")


def test_blocked_self_sum_matches_dense(gen, dtype):
    x, _, _ = _data(gen, 40, 5, 3, dtype, "cpu")
    w = torch.full((40,), 1 / 40, dtype=dtype)
    for kernel in (Riesz(1.0), Laplace(1.0)):
        torch.testing.assert_close(kernel_sum_grad(x, x, kernel, w, backend="blocked", block_elems=64, fused=False),
                                   kernel_sum_grad(x, x, kernel, w, backend="dense"), **_tol(dtype))


@pytest.mark.parametrize("kernel", [Riesz(0.5), Riesz(1.0), Riesz(1.5)], ids=str)
@pytest.mark.parametrize("block_elems", [2**22, 150])
def test_blocked_riesz_fused_paths_match_dense(gen, kernel, block_elems, dtype, monkeypatch):
    """The fused numba pass (Riesz, CPU, d > 8) and its symmetric variant (y is x): square blocks,
    off-diagonal blocks used twice, a ragged last block, coinciding particles (zero force)."""
    monkeypatch.setattr(summation.blocked, "FUSED_MIN_PAIRS", 0)      # small inputs, fused path all the same
    x, y, v = _data(gen, 41, 33, 12, dtype, "cpu")
    x[7] = x[2]
    w = torch.rand(41, generator=gen, dtype=torch.float64).to(dtype) + 0.1
    for a, b, c in [(x, x, w / w.sum()), (x, y, v)]:
        s, g = kernel_sum_and_grad(a, b, kernel, c, backend="blocked", block_elems=block_elems)
        torch.testing.assert_close(s, kernel_sum(a, b, kernel, c, backend="dense"), **_tol(dtype))
        torch.testing.assert_close(g, kernel_sum_grad(a, b, kernel, c, backend="dense"), **_tol(dtype))
        torch.testing.assert_close(kernel_sum(a, b, kernel, c, backend="blocked", block_elems=block_elems),
                                   kernel_sum(a, b, kernel, c, backend="dense"), **_tol(dtype))
        torch.testing.assert_close(kernel_sum_grad(a, b, kernel, c, backend="blocked", block_elems=block_elems),
                                   kernel_sum_grad(a, b, kernel, c, backend="dense"), **_tol(dtype))


@pytest.mark.parametrize("backend", ["dense", "blocked", "sliced"])
def test_kernel_sum_and_grad(gen, backend):
    x, y, v = _data(gen, 30, 20, 1, torch.float64, "cpu")
    opts = {"directions": torch.ones(1, 1, dtype=torch.float64)} if backend == "sliced" else {}
    s, g = kernel_sum_and_grad(x, y, Riesz(1.0), v, backend=backend, **opts)
    torch.testing.assert_close(s, kernel_sum(x, y, Riesz(1.0), v, backend="dense"))
    torch.testing.assert_close(g, kernel_sum_grad(x, y, Riesz(1.0), v, backend="dense"))


@pytest.mark.parametrize("engine", ["numba", "torch"])
def test_sliced_exact_in_1d(gen, dtype, device, engine):
    """In d=1 one direction is exact: the sliced backend must equal dense in value, gradient and autograd."""
    if engine == "numba" and (device.type != "cpu" or importlib.util.find_spec("numba") is None):
        pytest.skip("the numba engine runs on CPU tensors")
    x, y, v = _data(gen, 40, 31, 1, dtype, device)
    go = torch.randn(40, generator=gen, dtype=torch.float64).to(device, dtype)
    opts = dict(directions=torch.ones(1, 1, dtype=dtype, device=device), engine=engine)
    ref = _all_grads(x, y, v, Riesz(1.0), "dense", go)
    got = _all_grads(x, y, v, Riesz(1.0), "sliced", go, **opts)
    for name, a, b in zip(["value", "dx", "dy", "dv", "grad"], got, ref):
        assert a.dtype == dtype and a.device.type == device.type
        torch.testing.assert_close(a, b, **_tol(dtype), msg=f"{name} differs")


def test_sliced_close_to_dense_in_2d(gen, dtype):
    """Equispaced directions in d=2 converge fast: P=2000 is within 1e-4 of the exact sums."""
    x, y, v = _data(gen, 60, 50, 2, dtype, "cpu")
    g = torch.Generator().manual_seed(0)
    opts = dict(n_directions=2000, directions="equispaced", generator=g)
    s_ref = kernel_sum(x, y, Riesz(1.0), v, backend="dense")
    s = kernel_sum(x, y, Riesz(1.0), v, backend="sliced", **opts)
    assert (s - s_ref).abs().max() < 1e-4 * s_ref.abs().max()
    g_ref = kernel_sum_grad(x, y, Riesz(1.0), v, backend="dense")
    gs = kernel_sum_grad(x, y, Riesz(1.0), v, backend="sliced", **opts)
    assert (gs - g_ref).norm() < 1e-3 * g_ref.norm()


@pytest.mark.skipif(not HAVE_KEOPS, reason="pykeops is not installed")
@pytest.mark.parametrize("kernel", KERNELS, ids=str)
def test_keops_matches_dense(gen, kernel, dtype, device):
    # every kernel in float32, the Riesz kernels also in float64 (each KeOps formula compiles once, 10-25 s, and is
    # cached: the other float64 kernels are left out for compile time)
    if dtype == torch.float64 and not isinstance(kernel, Riesz):
        pytest.skip("float64 KeOps formulas are compiled for the Riesz kernels only (compile time)")
    tol = _tol(dtype)
    x, y, v = _data(gen, 37, 29, 3, dtype, device)
    go = torch.randn(37, generator=gen, dtype=torch.float64).to(device, dtype)
    for a, b in zip(_all_grads(x, y, v, kernel, "keops", go), _all_grads(x, y, v, kernel, "dense", go)):
        torch.testing.assert_close(a, b, **tol)


def test_keops_absent_is_a_clear_error(gen):
    if HAVE_KEOPS:
        pytest.skip("pykeops is installed")
    x, y, v = _data(gen, 5, 4, 2, torch.float32, "cpu")
    with pytest.raises(ValueError, match="pykeops"):
        kernel_sum(x, y, Riesz(1.0), v, backend="keops")
    assert "keops" not in summation.available_backends()


def test_bad_backend_and_kernel_errors(gen):
    x, y, v = _data(gen, 5, 4, 2, torch.float32, "cpu")
    with pytest.raises(ValueError, match="'fast'"):
        kernel_sum(x, y, Riesz(1.0), v, backend="fast")
    with pytest.raises(ValueError, match="'fast'"):
        kernel_sum_grad(x, y, Riesz(1.0), v, backend="fast")
    with pytest.raises(ValueError, match="'fast'"):
        Backend("fast")
    for kernel in (Gaussian(1.0), Riesz(0.5), Riesz(1.5)):
        with pytest.raises(ValueError, match="Riesz kernel with r=1"):
            kernel_sum(x, y, kernel, v, backend="sliced")
        with pytest.raises(ValueError, match="Riesz kernel with r=1"):
            kernel_sum_grad(x, y, kernel, v, backend="sliced")
    with pytest.raises(TypeError, match="backend"):
        kernel_sum(x, y, Riesz(1.0), v, backend=3)


def test_auto_is_exact_and_follows_size(gen):
    from mmdflow import _jit

    x, y, v = _data(gen, 20, 10, 2, torch.float32, "cpu")
    # low d on the CPU: the compiled loop of the blocked backend, except for small sums under autograd
    assert choose_backend("auto", x, y, Riesz(1.0)) == ("blocked" if _jit.HAVE_NUMBA else "dense")
    assert choose_backend("auto", x, y, Riesz(1.0), differentiable=True) == "dense"
    assert choose_backend("auto", x.repeat(20, 1), y.repeat(20, 1), Riesz(1.0), differentiable=True) == (
        "blocked" if _jit.HAVE_NUMBA else "dense")
    x12, y12, _ = _data(gen, 20, 10, 12, torch.float32, "cpu")
    assert choose_backend("auto", x12, y12, Riesz(1.0)) == "dense"            # high d, small: the dense matrix
    big = torch.zeros(4000, 784)
    assert choose_backend("auto", big, big, Riesz(1.0)) in ("blocked", "keops")
    assert choose_backend("auto", big, big, Riesz(1.0)) != "sliced"
    # auto never changes results beyond rounding
    torch.testing.assert_close(kernel_sum(x, y, Riesz(1.0), v), kernel_sum(x, y, Riesz(1.0), v, backend="dense"))
    torch.testing.assert_close(kernel_sum_grad(x, y, Riesz(1.0), v), kernel_sum_grad(x, y, Riesz(1.0), v,
                                                                                      backend="dense"))


def test_backend_spec_carries_options_through_energies(gen):
    x, y, _ = _data(gen, 30, 25, 1, torch.float64, "cpu")
    spec = Backend("sliced", directions=torch.ones(1, 1, dtype=torch.float64))
    assert "sliced" in repr(spec)
    with pytest.raises(AttributeError):
        spec.name = "dense"
    exact = energies.DiscrepancyEnergy(Riesz(1.0), y)
    sliced = energies.DiscrepancyEnergy(Riesz(1.0), y, backend=spec)
    torch.testing.assert_close(sliced.gradient(x), exact.gradient(x))
    torch.testing.assert_close(sliced.value(x), exact.value(x))


def test_numba_kernels_have_serial_twins_with_the_same_results(gen):
    """One torch thread runs the serial twin of each parallel numba kernel; both give the same sums."""
    from mmdflow import _jit
    from mmdflow.summation import sort1d as _sort1d

    if not _jit.HAVE_NUMBA:
        pytest.skip("numba is not installed")
    zq = torch.randn(6, 300, generator=gen, dtype=torch.float64)
    zs = torch.randn(6, 200, generator=gen, dtype=torch.float64)
    cq = torch.full((300,), 1 / 300, dtype=torch.float64)
    cs = -torch.full((200,), 1 / 200, dtype=torch.float64)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(_sort1d.sign_sums(zq, cq, zs, cs, engine="numba"))
            results.append(_sort1d.sign_sums(zq.float(), cq, zs.float(), cs, engine="numba"))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(results[:2], results[2:]):
        torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(a[1], b[1], rtol=1e-6, atol=1e-6)
    for kernel in (_sort1d._sign_sums_f32, _sort1d._sign_sums_sorted):
        assert kernel.serial is not kernel.parallel
        assert kernel.parallel.targetoptions.get("parallel") and not kernel.serial.targetoptions.get("parallel")


def test_time_plot_skips_backends_without_sizes():
    """The paper profile of chapter 7 times no dense point in d=784 (all sizes exceed its cap): no crash."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from mmdflow.plots import fast as fplots

    fig, ax = plt.subplots()
    fplots.plot_time_vs_size({"dense": ([], []), "blocked": ([1000, 3162], [0.5, 5.0])}, ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["blocked"]
    plt.close(fig)
