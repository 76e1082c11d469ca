r"""2D images turned into targets: grey levels, densities, samples and the book's drawn pictures.

A grey-level picture with dark ink on a light background becomes a probability density on the unit box
:math:`[-\frac12, \frac12]^2` (Altekrüger, Hertrich, Steidl 2023, Sec. 6 and App. F): the ink
:math:`1 - g` is blurred with a Gaussian of ``smoothing`` pixels, a fraction ``background`` of the mass is
spread uniformly, and samples are drawn from the resulting piecewise-constant density (a pixel is drawn with
probability proportional to its mass, then a uniform point inside it; :func:`image_to_samples`, ``[n, 2]``).
The book draws its own pictures in code (:func:`smiley_image`, :func:`house_image`, :func:`text_image`);
any PNG/JPEG path works as well.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .._checks import check_float_dtype, check_int, check_positive

__all__ = [
    "grey_levels",
    "image_to_density",
    "image_to_samples",
    "smiley_image",
    "house_image",
    "text_image",
]


def grey_levels(image_or_path) -> np.ndarray:
    """Grey levels in [0, 1] (1 = white paper, 0 = black ink) of an array or an image file, shape ``[H, W]``.

    Args:
        image_or_path: a path to a PNG/JPEG file, or an ``[H, W]`` / ``[H, W, 3|4]`` array or tensor.

    Returns:
        ``[H, W]`` float64 NumPy array.

    Raises:
        FileNotFoundError: the file does not exist.
        TypeError: ``image_or_path`` is neither a path, an array nor a tensor.
        ValueError: the file cannot be read, or the image has another shape, non-finite values or grey levels
            outside [0, 1].
    """
    if isinstance(image_or_path, (str, os.PathLike)):
        path = Path(image_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"image file {str(path)!r} does not exist")
        import matplotlib.image as mpimg

        try:
            img = np.asarray(mpimg.imread(path))
        except Exception as exc:   # PIL and matplotlib raise many kinds: UnidentifiedImageError, OSError, SyntaxError
            raise ValueError(f"cannot read the image file {str(path)!r} ({type(exc).__name__}: {exc}); it must be a "
                             "complete PNG or JPEG image") from exc
    elif isinstance(image_or_path, torch.Tensor):
        img = image_or_path.detach().cpu().numpy()
    elif isinstance(image_or_path, np.ndarray):
        img = image_or_path
    else:
        raise TypeError(f"image_or_path must be a file path, a numpy array or a tensor, got {type(image_or_path).__name__}")
    if np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float64) / float(np.iinfo(img.dtype).max)
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3:
        if img.shape[2] == 4:  # RGBA: composite on white paper
            alpha = img[..., 3:4]
            img = img[..., :3] * alpha + (1.0 - alpha)
        if img.shape[2] not in (1, 3):
            raise ValueError(f"a colour image must have 1, 3 or 4 channels, got shape {img.shape}")
        img = img[..., 0] if img.shape[2] == 1 else img[..., :3] @ np.array([0.299, 0.587, 0.114])
    if img.ndim != 2 or min(img.shape) < 2:
        raise ValueError(f"an image must have shape (H, W) or (H, W, C) with H, W >= 2, got {img.shape}")
    if not np.isfinite(img).all():
        raise ValueError("the image contains non-finite values")
    lo, hi = float(img.min()), float(img.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"grey levels must lie in [0, 1] (or be integers), got range [{lo:.3g}, {hi:.3g}]")
    return img


def _blur_axis(a: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    r"""Zero-padded convolution of ``a`` along ``axis`` with :math:`e^{-t^2/(2\sigma^2)}`, ``|t| <= ceil(4 sigma)``.

    Only offsets ``|t| < n`` (``n`` the length of the axis) reach another pixel of the image, so the kernel is cut
    there: memory and time stay ``O(n^2)`` per line for any ``sigma``. The kernel is normalised on what is kept
    (a constant factor: the density is normalised afterwards).
    """
    n = a.shape[axis]
    radius = min(max(1, int(np.ceil(4.0 * sigma))), n - 1)
    if radius < 1:
        return a
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    # 'full' then the centred slice: exactly the zero-padded convolution (mode 'same' returns max(n, len(k)) values)
    return np.apply_along_axis(lambda row: np.convolve(row, k, mode="full")[radius:radius + n], axis, a)


def _gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with zero padding (mass near the border leaks out, as ink outside the paper would),
    up to a constant factor."""
    if sigma <= 0:
        return a
    return _blur_axis(_blur_axis(a, sigma, 0), sigma, 1)


