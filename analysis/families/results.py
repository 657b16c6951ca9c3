"""Describe a pooled-rate analysis as a JSON-ready document; stable rounding of results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..io.records import Records
from ..models.pooled_rate import FitResult, PooledRateSummary
from ..sampling.inference import command_line
from ..select.filters import Filters, TimeWindow

SIGNIFICANT = 10


@dataclass
class PooledRateRun:
    """What one pooled-rate analysis used and found."""

    outcome: str
    window: TimeWindow
    filters: Filters
    fit: FitResult
    summary: PooledRateSummary


def rounded(obj: Any, digits: int = SIGNIFICANT) -> Any:
    """Round every float to ``digits`` significant digits (stable, readable text output)."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, np.floating):
        return rounded(float(obj), digits)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [rounded(v, digits) for v in obj]
    return obj


def pooled_rate_document(run: PooledRateRun, records: Records) -> dict[str, Any]:
    """Build the ``--json`` document of a pooled-rate fit."""
    fit, s = run.fit, run.summary
    arms = s.arms.astype(object).where(s.arms.notna(), None).to_dict("records")
    return rounded({
        "model": fit.model,
        "outcome": run.outcome,
        "time_h": run.window.target_h,
        "window_h": [run.window.low_h, run.window.high_h],
        "selection": run.filters.as_dict(),
        "k": fit.data.k_studies,
        "arms": len(fit.data.table),
        "n_total": fit.data.n_total,
        "scales": sorted(set(fit.data.table["scale"].dropna())),
        "estimates": s.estimates,
        "per_arm": arms,
        "dropped": fit.data.dropped,
        "diagnostics": fit.diagnostics.as_dict(),
        "priors": fit.priors.as_dict(),
        "sampler": fit.settings.as_dict(),
        "summary": s.sentence,
        "provenance": {
            "data": records.path,
            "data_sha256": records.sha256,
            "seed": fit.settings.seed,
            "versions": fit.provenance["versions"],
            "command": command_line(),
        },
    })
