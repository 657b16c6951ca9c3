"""Evaluate a claims file against records: run each needed fit once, then judge.

Each claim's model belongs to a family (:mod:`family`); the family's ``run`` selects the
records, fits, and returns a :class:`~trialmeta.analysis.families.base.FamilyRun` with posterior
and prior draws of the claim's quantity and an identifiability check.

A probability within two Monte Carlo standard errors of a threshold is resampled with
twice the draws (same seed), up to the claim's ``max_draws_factor``; still undecided at
the cap, the verdict is ``inconclusive``. So no verdict depends on the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import SpecError
from ..families.base import FamilyRun
from ..families.common import PRIOR_DRAWS
from ..families.registry import family_of
from ..io.records import Records
from ..sampling.inference import summarize_censored
from ..sampling.settings import SamplerSettings
from ..stats.bias import FEW_STUDIES
from ..stats.decision import near_thresholds
from .certainty import assess
from .claims import Claim, ClaimResult, ClaimsFile, judge

__all__ = ["PRIOR_DRAWS", "Evaluation", "FamilyRun", "evaluate"]


@dataclass
class Evaluation:
    """Verdicts and the fits behind them (one fit per distinct model and selection)."""

    results: list[ClaimResult]
    runs: dict[tuple, FamilyRun] = field(default_factory=dict)
    claims_for_run: dict[tuple, list[str]] = field(default_factory=dict)


def evaluate(records: Records, claims: ClaimsFile, settings: SamplerSettings, *,
             progress: bool = False, documents: bool = True,
             fragility: bool = True) -> Evaluation:
    """Fit every model the claims need (no model twice) and give each claim its verdict.

    ``documents=False`` skips each fit's JSON document (summaries, curves, PSIS-LOO): the
    verdicts are the same, and a sweep, which keeps only them, runs faster.

    Each verdict gets its certainty grade (:mod:`.certainty`); a verdict identified only
    by uncontrolled studies is capped at ``inconclusive``. With ``fragility`` (the
    default) every supported or contradicted claim is refitted without each of its
    studies in turn, and a study whose omission changes the verdict is named (a sweep,
    which leaves studies out as cells of its own, turns this off).

    A claim whose probability lies within two Monte Carlo standard errors of a threshold
    has its fit rerun with twice the draws (same seed), until it clears or the claim's
    ``max_draws_factor`` is reached; then it is ``inconclusive``, deterministically.
    """
    ev = Evaluation(results=[])
    first: dict[tuple, Claim] = {}  # the claim whose options a shared fit is run with
    for claim in claims.claims:
        key = claim.fit_key()
        ev.claims_for_run.setdefault(key, []).append(claim.id)
        first.setdefault(key, claim)
    factor = dict.fromkeys(first, 1)
    failed: dict[tuple, str] = {}  # a fit this file cannot give: why (the claim is not judged)

    def run(key: tuple) -> None:
        more = replace(settings, draws=settings.draws * factor[key])
        family = family_of(first[key].model)
        try:
            ev.runs[key] = family.run(records, first[key], more, documents=documents)
        except SpecError as exc:  # e.g. a moderator with one level in this file
            failed[key] = str(exc)

    def judged(c: Claim) -> ClaimResult:
        f = factor[c.fit_key()]
        if c.fit_key() in failed:
            return not_evaluated(c, failed[c.fit_key()])
        try:
            return _judge(c, ev.runs[c.fit_key()], settings.draws * f,
                          at_cap=1 < f >= c.rule.max_draws_factor)  # extended, to the cap
        except SpecError as exc:  # e.g. a moderator level this file does not have
            return not_evaluated(c, str(exc))

    for key in first:
        run(key)
    results = {c.id: judged(c) for c in claims.claims}
    while grow := {c.fit_key() for c in claims.claims if _undecided(results[c.id], c)
                   and factor[c.fit_key()] < c.rule.max_draws_factor}:
        for key in grow:
            factor[key] *= 2
            run(key)
        results.update({c.id: judged(c) for c in claims.claims if c.fit_key() in grow})
    for c in claims.claims:
        key = c.fit_key()
        if results[c.id].verdict == NOT_EVALUATED:
            continue
        _grade(records, c, results[c.id], settings.draws * factor[key], run=ev.runs[key],
               family_run=(lambda claim, f=factor[key]: family_of(claim.model).run(
                   records, claim, replace(settings, draws=settings.draws * f),
                   documents=False)) if fragility else None)
    ev.results = [results[c.id] for c in claims.claims]
    return ev


#: the verdict of a claim that cannot be evaluated on this file (the reason says why)
NOT_EVALUATED = "not evaluated"


def not_evaluated(claim: Claim, why: str) -> ClaimResult:
    """Return the result of a claim this file cannot answer: no verdict, and the reason.

    A claims file written for other data (a moderator with one level here, a quantity that
    names a level the file does not have) never stops the other claims or the report.
    """
    return ClaimResult(claim, NOT_EVALUATED, None, None, [], None,
                       reason=f"not evaluated on this file: {why}", basis="not evaluated")


#: at most this many leave-one-study-out refits per claim
MAX_FRAGILITY_REFITS = 40


def _grade(records: Records, claim: Claim, result: ClaimResult, draws_per_chain: int,
           family_run: Any, run: FamilyRun) -> None:
    """Give ``result`` its certainty; cap it; name the studies it is fragile to.

    Fragility is checked by refitting without each study when the model has a precompiled
    kernel (``run.fast_refits``); otherwise ``fragile_to`` is None (not assessed here: the
    sweep's leave-one-out cells assess it).
    """
    table = records.table
    cert = assess(claim, result.verdict, result.studies, table,
                  diagnostics_passed=result.diagnostics_passed)
    if cert.cap and result.verdict in ("supported", "contradicted"):
        result.reason = (f"capped at inconclusive (the probabilities alone said "
                         f"{result.verdict}): {cert.cap}. {result.reason}")
        result.verdict = "inconclusive"
        result.qualifier = "uncontrolled designs only"
    fragile = None
    if family_run is not None and run.fast_refits \
            and result.verdict in ("supported", "contradicted") \
            and result.basis == "evidence":
        fragile = []
        for study in sorted(result.studies)[:MAX_FRAGILITY_REFITS]:
            without = replace(claim, filters=replace(
                claim.filters, exclude_studies=(*claim.filters.exclude_studies, study)))
            other = _judge(without, family_run(without), draws_per_chain, at_cap=False)
            other_cert = assess(without, other.verdict, other.studies, table)
            label = "inconclusive" if other_cert.cap and other.verdict != \
                "insufficient data" else other.verdict
            if label != result.verdict:
                fragile.append(f"{study} ({label})")
    small = None
    if family_run is not None and result.verdict in ("supported", "contradicted") \
            and result.basis == "evidence":
        small = _small_study_check(claim, result, draws_per_chain, family_run)
    result.certainty = assess(claim, result.verdict, result.studies, table,
                              diagnostics_passed=result.diagnostics_passed, fragile=fragile,
                              reason=result.reason, small_study=small)


def _small_study_check(claim: Claim, result: ClaimResult, draws_per_chain: int,
                       family_run: Any) -> dict[str, Any] | None:
    """Refit a claim with its family's small-study adjustment; None: the family has none.

    The adjustment is the family's own ``bias`` sweep cell (the contrast family's: PET).
    With fewer than ``FEW_STUDIES`` studies the check is not run (a regression on the
    standard error of a handful of studies says nothing), and the result says so.
    """
    family = family_of(claim.model)
    method = next((value for kind, value in family.sweep_cells() if kind == "bias"), None)
    options = dict(claim.options)
    if method is None or not family.vary(claim, "bias", method, options):
        return None
    k = len(result.studies)
    if k < FEW_STUDIES:
        return {"assessed": False, "method": method,
                "why": f"only {k} studies; a regression on the standard error needs at "
                       f"least {FEW_STUDIES} to mean anything"}
    adjusted = replace(claim, options=tuple(sorted(options.items())))
    other = _judge(adjusted, family_run(adjusted), draws_per_chain, at_cap=False)
    est = other.estimate or {}
    return {"assessed": True, "method": method, "verdict": other.verdict,
            "median": est.get("median"), "ci_low": est.get("ci_low"),
            "ci_high": est.get("ci_high"), "probability": other.probability,
            "changes_verdict": other.verdict != result.verdict}


def _undecided(result: ClaimResult, claim: Claim) -> bool:
    """Whether the verdict hangs on a probability within 2 MCSE of a threshold."""
    return result.basis == "evidence" and bool(near_thresholds(result.evidence, claim.rule))


def _judge(claim: Claim, run: FamilyRun, draws_per_chain: int, at_cap: bool) -> ClaimResult:
    """Judge one claim on one (possibly extended) fit."""
    if run.draws is None:
        result = judge(claim, None, run.studies, None, None)
        if run.reason:
            result.reason = f"{run.reason}. {result.reason}"
        return result
    raw = run.draws(claim.quantity, claim)
    if raw is None:  # the fit cannot express the quantity (say, a node it does not have)
        return ClaimResult(claim, "insufficient data", None, None, run.studies,
                           run.diagnostics_passed,
                           run.unidentified(claim.quantity, claim) or "not computable",
                           basis="unidentified")
    draws = np.asarray(raw, float)
    prior = None
    if run.prior_draws is not None:
        prior = np.asarray(run.prior_draws(claim.quantity, claim), float)
    studies = run.studies if run.informing is None else run.informing(claim.quantity, claim)
    result = judge(claim, draws, studies, run.diagnostics_passed,
                   summarize_censored(draws), unidentified=run.unidentified(claim.quantity,
                                                                            claim),
                   prior=prior, at_cap=at_cap)
    result.draws = draws_per_chain
    if run.doubt is not None and result.verdict in ("supported", "contradicted"):
        doubt = run.doubt(claim.quantity, claim)
        if doubt is not None:
            result.qualifier, why = doubt
            result.reason = (f"capped at inconclusive ({result.qualifier}; the probabilities "
                             f"alone said {result.verdict}): {why}. {result.reason}")
            result.verdict = "inconclusive"
    if run.informing is not None and result.basis == "studies":
        result.reason = (f"counted are the studies whose data inform {claim.quantity} "
                         f"({', '.join(studies) or 'none'}), not every study in the fit "
                         f"({len(run.studies)}). {result.reason}")
    censored = float(np.mean(np.isinf(draws)))
    bound = family_of(claim.model).censor_bound_h
    if censored > 0 and bound is not None:
        said = f"{100 * censored:.0f}%" if censored >= 0.005 else "fewer than 1%"
        result.reason += (f"; {said} of draws never reach the event within "
                          f"{bound:g} h (counted as > {bound:g} h)")
    return result
