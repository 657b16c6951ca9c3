"""Evaluate a claims file against records: run each needed fit once, then judge.

Each model family has a runner that selects the records, fits, and returns a
:class:`FamilyRun`: the JSON document of the fit, functions giving posterior and prior
draws of a named quantity (the prior draws pushed through the same derived-quantity
code), the studies used, and a function that says when a quantity cannot be informed by
the data (a dose no trial used, a time outside the observed range, a shape parameter
the data did not move).

A probability within two Monte Carlo standard errors of a threshold is resampled with
twice the draws (same seed), up to the claim's ``max_draws_factor``; still undecided at
the cap, the verdict is ``inconclusive``. So no verdict depends on the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .claims import Claim, ClaimResult, ClaimsFile, judge, model_family
from .decision import near_thresholds, spread
from .inference import SamplerSettings, flat, summarize_censored
from .records import Records

#: draws from the prior behind P_prior (Monte Carlo SE of a probability <= 0.006)
PRIOR_DRAWS = 8000
TIME_QUANTITIES = ("onset_h", "time_to_peak_h", "duration_h")


@dataclass
class FamilyRun:
    """One fit behind one or more claims."""

    family: str
    doc: dict[str, Any] | None
    studies: list[str]
    draws: Callable[[str, Claim], np.ndarray] | None = None
    unidentified: Callable[[str, Claim], str | None] = lambda q, c: None
    diagnostics_passed: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    prior_draws: Callable[[str, Claim], np.ndarray] | None = None


def prior_fit(model: Any, fit: Any, settings: SamplerSettings) -> Any:  # noqa: ANN401
    """Return a copy of ``fit`` whose posterior holds draws from the model's priors.

    None when the model cannot draw from its priors (a plug-in without ``prior_params``).
    """
    from .posterior_store import draws_as_posterior

    draw = getattr(model, "prior_params", None)
    rng = np.random.default_rng([settings.seed, 0x5EED])
    params = None if draw is None else draw(fit, PRIOR_DRAWS, rng)
    return None if params is None else replace(fit, idata=draws_as_posterior(params))


def _contraction(post: np.ndarray, prior: np.ndarray, name: str, limit: float) -> str | None:
    """Say so when a parameter's posterior spread is above ``limit`` of its prior's."""
    ratio = spread(post) / spread(prior)
    if ratio > limit:
        return (f"{name} barely moved from its prior (posterior/prior spread {ratio:.2f} > "
                f"{limit:g}), so the quantity's value would come from the prior")
    return None


def pooled_rate_setup(records: Records, claim: Claim) -> tuple[Any, Any]:  # noqa: ANN401
    """Return the pooled-rate model a claim asks for and the arms it selects."""
    from .models.pooled_rate import PooledRate
    from .selection import select_binary_arms

    data = select_binary_arms(records, claim.outcome, claim.window, claim.filters,
                              untimed=bool(claim.option("untimed", False)))
    model = PooledRate(_pooled_rate_priors(claim.option("tau_prior"), claim.option("priors", ())),
                       moderators=claim.option("moderators", ()))
    return model, data


def _pooled_rate(records: Records, claim: Claim, settings: SamplerSettings, *,
                 documents: bool = True) -> FamilyRun:
    from .results import PooledRateRun, pooled_rate_document

    model, data = pooled_rate_setup(records, claim)
    studies = sorted(set(data.table["study"]))
    if len(studies) < claim.rule.min_studies:
        return FamilyRun("pooled-rate", None, studies)
    fit = model.fit(data, settings, data_sha256=records.sha256)
    doc, extra = None, {"idata": fit.idata}
    if documents:
        extra["run"] = PooledRateRun(claim.outcome, claim.window, claim.filters, fit,
                                     model.summary(fit))
        doc = pooled_rate_document(extra["run"], records)
    prior = prior_fit(model, fit, settings)
    return FamilyRun("pooled-rate", doc,
                     sorted(set(fit.data.table["study"])),
                     lambda q, c: model.draws(fit, q), diagnostics_passed=fit.diagnostics.passed,
                     extra=extra,
                     prior_draws=lambda q, c: model.draws(prior, q))


def _pooled_rate_priors(spec: str | None, overrides: tuple = ()):  # noqa: ANN202
    """Default priors, with tau's half-normal scale from a ``half-normal:S`` option."""
    from .errors import SpecError
    from .models.pooled_rate import PooledRatePriors
    from .priors import heterogeneity_prior

    priors = replace(PooledRatePriors(), **dict(overrides))
    if spec is None:
        return priors
    prior = heterogeneity_prior(spec)
    if prior.kind != "half-normal":
        raise SpecError(f"pooled-rate takes a half-normal prior on tau, not '{spec}'")
    return replace(priors, tau_scale=prior.scale)


