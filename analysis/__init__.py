"""trialmeta.analysis: the library behind the command line.

The public API, imported lazily (PEP 562) so that ``import trialmeta.analysis`` and
``trialmeta --help`` stay instant:

>>> from trialmeta.analysis import read_records, load_claims, evaluate, SamplerSettings
>>> records = read_records()                      # the bundled dataset, validated
>>> claims = load_claims()                        # the bundled claims file
>>> result = evaluate(records, claims, SamplerSettings(draws=300, chains=2))  # doctest: +SKIP
>>> [r.verdict for r in result.results]           # doctest: +SKIP

``build_report(records, claims, settings, out)`` writes the whole report; ``Family`` and
``FamilyRun`` are what a new model family implements (``docs/extending.md``). The layers
below are described in ``ARCHITECTURE.md``: io, stats, select, sampling, models, claims,
families, evaluate, report, pipelines, each importing only those below it. Nothing here
imports ``trialmeta.cli``; heavy libraries (PyMC, ArviZ, matplotlib) are imported inside the
functions that need them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: the public names and the module each lives in
_PUBLIC = {
    "read_records": "trialmeta.analysis.io.records",
    "Records": "trialmeta.analysis.io.records",
    "load_claims": "trialmeta.analysis.evaluate.claims",
    "evaluate": "trialmeta.analysis.evaluate.evaluation",
    "build_report": "trialmeta.analysis.pipelines.report_job",
    "Family": "trialmeta.analysis.families.base",
    "FamilyRun": "trialmeta.analysis.families.base",
    "SamplerSettings": "trialmeta.analysis.sampling.settings",
    "DataError": "trialmeta.analysis.errors",
    "SpecError": "trialmeta.analysis.errors",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    if name == "__version__":  # read from the installed metadata on first use (not at import)
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("trialmeta")
        except PackageNotFoundError:  # pragma: no cover (a source tree not installed)
            value = "0.0.0+unknown"
        globals()[name] = value
        return value
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trialmeta.analysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