def image_to_density(image_or_path, *, smoothing: float = 1.0, background: float = 0.01,
                     invert: bool = True) -> np.ndarray:
    r"""Pixel masses of the target density of an image, shape ``[H, W]``, summing to one.

    :math:`p = (1-\beta)\,\frac{G_\sigma * a}{\sum G_\sigma * a} + \frac{\beta}{HW}`, where
    :math:`a = 1 - g` is the ink of grey levels :math:`g` (``invert=True``; ``a = g``
    otherwise), :math:`G_\sigma` a Gaussian of ``smoothing`` pixels and
    :math:`\beta` = ``background`` the mass spread uniformly over the box (the
    paper adds a faint heavily blurred copy instead, App. F; a uniform floor has
    the same purpose: no empty region the particles can never reach).

    Args:
        image_or_path: a path to a PNG/JPEG file (read with ``matplotlib.image``), or an
            ``[H, W]`` / ``[H, W, 3|4]`` array of grey levels (floats in [0, 1] or integers).
        smoothing: Gaussian standard deviation in pixels (``0``: no blur).
        background: mass fraction of the uniform floor, in ``[0, 1]``.
        invert: dark pixels carry the mass (drawings); ``False`` for bright-on-dark images.

    Returns:
        ``[H, W]`` float64 NumPy array summing to one.

    Raises:
        ValueError: ``smoothing`` or ``background`` is out of range, or the image carries no mass and
            ``background = 0``.
    """
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not np.isfinite(smoothing) \
            or smoothing < 0:
        raise ValueError(f"smoothing must be a finite number >= 0 (pixels), got {smoothing!r}")
    if isinstance(background, bool) or not isinstance(background, (int, float)) or not 0.0 <= background <= 1.0:
        raise ValueError(f"background must be a mass fraction in [0, 1], got {background!r}")
    grey = grey_levels(image_or_path)
    ink = 1.0 - grey if invert else grey
    ink = np.clip(_gaussian_blur(ink, float(smoothing)), 0.0, None)
    total = ink.sum()
    if total <= 0.0:
        if background <= 0.0:
            raise ValueError("the image carries no mass (blank page) and background=0: nothing to sample")
        density = np.zeros_like(ink)
        background = 1.0
    else:
        density = ink / total
    return (1.0 - background) * density + background / ink.size


