r"""MNIST from the canonical gzip IDX files, checked against their published md5 sums.

:func:`load_mnist` reads the files from a directory given as argument or by the environment variable
``MMDFLOW_DATA`` (Altekrüger, Hertrich, Steidl 2023, Sec. 6.2 use the MNIST digits as a target in
:math:`\mathbb R^{784}`). Missing files are downloaded when the network allows it; otherwise the error says
where to put them. There is no fallback to synthetic data; a corrupted file raises :class:`DataIntegrityError`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .._checks import check_float_dtype, check_int, check_positive

# ``paper_mnist_image`` / ``PAPER_MNIST_IMAGES`` are used as ``mmdflow.data.mnist.paper_mnist_image`` (not re-exported by
# the package, whose ``__init__`` re-exports ``__all__``).
__all__ = ["MNIST", "MNIST_FILES", "MNIST_MIRRORS", "DataIntegrityError", "load_mnist", "mnist_dir"]


#: canonical file names and md5 sums of the MNIST gzip IDX files (split -> (images, labels)).
MNIST_FILES = {
    "test": (("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
             ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")),
    "train": (("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
              ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432")),
}
#: the MNIST result images of the authors' code shipped with the package (scheme registry name -> file in
#: ``mmdflow/data/paper_images/outputs/``).
PAPER_MNIST_IMAGES = {"neural_backward": "mnist_backward_scheme.png", "neural_forward": "mnist_forward_scheme.png",
                      "particle_flow": "mnist_particle_flow.png"}
#: download locations tried in order.
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")


class DataIntegrityError(RuntimeError):
    """A data file exists but its md5 sum is not the published one."""


class MNIST(NamedTuple):
    """MNIST images and labels.

    Attributes:
        images: ``[N, 28, 28]`` pixel intensities in [0, 1] (0 = background), float.
        labels: ``[N]`` digit labels 0..9, ``torch.int64``.
        split: ``"test"`` or ``"train"``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    split: str

    def flat(self) -> torch.Tensor:
        """The images as points in :math:`\\mathbb R^{784}`, shape ``[N, 784]``.

        Returns:
            ``[N, 784]`` tensor (a view of ``images``).
        """
        return self.images.reshape(self.images.shape[0], -1)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mnist_dir(data_dir=None) -> Path:
    """The directory searched for the MNIST files: ``data_dir``, else ``$MMDFLOW_DATA``, else ``~/.cache/mmdflow``.

    Files are looked up in ``<dir>/mnist/`` first, then in ``<dir>`` itself; this
    function returns ``<dir>``.

    Args:
        data_dir: a directory, or ``None``.

    Returns:
        The directory as a ``Path`` (``~`` expanded).
    """
    if data_dir is None:
        data_dir = os.environ.get("MMDFLOW_DATA") or Path.home() / ".cache" / "mmdflow"
    return Path(data_dir).expanduser()


def _find(root: Path, name: str) -> Path | None:
    for cand in (root / "mnist" / name, root / name):
        if cand.is_file():
            return cand
    return None


def _download(name: str, md5: str, dest_dir: Path, timeout: float, deadline: float) -> tuple[Path | None, list[str]]:
    """Try every mirror until ``deadline`` (a ``time.monotonic()`` value); return (path, errors).

    The file is downloaded into the system's temporary folder and moved to ``dest_dir`` (created then) only
    once its md5 matches: a failed download leaves nothing behind. Each socket operation waits at most
    ``timeout`` seconds and never beyond the deadline, which is also checked between the chunks of a transfer.
    """
    errors = []
    for base in MNIST_MIRRORS:
        url = base + name
        left = deadline - time.monotonic()
        if left <= 0:
            errors.append(f"{url}: not tried, the total download time limit was reached")
            continue
        tmp_name = None
        try:
            with tempfile.NamedTemporaryFile(delete=False, suffix=".part") as tmp:
                tmp_name = tmp.name
                with urllib.request.urlopen(url, timeout=min(timeout, left)) as resp:
                    while chunk := resp.read(1 << 16):
                        tmp.write(chunk)
                        if time.monotonic() > deadline:
                            raise TimeoutError("the total download time limit was reached during the transfer")
            got = _md5(Path(tmp_name))
            if got != md5:
                errors.append(f"{url}: md5 {got} != expected {md5}")
                continue
            dest_dir.mkdir(parents=True, exist_ok=True)
            final = dest_dir / name
            shutil.move(tmp_name, final)
            tmp_name = None
            return final, errors
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if tmp_name is not None and os.path.exists(tmp_name):
                os.unlink(tmp_name)
    return None, errors


