"""Kernels: values, gradients (autograd and finite differences), safety at coinciding points, validation."""

import math

import pytest
import torch

from mmdflow import kernels

ALL = [kernels.Riesz(0.5), kernels.Riesz(1.0), kernels.Riesz(1.5), kernels.Gaussian(0.7),
       kernels.InverseMultiquadric(1.3), kernels.Laplace(0.9)]


def reference(kernel, x, y):
    """Kernel matrix from torch.cdist and the textbook formula (independent of the library's profiles)."""
    rho = torch.cdist(x, y)
    if isinstance(kernel, kernels.Riesz):
        return -rho**kernel.r
    if isinstance(kernel, kernels.Gaussian):
        return torch.exp(-rho**2 / (2 * kernel.sigma**2))
    if isinstance(kernel, kernels.InverseMultiquadric):
        return 1 / torch.sqrt(1 + rho**2 / kernel.sigma**2)
    return torch.exp(-rho / kernel.sigma)


@pytest.mark.parametrize("kernel", ALL, ids=str)
def test_kernel_matrix_matches_formula(kernel, gen):
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(kernel(x, y), reference(kernel, x, y), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", ALL, ids=str)
def test_gradient_matches_autograd_and_finite_differences(kernel, gen):
    x = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    g = kernel.grad(x, y)                                    # (4, 3, 2)
    xa = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(kernel(xa, y).sum(), xa)
    torch.testing.assert_close(g.sum(1), auto, rtol=1e-10, atol=1e-12)
    h = 1e-6
    for k in range(2):
        e = torch.zeros_like(x)
        e[:, k] = h
        fd = (reference(kernel, x + e, y) - reference(kernel, x - e, y)) / (2 * h)
        torch.testing.assert_close(g[..., k], fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kernel", ALL, ids=str)
def test_coinciding_points_give_finite_zero_force(kernel):
    x = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    val = kernel(x, x)
    assert torch.isfinite(val).all()
    (g,) = torch.autograd.grad(val.sum(), x)
    assert torch.isfinite(g).all() and (g == 0).all()
    assert (kernel.grad(x.detach(), x.detach()) == 0).all()


def test_riesz_value_at_zero_and_symmetry(gen):
    x = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    k = kernels.Riesz(1.2)(x, x)
    assert torch.allclose(k, k.T) and (k.diagonal() == 0).all()


def test_dtype_and_device_preserved(dtype, device, gen):
    x = torch.randn(5, 2, generator=gen).to(device=device, dtype=dtype)
    for kernel in ALL:
        out = kernel(x, x)
        assert out.dtype == dtype and out.device.type == device.type and out.shape == (5, 5)


@pytest.mark.parametrize("r", [0.0, 2.0, -1.0, 2.5, float("nan"), float("inf")])
def test_riesz_rejects_r_outside_open_interval(r):
    with pytest.raises(ValueError, match=r"r must lie in \(0, 2\), got r="):
        kernels.Riesz(r)


@pytest.mark.parametrize("cls", [kernels.Gaussian, kernels.InverseMultiquadric, kernels.Laplace])
@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan])
def test_bandwidth_must_be_positive(cls, sigma):
    with pytest.raises(ValueError, match="sigma must be a finite positive number"):
        cls(sigma)


def test_kernel_rejects_bad_inputs():
    k = kernels.Riesz(1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(N, d\), got shape \(3,\)"):
        k(torch.zeros(3), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="same dimension"):
        k(torch.zeros(3, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="non-empty"):
        k(torch.zeros(0, 2), torch.zeros(2, 2))
    bad = torch.zeros(3, 2)
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"non-finite value nan at index \(1, 0\)"):
        k(bad, torch.zeros(2, 2))
    with pytest.raises(TypeError, match="floating dtype"):
        k(torch.zeros(3, 2, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long))
