r"""2D images turned into targets: grey levels, densities, samples and the book's drawn pictures.

A grey-level picture with dark ink on a light background becomes a probability density on the unit box
:math:`[-\frac12, \frac12]^2` (Altekrüger, Hertrich, Steidl 2023, Sec. 6 and App. F): the ink
:math:`1 - g` is blurred with a Gaussian of ``smoothing`` pixels, a fraction ``background`` of the mass is
spread uniformly, and samples are drawn from the resulting piecewise-constant density (a pixel is drawn with
probability proportional to its mass, then a uniform point inside it; :func:`image_to_samples`, ``[n, 2]``).
The paper's two pictures ship with the package (:func:`paper_image`: the drawing "Max und Moritz" of its
Fig. 1 and the smiley of App. F, Ex. 1, from the authors' MIT-licensed repository; licence and source in the
package folder ``paper_images``), together with the result images of the authors' code
(:func:`paper_output_image`). Small pictures drawn in code (:func:`smiley_image`, :func:`house_image`,
:func:`text_image`) serve the tests; any PNG/JPEG path works as well.

**Compared with the authors' code.** Their ``image_to_sample`` (repository ``utils.py``) resizes the scan to
100 x 100 pixels (the 676 x 439 drawing is squeezed into a square), takes the ink ``1 - g``, blurs it by a Gaussian
of ``gauss_sigma`` pixels (0.1 for Max und Moritz, 2 for the smiley) and adds 0.01 times three heavily blurred
copies of the ink (sigma 10, 20 and 50 pixels: a faint halo around the drawing, about 3% of the mass); a pixel is
then drawn with probability proportional to that density and jittered uniformly inside it. Here the same
construction is available: :func:`paper_image` resizes by area averaging to a long side of ``size`` pixels but
keeps the aspect ratio, ``smoothing`` is the Gaussian of the ink and ``halos=(10, 20, 50)`` with
``halo_weight=0.01`` adds the authors' halo; the blurs are zero-padded (ink near the border leaks out a little;
theirs reflect at the border), and ``background`` optionally adds a uniform floor.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .._checks import check_float_dtype, check_int, check_positive

__all__ = [
    "PAPER_IMAGES",
    "PAPER_OUTPUTS",
    "MAX_PIXELS",
    "paper_image",
    "paper_output_image",
    "resize_grey",
    "grey_levels",
    "image_to_density",
    "image_to_samples",
    "smiley_image",
    "house_image",
    "text_image",
]


#: the paper's target pictures shipped in ``mmdflow/data/paper_images`` (name -> file).
PAPER_IMAGES = {"max_und_moritz": "max_und_moritz.png", "smiley": "smiley.png"}

#: result images of the authors' code shipped in ``mmdflow/data/paper_images/outputs`` (name -> file).
PAPER_OUTPUTS = {f"{exp}_{scheme}": f"{exp}_{scheme}_{t}.png"
                 for exp, t, schemes in (("maxmoritz", "100.0", ("backward_scheme", "forward_scheme")),
                                         ("smiley", "50.0", ("backward_scheme", "forward_scheme", "particle_flow")),
                                         ("dirac", "4.0", ("backward_scheme", "forward_scheme", "particle_flow")))
                 for scheme in schemes}

#: the largest number of pixels :func:`image_to_samples` draws from (``torch.multinomial`` takes at most 2^24
#: categories).
MAX_PIXELS = 2 ** 24


def _package_file(*parts: str) -> Path:
    """A file shipped inside the package (``importlib.resources``: works from a checkout and from a wheel)."""
    from importlib.resources import files

    res = files("mmdflow.data").joinpath("paper_images", *parts)
    path = Path(str(res))
    if not path.is_file():
        raise FileNotFoundError(f"the package file {path} is missing: the mmdflow installation is incomplete "
                                "(package data 'paper_images' of mmdflow.data)")
    return path


def paper_image(name: str, size: int | None = 100) -> np.ndarray:
    """Grey levels ``[H, W]`` in [0, 1] of one of the paper's target pictures, shipped with the package.

    ``"max_und_moritz"`` (Fig. 1, Sec. 6.2: the drawing by Wilhelm Busch, 1865) or ``"smiley"`` (App. F, Ex. 1),
    from the authors' repository (MIT licence; see ``mmdflow/data/paper_images/README.md``). Needs no data folder.

    Args:
        name: a key of :data:`PAPER_IMAGES`.
        size: the long side in pixels after area-averaging resampling (:func:`resize_grey`; the aspect ratio is
            kept; the authors resize to 100 x 100); ``None``: the scan's own resolution.

    Returns:
        ``[H, W]`` float64 NumPy array of grey levels in [0, 1] (1 = white paper, 0 = black ink).

    Raises:
        ValueError: ``name`` is not a key of :data:`PAPER_IMAGES`, or ``size`` is not an integer >= 2.
        FileNotFoundError: the picture is missing from the installed package.
    """
    if name not in PAPER_IMAGES:
        raise ValueError(f"unknown paper image {name!r}; available: {sorted(PAPER_IMAGES)}")
    grey = grey_levels(_package_file(PAPER_IMAGES[name]))
    return grey if size is None else resize_grey(grey, size)


def paper_output_image(name: str) -> np.ndarray:
    """RGB(A) array of a result image of the authors' code, shipped with the package, for display next to the
    book's own results.

    Args:
        name: a key of :data:`PAPER_OUTPUTS`, e.g. ``"smiley_particle_flow"``.

    Returns:
        ``[H, W, 3]`` or ``[H, W, 4]`` NumPy array as read by ``matplotlib.image.imread`` (float32 in [0, 1] for
        PNG files).

    Raises:
        ValueError: ``name`` is not a key of :data:`PAPER_OUTPUTS`.
        FileNotFoundError: the image is missing from the installed package.
    """
    if name not in PAPER_OUTPUTS:
        raise ValueError(f"unknown paper output image {name!r}; available: {sorted(PAPER_OUTPUTS)}")
    import matplotlib.image as mpimg

    return np.asarray(mpimg.imread(_package_file("outputs", PAPER_OUTPUTS[name])))


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` matrix of area-averaging resampling: row ``o`` averages the input cells over the output cell
    ``[o, o + 1) * n_in / n_out`` with weights equal to the overlaps (rows sum to one)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    cells = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0.0, None)
    return overlap / overlap.sum(1, keepdims=True)


def resize_grey(grey, long_side: int) -> np.ndarray:
    """Grey levels ``[H, W]`` resampled by area averaging so that the longer side has ``long_side`` pixels (aspect
    ratio kept, the shorter side rounded, at least 2). Each output pixel is the mean of the input over its area, so
    the total ink is preserved up to the factor of the pixel count.

    Args:
        grey: grey levels, anything :func:`grey_levels` accepts (a path, an ``[H, W]`` / ``[H, W, 3|4]`` array or
            tensor).
        long_side: the number of pixels of the longer output side, an integer ``>= 2``.

    Returns:
        ``[H', W']`` float64 NumPy array of grey levels in [0, 1] with ``max(H', W') = long_side``.

    Raises:
        ValueError: ``long_side`` is not an integer ``>= 2``, or ``grey`` is not a valid image (see
            :func:`grey_levels`, which also raises ``TypeError`` and ``FileNotFoundError``).
    """
    if isinstance(long_side, bool) or not isinstance(long_side, int) or long_side < 2:
        raise ValueError(f"long_side must be an integer number of pixels >= 2, got {long_side!r}")
    g = grey_levels(grey)
    h, w = g.shape
    scale = long_side / max(h, w)
    ho, wo = max(2, round(h * scale)), max(2, round(w * scale))
    return np.clip(_area_matrix(h, ho) @ g @ _area_matrix(w, wo).T, 0.0, 1.0)   # rounding can step past 1


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
            if np.isfinite(alpha).all() and float(alpha.max()) <= 0.0:
                raise ValueError(f"the image is fully transparent (alpha 0 everywhere, shape {img.shape}): on white "
                                 "paper it is blank and defines no picture to sample")
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


def _check_blur(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (pixels), got {value!r}")
    return float(value)


def image_to_density(image_or_path, *, smoothing: float = 1.0, background: float = 0.01,
                     invert: bool = True, halos=(), halo_weight: float = 0.01) -> np.ndarray:
    r"""Pixel masses of the target density of an image, shape ``[H, W]``, summing to one.

    :math:`p = (1-\beta)\,\frac{q}{\sum q} + \frac{\beta}{HW}` with
    :math:`q = G_\sigma * a + w\sum_k G_{s_k} * a`, where :math:`a = 1 - g` is the ink of grey levels :math:`g`
    (``invert=True``; ``a = g`` otherwise), :math:`G_\sigma` a zero-padded Gaussian of ``smoothing`` pixels,
    :math:`s_k` the ``halos`` (blur widths in pixels) with weight :math:`w` = ``halo_weight`` (the authors' code:
    ``halos=(10, 20, 50)``, ``halo_weight=0.01``, App. F) and :math:`\beta` = ``background`` the mass spread
    uniformly over the box (no empty region the particles can never reach).

    Args:
        image_or_path: a path to a PNG/JPEG file (read with ``matplotlib.image``), or an
            ``[H, W]`` / ``[H, W, 3|4]`` array of grey levels (floats in [0, 1] or integers).
        smoothing: Gaussian standard deviation in pixels (``0``: no blur).
        background: mass fraction of the uniform floor, in ``[0, 1)``.
        invert: dark pixels carry the mass (drawings); ``False`` for bright-on-dark images.
        halos: blur widths (pixels) of the faint copies of the ink added around the drawing.
        halo_weight: weight of each halo copy relative to the ink.

    Returns:
        ``[H, W]`` float64 NumPy array of non-negative pixel masses summing to one.

    Raises:
        ValueError: for an image of one grey level only (a blank page, all ink, or a fully transparent image):
            it has no picture, and its density would silently be uniform; for an image with no ink to sample
            (``invert`` selects the wrong polarity); for a negative or non-finite ``smoothing``, halo width or
            ``halo_weight``, or a ``background`` outside ``[0, 1)``; and for the images :func:`grey_levels`
            refuses.
    """
    smoothing = _check_blur(smoothing, "smoothing")
    if isinstance(background, bool) or not isinstance(background, (int, float)) or not 0.0 <= background < 1.0:
        raise ValueError(f"background must be a mass fraction in [0, 1), got {background!r}")
    halos = tuple(_check_blur(h, "each of halos") for h in halos)
    halo_weight = _check_blur(halo_weight, "halo_weight")
    grey = grey_levels(image_or_path)
    lo, hi = float(grey.min()), float(grey.max())
    if lo == hi:
        what = "a blank page" if hi == 1.0 else "all ink" if hi == 0.0 else "a uniform grey"
        raise ValueError(f"the image has one grey level only ({lo:g} everywhere, shape {grey.shape}: {what}); it "
                         "shows no picture and its density would be uniform")
    ink = 1.0 - grey if invert else grey
    q = np.clip(_gaussian_blur(ink, smoothing), 0.0, None)
    for h in halos:
        q = q + halo_weight * _normalised_blur(ink, h)
    total = q.sum()
    if not total > 0.0:
        raise ValueError(f"the image carries no ink to sample (invert={invert}: the "
                         f"{'dark' if invert else 'bright'} pixels carry the mass, and there are none)")
    return (1.0 - background) * q / total + background / q.size


def _normalised_blur(ink: np.ndarray, sigma: float) -> np.ndarray:
    """The blurred ink rescaled to the ink's own total (the zero-padded blur loses the mass that leaves the box; the
    authors' reflecting blur keeps it), so that ``halo_weight`` is a fraction of the ink's mass."""
    b = np.clip(_gaussian_blur(ink, sigma), 0.0, None)
    total = b.sum()
    return b * (ink.sum() / total) if total > 0 else b


def image_to_samples(image_or_path, n: int, *, smoothing: float = 1.0, background: float = 0.01,
                     invert: bool = True, halos=(), halo_weight: float = 0.01,
                     generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    r"""``n`` samples of the density of an image, placed in the unit box :math:`[-\frac12,\frac12]^2`.

    The image keeps its aspect ratio: its longer side spans ``[-1/2, 1/2]`` and the
    picture is centred; up is up (row 0 of the image is the top). A pixel is drawn
    with probability equal to its mass (:func:`image_to_density`), then a point
    uniformly inside it. This plays the role of the authors' ``image_to_sample``
    (Sec. 6.2, App. F, where coordinates are ``(pixel - 50) / 100`` for 100x100 images; see the module text).

    Args:
        image_or_path: path or array, see :func:`image_to_density`.
        n: number of samples.
        smoothing, background, invert, halos, halo_weight: see :func:`image_to_density`.
        generator: the ``torch.Generator`` for the draws.
        dtype, device: of the returned tensor.

    Returns:
        ``[n, 2]`` tensor of points.

    Raises:
        ValueError: for an image of more than :data:`MAX_PIXELS` pixels (resize it first, e.g. with
            :func:`resize_grey`), and for the images :func:`image_to_density` refuses.
    """
    n = check_int(n, "n", 1)
    check_float_dtype(dtype)
    grey = grey_levels(image_or_path)
    h, w = grey.shape
    if h * w > MAX_PIXELS:
        raise ValueError(f"the image has {h} x {w} = {h * w} pixels, more than the {MAX_PIXELS} (2^24) that can be "
                         "sampled; resize it first, e.g. mmdflow.data.resize_grey(image, 1000)")
    p = image_to_density(grey, smoothing=smoothing, background=background, invert=invert, halos=halos,
                         halo_weight=halo_weight)
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