def contrast_setup(records: Records, claim: Claim) -> tuple[Any, Any]:  # noqa: ANN401
    """Return the contrast model a claim asks for and the contrasts it selects."""
    from .contrasts import select_contrasts
    from .models.contrast import Contrast, default_priors
    from .priors import heterogeneity_prior

    measure = claim.option("measure", "SMD" if claim.outcome == "change" else "OR")
    moderators = claim.option("moderators", ())
    data = select_contrasts(records, claim.outcome, measure, claim.window, claim.filters,
                            comparator=claim.option("comparator", ()),
                            allow_mixed_mean_types=any(m.startswith("mean_type")
                                                       for m in moderators))
    tau_prior = claim.option("tau_prior")
    overrides = dict(claim.option("priors", ()))
    priors = None
    if tau_prior or overrides:
        tau = heterogeneity_prior(tau_prior) if tau_prior else None
        priors = replace(default_priors(measure, tau), **overrides)
    return Contrast(priors, 0.0, moderators), data


def _contrast(records: Records, claim: Claim, settings: SamplerSettings, *,
              documents: bool = True) -> FamilyRun:
    from .comparative import ContrastRun, contrast_document

    model, data = contrast_setup(records, claim)
    if data.k_studies < claim.rule.min_studies:
        return FamilyRun("contrast", None, data.studies)
    fit = model.fit(data, settings, data_sha256=records.sha256)
    doc = contrast_document(ContrastRun(fit, model.summary(fit)), records) if documents else None
    prior = prior_fit(model, fit, settings)
    return FamilyRun("contrast", doc, sorted(data.studies),
                     lambda q, c: model.draws(fit, q),
                     diagnostics_passed=fit.diagnostics.passed,
                     extra={"idata": fit.idata},
                     prior_draws=lambda q, c: model.draws(prior, q))


def _dose_response(records: Records, claim: Claim, settings: SamplerSettings, *,
                   documents: bool = True) -> FamilyRun:
    from .curves import DoseOptions, dose_document, fit_dose
    from .errors import SpecError

    opts = DoseOptions(outcome=claim.outcome, time_h=claim.window.target_h,
                       window_h=claim.window.high_h - claim.window.target_h,
                       form=claim.option("form", "emax"), hill=bool(claim.option("hill", False)),
                       filters=claim.filters, comparator=claim.option("comparator", ()),
                       standardize=claim.outcome == "change",
                       threshold=claim.option("threshold"),
                       moderators=claim.option("moderators", ()),
                       priors=claim.option("priors", ()))
    try:
        fitted = fit_dose(records, opts, settings)
    except SpecError as exc:
        return FamilyRun("dose-response", None, [], extra={"reason": str(exc)})
    data, model, fit = fitted
    studies = sorted(data.studies)
    if len(studies) < claim.rule.min_studies:
        return FamilyRun("dose-response", None, studies)
    observed = {0.0, *map(float, data.doses)}

    prior = prior_fit(model, fit, settings)

    def quantity(f: Any, q: str) -> np.ndarray:  # noqa: ANN401
        head, _, rest = q.partition(":")
        p = model.params(f)
        if head == "effect_at":
            return model.effect(f, np.array([float(rest)]))[:, 0]
        if head == "beta":
            names = model.study_design(data).names
            return flat(f.idata, "beta")[:, names.index(rest)]
        if head == "difference":
            lo, hi = (float(x) for x in rest.split(":"))
            e = model.effect(f, np.array([lo, hi]))
            return e[:, 1] - e[:, 0]
        return p[q]

    def unidentified(q: str, c: Claim) -> str | None:
        head, _, rest = q.partition(":")
        if head in ("ed50", "hill") and prior is not None and head in fit.idata.posterior:
            return _contraction(np.log(flat(fit.idata, head)), np.log(flat(prior.idata, head)),
                                f"log {head}", c.rule.sd_ratio)
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

    doc = None
    if documents:
        doc = dose_document(records, replace(opts, doses=tuple(sorted(observed - {0.0}))),
                            settings, fitted=fitted)
    return FamilyRun("dose-response", doc, studies, lambda q, c: quantity(fit, q), unidentified,
                     fit.diagnostics.passed, extra={"opts": opts, "idata": fit.idata},
                     prior_draws=None if prior is None else lambda q, c: quantity(prior, q))


