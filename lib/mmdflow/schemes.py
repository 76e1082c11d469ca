r"""The registry of schemes: one record per scheme, and the one interface every runner has.

Every scheme's runner is called as

.. code-block:: python

    run(energy, x0, config, *, generator=None, checkpoint_dir=None, progress=True, callback=None) -> Trajectory

with an energy of the :class:`mmdflow.energies.Energy` protocol (checked once at the start), a start ``x0``
``[N, d]`` and the scheme's frozen config; the :class:`~mmdflow.trajectory.Trajectory` has physical ``times`` and
the energy's values at the snapshots in ``energies``. Each runner drives its step through
:func:`mmdflow.trajectory.run_steps` (snapshots, checkpoints, finiteness check, progress bar, callback).

A :class:`Scheme` record holds the scheme's ``name`` (the key, the one name of the scheme in the library, the
chapters, the records and the stored results), its ``label`` (figures, tables), ``short_label`` (narrow table
columns), ``family`` (which settings of an experiment build its config: :data:`FAMILIES`), ``config`` (the config
factory: keyword arguments -> config) and ``run`` (the runner). :func:`register_scheme` adds one, and the
experiments' comparisons run every registered scheme of the families they compare (:func:`scheme_names`); the layer check (``scripts/import_graph.py``) reads the modules imported here as
the scheme modules, so a new scheme module is held to the sibling rule by its registration.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from . import flows, neural, wfr

__all__ = ["Scheme", "SCHEMES", "FAMILIES", "register_scheme", "unregister_scheme", "get_scheme", "require",
           "check_names", "scheme_names", "label", "short_label"]

#: the scheme families: ``"neural"`` (a network pushes the particles: settings ``tau``, ``n_steps``, ``width``,
#: ``hidden_layers``, ``lr``, ``iterations``, ``batch_size``, ...), ``"particle"`` (explicit steps of unweighted
#: particles: ``tau``, ``n_steps``, ``snapshot_every``) and ``"weighted"`` (positions and weights: ``tau``,
#: ``n_steps``, ``method``, ...).
FAMILIES = ("neural", "particle", "weighted")


@dataclass(frozen=True)
class Scheme:
    """One scheme: ``name`` (key), ``label``, ``short_label``, ``family`` (one of :data:`FAMILIES`), ``config``
    (factory) and ``run`` (the runner)."""

    name: str
    label: str
    short_label: str
    family: str
    config: Callable[..., Any]
    run: Callable[..., Any]

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"scheme {self.name!r}: family must be one of {FAMILIES}, got {self.family!r}")
        for field in ("name", "label", "short_label"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise ValueError(f"a scheme's {field} must be a non-empty string, got {value!r}")
        if not (callable(self.config) and callable(self.run)):
            raise TypeError(f"scheme {self.name!r}: config and run must be callables")

    @property
    def config_fields(self) -> frozenset[str]:
        """The keyword arguments the config factory takes: an experiment builds a config from its shared settings
        by passing those the factory accepts (a dataclass's fields, or what a ``functools.partial`` leaves open)."""
        return frozenset(inspect.signature(self.config).parameters)


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


def require(name: str, *families: str, where: str = "") -> Scheme:
    """The registered scheme ``name``, refused unless it is of one of ``families`` (none given: any family).

    Args:
        name: the scheme's name.
        families: the families the caller runs (:data:`FAMILIES`).
        where: the caller, for the message.

    Returns:
        The :class:`Scheme`.

    Raises:
        ValueError: ``name`` is not registered, an unknown family, or the scheme is of another family.
    """
    allowed = scheme_names(*families)               # refuses an unknown family
    scheme = get_scheme(name)
    if families and scheme.family not in families:
        wanted, has = ((repr(families[0]), f"the family {families[0]!r} has") if len(families) == 1 else
                       (f"one of {families}", f"the families {families} have"))
        raise ValueError(f"{where + ': ' if where else ''}scheme {name!r} is of the family {scheme.family!r}, not "
                         f"{wanted} ({has} {allowed})")
    return scheme


def check_names(names, where: str, *families: str) -> list[str]:
    """``names`` as a list, each a registered scheme (of one of ``families``, if given).

    Args:
        names: scheme names, e.g. the keys of a stored results file.
        where: what holds them (a file, a record field), for the message.
        families: the families allowed (none given: any).

    Returns:
        The names, a list.

    Raises:
        ValueError: a name that is not registered (or of another family); the message names ``where``, the
            unknown names and the registered ones (an older file may use other names).
    """
    names, allowed = list(names), scheme_names(*families)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown scheme name(s) {unknown}; schemes are named by their registry names "
                         f"{allowed}")
    return names


def unregister_scheme(name: str) -> Scheme:
    """Remove the registered scheme ``name`` (e.g. one a test registered); returns it.

    Args:
        name: the scheme's name.

    Returns:
        The removed :class:`Scheme`.

    Raises:
        ValueError: ``name`` is not registered.
    """
    scheme = get_scheme(name)
    del SCHEMES[name]
    return scheme


def scheme_names(*families: str) -> list[str]:
    """The registered names, in display order; with ``families``, only the schemes of those families.

    Args:
        families: any of :data:`FAMILIES` (none: every scheme).

    Returns:
        The names, a list of strings.

    Raises:
        ValueError: an unknown family.
    """
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown scheme famil{'y' if len(unknown) == 1 else 'ies'} {unknown}; known: {FAMILIES}")
    return [name for name, s in SCHEMES.items() if not families or s.family in families]


def label(name: str) -> str:
    """The label of the registered scheme ``name`` (figures, tables), e.g. ``"neural backward"``.

    Args:
        name: the scheme's name.

    Returns:
        The label, a string.

    Raises:
        ValueError: ``name`` is not registered.
    """
    return get_scheme(name).label


def short_label(name: str) -> str:
    """The short label of the registered scheme ``name`` (narrow table columns), e.g. ``"NB"``.

    Args:
        name: the scheme's name.

    Returns:
        The short label, a string.

    Raises:
        ValueError: ``name`` is not registered.
    """
    return get_scheme(name).short_label


for _scheme in (
    Scheme("neural_backward", "neural backward", "NB", "neural", neural.NeuralBackwardConfig,
           neural.neural_backward_flow),
    Scheme("neural_forward", "neural forward", "NF", "neural", neural.NeuralForwardConfig,
           neural.neural_forward_flow),
    Scheme("particle_flow", "particle flow", "PF", "particle", flows.ParticleFlowConfig, flows.run),
    Scheme("mmd", "MMD flow", "MMD", "weighted", functools.partial(wfr.WFRConfig, method="mmd"), wfr.wfr_flow),
    Scheme("mmd_noise", "MMD flow with noise", "MMD+noise", "weighted",
           functools.partial(wfr.WFRConfig, method="mmd_noise"), wfr.wfr_flow),
    Scheme("ift", "IFT", "IFT", "weighted", functools.partial(wfr.WFRConfig, method="ift"), wfr.wfr_flow),
    Scheme("wfr", "WFR gradient descent", "WFR", "weighted", functools.partial(wfr.WFRConfig, method="wfr"),
           wfr.wfr_flow),
):
    register_scheme(_scheme)
