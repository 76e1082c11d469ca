r"""The run specifications of the sweeps: each one independent run, executed as one Dask task by
:func:`mmdflow.experiments.sweep.run_sweep`.

A specification is a frozen dataclass (:class:`RunSpec`) whose fields determine the run: a case of the Sec. 6.1
interaction benchmark (:class:`InteractionRun`), one (scheme, :math:`N`, seed) of the 100-d IFT study
(:class:`IFTRun`), one (scheme, seed) of a multi-seed comparison (:class:`SeedRun`). Its :attr:`RunSpec.key` is a
readable name plus :func:`mmdflow.trajectory.digest` of the fields (the run's checkpoint folder and Dask task key);
its :attr:`RunSpec.identity` is how a results store recognises its record. :mod:`mmdflow.experiments.sweep` exports
every name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import torch

from .._checks import check_int
from ..runtime import provenance
from ..trajectory import digest
from ..wfr import METHODS, WFRConfig
from . import ift as _ift
from . import interaction as _interaction
from .seeds import SeedRuns, run_seeds

__all__ = ["RunSpec", "InteractionRun", "IFTRun", "SeedRun"]


class RunSpec:
    """Base of the run specifications: a frozen dataclass whose fields determine the run.

    A specification has a :attr:`key` (readable name + digest of its fields: its checkpoint folder and Dask task
    key), an :attr:`identity` (how the results store recognises its record; :meth:`identity_of` reads it from a
    stored record) and :meth:`execute`, which runs it on a worker and returns its result (a JSON-ready record for
    the specifications with a store).
    """

    kind: ClassVar[str] = "run"
    #: whether :meth:`execute` returns a JSON-ready record that a results store can hold.
    storable: ClassVar[bool] = True

    @property
    def name(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def key(self) -> str:
        """``<kind>-<name>-<digest of the fields>``: the run folder and the Dask task key."""
        return f"{self.kind}-{self.name}-{digest(self)}"

    @property
    def identity(self) -> tuple:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def cost(self) -> float:
        """A rough relative cost of the run, used only to order the tasks of a sweep (the costliest first, so that
        no worker is left with a long run at the end while the others idle). 1.0 when not estimated."""
        return 1.0

    @staticmethod
    def identity_of(record: dict) -> tuple:  # pragma: no cover - overridden
        raise NotImplementedError

    @staticmethod
    def check_store(records: list[dict], path) -> None:
        """Refuse a results store whose records this kind of run cannot recognise (before anything runs); the
        default accepts every store."""

    def execute(self, folder: Path, device: torch.device):  # pragma: no cover - overridden
        raise NotImplementedError

    def describe(self, result) -> str:
        return self.name


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".=_" else "_" for c in text)


@dataclass(frozen=True, kw_only=True)
class InteractionRun(RunSpec):
    r"""One case of the Sec. 6.1 benchmark: :func:`mmdflow.experiments.interaction.run_interaction_case`.

    Attributes:
        scheme: a registry name of :func:`~mmdflow.experiments.interaction.benchmark_schemes` (``"neural_backward"``,
            ``"neural_forward"``, ``r = 1`` only, ``"particle_flow"``, ...); d, r: dimension and Riesz exponent.
        settings: :class:`~mmdflow.experiments.interaction.InteractionSettings` (a particle scheme runs with its
            ``pf_tau``); seed: the run's seed; n_repeats: exact samples per comparison.

    The record is :meth:`InteractionResult.to_json` with ``elapsed`` and the worker's provenance; its identity is
    ``(scheme, d, r, iterations, n_particles, tau, seed)`` (for a particle scheme ``iterations`` is ``None`` and
    ``tau`` its step ``pf_tau``), the identity of the stored benchmark files.
    """

    kind: ClassVar[str] = "interaction"
    scheme: str
    d: int
    r: float
    settings: _interaction.InteractionSettings
    seed: int = 0
    n_repeats: int = 3

    def __post_init__(self):
        _interaction.check_case(self.scheme, self.r)
        if not isinstance(self.settings, _interaction.InteractionSettings):
            raise TypeError(f"settings must be InteractionSettings, got {type(self.settings).__name__}")
        check_int(self.d, "d", 1)
        check_int(self.seed, "seed")
        check_int(self.n_repeats, "n_repeats", 1)
        object.__setattr__(self, "r", float(self.r))

    @property
    def cost(self) -> float:
        """Kernel pair evaluations: ``steps x N^2 x d`` for a particle scheme (``steps = T / pf_tau``), ``steps x
        iterations x batch_size x batch1`` for a neural scheme (the Adam loop dominates)."""
        st = self.settings
        if _interaction.is_particle(self.scheme):
            return float(st.n_steps * round(st.tau / st.pf_tau) * st.n_particles ** 2 * self.d)
        first = st.iterations_start or st.iterations
        return float((first + (st.n_steps - 1) * st.iterations) * st.batch_size * st.batch1)

    @property
    def name(self) -> str:
        particle = _interaction.is_particle(self.scheme)
        its = "" if particle else f"_it{self.settings.iterations}"
        tau = self.settings.pf_tau if particle else self.settings.tau
        return _slug(f"{self.scheme}_d{self.d}_r{self.r:g}{its}_m{self.settings.n_particles}_tau{tau:g}_s{self.seed}")

    @property
    def identity(self) -> tuple:
        particle = _interaction.is_particle(self.scheme)
        return (self.scheme, self.d, self.r, None if particle else self.settings.iterations,
                self.settings.n_particles, self.settings.pf_tau if particle else self.settings.tau, self.seed)

    @staticmethod
    def identity_of(record: dict) -> tuple:
        return (record["scheme"], record["d"], float(record["r"]), record["iterations"], record["n_particles"],
                record["tau"], record["seed"])

    @staticmethod
    def check_store(records: list[dict], path) -> None:
        """Refuse a store with scheme names the registry does not know
        (:func:`~mmdflow.experiments.interaction.check_scheme_names`)."""
        _interaction.check_scheme_names(records, str(path))

    def execute(self, folder: Path, device: torch.device) -> dict:
        t0 = time.perf_counter()
        res = _interaction.run_interaction_case(self.scheme, self.d, self.r, self.settings, seed=self.seed,
                                                n_repeats=self.n_repeats, device=device,
                                                checkpoint_dir=Path(folder) / "flow")
        res.elapsed = time.perf_counter() - t0
        res.provenance = provenance(device=str(device), wall_time=res.wall_time, elapsed=res.elapsed)
        return res.to_json()

    def describe(self, record: dict) -> str:
        ratios = " ".join(f"t={t}: {e['d2']:.2e}/{e['noise']:.2e}" for t, e in record["errors"].items())
        return f"{self.name}: {ratios} ({record['elapsed']:.0f} s)"


@dataclass(frozen=True, kw_only=True)
class IFTRun(RunSpec):
    """One (scheme, :math:`N`, seed) of the 100-d study: :func:`mmdflow.experiments.ift.run_hd`.

    The record is :meth:`HDRun.to_json` (with the worker's provenance); its identity is ``(label, n, seed, n_steps)``
    (:attr:`HDRun.key`). The run is short compared with a sweep, so its checkpoint is its finished result.
    """

    kind: ClassVar[str] = "ift"
    label: str
    n: int
    seed: int
    n_steps: int
    dtype: torch.dtype = torch.float32

    def __post_init__(self):
        if self.label not in _ift.HD_LABELS:
            raise ValueError(f"label must be one of {_ift.HD_LABELS}, got {self.label!r}")
        check_int(self.n, "n", 1)
        check_int(self.seed, "seed")
        check_int(self.n_steps, "n_steps", 1)

    @property
    def name(self) -> str:
        return _slug(f"{self.label}_N{self.n}_s{self.seed}_it{self.n_steps}")

    @property
    def identity(self) -> tuple:
        return (self.label, self.n, self.seed, self.n_steps)

    @staticmethod
    def identity_of(record: dict) -> tuple:
        return (record["label"], record["n"], record["seed"], record["n_steps"])

    def execute(self, folder: Path, device: torch.device) -> dict:
        return _ift.run_hd(self.label, self.n, self.seed, self.n_steps, device=device, dtype=self.dtype).to_json()

    def describe(self, record: dict) -> str:
        return (f"N={self.n} seed={self.seed} {self.label}: final MMD^2 {record['loss'][-1]:.4g}, "
                f"ESS {record['ess'][-1]:.0f}, {record['wall']:.0f} s")


@dataclass(frozen=True, kw_only=True)
class SeedRun(RunSpec):
    """One (scheme, seed) of :func:`mmdflow.experiments.run_seeds`: the same start, held-out sample and generators as
    in the full multi-seed loop, so a sweep of these gives exactly its results (:func:`run_seed_sweep`).

    Attributes:
        label, config: the scheme (a :class:`mmdflow.wfr.WFRConfig` naming its ``method``); kernel: its kernel;
            target: the target sampler (picklable, e.g. a :class:`mmdflow.data.mixtures.GaussianMixture`); seed,
            n_particles, n_test, center, scale, dtype, sigma_alt: as in :func:`~mmdflow.experiments.run_seeds`;
            keep_trajectory: return the run's trajectory (the first seed's, for :attr:`SeedRuns.first`).

    The result is a one-seed :class:`SeedRuns` (not a JSON record: these sweeps have no results store). The
    :attr:`key` (the run's checkpoint folder) digests :meth:`fingerprint`: the fields, with the scheme as the former
    layout held it (``method`` apart, ``config`` without it), so that run folders made before still match.
    """

    kind: ClassVar[str] = "seeds"
    storable: ClassVar[bool] = False
    label: str
    config: WFRConfig
    kernel: Any
    target: Any
    seed: int
    n_particles: int
    n_test: int = 1000
    center: tuple = (5.0, 5.0)
    scale: float = 1.0
    dtype: torch.dtype = torch.float64
    sigma_alt: float | None = None
    keep_trajectory: bool = False

    def __post_init__(self):
        if not isinstance(self.config, WFRConfig):
            raise TypeError(f"SeedRun {self.label!r}: config must be a WFRConfig naming its method, "
                            f"got {type(self.config).__name__}")
        if self.config.method is None:
            raise ValueError(f"SeedRun {self.label!r}: the WFRConfig names no method; give method=one of {METHODS}")
        object.__setattr__(self, "center", tuple(float(c) for c in self.center))
        check_int(self.seed, "seed")
        check_int(self.n_particles, "n_particles", 1)

    def fingerprint(self) -> dict:
        """``{field: value}`` with ``method`` = ``config.method`` and ``config`` without it (the digest of
        :attr:`key`, the same as that of the former fields ``method`` and ``config``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["method"] = self.config.method
        out["config"] = replace(self.config, method=None)
        return out

    @property
    def name(self) -> str:
        return _slug(f"{self.label}_s{self.seed}_N{self.n_particles}")

    @property
    def identity(self) -> tuple:
        return (self.key,)

    def execute(self, folder: Path, device: torch.device) -> SeedRuns:
        out = run_seeds({self.label: self.config}, self.target, [self.seed], self.n_particles,
                        kernel=self.kernel, n_test=self.n_test, center=self.center, scale=self.scale, dtype=self.dtype, device=device,
                        sigma_alt=self.sigma_alt)[self.label]
        return out if self.keep_trajectory else out._replace(first=None)
