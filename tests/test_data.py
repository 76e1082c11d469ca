"""Tests of mmdflow.data: images -> samples, drawn targets, the MNIST loader (real files, md5, errors)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdflow import data

SHARED = Path(os.environ.get("MMDFLOW_DATA", Path(__file__).resolve().parents[1] / "data"))
HAVE_MNIST = all((SHARED / "mnist" / name).is_file() for name, _ in data.MNIST_FILES["test"])
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason=f"MNIST test split not found under {SHARED}/mnist")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------ images
def test_half_black_image_puts_samples_in_that_half():
    img = np.ones((40, 40))
    img[:, :20] = 0.0                         # left half black = all the ink
    x = data.image_to_samples(img, 4000, smoothing=0.0, background=0.0, generator=gen())
    assert x.shape == (4000, 2) and x.dtype == torch.float32
    assert bool((x[:, 0] <= 0).all())
    assert bool((x.abs() <= 0.5).all())
    # the left half is filled uniformly: mean x is -1/4, spread in y uniform on [-1/2, 1/2]
    assert abs(x[:, 0].mean().item() + 0.25) < 0.01
    assert abs(x[:, 1].mean().item()) < 0.02
    # with a light blur almost everything still lies left of the middle
    xs = data.image_to_samples(img, 4000, smoothing=1.0, background=0.0, generator=gen(1))
    assert (xs[:, 0] <= 0).float().mean().item() > 0.97


def test_top_row_is_up_and_background_fraction():
    img = np.ones((20, 20))
    img[0, :] = 0.0                           # ink in the top row only
    x = data.image_to_samples(img, 20000, smoothing=0.0, background=0.2, generator=gen(2))
    top = (x[:, 1] >= 0.45).float().mean().item()
    # top row mass: 0.8 (ink) + 0.2 * 1/20 (its share of the uniform floor)
    assert abs(top - (0.8 + 0.2 / 20)) < 0.015


def test_single_pixel_and_aspect_ratio():
    img = np.ones((10, 20))                   # wide image: x spans [-1/2, 1/2], y spans [-1/4, 1/4]
    img[9, 19] = 0.0                          # bottom-right pixel
    x = data.image_to_samples(img, 500, smoothing=0.0, background=0.0, generator=gen(), dtype=torch.float64)
    assert x.dtype == torch.float64
    assert bool((x[:, 0] >= 0.45).all() and (x[:, 0] <= 0.5).all())
    assert bool((x[:, 1] >= -0.25).all() and (x[:, 1] <= -0.2).all())
    p = data.image_to_density(img, smoothing=0.0, background=0.5)
    assert p.shape == (10, 20) and abs(p.sum() - 1) < 1e-12
    assert abs(p[9, 19] - (0.5 + 0.5 / 200)) < 1e-12


def test_png_file_and_rgb_and_uint8(tmp_path):
    import matplotlib.image as mpimg

    img = np.ones((30, 30))
    img[10:20, 10:20] = 0.0
    path = tmp_path / "square.png"
    mpimg.imsave(path, img, cmap="gray", vmin=0, vmax=1)
    x = data.image_to_samples(path, 1000, smoothing=0.0, background=0.0, generator=gen())
    assert bool((x.abs() <= 1 / 6 + 1e-6).all())
    # uint8 RGB array gives the same density as the float grey array
    rgb = np.repeat((img * 255).astype(np.uint8)[..., None], 3, axis=2)
    np.testing.assert_allclose(data.image_to_density(rgb, smoothing=0.5), data.image_to_density(img, smoothing=0.5),
                               atol=1e-12)


def test_generator_reproducibility():
    img = data.smiley_image(40)
    a = data.image_to_samples(img, 300, generator=gen(5))
    b = data.image_to_samples(img, 300, generator=gen(5))
    c = data.image_to_samples(img, 300, generator=gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_blur_preserves_interior_mass():
    img = np.ones((41, 41))
    img[20, 20] = 0.0
    p = data.image_to_density(img, smoothing=2.0, background=0.0)
    ii, jj = np.meshgrid(np.arange(41) - 20, np.arange(41) - 20, indexing="ij")
    var = (p * ii**2).sum()
    assert abs(var - 4.0) < 0.1                # a Gaussian of sigma = 2 pixels (discretised)


@pytest.mark.parametrize("kwargs, match", [
    (dict(smoothing=-1.0), "smoothing"), (dict(background=1.5), "background"), (dict(smoothing=float("nan")), "smoothing"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.image_to_samples(np.zeros((8, 8)), 10, **kwargs)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="n must be"):
        data.image_to_samples(np.zeros((8, 8)), 0)
    with pytest.raises(ValueError, match="grey levels"):
        data.image_to_samples(np.full((8, 8), 2.0), 10)
    with pytest.raises(FileNotFoundError, match="nope.png"):
        data.image_to_samples(tmp_path / "nope.png", 10)
    with pytest.raises(ValueError, match="blank page"):
        data.image_to_samples(np.ones((8, 8)), 10, background=0.0)


def test_drawn_targets():
    s = data.smiley_image(100)
    assert s.shape == (100, 100) and s.min() == 0.0 and s.max() == 1.0
    assert s[50, 50] == 1.0                    # the nose is blank
    assert s[50, 10] == 0.0                    # the face ring (radius 0.4 of the side) on the left
    assert s[38, 36] == 0.0                    # an eye
    for img in (data.house_image(64), data.text_image("MMD", 64)):
        assert img.shape == (64, 64) and img.min() >= 0 and img.max() <= 1
        assert 0.02 < (img < 0.5).mean() < 0.4  # strokes, not a blank or black page
    with pytest.raises(ValueError, match="size"):
        data.smiley_image(4)
    with pytest.raises(ValueError, match="text"):
        data.text_image("")


# ------------------------------------------------------------------------------------------------ MNIST
@needs_mnist
def test_load_mnist_test_split():
    m = data.load_mnist(SHARED, download=False)
    assert m.split == "test"
    assert m.images.shape == (10000, 28, 28) and m.images.dtype == torch.float32
    assert m.labels.shape == (10000,) and m.labels.dtype == torch.int64
    assert m.images.min().item() == 0.0 and m.images.max().item() == 1.0
    # published class counts of the 10,000 test images
    assert torch.bincount(m.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert m.flat().shape == (10000, 784)
    first = data.load_mnist(SHARED, download=False, n=100)
    assert torch.equal(first.images, m.images[:100]) and first.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@needs_mnist
def test_load_mnist_accepts_numpy_integers():
    m = data.load_mnist(SHARED, download=False, n=np.int64(4), dtype=torch.float64)
    assert m.images.shape == (4, 28, 28) and m.images.dtype == torch.float64


@needs_mnist
def test_env_var_and_flat_dir(tmp_path, monkeypatch):
    for name, _ in data.MNIST_FILES["test"]:   # files directly in <dir>, not in <dir>/mnist
        shutil.copy(SHARED / "mnist" / name, tmp_path / name)
    monkeypatch.setenv("MMDFLOW_DATA", str(tmp_path))
    m = data.load_mnist(download=False, n=5)
    assert m.images.shape == (5, 28, 28)


@needs_mnist
def test_md5_mismatch_is_reported(tmp_path):
    (tmp_path / "mnist").mkdir()
    for name, _ in data.MNIST_FILES["test"]:
        shutil.copy(SHARED / "mnist" / name, tmp_path / "mnist" / name)
    bad = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(bad.read_bytes())
    raw[1000] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(data.DataIntegrityError, match="md5"):
        data.load_mnist(tmp_path, download=False)


def test_missing_files_error_says_where(tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        data.load_mnist(tmp_path, download=False)
    msg = str(exc.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and str(tmp_path / "mnist") in msg and "MMDFLOW_DATA" in msg
    with pytest.raises(ValueError, match="split"):
        data.load_mnist(tmp_path, split="validation", download=False)


@needs_mnist
def test_download_verifies_md5(tmp_path, monkeypatch):
    """A mirror is simulated by serving the shared files; a corrupted mirror is rejected and nothing is kept."""
    import io
    import urllib.error

    served = []

    def fake_urlopen(url, timeout=None):
        name = url.rsplit("/", 1)[-1]
        served.append(url)
        raw = (SHARED / "mnist" / name).read_bytes()
        if "ossci" in url and corrupt["on"]:
            raw = raw[:-10] + b"0123456789"
        return io.BytesIO(raw)

    corrupt = {"on": False}
    monkeypatch.setattr(data.mnist.urllib.request, "urlopen", fake_urlopen)
    m = data.load_mnist(tmp_path, n=3)
    assert m.images.shape == (3, 28, 28)
    assert (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    assert served[0].startswith(data.MNIST_MIRRORS[0])

    # first mirror corrupted: the second one is used
    other = tmp_path / "other"
    corrupt["on"] = True
    served.clear()
    data.load_mnist(other, n=1)
    assert any(u.startswith(data.MNIST_MIRRORS[1]) for u in served)

    # no mirror reachable: the error lists the attempts and where to put the files
    def offline(url, timeout=None):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(data.mnist.urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError, match="network unreachable"):
        data.load_mnist(tmp_path / "empty")
    assert not list((tmp_path / "empty" / "mnist").glob("*"))   # no partial download left behind


def test_a_failed_load_creates_no_folder(tmp_path, monkeypatch):
    import urllib.error

    def offline(url, timeout=None):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(data.mnist.urllib.request, "urlopen", offline)
    for download in (True, False):
        with pytest.raises(FileNotFoundError):
            data.load_mnist(tmp_path / "nowhere", download=download)
        assert not (tmp_path / "nowhere").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_never_answers_is_bounded_by_total_timeout(tmp_path, monkeypatch):
    """A host that accepts connections but never answers: every attempt together stops at ``total_timeout``."""
    import socket
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)                       # the kernel completes the handshakes; nobody ever answers
    url = f"http://127.0.0.1:{server.getsockname()[1]}/"
    monkeypatch.setattr(data.mnist, "MNIST_MIRRORS", (url, url, url))
    t0 = time.monotonic()
    try:
        with pytest.raises(FileNotFoundError, match="total download time limit") as info:
            data.load_mnist(tmp_path / "slow", timeout=30.0, total_timeout=1.0)
    finally:
        server.close()
    assert time.monotonic() - t0 < 10.0     # 3 mirrors x 30 s before
    assert "timed out" in str(info.value) and not (tmp_path / "slow").exists()


def test_truncated_and_non_image_files_name_the_path(tmp_path):
    import matplotlib.image as mpimg

    png = tmp_path / "picture.png"
    mpimg.imsave(png, np.random.default_rng(0).random((60, 60)), cmap="gray")
    cut = tmp_path / "cut.png"
    cut.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    text = tmp_path / "notes.png"
    text.write_text("these are not pixels")
    assert data.image_to_samples(png, 3, generator=gen()).shape == (3, 2)
    for bad in (cut, text):
        with pytest.raises(ValueError, match="cannot read the image file") as info:
            data.image_to_samples(bad, 3)
        assert str(bad) in str(info.value)


# ------------------------------------------------------------------------------------------------ package
def test_package_reexports_every_public_name():
    """``mmdflow.data`` is a package: every public name of its modules is reachable as ``mmdflow.data.NAME``."""
    for module in (data.images, data.mnist, data.mixtures):
        for name in module.__all__:
            assert getattr(data, name) is getattr(module, name), name
            assert name in data.__all__, name
    assert data.load_mnist is data.mnist.load_mnist and data.house_image is data.images.house_image


def test_the_project_ships_the_test_split():
    """The book builds without ``../shared`` and without a network: the project's ``data/`` holds the files."""
    project = Path(__file__).resolve().parents[1] / "data"
    mnist = data.load_mnist(project, n=100, download=False)
    assert mnist.images.shape == (100, 28, 28)
    assert (project / "README.md").read_text().count("Attribution-Share Alike 3.0") == 1
