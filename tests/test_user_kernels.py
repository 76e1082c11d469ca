"""A kernel defined by a user is evaluated by its own formula on every backend, never by another kernel's.

This file is also the recipe "add a kernel" of CONTRIBUTING.md: the Cauchy kernel below is defined here, in the
test file, with nothing but its profile and derivative, and runs through the sums, the energies, a particle flow
and a neural step against the dense reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from mmdflow import energies, flows, neural
from mmdflow.kernels import Gaussian, RadialKernel, Riesz, check_bandwidth, zero_slope
from mmdflow.summation import (available_backends, backends_for, choose_backend, kernel_sum, kernel_sum_grad,
                               pair_sum_and_grads)
from mmdflow.summation.dense import reference_sum
from mmdflow.summation.dispatch import KEOPS_MIN_PAIRS


@dataclass(frozen=True)
class Cauchy(RadialKernel):
    r"""The Cauchy kernel :math:`K(x, y) = 1/(1 + \|x - y\|^2/s^2)`, :math:`\phi(t) = 1/(1 + t/s^2)`."""

    s: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "s", check_bandwidth(self.s, "s"))

    def profile(self, t):
        return 1.0 / (1.0 + t / self.s**2)

    def dprofile(self, t):
        return -1.0 / self.s**2 / (1.0 + t / self.s**2) ** 2



@dataclass(frozen=True)
class SoftRiesz(Riesz):
    r"""A subclass of a library kernel overriding its profile: :math:`1 - (1 + \|x-y\|^2)^{r/2}` (smooth at 0)."""

    singular_at_zero = False

    def profile(self, t):
        return 1.0 - (1.0 + t) ** (self.r / 2)

    def dprofile(self, t):
        return -(self.r / 2) * (1.0 + t) ** (self.r / 2 - 1)


@dataclass(frozen=True)
class WideGaussian(Gaussian):
    """A subclass overriding the profile of the Gaussian (the Cauchy formula with the Gaussian's parameter)."""

    profile = Cauchy.profile
    dprofile = Cauchy.dprofile

    @property
    def s(self):
        return self.sigma


@dataclass(frozen=True)
class NamedRiesz(Riesz):
    """A subclass that changes nothing of the formula: it keeps every fast form of :class:`Riesz`."""


def _reference_grad(x, y, v, kernel):
    return (kernel.grad(x, y) * v[None, :, None]).sum(1)


USER_KERNELS = [Cauchy(0.7), SoftRiesz(1.0), SoftRiesz(0.5), WideGaussian(0.8)]


@pytest.mark.parametrize("kernel", USER_KERNELS, ids=repr)
@pytest.mark.parametrize("n, d", [(40, 2), (300, 2), (300, 12)])
def test_user_kernel_every_backend_matches_the_dense_reference(kernel, n, d):
    g = torch.Generator().manual_seed(n + d)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n + 7, d, generator=g, dtype=torch.float64)
    v = torch.rand(n + 7, generator=g, dtype=torch.float64)
    v /= v.sum()
    ref_s, ref_g = reference_sum(x, y, v, kernel), _reference_grad(x, y, v, kernel)
    assert set(backends_for(kernel)) == {"dense", "blocked"}
    for backend in backends_for(kernel) + ["auto"]:
        torch.testing.assert_close(kernel_sum(x, y, kernel, v, backend=backend), ref_s, rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(kernel_sum_grad(x, y, kernel, v, backend=backend), ref_g, rtol=1e-11, atol=1e-13)
    # the torch blocks of the blocked backend, and its autograd pass
    torch.testing.assert_close(kernel_sum(x, y, kernel, v, backend="blocked", fused=False), ref_s)
    xg = x.clone().requires_grad_(True)
    (kernel_sum(xg, y, kernel, v, backend="blocked") ** 2).sum().backward()
    xr = x.clone().requires_grad_(True)
    (reference_sum(xr, y, v, kernel) ** 2).sum().backward()
    torch.testing.assert_close(xg.grad, xr.grad)
    # the two-batch gradients of the neural schemes' explicit engine
    s, ga, gb = pair_sum_and_grads(x, y, kernel, None, v)
    torch.testing.assert_close(s, reference_sum(x, y, v, kernel).mean())
    torch.testing.assert_close(ga, ref_g / n)


@pytest.mark.parametrize("kernel", USER_KERNELS, ids=repr)
def test_backends_without_a_formula_refuse_the_kernel_by_name(kernel):
    x = torch.randn(20, 3, dtype=torch.float64)
    for backend in ("keops", "sliced"):
        if backend not in available_backends():
            continue
        with pytest.raises(ValueError, match=rf"{type(kernel).__name__}.*backends that can evaluate it: \['dense', "
                                             r"'blocked', 'auto'\]"):
            kernel_sum(x, x, kernel, backend=backend)


def test_auto_never_sends_a_user_kernel_to_a_backend_without_its_formula():
    n = int(KEOPS_MIN_PAIRS ** 0.5) + 1              # large enough for KeOps, were the kernel a library one
    x = torch.zeros(n, 2)
    for kernel in USER_KERNELS:
        for differentiable in (False, True):
            assert choose_backend("auto", x, x, kernel, differentiable=differentiable) in ("dense", "blocked")


def test_fast_forms_belong_to_the_class_that_defines_the_profile():
    assert SoftRiesz(1.0).fast_form("riesz_exponent") is None
    assert SoftRiesz(1.0).fast_form("keops_formula") is None
    assert SoftRiesz(1.0).fast_form("compiled_form") is None
    assert WideGaussian(1.0).fast_form("keops_formula") is None
    assert Cauchy(1.0).fast_form("compiled_form") is None
    assert NamedRiesz(1.0).fast_form("riesz_exponent")() == 1.0
    assert NamedRiesz(0.5).fast_form("compiled_form")() == ("riesz_half", 0.5)
    assert zero_slope(NamedRiesz(1.0)) == -1.0
    assert zero_slope(SoftRiesz(1.0)) == 0.0 and zero_slope(Cauchy(1.0)) == 0.0
    with pytest.raises(ValueError, match="unknown fast form"):
        Riesz(1.0).fast_form("cuda")


def test_a_singular_user_kernel_without_its_slope_is_refused_by_name():
    @dataclass(frozen=True)
    class Cone(RadialKernel):
        singular_at_zero = True

        def profile(self, t):
            return -t.clamp_min(0).sqrt()

        def dprofile(self, t):
            return torch.where(t > 0, -0.5 / t.clamp_min(1e-300).sqrt(), torch.zeros_like(t))

    with pytest.raises(NotImplementedError, match="Cone.*slope_at_zero"):
        zero_slope(Cone())


def test_user_kernel_through_energies_a_particle_flow_and_a_neural_step():
    kernel = Cauchy(0.7)
    g = torch.Generator().manual_seed(1)
    target = torch.randn(60, 2, generator=g, dtype=torch.float64)
    x0 = torch.randn(50, 2, generator=g, dtype=torch.float64) + 1.0
    energy = energies.DiscrepancyEnergy(kernel, target)
    # the energy against the textbook formula 1/2 iint K d(mu - nu) d(mu - nu)
    z = torch.cat([x0, target])
    a = torch.cat([torch.full((50,), 1 / 50), torch.full((60,), -1 / 60)]).double()
    torch.testing.assert_close(energy.value(x0), 0.5 * a @ kernel(z, z) @ a)
    xr = x0.clone().requires_grad_(True)
    zr = torch.cat([xr, target])
    (0.5 * a @ kernel(zr, zr) @ a).backward()
    torch.testing.assert_close(energy.gradient(x0), 50 * xr.grad)
    # a particle flow: three Euler steps with the dense reference gradient
    config = flows.ParticleFlowConfig(tau=0.5, n_steps=3, snapshot_every=3)
    traj = flows.particle_flow(energy, x0, config, progress=False)
    x = x0.clone()
    for _ in range(3):
        x = x - 0.5 * (_reference_grad(x, x, torch.full((50,), 1 / 50).double(), kernel)
                       - _reference_grad(x, target, torch.full((60,), 1 / 60).double(), kernel))
    torch.testing.assert_close(traj.positions[-1], x)
    # a neural step: the explicit engine (written-out gradients) agrees with autograd through the dense reference
    outs = []
    for engine in ("explicit", "autograd"):
        config = neural.NeuralBackwardConfig(tau=0.1, n_steps=1, iterations=5, batch_size=20, width=8,
                                             snapshot_every=1, dtype="float64", engine=engine)
        outs.append(neural.neural_backward_flow(energy, x0, config, generator=torch.Generator().manual_seed(3),
                                                progress=False))
    torch.testing.assert_close(outs[0].positions, outs[1].positions)
    assert torch.isfinite(outs[0].energies).all()
