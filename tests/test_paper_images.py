"""The paper's target pictures shipped with the package, resampling, and the refusals of pictures without a
picture (blank, all ink, transparent) or too large to sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdflow import data
from mmdflow.data import images


def test_paper_images_load_without_any_data_folder(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MMDFLOW_DATA", str(empty))
    mm = data.paper_image("max_und_moritz", size=None)
    assert mm.shape == (439, 676)                       # the scan, unchanged
    assert 0.03 < (mm < 0.5).mean() < 0.5                # ink strokes on white paper
    sm = data.paper_image("smiley", size=None)
    assert sm.shape == (501, 500)
    # the files come from the installed package, not from a data folder
    assert str(images._package_file("smiley.png")).startswith(str(images.__file__).rsplit("images.py", 1)[0])
    for name in data.PAPER_OUTPUTS:
        out = data.paper_output_image(name)
        assert out.ndim == 3 and out.shape[0] > 300 and out.shape[1] > 600
    with pytest.raises(ValueError, match="available"):
        data.paper_image("max")
    with pytest.raises(ValueError, match="available"):
        data.paper_output_image("smiley")


def test_licence_and_source_ship_with_the_images():
    readme = images._package_file("README.md").read_text()
    assert "5d09b2f" in readme and "Wilhelm Busch" in readme and "MIT" in readme
    assert "Permission is hereby granted" in images._package_file("LICENSE-official-code").read_text()
    assert "Permission is hereby granted" in images._package_file("outputs", "LICENSE-official-code").read_text()


def test_resize_keeps_the_aspect_ratio_and_averages_areas():
    mm = data.paper_image("max_und_moritz", size=100)
    assert mm.shape == (65, 100)
    # independent check of the area average: an image of 3 x 3 constant blocks shrinks to the block values
    blocks = np.array([[0.0, 0.5, 1.0], [0.2, 0.4, 0.6], [1.0, 0.0, 0.3]])
    big = np.kron(blocks, np.ones((7, 7)))
    assert np.allclose(data.resize_grey(big, 3), blocks, atol=1e-12)
    # a non-integer factor preserves the mean grey level (every input pixel's area is used once)
    g = torch.rand(23, 17, generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    r = data.resize_grey(g, 10)
    assert r.shape == (10, 7)
    assert abs(r.mean() - g.mean()) < 0.02
    # by hand: 3 pixels [0, 0, 1] to 2 pixels: cells [0, 1.5) and [1.5, 3)
    row = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert np.allclose(data.resize_grey(row, 2), np.array([[0.0, 2 / 3], [0.0, 2 / 3]]), atol=1e-12)
    with pytest.raises(ValueError, match="long_side"):
        data.resize_grey(g, 1)


def test_samples_of_the_paper_images_lie_on_the_ink():
    mm = data.paper_image("max_und_moritz", size=100)
    x = data.image_to_samples(mm, 3000, smoothing=0.0, background=0.0, generator=torch.Generator().manual_seed(0),
                              dtype=torch.float64)
    assert x[:, 0].abs().max() <= 0.5 and x[:, 1].abs().max() <= 0.325 + 1e-12    # 100 x 65 pixels, centred
    # the grey level under each sample is darker than the page on average (independent pixel lookup)
    col = np.clip(((x[:, 0].numpy() + 0.5) * 100).astype(int), 0, 99)
    row = np.clip(((0.325 - x[:, 1].numpy()) * 100).astype(int), 0, 64)
    assert mm[row, col].mean() < mm.mean() - 0.3


def test_halos_carry_their_share_of_the_mass():
    img = np.ones((60, 60))
    img[28:32, 28:32] = 0.0                                   # a small ink square in the middle
    p = data.image_to_density(img, smoothing=0.0, background=0.0, halos=(10.0, 20.0), halo_weight=0.05)
    off_ink = p.copy()
    off_ink[28:32, 28:32] = 0.0
    # the halos add 2 x 0.05 of the ink's mass (renormalised to the ink's own total), part of it on the ink square
    assert 0.5 * 0.1 / 1.1 < off_ink.sum() < 0.1 / 1.1
    assert abs(p.sum() - 1.0) < 1e-12
    with pytest.raises(ValueError, match="halos"):
        data.image_to_density(img, halos=(-1.0,))


@pytest.mark.parametrize("grey, what", [(1.0, "blank page"), (0.0, "all ink"), (0.6, "uniform grey")])
def test_images_without_a_picture_are_refused(grey, what):
    with pytest.raises(ValueError, match=what):
        data.image_to_samples(np.full((20, 30), grey), 10)
    with pytest.raises(ValueError, match="one grey level"):
        data.image_to_density(np.full((20, 30), grey), background=0.5)


def test_fully_transparent_images_are_refused(tmp_path):
    rgba = np.zeros((20, 20, 4))
    rgba[5:10, 5:10, :3] = 0.0                               # black ink ... under alpha = 0 everywhere
    with pytest.raises(ValueError, match="fully transparent"):
        data.image_to_samples(rgba, 10)
    import matplotlib.image as mpimg
    path = tmp_path / "clear.png"
    mpimg.imsave(path, rgba)
    with pytest.raises(ValueError, match="fully transparent"):
        data.image_to_samples(path, 10)
    rgba[5:10, 5:10, 3] = 1.0                                # opaque ink: a picture
    assert data.image_to_samples(rgba, 10, generator=torch.Generator().manual_seed(0)).shape == (10, 2)


def test_images_too_large_to_sample_are_refused_by_name():
    row = np.linspace(0.0, 1.0, 4097)
    big = np.broadcast_to(row, (4097, 4097))                 # 2^24 + 8193 pixels, a view (no memory)
    assert big.size > 2 ** 24
    with pytest.raises(ValueError, match=r"4097 x 4097 = 16785409 pixels.*resize"):
        data.image_to_samples(big, 10)