def image_to_samples(image_or_path, n: int, *, smoothing: float = 1.0, background: float = 0.01,
                     invert: bool = True, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    r"""``n`` samples of the density of an image, placed in the unit box :math:`[-\frac12,\frac12]^2`.

    The image keeps its aspect ratio: its longer side spans ``[-1/2, 1/2]`` and the
    picture is centred; up is up (row 0 of the image is the top). A pixel is drawn
    with probability equal to its mass (:func:`image_to_density`), then a point
    uniformly inside it. This plays the role of the paper's ``image_to_sample``
    (Sec. 6.2, App. F, where coordinates are ``(pixel - 50) / 100`` for 100x100 images).

    Args:
        image_or_path: path or array, see :func:`image_to_density`.
        n: number of samples.
        smoothing, background, invert: see :func:`image_to_density`.
        generator: the ``torch.Generator`` for the draws.
        dtype, device: of the returned tensor.

    Returns:
        ``[n, 2]`` tensor of points.
    """
    n = check_int(n, "n", 1)
    check_float_dtype(dtype)
    p = image_to_density(image_or_path, smoothing=smoothing, background=background, invert=invert)
    h, w = p.shape
    probs = torch.as_tensor(p.ravel(), dtype=torch.float64)
    idx = torch.multinomial(probs, n, replacement=True, generator=generator)
    jitter = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    row = (idx // w).to(torch.float64) + jitter[:, 0]
    col = (idx % w).to(torch.float64) + jitter[:, 1]
    side = float(max(h, w))
    x = (col - w / 2.0) / side
    y = (h / 2.0 - row) / side
    return torch.stack([x, y], dim=1).to(dtype=dtype, device=device)


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an integer number of pixels >= 16, got {size!r}")
    return size


def smiley_image(size: int = 100, *, line_width: float = 0.06) -> np.ndarray:
    """A smiley drawn in code: a ring, two eyes and a smiling mouth (black ink on white), ``[size, size]`` in [0, 1].

    Plays the role of the smiley target of App. F, Ex. 1. ``line_width`` is the stroke
    thickness as a fraction of the image side.

    Args:
        size: the side in pixels, ``>= 16``.
        line_width: the stroke thickness as a fraction of the side.

    Returns:
        ``[size, size]`` NumPy array of grey levels.

    Raises:
        ValueError: ``size`` or ``line_width`` is invalid.
    """
    size = _check_size(size)
    check_positive(line_width, "line_width")
    c = (np.arange(size) + 0.5) / size - 0.5
    x, y = np.meshgrid(c, -c)                      # y points up
    r = np.hypot(x, y)
    hw = line_width / 2
    ink = np.abs(r - 0.4) < hw                                          # face
    for ex in (-0.14, 0.14):                                            # eyes
        ink |= np.hypot(x - ex, y - 0.12) < 0.06
    rm = np.hypot(x, y - 0.02)                                          # mouth: lower arc
    ink |= (np.abs(rm - 0.24) < hw) & (y < -0.06) & (np.abs(x) < 0.22)
    return np.where(ink, 0.0, 1.0)


def _render(draw, size: int) -> np.ndarray:
    """Render a matplotlib drawing on the box [-0.5, 0.5]^2 into grey levels ``[size, size]`` (offscreen Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(size / dpi, size / dpi), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.5, 0.5)
    ax.set_ylim(-0.5, 0.5)
    ax.set_axis_off()
    draw(ax, size)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba(), dtype=np.float64)[..., :3] / 255.0
    return np.clip(rgba @ np.array([0.299, 0.587, 0.114]), 0.0, 1.0)


def house_image(size: int = 100, *, line_width: float = 0.025) -> np.ndarray:
    """A line drawing of a house with a door, a window, a chimney and a sun, ``[size, size]`` grey levels in [0, 1].

    The book's stand-in for the paper's "Max und Moritz" drawing (Fig. 1): thin strokes,
    several disconnected parts, empty regions the flow has to avoid.
    ``line_width`` is the stroke thickness as a fraction of the image side.

    Args:
        size: the side in pixels, ``>= 16``.
        line_width: the stroke thickness as a fraction of the side.

    Returns:
        ``[size, size]`` NumPy array of grey levels.

    Raises:
        ValueError: ``size`` or ``line_width`` is invalid.
    """
    size = _check_size(size)
    check_positive(line_width, "line_width")

    def draw(ax, px):
        lw = line_width * px * 72 / 100   # points
        kw = dict(color="black", linewidth=lw, solid_capstyle="round", solid_joinstyle="round")
        ax.plot([-0.3, -0.3, 0.2, 0.2], [-0.05, -0.4, -0.4, -0.05], **kw)             # walls
        ax.plot([-0.36, -0.05, 0.26], [-0.02, 0.25, -0.02], **kw)                     # roof
        ax.plot([0.1, 0.1, 0.17, 0.17], [0.12, 0.22, 0.22, 0.05], **kw)               # chimney
        ax.plot([-0.22, -0.22, -0.12, -0.12], [-0.4, -0.22, -0.22, -0.4], **kw)       # door
        ax.plot([0.0, 0.12, 0.12, 0.0, 0.0], [-0.12, -0.12, -0.24, -0.24, -0.12], **kw)  # window
        ax.plot([0.06, 0.06], [-0.12, -0.24], **kw)
        ax.plot([0.0, 0.12], [-0.18, -0.18], **kw)
        t = np.linspace(0, 2 * np.pi, 100)
        ax.plot(0.33 + 0.07 * np.cos(t), 0.33 + 0.07 * np.sin(t), **kw)             # sun
        for a in np.linspace(0, 2 * np.pi, 8, endpoint=False):
            ax.plot(0.33 + np.array([0.1, 0.14]) * np.cos(a), 0.33 + np.array([0.1, 0.14]) * np.sin(a), **kw)

    return _render(draw, size)


def text_image(text: str = "MMD", size: int = 100, *, fontsize: float | None = None) -> np.ndarray:
    """Black lettering on white, ``[size, size]`` grey levels in [0, 1] (DejaVu Sans Bold, shipped with matplotlib).

    Args:
        text: the lettering (non-empty).
        size: the side in pixels, ``>= 16``.
        fontsize: the font size, or ``None`` (fitted to the side and the text's length).

    Returns:
        ``[size, size]`` NumPy array of grey levels.

    Raises:
        ValueError: ``text`` is empty or ``size`` is invalid.
    """
    size = _check_size(size)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    fs = fontsize if fontsize is not None else 0.9 * size / max(len(text), 1.5)

    def draw(ax, px):
        ax.text(0.0, 0.0, text, ha="center", va="center", fontsize=fs * 72 / 100, fontweight="bold",
                family="DejaVu Sans", color="black")

    return _render(draw, size)
