"""Evaluate a claims file against records: run each needed fit once, then judge.

Each model family has a runner that selects the records, fits, and returns a
:class:`FamilyRun`: the JSON document of the fit, a function giving posterior draws of
a named quantity, the studies used, and a function that says when a quantity cannot
be informed by the data (a dose no trial used, a time no trial measured).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .claims import Claim, ClaimResult, ClaimsFile, judge, model_family
from .inference import SamplerSettings, flat, summarize_draws
from .records import Records


@dataclass
class FamilyRun:
    """One fit behind one or more claims."""

    family: str
    doc: dict[str, Any] | None
    studies: list[str]
    draws: Callable[[str, Claim], np.ndarray] | None = None
    unidentified: Callable[[str], str | None] = lambda q: None
    diagnostics_passed: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _pooled_rate(records: Records, claim: Claim, settings: SamplerSettings) -> FamilyRun:
    from .models.pooled_rate import PooledRate
    from .results import PooledRateRun, pooled_rate_document
    from .selection import select_binary_arms

    data = select_binary_arms(records, claim.outcome, claim.window, claim.filters,
                              untimed=bool(claim.option("untimed", False)))
    studies = sorted(set(data.table["study"]))
    if len(studies) < claim.rule.min_studies:
        return FamilyRun("pooled-rate", None, studies)
    model = PooledRate(_pooled_rate_priors(claim.option("tau_prior")),
                       moderators=claim.option("moderators", ()))
    fit = model.fit(data, settings, data_sha256=records.sha256)
    run = PooledRateRun(claim.outcome, claim.window, claim.filters, fit, model.summary(fit))
    return FamilyRun("pooled-rate", pooled_rate_document(run, records),
                     sorted(set(fit.data.table["study"])),
                     lambda q, c: model.draws(fit, q), diagnostics_passed=fit.diagnostics.passed,
                     extra={"run": run, "idata": fit.idata})


def _pooled_rate_priors(spec: str | None):  # noqa: ANN202
    """Default priors, with tau's half-normal scale from a ``half-normal:S`` option."""
    from .errors import SpecError
    from .models.pooled_rate import PooledRatePriors
    from .priors import heterogeneity_prior

    if spec is None:
        return PooledRatePriors()
    prior = heterogeneity_prior(spec)
    if prior.kind != "half-normal":
        raise SpecError(f"pooled-rate takes a half-normal prior on tau, not '{spec}'")
    return PooledRatePriors(tau_scale=prior.scale)


def _contrast(records: Records, claim: Claim, settings: SamplerSettings) -> FamilyRun:
    from .comparative import contrast_document, run_contrast
    from .contrasts import select_contrasts
    from .models.contrast import Contrast, default_priors
    from .priors import heterogeneity_prior

    measure = claim.option("measure", "SMD" if claim.outcome == "change" else "OR")
    data = select_contrasts(records, claim.outcome, measure, claim.window, claim.filters,
                            comparator=claim.option("comparator", ()))
    if data.k_studies < claim.rule.min_studies:
        return FamilyRun("contrast", None, data.studies)
    moderators = claim.option("moderators", ())
    tau_prior = claim.option("tau_prior")
    priors = default_priors(measure, heterogeneity_prior(tau_prior)) if tau_prior else None
    run = run_contrast(data, settings, priors, data_sha256=records.sha256,
                       moderators=moderators)
    model = Contrast(priors, 0.0, moderators)
    return FamilyRun("contrast", contrast_document(run, records), sorted(data.studies),
                     lambda q, c: model.draws(run.fit, q),
                     diagnostics_passed=run.fit.diagnostics.passed,
                     extra={"idata": run.fit.idata})


def _dose_response(records: Records, claim: Claim, settings: SamplerSettings) -> FamilyRun:
    from .curves import DoseOptions, dose_document, fit_dose
    from .errors import SpecError

    opts = DoseOptions(outcome=claim.outcome, time_h=claim.window.target_h,
                       window_h=claim.window.high_h - claim.window.target_h,
                       form=claim.option("form", "emax"), hill=bool(claim.option("hill", False)),
                       filters=claim.filters, comparator=claim.option("comparator", ()),
                       standardize=claim.outcome == "change",
                       threshold=claim.option("threshold"),
                       moderators=claim.option("moderators", ()))
    try:
        fitted = fit_dose(records, opts, settings)
    except SpecError as exc:
        return FamilyRun("dose-response", None, [], extra={"reason": str(exc)})
    data, model, fit = fitted
    studies = sorted(data.studies)
    if len(studies) < claim.rule.min_studies:
        return FamilyRun("dose-response", None, studies)
    observed = {0.0, *map(float, data.doses)}

    def draws(q: str, c: Claim) -> np.ndarray:
        head, _, rest = q.partition(":")
        p = model.params(fit)
        if head == "effect_at":
            return model.effect(fit, np.array([float(rest)]))[:, 0]
        if head == "beta":
            names = model.study_design(data).names
            return flat(fit.idata, "beta")[:, names.index(rest)]
        if head == "difference":
            lo, hi = (float(x) for x in rest.split(":"))
            e = model.effect(fit, np.array([lo, hi]))
            return e[:, 1] - e[:, 0]
        return p[q]

    def unidentified(q: str) -> str | None:
        head, _, rest = q.partition(":")
        if head not in ("effect_at", "difference"):
            return None
        missing = [d for d in map(float, rest.split(":")) if d not in observed]
        if not missing:
            return None
        return (f"no trial in the selection has an arm at "
                f"{', '.join(f'{d:g}' for d in missing)} {data.unit} (observed doses: "
                f"{', '.join(f'{d:g}' for d in sorted(observed))}); the value would come from "
                f"the assumed {opts.form} curve, not from data. Trials with arms at those doses "
                "(with outcomes) would settle it.")

    doc = dose_document(records, replace(opts, doses=tuple(sorted(observed - {0.0}))),
                        settings, fitted=fitted)
    return FamilyRun("dose-response", doc, studies, draws, unidentified,
                     fit.diagnostics.passed, extra={"opts": opts, "idata": fit.idata})


