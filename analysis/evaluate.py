"""Evaluate a claims file against records: run each needed fit once, then judge."""

from __future__ import annotations

from dataclasses import dataclass, field

from .claims import ClaimResult, ClaimsFile, judge
from .inference import SamplerSettings, summarize_draws
from .models import get_model_class
from .records import Records
from .results import PooledRateRun
from .selection import select_binary_arms


@dataclass
class Evaluation:
    """Verdicts and the fits behind them (one fit per distinct model and selection)."""

    results: list[ClaimResult]
    runs: dict[tuple, PooledRateRun] = field(default_factory=dict)
    claims_for_run: dict[tuple, list[str]] = field(default_factory=dict)


def evaluate(records: Records, claims: ClaimsFile, settings: SamplerSettings, *,
             progress: bool = False) -> Evaluation:
    """Fit every model the claims need (no model twice) and give each claim its verdict."""
    ev = Evaluation(results=[])
    for claim in claims.claims:
        key = claim.fit_key()
        ev.claims_for_run.setdefault(key, []).append(claim.id)
        cls = get_model_class(claim.model)
        model = cls()
        if key not in ev.runs:
            data = select_binary_arms(records, claim.outcome, claim.window, claim.filters)
            if data.k_studies < claim.rule.min_studies:
                studies = sorted(set(data.table["study"]))
                ev.results.append(judge(claim, None, studies, None, None))
                continue
            fit = model.fit(data, settings, data_sha256=records.sha256, progress=progress)
            ev.runs[key] = PooledRateRun(claim.outcome, claim.window, claim.filters, fit,
                                         model.summary(fit))
        run = ev.runs[key]
        draws = model.draws(run.fit, claim.quantity)
        studies = sorted(set(run.fit.data.table["study"]))
        ev.results.append(judge(claim, draws, studies, run.fit.diagnostics.passed,
                                summarize_draws(draws)))
    return ev
