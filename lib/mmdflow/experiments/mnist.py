r"""An independent digit judge for the MNIST chapter: a small CNN that says how digit-like the particles are.

The MMD :math:`\mathcal D_K^2` of 25 particles to 100 digits measures the distance of two measures; it does not
say whether each particle *looks like a digit*. The judge answers that second question with a classifier that
never saw the chapter's target digits:

* :class:`DigitJudgeConfig` -- which images it trains on, which it holds out, the network and the training
  (frozen, validated);
* :func:`train_digit_judge` -- trains the CNN deterministically (explicit ``torch.Generator``), optionally cached;
* :class:`DigitJudge` -- the trained classifier with its held-out accuracy; :meth:`DigitJudge.probabilities`,
  :meth:`DigitJudge.score` (mean top-class probability and share above a threshold);
* :func:`judge_trajectory` -- the score of every snapshot of a run;
* :func:`save_final_particles` -- the final particles of each scheme, ``{scheme: [N, 784]}``, for scoring outside
  the chapter.

The classifier is a stand-in for a human reader, in the spirit of the "classifier confidence" scores used for
generative models; the chapter states its held-out accuracy.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, NamedTuple

import torch
import torch.nn.functional as F

from .._checks import check_int, check_positive
from ..trajectory import Trajectory, digest

__all__ = ["DigitJudgeConfig", "DigitJudge", "JudgeScores", "train_digit_judge", "judge_trajectory",
           "save_final_particles", "load_final_particles"]

SIDE = 28
PIXELS = SIDE * SIDE


@dataclass(frozen=True, kw_only=True)
class DigitJudgeConfig:
    """Data split, network and training of the digit judge.

    The judge trains on the images ``[exclude, n_train_end)`` of the given split and reports its accuracy on
    ``[n_train_end, n_end)``; the first ``exclude`` images (the chapter's targets) are never used.

    Attributes:
        exclude: number of leading images left out entirely (the chapter's target digits).
        n_train_end: end (exclusive) of the training images.
        n_end: end (exclusive) of the held-out images (``None``: all images).
        channels: output channels of the two 5x5 convolutions.
        hidden: width of the hidden fully connected layer.
        epochs: passes over the training images.
        batch_size: images per Adam step.
        lr: Adam learning rate.
        seed: seed of the generator for the initial weights and the batch order.
    """

    exclude: int = 100
    n_train_end: int = 8000
    n_end: int | None = None
    channels: tuple[int, int] = (16, 32)
    hidden: int = 128
    epochs: int = 3
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self):
        check_int(self.exclude, "exclude", 0)
        check_int(self.n_train_end, "n_train_end", self.exclude + 1)
        if self.n_end is not None:
            check_int(self.n_end, "n_end", self.n_train_end + 1)
        if len(self.channels) != 2:
            raise ValueError(f"channels must be two numbers (the two convolutions), got {self.channels!r}")
        object.__setattr__(self, "channels", tuple(check_int(c, "channels", 1) for c in self.channels))
        check_int(self.hidden, "hidden", 1)
        check_int(self.epochs, "epochs", 1)
        check_int(self.batch_size, "batch_size", 1)
        check_positive(self.lr, "lr")
        check_int(self.seed, "seed", 0)


class JudgeScores(NamedTuple):
    """The judge's verdict on a set of images.

    Attributes:
        mean_confidence: mean over the images of the top-class probability.
        share_above: share of the images whose top-class probability exceeds ``threshold``.
        threshold: the threshold of ``share_above``.
        labels: ``[N]`` top class of each image.
    """

    mean_confidence: float
    share_above: float
    threshold: float
    labels: torch.Tensor


def _as_images(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``[N, 784]`` or ``[N, 28, 28]`` -> ``[N, 1, 28, 28]`` float32 in [0, 1] (clipped, as the mosaics show them)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 2 and x.shape[1] == PIXELS:
        x = x.reshape(-1, SIDE, SIDE)
    if x.dim() != 3 or tuple(x.shape[1:]) != (SIDE, SIDE):
        raise ValueError(f"{name} must have shape [N, {PIXELS}] or [N, {SIDE}, {SIDE}] (MNIST images), "
                         f"got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no images")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} has non-finite pixel values")
    return x.detach().to(torch.float32).clamp(0.0, 1.0).unsqueeze(1)


def _init_params(cfg: DigitJudgeConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """He-uniform weights and zero biases, drawn from ``generator`` (no global seed)."""
    c1, c2 = cfg.channels
    flat = c2 * 4 * 4
    shapes = {"conv1.w": (c1, 1, 5, 5), "conv2.w": (c2, c1, 5, 5), "fc1.w": (cfg.hidden, flat),
              "fc2.w": (10, cfg.hidden)}
    params = {}
    for name, shape in shapes.items():
        fan_in = math.prod(shape[1:])
        bound = math.sqrt(6.0 / fan_in)
        params[name] = (torch.rand(shape, generator=generator) * 2 - 1) * bound
        params[name.replace(".w", ".b")] = torch.zeros(shape[0])
    return params


def _logits(params: Mapping[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """The CNN: conv5-relu-maxpool2, conv5-relu-maxpool2, fc-relu, fc. ``[B, 1, 28, 28]`` -> ``[B, 10]``."""
    h = F.max_pool2d(F.relu(F.conv2d(images, params["conv1.w"], params["conv1.b"])), 2)    # [B, c1, 12, 12]
    h = F.max_pool2d(F.relu(F.conv2d(h, params["conv2.w"], params["conv2.b"])), 2)         # [B, c2, 4, 4]
    h = F.relu(F.linear(h.flatten(1), params["fc1.w"], params["fc1.b"]))
    return F.linear(h, params["fc2.w"], params["fc2.b"])


class DigitJudge:
    """A trained digit classifier with its held-out accuracy.

    Attributes:
        config: the :class:`DigitJudgeConfig` it was trained with.
        params: the network's weights (CPU, float32).
        accuracy: share of the held-out images classified correctly.
        n_train, n_held_out: number of training and held-out images.
        train_seconds: wall time of the training (0 when loaded from the cache).
    """

    def __init__(self, config: DigitJudgeConfig, params: dict[str, torch.Tensor], *, accuracy: float, n_train: int,
                 n_held_out: int, train_seconds: float = 0.0):
        self.config, self.params = config, params
        self.accuracy, self.n_train, self.n_held_out = float(accuracy), int(n_train), int(n_held_out)
        self.train_seconds = float(train_seconds)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (softmax) of images ``x`` (``[N, 784]`` or ``[N, 28, 28]``, pixels clipped to
        [0, 1]); returns ``[N, 10]`` float32 on the CPU."""
        images = _as_images(x).cpu()
        with torch.no_grad():
            return torch.cat([F.softmax(_logits(self.params, b), dim=1) for b in images.split(1000)])

    def score(self, x: torch.Tensor, threshold: float = 0.9) -> JudgeScores:
        r"""Mean top-class probability :math:`\frac1N\sum_i \max_c p_c(x_i)` and the share of images with
        :math:`\max_c p_c(x_i) > \text{threshold}`.

        Args:
            x: ``[N, 784]`` or ``[N, 28, 28]`` images.
            threshold: in (0, 1).
        """
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
        top, labels = self.probabilities(x).max(dim=1)
        return JudgeScores(float(top.mean()), float((top > threshold).double().mean()), float(threshold), labels)

    def state(self) -> dict:
        return {"config": asdict(self.config), "params": self.params, "accuracy": self.accuracy,
                "n_train": self.n_train, "n_held_out": self.n_held_out}


def train_digit_judge(images: torch.Tensor, labels: torch.Tensor, config: DigitJudgeConfig | None = None, *,
                      cache_dir=None) -> DigitJudge:
    """Train the digit judge on ``images[exclude:n_train_end]`` and measure its accuracy on
    ``images[n_train_end:n_end]``.

    Deterministic: weights and batch order come from ``torch.Generator().manual_seed(config.seed)``; the training
    runs on the CPU in float32. With ``cache_dir`` the trained weights are stored in
    ``<cache_dir>/digit_judge_<digest>.pt``, where the digest covers the config and the images and labels used, and
    loaded from there next time.

    Args:
        images: ``[M, 28, 28]`` or ``[M, 784]`` MNIST images in [0, 1] (the chapter passes the 10,000 test images).
        labels: ``[M]`` integer labels 0..9.
        config: the :class:`DigitJudgeConfig` (default: its defaults).
        cache_dir: folder of the cache, or ``None`` for no cache.

    Returns:
        the trained :class:`DigitJudge`.
    """
    cfg = config or DigitJudgeConfig()
    if not isinstance(cfg, DigitJudgeConfig):
        raise TypeError(f"config must be a DigitJudgeConfig, got {type(cfg).__name__}")
    x = _as_images(images, "images").cpu()
    if not isinstance(labels, torch.Tensor) or labels.shape != (x.shape[0],):
        raise ValueError(f"labels must be a tensor of shape [{x.shape[0]}] (one per image), got "
                         f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    lab = labels.cpu().long()
    if lab.min() < 0 or lab.max() > 9:
        raise ValueError(f"labels must lie in 0..9, got range {int(lab.min())}..{int(lab.max())}")
    n_end = x.shape[0] if cfg.n_end is None else cfg.n_end
    if n_end > x.shape[0]:
        raise ValueError(f"config.n_end={n_end} exceeds the {x.shape[0]} images given")
    if cfg.n_train_end >= n_end:
        raise ValueError(f"config.n_train_end={cfg.n_train_end} leaves no held-out images (n_end={n_end})")
    x_tr, y_tr = x[cfg.exclude:cfg.n_train_end], lab[cfg.exclude:cfg.n_train_end]
    x_ho, y_ho = x[cfg.n_train_end:n_end], lab[cfg.n_train_end:n_end]

    path = None
    if cache_dir is not None:
        key = digest({"config": asdict(cfg), "images": x[:n_end], "labels": lab[:n_end], "version": 1})
        path = Path(cache_dir) / f"digit_judge_{key}.pt"
        if path.exists():
            state = torch.load(path, map_location="cpu", weights_only=True)
            return DigitJudge(cfg, state["params"], accuracy=state["accuracy"], n_train=state["n_train"],
                              n_held_out=state["n_held_out"])

    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    params = _init_params(cfg, gen)
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.Adam(list(params.values()), lr=cfg.lr)
    n = x_tr.shape[0]
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        for idx in order.split(cfg.batch_size):
            loss = F.cross_entropy(_logits(params, x_tr[idx]), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    params = {k: v.detach() for k, v in params.items()}
    judge = DigitJudge(cfg, params, accuracy=0.0, n_train=n, n_held_out=x_ho.shape[0])
    with torch.no_grad():
        judge.accuracy = float((judge.probabilities(x_ho[:, 0]).argmax(1) == y_ho).double().mean())
    judge.train_seconds = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(judge.state(), tmp)
        tmp.replace(path)
    return judge


class TrajectoryJudgement(NamedTuple):
    """The judge's scores at every snapshot of a run.

    Attributes:
        times: ``[S]`` snapshot times.
        mean_confidence: ``[S]`` mean top-class probability of the particles.
        share_above: ``[S]`` share of particles above the threshold.
        threshold: the threshold.
    """

    times: torch.Tensor
    mean_confidence: torch.Tensor
    share_above: torch.Tensor
    threshold: float


def judge_trajectory(judge: DigitJudge, trajectory: Trajectory, threshold: float = 0.9) -> TrajectoryJudgement:
    """:meth:`DigitJudge.score` of the particles ``trajectory.positions[s]`` (``[N, 784]``) at every snapshot."""
    if trajectory.positions.dim() != 3 or trajectory.positions.shape[2] != PIXELS:
        raise ValueError(f"trajectory positions must have shape [S, N, {PIXELS}], got "
                         f"{tuple(trajectory.positions.shape)}")
    scores = [judge.score(p, threshold) for p in trajectory.positions]
    return TrajectoryJudgement(trajectory.times.detach().cpu().double(),
                               torch.tensor([s.mean_confidence for s in scores], dtype=torch.float64),
                               torch.tensor([s.share_above for s in scores], dtype=torch.float64), float(threshold))


def save_final_particles(runs: Mapping[str, Trajectory], path) -> dict[str, torch.Tensor]:
    """Store ``{scheme: final particles [N, 784]}`` (float32, CPU) of each run in ``path`` (``torch.save``)."""
    out = {}
    for scheme, tr in runs.items():
        x = tr.positions[-1].detach().to("cpu", torch.float32).contiguous()
        if x.dim() != 2 or x.shape[1] != PIXELS:
            raise ValueError(f"final particles of {scheme!r} must have shape [N, {PIXELS}], got {tuple(x.shape)}")
        out[scheme] = x
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(out, tmp)
    tmp.replace(path)
    return out


def load_final_particles(path) -> dict[str, torch.Tensor]:
    """The ``{scheme: [N, 784]}`` dict written by :func:`save_final_particles`."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)
