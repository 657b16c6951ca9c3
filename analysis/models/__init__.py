"""Model families and their registry.

A family is a class with ``name``, ``description``, ``build``, ``fit`` and its own
summary helpers. Built-in families are listed here; other packages add theirs through
the ``trialmeta.models`` entry-point group, and a local Python file can add its own
with ``trialmeta --plugin FILE`` (the file defines ``TRIALMETA_MODELS = {name: class}``).
See ``docs/extending.md``.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from importlib import import_module, metadata
from pathlib import Path

from ..errors import SpecError

BUILTIN = {
    "pooled-rate": "trialmeta.analysis.models.pooled_rate:PooledRate",
    "contrast": "trialmeta.analysis.models.contrast:Contrast",
    "dose-response": "trialmeta.analysis.models.dose_response:DoseResponse",
    "time-course": "trialmeta.analysis.models.time_course:TimeCourse",
}
_LOCAL: dict[str, type] = {}
_PLUGIN_FILES: list[str] = []  # loaded with --plugin, in order: worker processes load them too


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


def load_plugin(path: str | Path) -> list[str]:
    """Import a local Python file; register its ``TRIALMETA_MODELS`` and ``TRIALMETA_FAMILIES``."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"plug-in file not found: {p}")
    if str(p.resolve()) in _PLUGIN_FILES:
        return []
    name = f"trialmeta_plugin_{p.stem}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise SpecError(f"cannot import plug-in {p}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:  # a plug-in must not decide the command's exit status
        sys.modules.pop(name, None)
        raise SpecError(f"plug-in {p} called sys.exit({exc.code!r}) while being imported; a "
                        "plug-in must define classes, not end the program") from None
    except Exception as exc:  # a user's file can fail in any way; report it plainly
        sys.modules.pop(name, None)
        raise SpecError(f"plug-in {p} failed to import: {type(exc).__name__}: {exc}") from None
    models = getattr(module, "TRIALMETA_MODELS", None) or {}
    families = getattr(module, "TRIALMETA_FAMILIES", None) or {}
    if not isinstance(models, dict) or not isinstance(families, dict) or not (models or
                                                                              families):
        raise SpecError(f"plug-in {p} must define TRIALMETA_MODELS = {{'name': ModelClass}} "
                        "or TRIALMETA_FAMILIES = {'name': FamilyClass}")
    for key, cls in models.items():
        if key in BUILTIN:
            raise SpecError(f"plug-in {p}: '{key}' is a built-in model name; choose another")
        _LOCAL[str(key)] = cls
    from ..families.base import register

    for key, cls in families.items():
        try:
            register(str(key), cls)
        except SpecError as exc:
            raise SpecError(f"plug-in {p}: {exc}") from None
    _PLUGIN_FILES.append(str(p.resolve()))
    return [*models, *families]


def plugin_files() -> tuple[str, ...]:
    """Return the plug-in files loaded in this process (worker processes load them too)."""
    return tuple(_PLUGIN_FILES)


def load_plugins(files: tuple[str, ...]) -> None:
    """Load plug-in ``files`` (each once per process): a worker process's initializer."""
    for f in files:
        load_plugin(f)


def with_plugins(files: tuple[str, ...], func, *args):  # noqa: ANN001, ANN201, ANN002
    """Load ``files`` (once per process), then return ``func(*args)``: a worker's task."""
    load_plugins(files)
    return func(*args)
