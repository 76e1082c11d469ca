"""The result type shared by every scheme: a trajectory of (weighted) particle snapshots."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["Trajectory"]


class Trajectory(NamedTuple):
    """Snapshots of a particle scheme.

    Attributes:
        times: ``[S]`` times of the snapshots (``t = n * tau`` for a scheme with step ``tau``).
        positions: ``[S, N, d]`` particle positions at those times.
        energies: ``[S]`` value of the functional at those times (``nan`` where not computed).
        weights: ``[S, N]`` particle weights (weighted schemes such as IFT), or ``None`` (uniform).
        wall_time: seconds spent in the scheme (excluding snapshot bookkeeping where possible).
        info: free-form metadata (scheme name, config, device, ...).
    """

    times: torch.Tensor
    positions: torch.Tensor
    energies: torch.Tensor
    weights: torch.Tensor | None = None
    wall_time: float = float("nan")
    info: dict | None = None

    def at(self, t: float) -> torch.Tensor:
        """Positions ``[N, d]`` of the snapshot whose time is closest to ``t``."""
        i = int(torch.argmin((self.times - t).abs()))
        return self.positions[i]

    def weights_at(self, t: float) -> torch.Tensor | None:
        """Weights ``[N]`` of the snapshot closest to ``t`` (``None`` for uniform weights)."""
        if self.weights is None:
            return None
        return self.weights[int(torch.argmin((self.times - t).abs()))]