def _time_course(records: Records, claim: Claim, settings: SamplerSettings, *,
                 documents: bool = True) -> FamilyRun:
    from .curves import TimeOptions, fit_time, time_document, trial_direction

    measure = claim.option("measure", "MD" if claim.outcome == "change" else "OR")
    opts = TimeOptions(outcome=claim.outcome, measure=measure, model=claim.model,
                       form=claim.option("form", "bateman"), filters=claim.filters,
                       rho=float(claim.option("rho", 0.5)), priors=claim.option("priors", ()),
                       timing=str(claim.option("timing", "shared")),
                       likelihood=str(claim.option("likelihood", "normal")),
                       comparator=claim.option("comparator", ()),
                       threshold=float(claim.option("threshold", 0.405)),
                       fraction=float(claim.option("fraction", 0.5)),
                       direction=int(claim.option("direction", 0)))
    from .contrasts import select_time_course
    from .models.time_course import TIME_GRID, time_quantity

    probe = select_time_course(records, opts.outcome, opts.measure, opts.filters,
                               comparator=opts.comparator)
    if probe.k_studies < claim.rule.min_studies:
        return FamilyRun("time-course", None, probe.studies)
    fitted = fit_time(records, opts, settings)  # the same selection: memoised
    data, model, fit = fitted
    doc = time_document(records, opts, settings, fitted=fitted) if documents else None
    direction = trial_direction(opts.outcome, opts.direction)
    observed = sorted({float(t) for t in data.contrasts["time_h"] if float(t) > 0})
    prior = prior_fit(model, fit, settings)

    def draws_for(f: Any) -> Callable[[str, Claim], np.ndarray]:  # noqa: ANN401
        curves: dict[int, np.ndarray] = {}  # the curve on TIME_GRID, per timing group

        def grid(group: int) -> np.ndarray:
            if group not in curves:
                curves[group] = model.effect(f, TIME_GRID, group)
            return curves[group]

        return lambda q, c: time_quantity(model, f, q, direction,
                                          float(c.option("threshold", opts.threshold)),
                                          float(c.option("fraction", opts.fraction)),
                                          _timing_group(fit, c), grid)

    def unidentified(q: str, c: Claim) -> str | None:
        if q.startswith("effect_at:"):
            t = float(q.partition(":")[2])
            if not observed[0] <= t <= observed[-1]:
                return (f"no trial measured the effect near {t:g} h (observed "
                        f"{observed[0]:g}-{observed[-1]:g} h)")
            return None
        if q not in (*TIME_QUANTITIES, "peak"):
            return None
        for b in c.region:
            if np.isfinite(b) and b > 0 and not observed[0] < b < observed[-1]:
                return (f"the region bound {b:g} h has no observations on both sides "
                        f"(observed {', '.join(f'{t:g}' for t in observed)} h), so whether "
                        f"{q} lies below or above it is not informed by data")
        if prior is None:
            return None
        for name, post_x, prior_x in _shape_parameters(fit, prior,
                                                       _timing_group(fit, c)):
            said = _contraction(post_x, prior_x, name, c.rule.sd_ratio)
            if said:
                return said
        return None

    return FamilyRun("time-course", doc, sorted(data.studies), draws_for(fit), unidentified,
                     fit.diagnostics.passed, extra={"opts": opts, "idata": fit.idata},
                     prior_draws=None if prior is None else draws_for(prior))


def _timing_group(fit: Any, claim: Claim) -> int:  # noqa: ANN401
    """Return the index of the timing group a claim names (the first when it names none)."""
    from .errors import SpecError

    name = claim.option("timing_group")
    groups = getattr(fit, "timing_groups", ())
    if name is None or not groups:
        return 0
    if name not in groups:
        raise SpecError(f"claim '{claim.id}': timing_group '{name}' is not one of "
                        f"{', '.join(groups)}")
    return groups.index(name)


