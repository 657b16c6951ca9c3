"""Statistical models and the registry of model classes.

A model class builds a PyMC model (and, for the built-in ones, its precompiled twin) and fits
it; the claim-facing protocol is a *family* (:mod:`trialmeta.analysis.families`). Built-in
model classes are listed here; other packages add theirs through the ``trialmeta.models``
entry-point group, and a plug-in file loaded with ``trialmeta --plugin FILE``
(:mod:`trialmeta.analysis.families.plugins`) through ``TRIALMETA_MODELS = {name: class}``.
See ``docs/extending.md``.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module, metadata

from ..errors import SpecError

BUILTIN = {
    "pooled-rate": "trialmeta.analysis.models.pooled_rate:PooledRate",
    "contrast": "trialmeta.analysis.models.contrast:Contrast",
    "dose-response": "trialmeta.analysis.models.dose_response:DoseResponse",
    "time-course": "trialmeta.analysis.models.time_course:TimeCourse",
}
_LOCAL: dict[str, type] = {}


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
    """Map every model name to its ``module:Class`` path (built-in, plug-ins, local)."""
    return merged_registry(BUILTIN, "trialmeta.models", _LOCAL)


def get_model_class(name: str) -> type:
    """Import and return the model class registered under ``name``."""
    if name in _LOCAL and name not in BUILTIN:
        return _LOCAL[name]
    paths = registry()
    if name not in paths:
        raise SpecError(f"unknown model '{name}'; known: {', '.join(sorted(paths))}")
    return load_registered(name, paths[name], "model")


def register_model(name: str, cls: type) -> None:
    """Register a model class under ``name`` for this process (a plug-in file's models)."""
    if name in BUILTIN:
        raise SpecError(f"'{name}' is a built-in model name; choose another")
    _LOCAL[str(name)] = cls
