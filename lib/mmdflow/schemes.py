r"""The registry of schemes: one record per scheme, and the one interface every runner has.

Every scheme's runner is called as

.. code-block:: python

    run(energy, x0, config, *, generator=None, checkpoint_dir=None, progress=True, callback=None) -> Trajectory

with an energy of the :class:`mmdflow.energies.Energy` protocol (checked once at the start), a start ``x0``
``[N, d]`` and the scheme's frozen config; the :class:`~mmdflow.trajectory.Trajectory` has physical ``times`` and
the energy's values at the snapshots in ``energies``. Each runner drives its step through
:func:`mmdflow.trajectory.run_steps` (snapshots, checkpoints, finiteness check, progress bar, callback).

A :class:`Scheme` record holds the scheme's ``name`` (the key), its ``label`` (figures, tables), ``short_label``
(narrow table columns), ``config`` (the config factory: keyword arguments -> config) and ``run`` (the runner).
:func:`register_scheme` adds one; the layer check (``scripts/import_graph.py``) reads the modules imported here as
the scheme modules, so a new scheme module is held to the sibling rule by its registration.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

from . import flows, neural, wfr

__all__ = ["Scheme", "SCHEMES", "register_scheme", "get_scheme", "scheme_names"]


@dataclass(frozen=True)
class Scheme:
    """One scheme: ``name`` (key), ``label``, ``short_label``, ``config`` (factory) and ``run`` (the runner)."""

    name: str
    label: str
    short_label: str
    config: Callable[..., Any]
    run: Callable[..., Any]

    def __post_init__(self):
        for field in ("name", "label", "short_label"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise ValueError(f"a scheme's {field} must be a non-empty string, got {value!r}")
        if not (callable(self.config) and callable(self.run)):
            raise TypeError(f"scheme {self.name!r}: config and run must be callables")


#: the registered schemes, by name, in display order.
SCHEMES: dict[str, Scheme] = {}


def register_scheme(scheme: Scheme, *, replace: bool = False) -> Scheme:
    """Add ``scheme`` to :data:`SCHEMES` (an existing name is refused unless ``replace=True``); returns it.

    Args:
        scheme: the scheme.
        replace: allow replacing a registered scheme of the same name.

    Returns:
        ``scheme``.

    Raises:
        TypeError: ``scheme`` is not a :class:`Scheme`.
        ValueError: the name is already registered and ``replace`` is false.
    """
    if not isinstance(scheme, Scheme):
        raise TypeError(f"register_scheme takes a Scheme, got {type(scheme).__name__}")
    if scheme.name in SCHEMES and not replace:
        raise ValueError(f"scheme {scheme.name!r} is already registered; pass replace=True or choose another name")
    SCHEMES[scheme.name] = scheme
    return scheme


def get_scheme(name: str) -> Scheme:
    """The registered scheme ``name`` (an unknown name is refused, listing the registered ones).

    Args:
        name: the scheme's name.

    Returns:
        The :class:`Scheme`.

    Raises:
        ValueError: ``name`` is not registered.
    """
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown scheme {name!r}; registered: {list(SCHEMES)}") from None


def scheme_names() -> list[str]:
    """The registered names, in display order.

    Returns:
        The names, a list of strings.
    """
    return list(SCHEMES)


for _scheme in (
    Scheme("particle_flow", "particle flow", "PF", flows.ParticleFlowConfig, flows.run),
    Scheme("neural_backward", "neural backward", "NB", neural.NeuralBackwardConfig, neural.neural_backward_flow),
    Scheme("neural_forward", "neural forward", "NF", neural.NeuralForwardConfig, neural.neural_forward_flow),
    Scheme("mmd", "MMD flow", "MMD", functools.partial(wfr.WFRConfig, method="mmd"), wfr.wfr_flow),
    Scheme("mmd_noise", "MMD flow with noise", "MMD+noise", functools.partial(wfr.WFRConfig, method="mmd_noise"),
           wfr.wfr_flow),
    Scheme("ift", "IFT", "IFT", functools.partial(wfr.WFRConfig, method="ift"), wfr.wfr_flow),
    Scheme("wfr", "WFR gradient descent", "WFR", functools.partial(wfr.WFRConfig, method="wfr"), wfr.wfr_flow),
):
    register_scheme(_scheme)
