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


def registry() -> dict[str, str]:
    """Map every model name to its ``module:Class`` path (built-in, plug-ins, local)."""
    out = dict(BUILTIN)
    for ep in metadata.entry_points(group="trialmeta.models"):
        out.setdefault(ep.name, ep.value)
    for name, cls in _LOCAL.items():
        out.setdefault(name, f"{cls.__module__}:{cls.__qualname__}")
    return out


def get_model_class(name: str) -> type:
    """Import and return the model class registered under ``name``."""
    if name in _LOCAL and name not in BUILTIN:
        return _LOCAL[name]
    paths = registry()
    if name not in paths:
        raise SpecError(f"unknown model '{name}'; known: {', '.join(sorted(paths))}")
    module, _, attr = paths[name].partition(":")
    try:
        return getattr(import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"model '{name}' is registered as {paths[name]} but cannot be "
                        f"loaded: {exc}") from None


def load_plugin(path: str | Path) -> list[str]:
    """Import a local Python file and register the models in its ``TRIALMETA_MODELS``."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"plug-in file not found: {p}")
    name = f"trialmeta_plugin_{p.stem}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise SpecError(f"cannot import plug-in {p}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a user's file can fail in any way; report it plainly
        raise SpecError(f"plug-in {p} failed to import: {type(exc).__name__}: {exc}") from None
    models = getattr(module, "TRIALMETA_MODELS", None)
    if not isinstance(models, dict) or not models:
        raise SpecError(f"plug-in {p} must define TRIALMETA_MODELS = {{'name': ModelClass}}")
    for key, cls in models.items():
        if key in BUILTIN:
            raise SpecError(f"plug-in {p}: '{key}' is a built-in model name; choose another")
        _LOCAL[str(key)] = cls
    return list(models)
