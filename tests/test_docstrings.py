"""Every public function of the library documents its arguments and its result (Google style, read by napoleon).

The library reference (``book/api``, Sphinx autodoc + napoleon) renders the docstrings; a public function whose
docstring has no ``Args`` section shows its parameters without a word, one without ``Returns`` leaves the reader to
guess the shape of what comes back. This test walks the public names of the modules in :data:`MODULES` (the names in
each module's ``__all__`` and the public methods of the public classes defined in mmdflow) and parses each docstring
with napoleon's own ``GoogleDocstring`` (the parser the site uses), so a section that napoleon does not recognise
(a misspelt header, a wrong indentation) counts as missing.

A function needs
* an ``Args`` section when it takes a parameter other than ``self``/``cls``, naming exactly its parameters;
* a ``Returns`` (or ``Yields``) section when its body returns a value (a ``return`` with a value other than
  ``None``, or a ``yield``) and its annotation is not ``-> None``.

Scope: the layers below the experiments. ``mmdflow.experiments.*`` and ``mmdflow.plots.*`` are not checked yet:
they are to be added to :data:`MODULES` once their docstrings have been brought to the same standard.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap

import pytest

napoleon = pytest.importorskip("sphinx.ext.napoleon")
from sphinx.ext.napoleon.docstring import GoogleDocstring  # noqa: E402

#: the modules checked (packages contribute the names in their ``__all__``). TODO: add mmdflow.experiments.* and
#: mmdflow.plots.* when their docstrings have Args/Returns sections.
MODULES = [
    "mmdflow.kernels", "mmdflow.distances",
    "mmdflow.summation", "mmdflow.summation.dispatch", "mmdflow.summation.dense", "mmdflow.summation.coinciding",
    "mmdflow.summation.blocked", "mmdflow.summation.sliced", "mmdflow.summation.fused", "mmdflow.summation.keops",
    "mmdflow.summation.directions", "mmdflow.summation.sort1d",
    "mmdflow.energies", "mmdflow.energy_functions", "mmdflow.functionals", "mmdflow.simplex",
    "mmdflow.analytic", "mmdflow.analytic.prox", "mmdflow.analytic.curves", "mmdflow.analytic.samplers",
    "mmdflow.analytic1d", "mmdflow.analytic1d.targets", "mmdflow.analytic1d.flow", "mmdflow.analytic1d.wasserstein",
    "mmdflow.grid1d", "mmdflow.closed_forms", "mmdflow.metrics", "mmdflow.trajectory", "mmdflow.fingerprints", "mmdflow.runtime",
    "mmdflow._checks", "mmdflow.flows", "mmdflow.schemes",
    "mmdflow.neural", "mmdflow.neural.networks", "mmdflow.neural.training", "mmdflow.wfr", "mmdflow.wfr.particles",
    "mmdflow.data", "mmdflow.data.images", "mmdflow.data.mixtures", "mmdflow.data.mnist",
]

_CONFIG = napoleon.Config(napoleon_use_param=True, napoleon_use_rtype=False, napoleon_use_keyword=True)


def sections(doc: str | None) -> tuple[set[str], bool]:
    """The parameter names documented in ``doc`` (napoleon's ``:param name:`` fields; ``x, y:`` documents both,
    ``*args`` and ``**kwargs`` lose their stars) and whether it has a Returns/Yields section."""
    lines = GoogleDocstring(doc or "", _CONFIG, what="function").lines()
    params = set()
    for line in lines:
        if line.startswith((":param ", ":keyword ")):
            field = line.split(":", 2)[1].split(None, 1)[1]
            params |= {p.strip().lstrip("*\\") for p in field.split(",")}
    return params, any(line.startswith((":returns:", ":Yields:", ":yields:")) for line in lines)


def returns_value(func) -> bool:
    """The function's own body (not nested functions) returns a value or yields, and it is not annotated
    ``-> None``."""
    if inspect.signature(func).return_annotation in (None, "None"):
        return False
    body = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0].body
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            return True
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def public_functions() -> dict[str, object]:
    """``{qualified name: function}``: the functions in the modules' ``__all__`` and the public methods
    (static, class and instance methods, not properties) of the public classes defined in mmdflow."""
    found = {}
    for modname in MODULES:
        mod = importlib.import_module(modname)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
            elif inspect.isclass(obj) and obj.__module__.startswith("mmdflow"):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") or isinstance(value, property):
                        continue
                    func = getattr(value, "__func__", value)
                    if inspect.isfunction(func):
                        found.setdefault(f"{obj.__module__}.{obj.__qualname__}.{attr}", func)
    return found


def problems(func) -> list[str]:
    """What the docstring of ``func`` lacks (empty: nothing). Inherited docstrings count (``inspect.getdoc``), as
    autodoc shows them."""
    params = [p for p in inspect.signature(func).parameters if p not in ("self", "cls")]
    documented, has_returns = sections(inspect.getdoc(func))
    out = []
    if params and not documented:
        out.append("no Args section")
    elif params:
        missing = [p for p in params if p not in documented]
        unknown = sorted(documented - set(params))
        if missing:
            out.append(f"Args lacks {missing}")
        if unknown:
            out.append(f"Args names {unknown}, which are not parameters")
    if returns_value(func) and not has_returns:
        out.append("no Returns section")
    return out


def test_the_checker_sees_missing_and_present_sections():
    def bare(x, y):
        """Sum."""
        return x + y

    def good(x, y):
        """Sum.

        Args:
            x, y: numbers.

        Returns:
            The sum.
        """
        return x + y

    def stray(x):
        """Nothing.

        Args:
            x: a number.
            z: not a parameter.
        """

    def procedure(x) -> None:
        """Check.

        Args:
            x: a number.
        """
        return

    assert problems(bare) == ["no Args section", "no Returns section"]
    assert problems(good) == []
    assert problems(stray) == ["Args names ['z'], which are not parameters"]
    assert problems(procedure) == []


def test_the_walk_finds_the_public_functions():
    found = public_functions()
    assert len(found) > 250
    for name in ("mmdflow.kernels.RadialKernel.profile", "mmdflow.summation.dispatch.kernel_sum",
                 "mmdflow.energies.DiscrepancyEnergy.gradient", "mmdflow.data.mixtures.GaussianMixture.sample",
                 "mmdflow.runtime.for_profile"):
        assert name in found


def test_every_public_function_documents_its_args_and_returns():
    offenders = {name: p for name, func in sorted(public_functions().items()) if (p := problems(func))}
    assert not offenders, (f"{len(offenders)} public functions with incomplete docstrings:\n"
                           + "\n".join(f"  {name}: {', '.join(p)}" for name, p in offenders.items()))


def test_public_docstrings_hold_no_control_characters():
    """An escape such as ``\\b`` or ``\\f`` in a non-raw docstring becomes a control character, which breaks the
    rendering (``\\beta`` turns into a backspace and ``eta``); the source check of ``test_downloads`` cannot see it."""
    bad = [name for name, func in public_functions().items()
           if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", func.__doc__ or "")]
    assert not bad, bad


def undocumented_data() -> list[str]:
    """Module-level data names in an ``__all__`` of any mmdflow module, assigned in that module, without a ``#:``
    comment or a docstring after them. autodoc gives such a name the docstring of its *type* (``dict``'s, whose
    indented text breaks the site build), so every one needs its own."""
    import pkgutil

    import mmdflow
    from sphinx.pycode import ModuleAnalyzer

    missing = []
    for info in pkgutil.walk_packages(mmdflow.__path__, "mmdflow."):
        module = importlib.import_module(info.name)
        names = set(getattr(module, "__all__", ()))
        tree = ast.parse(inspect.getsource(module))
        assigned = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)}
        documented = {name for (scope, name) in ModuleAnalyzer.for_module(info.name).find_attr_docs() if not scope}
        missing += [f"{info.name}.{n}" for n in sorted(names & assigned - documented)]
    return missing


def test_public_data_has_its_own_docstring():
    assert undocumented_data() == []
