"""Silent wrong results of the kernel sums and their dispatch, each fixed (every test here failed before its fix)."""

from __future__ import annotations

import math

import pytest
import torch

from mmdflow import energies, flows, neural
from mmdflow.kernels import Gaussian, InverseMultiquadric, Laplace, Riesz
from mmdflow.summation import available_backends, kernel_sum, kernel_sum_grad
from mmdflow.summation.blocked import FUSED_MIN_PAIRS
from mmdflow.schemes import get_scheme


def _rel(a, b):
    return float((a.double() - b).norm() / b.norm())


@pytest.mark.parametrize("dtype, scale, tol", [(torch.float64, 3e-8, 1e-9), (torch.float32, 1e-3, 2e-6)])
@pytest.mark.parametrize("d", [12, 784])
@pytest.mark.parametrize("r", [1.0, 1.5])
def test_near_coinciding_pairs_in_high_dimension(dtype, scale, tol, d, r):
    """The fused GEMM pass of blocked/auto (d > 8) recomputes close pairs from explicit differences (before: the
    cancelled GEMM distance was kept, relative gradient error 6e-5 in float64 at distance 3e-8 |x|, d = 784)."""
    g = torch.Generator().manual_seed(d)
    n = int(math.isqrt(FUSED_MIN_PAIRS)) + 44                     # the fused pass needs N M >= FUSED_MIN_PAIRS
    x = torch.randn(n, d, generator=g, dtype=torch.float64) + 5.0
    y = x.clone()
    k = n // 2
    y[:k] += scale * x[:k].norm(dim=1, keepdim=True) * torch.randn(k, d, generator=g, dtype=torch.float64) / d ** 0.5
    x, y = x.to(dtype), y.to(dtype)
    kernel = Riesz(r)
    ref_g = kernel_sum_grad(x.double(), y.double(), kernel, backend="dense")
    ref_s = kernel_sum(x.double(), y.double(), kernel, backend="dense")
    for backend in ("blocked", "auto"):
        assert _rel(kernel_sum_grad(x, y, kernel, backend=backend), ref_g) < tol
        assert _rel(kernel_sum(x, y, kernel, backend=backend), ref_s) < tol
    # one cloud against itself (the symmetric pass)
    ref = kernel_sum_grad(y.double(), y.double(), kernel, backend="dense")
    assert _rel(kernel_sum_grad(y, y, kernel, backend="blocked"), ref) < tol


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("r", [0.01, 0.1, 0.5])
def test_riesz_small_r_dense_diagonal_is_zero(dtype, r):
    """K(x, x) = 0 exactly on the dense backend (before: -0.42 in float32 at r = 0.01, from tiny^r)."""
    x = torch.randn(30, 2, generator=torch.Generator().manual_seed(0), dtype=dtype)
    kernel = Riesz(r)
    for backend in ("dense", "blocked"):
        assert float(kernel_sum(x[:1], x[:1], kernel, backend=backend)) == 0.0
        ref = kernel(x.double(), x.double()).mean(1)
        assert _rel(kernel_sum(x, x, kernel, backend=backend), ref) < (1e-5 if dtype == torch.float32 else 1e-12)
    xg = x.clone().requires_grad_(True)
    kernel_sum(xg, x, kernel, backend="dense").sum().backward()
    assert torch.isfinite(xg.grad).all()


@pytest.mark.parametrize("cls", [Gaussian, InverseMultiquadric, Laplace])
@pytest.mark.parametrize("sigma", [1e-170, 1e-30, 1e30, 1e160, 0.0, math.inf, math.nan])
def test_extreme_bandwidths_are_refused_on_construction(cls, sigma):
    """Before: NaN on some backends, OverflowError/ZeroDivisionError on others."""
    with pytest.raises(ValueError, match="sigma"):
        cls(sigma)