def _read_idx(path: Path, magic_expected: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    if magic != magic_expected:
        raise DataIntegrityError(f"{path}: IDX magic number {magic} != expected {magic_expected}")
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DataIntegrityError(f"{path}: {arr.size} values for the header's shape {dims}")
    return arr.reshape(dims)


def load_mnist(data_dir=None, *, split: str = "test", n: int | None = None, download: bool = True,
               timeout: float = 30.0, total_timeout: float = 120.0, dtype: torch.dtype = torch.float32,
               device=None) -> MNIST:
    r"""Load MNIST from the canonical gzip IDX files, verified by md5.

    Files (``t10k-*`` for ``split="test"``, ``train-*`` for ``"train"``) are looked up in
    ``<dir>/mnist/`` and ``<dir>``, where ``<dir>`` is ``data_dir`` or ``$MMDFLOW_DATA``
    (default ``~/.cache/mmdflow``). Missing files are downloaded into ``<dir>/mnist/``
    when ``download=True`` and a mirror of :data:`MNIST_MIRRORS` answers; the md5 is
    checked before the file is kept. Otherwise a :class:`FileNotFoundError` says which
    files to put where. Never returns synthetic data.

    Args:
        data_dir: directory holding the files (or their ``mnist/`` sub-directory).
        split: ``"test"`` (10,000 images) or ``"train"`` (60,000).
        n: keep only the first ``n`` images (in file order, no shuffling).
        download: allow downloading missing files (a failed download creates no folder and leaves no file).
        timeout: seconds a download attempt waits for the server at a time.
        total_timeout: seconds all download attempts of the call may take together.
        dtype, device: of the returned images.

    Returns:
        :class:`MNIST` with ``images`` ``[N, 28, 28]`` in [0, 1] and ``labels`` ``[N]``.

    Raises:
        FileNotFoundError: files missing and not downloadable.
        DataIntegrityError: a file's md5 differs from the published one.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    if n is not None:
        n = check_int(n, "n", 1)
    check_float_dtype(dtype)
    timeout = check_positive(timeout, "timeout")
    deadline = time.monotonic() + check_positive(total_timeout, "total_timeout")
    root = mnist_dir(data_dir)
    paths = []
    for name, md5 in MNIST_FILES[split]:
        path = _find(root, name)
        if path is None:
            errors = []
            if download:
                path, errors = _download(name, md5, root / "mnist", timeout, deadline)
            if path is None:
                tried = "\n  ".join(errors) if errors else "(download disabled)"
                raise FileNotFoundError(
                    f"MNIST file {name!r} not found in {str(root / 'mnist')!r} or {str(root)!r}.\n"
                    f"Put the canonical file (md5 {md5}) at {str(root / 'mnist' / name)!r}, or point the "
                    f"data_dir argument or the MMDFLOW_DATA environment variable at the directory holding it.\n"
                    f"Download attempts:\n  {tried}")
        got = _md5(path)
        if got != md5:
            raise DataIntegrityError(f"{path}: md5 {got} differs from the published {md5}; the file is corrupted "
                                     f"or not the canonical MNIST file. Delete it and fetch it again.")
        paths.append(path)
    images = _read_idx(paths[0], 2051)
    labels = _read_idx(paths[1], 2049)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise DataIntegrityError(f"inconsistent MNIST files: images {images.shape}, labels {labels.shape}")
    if n is not None:
        if n > images.shape[0]:
            raise ValueError(f"n={n} exceeds the {images.shape[0]} images of the {split} split")
        images, labels = images[:n], labels[:n]
    img = torch.from_numpy(images.astype(np.float32) / 255.0).to(dtype=dtype, device=device)
    lab = torch.from_numpy(labels.astype(np.int64)).to(device=device)
    return MNIST(img, lab, split)


def paper_mnist_image(scheme: str) -> np.ndarray:
    """The MNIST result image of the authors' code for one scheme, shipped with the package: ``[291, 291, 4]`` RGBA
    in [0, 1].

    Source: the official code of Altekrüger, Hertrich, Steidl (ICML 2023), repository
    ``FabianAltekrueger/NeuralWassersteinGradientFlows`` at commit 5d09b2f, files ``discrepancy/MNIST/*.png``
    (MIT licence, copyright 2023 Fabian Altekrueger; licence text in ``paper_images/outputs/LICENSE-official-code``),
    unchanged. Each is a mosaic of 10 x 10 digits of 28 x 28 pixels with one-pixel grey separators: rows are 10 of
    the 25 particles, columns increasing times of the paper's schedule up to t = 48000 (width 2048, three hidden
    layers, 2000-5000 Adam iterations per step, target: the first 100 training digits).

    Args:
        scheme: a key of :data:`PAPER_MNIST_IMAGES`.
    """
    if scheme not in PAPER_MNIST_IMAGES:
        raise ValueError(f"unknown scheme {scheme!r}; the authors' MNIST images exist for {sorted(PAPER_MNIST_IMAGES)}")
    import matplotlib.image as mpimg

    path = Path(__file__).resolve().parent / "paper_images" / "outputs" / PAPER_MNIST_IMAGES[scheme]
    if not path.is_file():
        raise FileNotFoundError(f"the package file {path} is missing: the mmdflow installation is incomplete "
                                "(package data 'paper_images/outputs' of mmdflow.data)")
    return np.asarray(mpimg.imread(path), dtype=float)
