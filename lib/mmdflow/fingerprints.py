"""Fingerprints of what determines a run: the keys of the checkpoints and of the sweeps' runs.

:func:`digest` is a stable SHA-256 digest (32 hex digits) of a value: tensors by dtype, shape and bytes
(independent of the device), generators by their state, dataclasses by their fields, objects with a
``fingerprint()`` method by it, dicts by their sorted items, sequences by their elements, numbers, strings and
``None`` by their ``repr``; anything else is refused, since a ``repr`` with a memory address would never match
again. :func:`energy_fingerprint` is an energy's ``fingerprint()``, required for a checkpoint key.
:mod:`mmdflow.trajectory` exports both names too.
"""

from __future__ import annotations

import dataclasses
import hashlib

import torch

__all__ = ["digest", "energy_fingerprint"]


def digest(value) -> str:
    """A stable hex digest (SHA-256, 32 hex digits) of what determines a run.

    Tensors count by dtype, shape and bytes (device-independent), generators by their state, dataclasses by
    their fields, objects with a ``fingerprint()`` method by it, dicts by their sorted items, sequences by their
    elements, and numbers, strings and ``None`` by their ``repr``. Other objects are refused (``TypeError``):
    a ``repr`` with a memory address would never match again.

    Args:
        value: what to digest.

    Returns:
        32 hex digits.

    Raises:
        TypeError: ``value`` holds an object of a type that cannot be digested.
    """
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()[:32]


def _feed(h, value) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"tensor{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, torch.Generator):
        h.update(f"generator{value.device.type}".encode())
        _feed(h, value.get_state())
    elif value is None or isinstance(value, (bool, int, float, str, torch.dtype, torch.device)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, dict):
        h.update(b"{")
        for k in sorted(value, key=repr):
            _feed(h, k)
            _feed(h, value[k])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for v in value:
            _feed(h, v)
        h.update(b"]")
    elif callable(getattr(value, "fingerprint", None)):
        h.update(type(value).__name__.encode())
        _feed(h, value.fingerprint())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(type(value).__name__.encode())
        _feed(h, {f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    elif hasattr(value, "item") and callable(value.item):      # NumPy scalars
        _feed(h, value.item())
    else:
        raise TypeError(f"cannot fingerprint a {type(value).__name__} ({value!r}): give it a fingerprint() method")


def energy_fingerprint(energy) -> dict:
    """``energy.fingerprint()`` (type, parameters, digests of the data that determine it) for a checkpoint key.

    Raises ``TypeError`` for an energy without that method: a checkpoint could not tell two such energies apart.

    Args:
        energy: the energy.

    Returns:
        The energy's ``fingerprint()`` dict.

    Raises:
        TypeError: the energy has no ``fingerprint()`` method: a checkpoint could not tell two such energies apart.
    """
    fp = getattr(energy, "fingerprint", None)
    if not callable(fp):
        raise TypeError(f"checkpointing needs energy.fingerprint() (its type, parameters and a digest of its data, "
                        f"so that a checkpoint of another energy is refused); {type(energy).__name__} has none: "
                        "add one, or run without a checkpoint folder")
    return fp()
