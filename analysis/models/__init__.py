"""Model families and their registry.

A family is a class with ``name``, ``description``, ``build``, ``fit`` and
``summary``. Built-in families register themselves here; third-party packages
add theirs through the ``trialmeta.models`` entry point group.
"""

from __future__ import annotations

from importlib import import_module, metadata

from ..errors import SpecError

BUILTIN = {
    "pooled-rate": "trialmeta.analysis.models.pooled_rate:PooledRate",
    "contrast": "trialmeta.analysis.models.contrast:Contrast",
    "dose-response": "trialmeta.analysis.models.dose_response:DoseResponse",
    "time-course": "trialmeta.analysis.models.time_course:TimeCourse",
}


def registry() -> dict[str, str]:
    """Map every model name to its ``module:Class`` path (built-in and plug-ins)."""
    out = dict(BUILTIN)
    for ep in metadata.entry_points(group="trialmeta.models"):
        out.setdefault(ep.name, ep.value)
    return out


def get_model_class(name: str) -> type:
    """Import and return the model class registered under ``name``."""
    paths = registry()
    if name not in paths:
        raise SpecError(f"unknown model '{name}'; known: {', '.join(sorted(paths))}")
    module, _, attr = paths[name].partition(":")
    return getattr(import_module(module), attr)
