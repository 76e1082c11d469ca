"""Tests of mmdflow.experiments.mnist: the digit judge of chapter 5 and the final-particles file."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdflow import data
from mmdflow.experiments import mnist as jm
from mmdflow.trajectory import Trajectory

SHARED = Path(os.environ.get("MMDFLOW_DATA", Path(__file__).resolve().parents[1] / "data"))
HAVE_MNIST = all((SHARED / "mnist" / name).is_file() for name, _ in data.MNIST_FILES["test"])
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason=f"MNIST test split not found under {SHARED}/mnist")

SMALL = jm.DigitJudgeConfig(n_train_end=1100, n_end=1600, epochs=1)          # a few seconds


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist(SHARED, download=False)


@pytest.fixture(scope="module")
def judge(mnist):
    return jm.train_digit_judge(mnist.images, mnist.labels, jm.DigitJudgeConfig(n_train_end=3100, n_end=4100, epochs=2))


@needs_mnist
def test_held_out_accuracy_is_high_and_recomputes(judge, mnist):
    assert judge.n_train == 3000 and judge.n_held_out == 1000
    # recompute the accuracy independently from the held-out images and their labels
    pred = judge.probabilities(mnist.images[3100:4100]).argmax(1)
    acc = float((pred == mnist.labels[3100:4100]).double().mean())
    assert acc == pytest.approx(judge.accuracy)
    assert acc > 0.93
    # the probabilities are a distribution per image
    p = judge.probabilities(mnist.images[:7].reshape(7, -1))
    assert p.shape == (7, 10) and torch.allclose(p.sum(1), torch.ones(7), atol=1e-5) and bool((p >= 0).all())


@needs_mnist
def test_digits_score_high_grey_and_noise_low(judge, mnist):
    digits = judge.score(mnist.images[:100])               # the chapter's targets, never trained on
    grey = judge.score(torch.full((25, 784), 0.5))
    noise = judge.score(torch.rand(25, 784, generator=torch.Generator().manual_seed(0)))
    assert digits.mean_confidence > 0.9 and digits.share_above > 0.75
    assert grey.mean_confidence < 0.6 and noise.share_above < 0.5
    assert digits.labels.shape == (100,)
    # the share above the threshold counts exactly the images whose top probability exceeds it
    top = judge.probabilities(mnist.images[:100]).max(1).values
    assert digits.share_above == pytest.approx(float((top > 0.9).double().mean()))
    assert digits.mean_confidence == pytest.approx(float(top.mean()), rel=1e-6)


@needs_mnist
def test_training_is_deterministic_and_never_sees_the_targets(mnist):
    a = jm.train_digit_judge(mnist.images, mnist.labels, SMALL)
    b = jm.train_digit_judge(mnist.images, mnist.labels, SMALL)
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    # changing the excluded targets' pixels does not change the trained weights
    images = mnist.images.clone()
    images[:100] = torch.rand(100, 28, 28, generator=torch.Generator().manual_seed(3))
    c = jm.train_digit_judge(images, mnist.labels, SMALL)
    assert all(torch.equal(a.params[k], c.params[k]) for k in a.params)
    # a different seed gives different weights
    d = jm.train_digit_judge(mnist.images, mnist.labels, jm.DigitJudgeConfig(n_train_end=1100, n_end=1600, epochs=1,
                                                                             seed=1))
    assert not torch.equal(a.params["fc2.w"], d.params["fc2.w"])


@needs_mnist
def test_cache_round_trip(mnist, tmp_path):
    a = jm.train_digit_judge(mnist.images, mnist.labels, SMALL, cache_dir=tmp_path)
    files = list(tmp_path.glob("digit_judge_*.pt"))
    assert len(files) == 1 and a.train_seconds > 0
    b = jm.train_digit_judge(mnist.images, mnist.labels, SMALL, cache_dir=tmp_path)
    assert b.train_seconds == 0 and b.accuracy == a.accuracy
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)


def test_wrong_shapes_and_values_are_refused():
    j = jm.DigitJudge(jm.DigitJudgeConfig(), jm._init_params(jm.DigitJudgeConfig(), torch.Generator().manual_seed(0)),
                      accuracy=0.0, n_train=1, n_held_out=1)
    with pytest.raises(ValueError, match=r"\[N, 784\].*\(25, 783\)"):
        j.score(torch.zeros(25, 783))
    with pytest.raises(ValueError, match="28, 28"):
        j.probabilities(torch.zeros(3, 27, 28))
    with pytest.raises(ValueError, match="non-finite"):
        j.score(torch.full((2, 784), float("nan")))
    with pytest.raises(ValueError, match="threshold"):
        j.score(torch.zeros(2, 784), threshold=1.5)
    with pytest.raises(ValueError, match="n_train_end"):
        jm.DigitJudgeConfig(exclude=100, n_train_end=50)
    with pytest.raises(ValueError, match="labels"):
        jm.train_digit_judge(torch.zeros(300, 784), torch.zeros(299, dtype=torch.long),
                             jm.DigitJudgeConfig(n_train_end=200))
    with pytest.raises(ValueError, match="n_end=400"):
        jm.train_digit_judge(torch.zeros(300, 784), torch.zeros(300, dtype=torch.long),
                             jm.DigitJudgeConfig(n_train_end=200, n_end=400))
    with pytest.raises(ValueError, match=r"\[S, N, 784\]"):
        jm.judge_trajectory(j, Trajectory(torch.zeros(2), torch.zeros(2, 5, 2), torch.zeros(2)))


def test_judge_trajectory_and_particles_file(tmp_path):
    j = jm.DigitJudge(jm.DigitJudgeConfig(), jm._init_params(jm.DigitJudgeConfig(), torch.Generator().manual_seed(0)),
                      accuracy=0.0, n_train=1, n_held_out=1)
    pos = torch.rand(3, 25, 784, generator=torch.Generator().manual_seed(1))
    tr = Trajectory(torch.tensor([0.0, 1.0, 2.0]), pos, torch.zeros(3))
    out = jm.judge_trajectory(j, tr)
    assert out.mean_confidence.shape == (3,) and out.share_above.shape == (3,)
    for s in range(3):
        assert float(out.mean_confidence[s]) == pytest.approx(j.score(pos[s]).mean_confidence)
    runs = {"neural_backward": tr, "particle_flow": tr._replace(positions=pos.double())}
    saved = jm.save_final_particles(runs, tmp_path / "records" / "05_mnist_particles.pt")
    loaded = jm.load_final_particles(tmp_path / "records" / "05_mnist_particles.pt")
    assert set(loaded) == set(runs)
    for k in runs:
        assert loaded[k].shape == (25, 784) and loaded[k].dtype == torch.float32
        assert torch.equal(loaded[k], pos[-1].float()) and torch.equal(saved[k], loaded[k])
    with pytest.raises(ValueError, match="784"):
        jm.save_final_particles({"x": Trajectory(torch.zeros(1), torch.zeros(1, 4, 2), torch.zeros(1))},
                                tmp_path / "bad.pt")


# ------------------------------------------------------------------------------------------------ figures
def test_mosaic_figure_draws_each_pixel_at_the_requested_scale():
    import matplotlib.pyplot as plt
    from mmdflow.plots import mnist as mp

    digits = torch.rand(25, 784, generator=torch.Generator().manual_seed(0))
    canvas = mp.canvas(digits, ncols=5)
    assert canvas.shape == (5 * 29 + 1, 5 * 29 + 1)
    fig = mp.mosaic_figure([[(canvas, "a"), (canvas[:59], "b")]], scale=2.0, row_labels=["x"])
    ax = fig.axes[0]
    bbox = ax.get_window_extent()                      # in display pixels at the figure's 96 dpi
    assert fig.dpi == mp.DPI
    assert bbox.width == pytest.approx(2.0 * canvas.shape[1], abs=1.0)
    assert bbox.height == pytest.approx(2.0 * canvas.shape[0], abs=1.0)
    plt.close(fig)
    with pytest.raises(ValueError, match="text column"):
        mp.mosaic_figure([[(canvas, "a"), (canvas, "b"), (canvas, "c")]], scale=2.0)


def test_paper_images_split_into_their_digits():
    from mmdflow.data.mnist import paper_mnist_image
    from mmdflow.plots import mnist as mp

    img = paper_mnist_image("particle_flow")
    assert img.shape[:2] == (291, 291)
    final = mp.paper_final(img)
    assert final.shape == (10, 784)
    g = img[..., :3].mean(-1)
    # the last column's first digit is the tile at rows 1..28, columns 262..289; separators are grey 0.5
    assert np.allclose(final[0].reshape(28, 28), g[1:29, 262:290])
    assert np.allclose(g[29, :], 0.5, atol=0.01) and np.allclose(g[:, 261], 0.5, atol=0.01)
    assert mp.paper_rows(img, 5).shape == (5 * 29 + 1, 291)
    with pytest.raises(ValueError, match="unknown scheme"):
        paper_mnist_image("jko")
    with pytest.raises(ValueError, match="separators"):
        mp.paper_rows(np.zeros((100, 100)))


def test_snapshot_columns_and_evolution_canvas():
    from mmdflow.plots import mnist as mp

    times = torch.tensor([0.0, 20.0, 40.0, 60.0, 3000.0])
    assert mp.snapshot_columns(times, [0, 1, 2, 55, 3000, 48000]) == [0, 3, 4]
    pos = torch.arange(5 * 3 * 784, dtype=torch.float32).reshape(5, 3, 784) / (5 * 3 * 784)
    cv = mp.evolution_canvas(Trajectory(times, pos, torch.zeros(5)), [0, 4], [0, 2])
    assert cv.shape == (2 * 29 + 1, 2 * 29 + 1)
    assert np.allclose(cv[1:29, 30:58], pos[4, 0].reshape(28, 28).double().numpy())   # row 0 = particle 0, col 1 = t 3000
    assert np.allclose(cv[30:58, 1:29], pos[0, 2].reshape(28, 28).double().numpy())   # row 1 = particle 2, col 0 = t 0


def test_animation_clock_writes_times_without_exponents():
    from mmdflow.plots.targets import _time_label

    assert _time_label(3000.0) == "3000" and _time_label(48000.0) == "48000"
    assert _time_label(2.5) == "2.5" and _time_label(0.05) == "0.05" and _time_label(0.0) == "0"
    assert _time_label(123.4) == "123"


# ------------------------------------------------------------------------------------------------ the chapter's output
def _chapter_record(profile="quick"):
    folder = Path(__file__).resolve().parents[1] / "build" / "records" / profile
    return folder / "05_mnist.json", folder / "05_mnist_particles.pt"


@needs_mnist
@pytest.mark.skipif(not all(p.exists() for p in _chapter_record()),
                    reason="chapter 05_mnist not executed in the quick profile (scripts/run_chapters.py)")
def test_chapter_record_matches_its_particles_file():
    """The scorecard's numbers recomputed from the stored final particles with a dense energy and the judge."""
    import json

    from mmdflow.energies import DiscrepancyEnergy
    from mmdflow.kernels import Riesz

    rec_path, particles_path = _chapter_record()
    rec = json.loads(rec_path.read_text())["values"]
    particles = jm.load_final_particles(particles_path)
    schemes = {"neural_backward", "neural_forward", "particle_flow"}
    assert set(particles) == schemes and set(rec["judge"]) == schemes and set(rec["ratio_to_pf"]) == schemes
    y = data.load_mnist(SHARED, n=100, download=False, dtype=torch.float64).flat()
    dense = DiscrepancyEnergy(Riesz(1.0), y, backend="dense")
    for s, x in particles.items():
        assert x.shape == (25, 784) and x.dtype == torch.float32
        assert float(dense.value(x.double())) == pytest.approx(rec["final"][s], rel=1e-4, abs=1e-6)
        assert rec["ratio_to_pf"][s] == pytest.approx(rec["final"][s] / rec["final"]["particle_flow"])
        for key in ("mean_confidence", "share_above_0.9"):
            assert 0.0 <= rec["judge"][s][key] <= 1.0
    assert rec["ratio_to_pf"]["particle_flow"] == pytest.approx(1.0)
    assert 0.9 < rec["judge_accuracy"] <= 1.0