def _shape_parameters(fit: Any, prior: Any,  # noqa: ANN401
                      group: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Return the parameters setting a time curve's shape: name, posterior, prior draws."""
    from .models.time_course import _group

    post_p, prior_p = fit.idata.posterior, prior.idata.posterior
    if "t_rise" in post_p and "t_rise" in prior_p:
        def logs(f: Any) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN401
            t_r, t_d = _group(f, "t_rise", group), _group(f, "t_decay", group)
            return np.log(t_r), np.log(t_d - t_r)

        (a, b), (pa, pb) = logs(fit), logs(prior)
        return [("the rise time (log T_r)", a, pa), ("the decay time (log (T_d - T_r))", b, pb)]
    if "knot_effect" in post_p and "knot_effect" in prior_p:
        post_k, prior_k = flat(fit.idata, "knot_effect"), flat(prior.idata, "knot_effect")
        return [(f"the curve at the {t:g} h knot", post_k[:, j], prior_k[:, j])
                for j, t in enumerate(fit.knots)]
    return []


RUNNERS = {"pooled-rate": _pooled_rate, "contrast": _contrast,
           "dose-response": _dose_response, "time-course": _time_course}


@dataclass
class Evaluation:
    """Verdicts and the fits behind them (one fit per distinct model and selection)."""

    results: list[ClaimResult]
    runs: dict[tuple, FamilyRun] = field(default_factory=dict)
    claims_for_run: dict[tuple, list[str]] = field(default_factory=dict)


def evaluate(records: Records, claims: ClaimsFile, settings: SamplerSettings, *,
             progress: bool = False, documents: bool = True) -> Evaluation:
    """Fit every model the claims need (no model twice) and give each claim its verdict.

    ``documents=False`` skips each fit's JSON document (summaries, curves, PSIS-LOO): the
    verdicts are the same, and a sweep, which keeps only them, runs faster.

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

    def run(key: tuple) -> None:
        more = replace(settings, draws=settings.draws * factor[key])
        runner = RUNNERS[model_family(first[key].model)]
        ev.runs[key] = runner(records, first[key], more, documents=documents)

    def judged(c: Claim) -> ClaimResult:
        f = factor[c.fit_key()]
        return _judge(c, ev.runs[c.fit_key()], settings.draws * f,
                      at_cap=1 < f >= c.rule.max_draws_factor)  # extended, to the cap

    for key in first:
        run(key)
    results = {c.id: judged(c) for c in claims.claims}
    while grow := {c.fit_key() for c in claims.claims if _undecided(results[c.id], c)
                   and factor[c.fit_key()] < c.rule.max_draws_factor}:
        for key in grow:
            factor[key] *= 2
            run(key)
        results.update({c.id: judged(c) for c in claims.claims if c.fit_key() in grow})
    ev.results = [results[c.id] for c in claims.claims]
    return ev


def _undecided(result: ClaimResult, claim: Claim) -> bool:
    """Whether the verdict hangs on a probability within 2 MCSE of a threshold."""
    return result.basis == "evidence" and bool(near_thresholds(result.evidence, claim.rule))


def _judge(claim: Claim, run: FamilyRun, draws_per_chain: int, at_cap: bool) -> ClaimResult:
    """Judge one claim on one (possibly extended) fit."""
    if run.draws is None:
        result = judge(claim, None, run.studies, None, None)
        if run.extra.get("reason"):
            result.reason = f"{run.extra['reason']}. {result.reason}"
        return result
    draws = np.asarray(run.draws(claim.quantity, claim), float)
    prior = None
    if run.prior_draws is not None:
        prior = np.asarray(run.prior_draws(claim.quantity, claim), float)
    result = judge(claim, draws, run.studies, run.diagnostics_passed,
                   summarize_censored(draws), unidentified=run.unidentified(claim.quantity,
                                                                            claim),
                   prior=prior, at_cap=at_cap)
    result.draws = draws_per_chain
    from .models.time_course import GRID_END_H

    censored = float(np.mean(np.isinf(draws)))
    if censored > 0:
        said = f"{100 * censored:.0f}%" if censored >= 0.005 else "fewer than 1%"
        result.reason += (f"; {said} of draws never reach the event within "
                          f"{GRID_END_H:g} h (counted as > {GRID_END_H:g} h)")
    return result
