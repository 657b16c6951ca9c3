"""The one registry: model families and model classes, by name, and where they come from.

Three sources, in this order: the built-in ones (``FAMILIES``, ``MODELS``), installed packages
declaring entry points (groups ``trialmeta.families`` and ``trialmeta.models``), and plug-in
files loaded with ``trialmeta --plugin FILE`` (:mod:`.plugins`), which define
``TRIALMETA_FAMILIES = {name: FamilyClass}`` and/or ``TRIALMETA_MODELS = {name: ModelClass}``.

A claim names a family (``model: pooled-rate``) or a registered model class that extends
``TimeCourse`` (a new curve form), which belongs to the time-course family.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module, metadata

from ..errors import SpecError
from .base import Family

#: the built-in families
FAMILIES = {
    "pooled-rate": "trialmeta.analysis.families.pooled_rate:PooledRateFamily",
    "contrast": "trialmeta.analysis.families.contrast:ContrastFamily",
    "dose-response": "trialmeta.analysis.families.dose_response:DoseResponseFamily",
    "time-course": "trialmeta.analysis.families.time_course:TimeCourseFamily",
    "network": "trialmeta.analysis.families.network:NetworkFamily",
}

#: the built-in model classes (what the ``fit`` commands run)
MODELS = {
    "pooled-rate": "trialmeta.analysis.models.pooled_rate:PooledRate",
    "contrast": "trialmeta.analysis.models.contrast:Contrast",
    "dose-response": "trialmeta.analysis.models.dose_response:DoseResponse",
    "time-course": "trialmeta.analysis.models.time_course:TimeCourse",
}

_LOCAL_FAMILIES: dict[str, type] = {}
_LOCAL_MODELS: dict[str, type] = {}
_INSTANCES: dict[str, Family] = {}


@cache
def _entry_points(group: str) -> tuple[tuple[str, str], ...]:
    """(name, ``module:Class``) of a group's installed entry points, read once a process.

    Scanning the installed distributions takes milliseconds, and claims parsing, the sweep
    and the evaluator look a model up for every claim.
    """
    return tuple((ep.name, ep.value) for ep in metadata.entry_points(group=group))


def merged_registry(builtin: dict[str, str], group: str,
                    local: dict[str, type]) -> dict[str, str]:
    """Map names to ``module:Class``: built-in first, then entry points, then local ones."""
    out = dict(builtin)
    for name, value in _entry_points(group):
        out.setdefault(name, value)
    for name, cls in local.items():
        out.setdefault(name, f"{cls.__module__}:{cls.__qualname__}")
    return out


def load_registered(name: str, path: str, what: str) -> type:
    """Import the class at ``module:Class`` ``path``; a clear error when it cannot be."""
    module, _, attr = path.partition(":")
    try:
        return getattr(import_module(module), attr)
    except SystemExit as exc:  # an installed plug-in must not decide the exit status either
        raise SpecError(f"{what} '{name}' ({path}) called sys.exit({exc.code!r}) while being "
                        "imported") from None
    except Exception as exc:  # an installed package can fail in any way; report it plainly
        raise SpecError(f"{what} '{name}' is registered as {path} but cannot be "
                        f"loaded: {type(exc).__name__}: {exc}") from None


def registry() -> dict[str, str]:
    """Map every family name to its ``module:Class`` path (built-in, plug-ins, local)."""
    return merged_registry(FAMILIES, "trialmeta.families", _LOCAL_FAMILIES)


def register(name: str, cls: type) -> None:
    """Register a local family class (``trialmeta --plugin`` does this)."""
    if name in FAMILIES:
        raise SpecError(f"'{name}' is a built-in family name; choose another")
    if not (isinstance(cls, type) and issubclass(cls, Family)):
        raise SpecError(f"family '{name}' must be a subclass of trialmeta.analysis.families.base."
                        "Family")
    _LOCAL_FAMILIES[name] = cls
    _INSTANCES.pop(name, None)


def get_family(name: str) -> Family:
    """Return the family registered under ``name`` (one instance per name)."""
    if name in _INSTANCES:
        return _INSTANCES[name]
    if name in _LOCAL_FAMILIES and name not in FAMILIES:
        cls = _LOCAL_FAMILIES[name]
    else:
        path = registry().get(name)
        if path is None:
            raise SpecError(f"unknown model family '{name}'")
        cls = load_registered(name, path, "family")
    _INSTANCES[name] = cls()
    return _INSTANCES[name]


def family_name(model: str) -> str:
    """Return the family a claim's ``model`` belongs to.

    A family's own name; else a registered model class that subclasses ``TimeCourse``
    (a new curve form) belongs to ``time-course``.
    """
    if model in registry() or model in _LOCAL_FAMILIES:
        return model
    if model in model_registry():
        from ..models.time_course import TimeCourse

        cls = get_model_class(model)
        if isinstance(cls, type) and issubclass(cls, TimeCourse):
            return "time-course"
        raise SpecError(f"model '{model}' cannot be used in a claim: it is neither a model "
                        f"family ({', '.join(sorted(registry()))}) nor a time-course plug-in")
    raise SpecError(f"unknown model '{model}'; known families: {', '.join(sorted(registry()))}")


def family_of(model: str) -> Family:
    """Return the family object a claim's ``model`` belongs to."""
    return get_family(family_name(model))


def claim_options() -> dict[str, tuple[str, ...]]:
    """Map each family-specific claim field to the families that take it."""
    out: dict[str, list[str]] = {}
    for name in registry():
        try:
            fam = get_family(name)
        except SpecError:
            continue  # a broken plug-in is reported when a claim names it
        for key in fam.options:
            out.setdefault(key, []).append(name)
    return {k: tuple(v) for k, v in out.items()}


def censor_bound(model: str | None) -> float | None:
    """Return the time beyond which ``model``'s derived times count as never reached.

    Without a model (a claim as ``diff`` or "what changed" keeps it), the bound the
    registered families declare, when they agree on one.
    """
    if model:
        try:
            return get_family(family_name(model)).censor_bound_h
        except SpecError:
            pass
    bounds = set()
    for name in registry():
        try:
            bound = get_family(name).censor_bound_h
        except SpecError:
            continue
        if bound is not None:
            bounds.add(bound)
    return bounds.pop() if len(bounds) == 1 else None


def model_registry() -> dict[str, str]:
    """Map every model name to its ``module:Class`` path (built-in, plug-ins, local)."""
    return merged_registry(MODELS, "trialmeta.models", _LOCAL_MODELS)


def get_model_class(name: str) -> type:
    """Import and return the model class registered under ``name``."""
    if name in _LOCAL_MODELS and name not in MODELS:
        return _LOCAL_MODELS[name]
    paths = model_registry()
    if name not in paths:
        raise SpecError(f"unknown model '{name}'; known: {', '.join(sorted(paths))}")
    return load_registered(name, paths[name], "model")


def register_model(name: str, cls: type) -> None:
    """Register a model class under ``name`` for this process (a plug-in file's models)."""
    if name in MODELS:
        raise SpecError(f"'{name}' is a built-in model name; choose another")
    _LOCAL_MODELS[str(name)] = cls
