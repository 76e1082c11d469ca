"""Shared fixtures: explicit generators, and the devices and dtypes every dtype/device test runs on."""

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


@pytest.fixture
def gen():
    """A seeded CPU generator (tests create data on the CPU, then move it)."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param