@pytest.mark.parametrize("cls", [Gaussian, InverseMultiquadric, Laplace])
@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_bandwidths_at_the_data_scales_agree_on_every_backend(cls, scale):
    g = torch.Generator().manual_seed(1)
    x = scale * torch.randn(50, 3, generator=g, dtype=torch.float64)
    kernel = cls(scale)
    ref = kernel(x, x).mean(1)
    for backend in ("dense", "blocked", "auto"):
        assert _rel(kernel_sum(x, x, kernel, backend=backend), ref) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_refused_naming_the_dtype(dtype):
    x = torch.randn(10, 2).to(dtype)
    for backend in [b for b in ("dense", "blocked", "auto", "keops") if b in available_backends() or b == "auto"]:
        with pytest.raises(TypeError, match=str(dtype)):
            kernel_sum(x, x, Riesz(1.0), backend=backend)
    with pytest.raises(TypeError, match=str(dtype)):
        Riesz(1.0)(x, x)
    energy = energies.DiscrepancyEnergy(Riesz(1.0), torch.randn(10, 2))
    with pytest.raises(TypeError, match=str(dtype)):
        flows.particle_flow(energy, x, flows.ParticleFlowConfig(tau=0.1, n_steps=1), progress=False)


@pytest.mark.parametrize("scheme", ["backward", "forward"])
@pytest.mark.parametrize("engine", ["explicit", "autograd"])
def test_neural_schemes_refuse_a_target_of_another_dimension(scheme, engine):
    """Before: the explicit engine ran to the end on the target's first coordinates and recorded NaN energies."""
    energy = energies.DiscrepancyEnergy(Riesz(1.0), torch.randn(30, 3, dtype=torch.float64))
    x0 = torch.zeros(20, 2)
    cls, run = get_scheme(f"neural_{scheme}").config, get_scheme(f"neural_{scheme}").run
    config = cls(tau=0.1, n_steps=1, iterations=2, batch_size=10, width=4, engine=engine)
    with pytest.raises(ValueError, match="d=3.*d=2"):
        run(energy, x0, config, generator=torch.Generator().manual_seed(0), progress=False)


def test_an_energy_whose_value_fails_is_not_recorded_as_nan():
    class Broken(energies.InteractionEnergy):
        def value(self, x, w=None):
            raise RuntimeError("value is broken")

    config = neural.NeuralBackwardConfig(tau=0.1, n_steps=1, iterations=2, batch_size=10, width=4)
    with pytest.raises(RuntimeError, match="value is broken"):
        neural.neural_backward_flow(Broken(Riesz(1.0)), torch.zeros(20, 2), config,
                                    generator=torch.Generator().manual_seed(0), progress=False)


@pytest.mark.parametrize("missing", ["batch_estimate", "batch_directional_derivative"])
def test_schemes_name_the_missing_energy_method(missing):
    class Partial:
        def value(self, x, w=None):
            return x.sum()

        def fingerprint(self):
            return {}

    scheme = "backward" if missing == "batch_estimate" else "forward"
    cls, run = get_scheme(f"neural_{scheme}").config, get_scheme(f"neural_{scheme}").run
    with pytest.raises(TypeError, match=rf"neural {scheme}.*energy\.{missing}"):
        run(Partial(), torch.zeros(5, 2), cls(n_steps=1, iterations=1), generator=torch.Generator().manual_seed(0),
            progress=False)
    with pytest.raises(TypeError, match=r"particle flow.*energy\.gradient"):
        flows.particle_flow(Partial(), torch.zeros(5, 2), flows.ParticleFlowConfig(tau=0.1, n_steps=1), progress=False)


def test_one_sliced_discrepancy():
    """``DiscrepancyEnergy(backend='sliced')`` behaved differently from ``SlicedDiscrepancyEnergy`` (independent
    directions for its two terms, a sliced target energy); now it is that energy, with the backend's options."""
    from mmdflow.summation import Backend

    g = torch.Generator().manual_seed(0)
    target, x = torch.randn(20, 3, generator=g, dtype=torch.float64), torch.randn(15, 3, generator=g, dtype=torch.float64)
    dirs = torch.randn(7, 3, generator=g, dtype=torch.float64)
    dirs /= dirs.norm(dim=1, keepdim=True)
    for backend in ("sliced", Backend("sliced", n_directions=10)):
        energy = energies.DiscrepancyEnergy(Riesz(1.0), target, backend=backend)
        assert isinstance(energy, energies.SlicedDiscrepancyEnergy)
    sliced = energies.DiscrepancyEnergy(Riesz(1.0), target, backend=Backend("sliced", directions=dirs))
    same = energies.SlicedDiscrepancyEnergy(Riesz(1.0), target, directions=dirs)
    torch.testing.assert_close(sliced.gradient(x), same.gradient(x), rtol=0, atol=0)
    torch.testing.assert_close(sliced.value(x), same.value(x), rtol=0, atol=0)
