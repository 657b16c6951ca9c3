"""Plug-in files: ``trialmeta --plugin FILE`` (the one loader of local plug-ins).

A plug-in file is Python code executed with the user's rights. It defines
``TRIALMETA_MODELS = {name: ModelClass}`` and/or ``TRIALMETA_FAMILIES = {name: FamilyClass}``;
both are registered for this process, and worker processes (the Dask engine, the report's
process pools) load the same files again before their first task.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ..errors import SpecError
from .registry import register, register_model

_PLUGIN_FILES: list[str] = []  # loaded with --plugin, in order: worker processes load them too


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
        try:
            register_model(str(key), cls)
        except SpecError as exc:
            raise SpecError(f"plug-in {p}: {exc}") from None
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


def with_plugins(files: tuple[str, ...], func, *args):
    """Load ``files`` (once per process), then return ``func(*args)``: a worker's task."""
    load_plugins(files)
    return func(*args)
