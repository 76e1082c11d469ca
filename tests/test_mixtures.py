"""Tests of mmdflow.data.mixtures: the Gaussian-mixture targets and initial particles of chapter 6."""

import torch

from mmdflow.data import mixtures

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_targets():
    g = _gen(14)
    mix = mixtures.mixture_2d()
    s = mix(20000, g)
    mean = torch.tensor([4 / 3, 1.0], dtype=F64)
    assert torch.allclose(s.mean(0), mean, atol=0.06)
    m, C = mix.means, mix.covs
    cov_ref = (C + m[:, :, None] * m[:, None, :]).mean(0) - mean[:, None] * mean[None, :]
    assert torch.allclose(torch.cov(s.T), cov_ref, atol=0.25)
    gs = mixtures.gaussian_2d()(20000, g)
    assert torch.allclose(torch.cov(gs.T), torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=F64), atol=0.05)
    hd = mixtures.mixture_100d()
    assert hd.means.shape == (3, 100) and torch.allclose(hd.means.norm(dim=1), torch.full((3,), 20.0, dtype=F64))
    assert torch.equal(hd.covs, mixtures.mixture_100d().covs)                  # seeded construction
    assert hd(5, _gen(0)).shape == (5, 100)
    x0 = mixtures.initial_particles(5000, g)
    assert torch.allclose(x0.mean(0), torch.tensor([5.0, 5.0], dtype=F64), atol=0.05)
