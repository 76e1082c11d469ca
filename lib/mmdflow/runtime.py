"""Run-time choices: the device and the notebook profiles (the only place that looks at the hardware)."""

from __future__ import annotations

import torch

__all__ = ["default_device", "for_profile", "PROFILES"]

#: the execution profiles every chapter understands.
PROFILES = ("quick", "paper")


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``. Call it once, in a notebook's parameters cell."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def for_profile(profile: str, *values):
    """Resolve notebook parameters that may depend on the profile.

    Each value is either a plain value (a reader's override, used as is) or a
    dict ``{"quick": ..., "paper": ...}`` from which the profile's entry is
    taken. A dict with no profile name among its keys is a plain value; a dict
    with some profile names must be a profile table: a missing entry for
    ``profile`` or a key that is not a profile raises ``ValueError``. Returns a
    single value for one argument, else a tuple.

    >>> for_profile("paper", {"quick": 200, "paper": 2000}, 0.05)
    (2000, 0.05)
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    out = []
    for k, v in enumerate(values):
        if isinstance(v, dict) and set(v) & set(PROFILES):
            other = sorted(map(str, set(v) - set(PROFILES)))
            if other:
                raise ValueError(f"value {k} of for_profile mixes profile names with other keys {other}: a profile "
                                 f"table has only keys among {PROFILES}, got {v!r}")
            if profile not in v:
                raise ValueError(f"value {k} of for_profile has no entry for the profile {profile!r}: got the table "
                                 f"{v!r}; add a {profile!r} entry or pass a plain value")
            v = v[profile]
        out.append(v)
    return out[0] if len(out) == 1 else tuple(out)