def _time_course(records: Records, claim: Claim, settings: SamplerSettings) -> FamilyRun:
    from .curves import TimeOptions, fit_time, time_document

    measure = claim.option("measure", "MD" if claim.outcome == "change" else "OR")
    opts = TimeOptions(outcome=claim.outcome, measure=measure, model=claim.model,
                       form=claim.option("form", "bateman"), filters=claim.filters,
                       comparator=claim.option("comparator", ()),
                       threshold=float(claim.option("threshold", 0.405)),
                       fraction=float(claim.option("fraction", 0.5)),
                       direction=int(claim.option("direction", 0)))
    from .contrasts import select_time_course

    probe = select_time_course(records, opts.outcome, opts.measure, opts.filters,
                               comparator=opts.comparator)
    if probe.k_studies < claim.rule.min_studies:
        return FamilyRun("time-course", None, probe.studies)
    fitted = fit_time(records, opts, settings)
    data, model, fit = fitted
    doc = time_document(records, opts, settings, fitted=fitted)
    grid = np.exp(np.linspace(np.log(0.25), np.log(672.0), 600))
    direction = 1 if doc["direction"] == "higher is better" else -1
    observed = sorted(set(data.contrasts["time_h"].astype(float)))

    def draws(q: str, c: Claim) -> np.ndarray:
        curve = direction * model.effect(fit, grid)
        threshold = float(c.option("threshold", opts.threshold))
        fraction = float(c.option("fraction", opts.fraction))
        if q == "onset_h":
            above = curve > threshold
            return np.where(above.any(axis=1), grid[np.argmax(above, axis=1)], np.inf)
        peak_i = np.argmax(curve, axis=1)
        if q == "time_to_peak_h":
            return grid[peak_i]
        if q == "peak":
            return direction * curve[np.arange(len(curve)), peak_i]
        if q == "duration_h":
            peak_v = curve[np.arange(len(curve)), peak_i]
            after = (np.arange(len(grid))[None, :] > peak_i[:, None]) & (
                curve < fraction * peak_v[:, None])
            return np.where(after.any(axis=1), grid[np.argmax(after, axis=1)], np.inf)
        return model.effect(fit, np.array([float(q.partition(":")[2])]))[:, 0]

    def unidentified(q: str) -> str | None:
        if q.startswith("effect_at:"):
            t = float(q.partition(":")[2])
            if not observed[0] <= t <= observed[-1]:
                return (f"no trial measured the effect near {t:g} h (observed "
                        f"{observed[0]:g}-{observed[-1]:g} h)")
        return None

    return FamilyRun("time-course", doc, sorted(data.studies), draws, unidentified,
                     fit.diagnostics.passed, extra={"opts": opts, "idata": fit.idata})


RUNNERS = {"pooled-rate": _pooled_rate, "contrast": _contrast,
           "dose-response": _dose_response, "time-course": _time_course}


@dataclass
class Evaluation:
    """Verdicts and the fits behind them (one fit per distinct model and selection)."""

    results: list[ClaimResult]
    runs: dict[tuple, FamilyRun] = field(default_factory=dict)
    claims_for_run: dict[tuple, list[str]] = field(default_factory=dict)


def evaluate(records: Records, claims: ClaimsFile, settings: SamplerSettings, *,
             progress: bool = False) -> Evaluation:
    """Fit every model the claims need (no model twice) and give each claim its verdict."""
    ev = Evaluation(results=[])
    for claim in claims.claims:
        key = claim.fit_key()
        ev.claims_for_run.setdefault(key, []).append(claim.id)
        if key not in ev.runs:
            ev.runs[key] = RUNNERS[model_family(claim.model)](records, claim, settings)
        run = ev.runs[key]
        if run.draws is None:
            result = judge(claim, None, run.studies, None, None)
            if run.extra.get("reason"):
                result.reason = f"{run.extra['reason']}. {result.reason}"
            ev.results.append(result)
            continue
        draws = np.asarray(run.draws(claim.quantity, claim), float)
        finite = draws[np.isfinite(draws)]
        estimate = summarize_draws(finite) if len(finite) > 1 else None
        result = judge(claim, draws, run.studies, run.diagnostics_passed, estimate,
                       unidentified=run.unidentified(claim.quantity))
        if len(finite) < len(draws):
            share = 100 * (1 - len(finite) / len(draws))
            said = f"{share:.0f}%" if share >= 0.5 else "fewer than 1%"
            result.reason += (f"; {said} of draws never reach the event within 4 weeks "
                              "(counted outside a finite region)")
        ev.results.append(result)
    return ev
