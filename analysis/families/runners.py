"""The built-in families' runners: select a claim's records, fit, and give named draws.

Each runner returns a :class:`~trialmeta.analysis.families.base.FamilyRun`: the fit's JSON
document, functions giving posterior and prior draws of a named quantity (the prior draws
pushed through the same derived-quantity code), the studies used, and a function that says
when a quantity cannot be informed by the data (a dose no trial used, a time outside the
observed range, a shape parameter the data did not move).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..claims.spec import Claim
from ..io.records import Records
from ..sampling.inference import flat
from ..sampling.settings import SamplerSettings
from ..stats.decision import spread
from .base import FamilyRun

#: draws from the prior behind P_prior (Monte Carlo SE of a probability <= 0.006)
PRIOR_DRAWS = 8000
TIME_QUANTITIES = ("onset_h", "time_to_peak_h", "duration_h")


def prior_fit(model: Any, fit: Any, settings: SamplerSettings) -> Any:  # noqa: ANN401
    """Return a copy of ``fit`` whose posterior holds draws from the model's priors.

    None when the model cannot draw from its priors (a plug-in without ``prior_params``).
    """
    from ..io.posterior_store import draws_as_posterior

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
    from ..models.pooled_rate import PooledRate
    from ..select.filters import select_binary_arms

    data = select_binary_arms(records, claim.outcome, claim.window, claim.filters,
                              untimed=bool(claim.option("untimed", False)))
    model = PooledRate(_pooled_rate_priors(claim.option("tau_prior"), claim.option("priors", ())),
                       moderators=claim.option("moderators", ()))
    return model, data


def run_pooled_rate(records: Records, claim: Claim, settings: SamplerSettings, *,
                    documents: bool = True) -> FamilyRun:
    """Fit the pooled-rate model a claim asks for (pooled, predictive rate, tau)."""
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
    from ..errors import SpecError
    from ..models.pooled_rate import PooledRatePriors
    from ..stats.priors import heterogeneity_prior

    priors = replace(PooledRatePriors(), **dict(overrides))
    if spec is None:
        return priors
    prior = heterogeneity_prior(spec)
    if prior.kind != "half-normal":
        raise SpecError(f"pooled-rate takes a half-normal prior on tau, not '{spec}'")
    return replace(priors, tau_scale=prior.scale)


def contrast_setup(records: Records, claim: Claim) -> tuple[Any, Any]:  # noqa: ANN401
    """Return the contrast model a claim asks for and the contrasts it selects."""
    from ..models.contrast import Contrast, default_priors
    from ..select.contrasts import select_contrasts
    from ..stats.priors import heterogeneity_prior

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


def run_contrast(records: Records, claim: Claim, settings: SamplerSettings, *,
                 documents: bool = True) -> FamilyRun:
    """Fit the contrast model a claim asks for (pooled effect vs control)."""
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


def run_dose_response(records: Records, claim: Claim, settings: SamplerSettings, *,
                      documents: bool = True) -> FamilyRun:
    """Fit the dose-response curve a claim asks for (ED50, effects at doses)."""
    from ..errors import SpecError
    from .curves import DoseOptions, dose_document, fit_dose

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


def run_time_course(records: Records, claim: Claim, settings: SamplerSettings, *,
                    documents: bool = True) -> FamilyRun:
    """Fit the time course a claim asks for (onset, peak, duration, effects at times)."""
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
    from ..models.time_course import TIME_GRID, time_quantity
    from ..select.contrasts import select_time_course

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
    from ..errors import SpecError

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
    from ..models.time_course import _group

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


def network_setup(records: Records, claim: Claim):  # noqa: ANN201
    """Return the network model a claim asks for and the arms it selects."""
    from ..models.network import Network, default_network_priors, select_network
    from ..stats.priors import heterogeneity_prior

    measure = claim.option("measure", "MD" if claim.outcome == "change" else "OR")
    data = select_network(records, claim.outcome, measure, claim.window, claim.filters,
                          reference=claim.option("reference", "placebo"),
                          node=claim.option("node", "treatment"),
                          inert=tuple(claim.option("inert", ())))
    tau = claim.option("tau_prior")
    priors = default_network_priors(measure, heterogeneity_prior(tau) if tau else None)
    return Network(replace(priors, **dict(claim.option("priors", ())))), data


def network_quantity(d: np.ndarray, tau: np.ndarray, nodes: list[str], q: str,
                     higher_is_better: bool) -> np.ndarray:
    """Draws of ``effect:A`` (vs the reference), ``effect:A:B``, ``sucra:A`` or ``tau``.

    ``d`` holds draws x nodes of the effects against the reference (column 0 is zero).
    """
    head, _, rest = q.partition(":")
    if q == "tau":
        return tau
    names = rest.split(":")
    if head == "effect":
        a = d[:, nodes.index(names[0])]
        return a if len(names) == 1 else a - d[:, nodes.index(names[1])]
    score = d if higher_is_better else -d  # SUCRA of one draw: the share of others it beats
    beaten = (score[:, [nodes.index(names[0])]] > score).sum(axis=1)
    return beaten / (len(nodes) - 1)


def run_network(records: Records, claim: Claim, settings: SamplerSettings, *,
                documents: bool = True) -> FamilyRun:
    """Fit the network a claim asks for (effects between nodes, SUCRA, tau)."""
    from ..errors import SpecError
    from ..models.network import checked_document, fragile_support, informing_studies, prior_effects

    try:
        model, data = network_setup(records, claim)
    except SpecError as exc:
        return FamilyRun("network", None, [], extra={"reason": str(exc)})
    studies = sorted(data.all_studies)
    if len(studies) < claim.rule.min_studies:
        return FamilyRun("network", None, studies)
    fit = model.fit(data, settings, data_sha256=records.sha256)
    better = claim.outcome != "change"
    doc = (checked_document(fit, settings, better, data_sha256=records.sha256)
           if documents else None)
    prior_d, prior_tau = prior_effects(data, model.priors, PRIOR_DRAWS,
                                       np.random.default_rng([settings.seed, 0x5EED]))
    post_d, post_tau = flat(fit.idata, "d"), flat(fit.idata, "tau")

    def missing(q: str) -> list[str]:
        return [n for n in q.partition(":")[2].split(":") if q != "tau" and
                n not in data.nodes]

    def unidentified(q: str, c: Claim) -> str | None:
        head, _, rest = q.partition(":")
        named = [] if q == "tau" else rest.split(":")
        if missing(q):
            return (f"{', '.join(missing(q))} is not a node of the network connected to "
                    f"{data.reference} (nodes: {', '.join(data.nodes)}); trials comparing it "
                    "with a connected treatment would settle it")
        if head != "effect":
            return None
        a, b = named if len(named) == 2 else (named[0], data.reference)
        alone = fragile_support(data, a, b, c.rule.min_studies)
        if alone:
            return (f"the comparison of {a} and {b} rests on {', '.join(alone)} alone: "
                    f"without {'it' if len(alone) == 1 else 'them'} the network does not "
                    f"connect the two (studies informing it: "
                    f"{', '.join(informing_studies(data, a, b))}); at least "
                    f"{c.rule.min_studies} independent trials should link them")
        return None

    return FamilyRun("network", doc, studies,
                     lambda q, c: None if missing(q) else
                     network_quantity(post_d, post_tau, data.nodes, q, better),
                     unidentified, fit.diagnostics.passed,
                     extra={"idata": fit.idata, "nodes": data.nodes},
                     prior_draws=lambda q, c: None if missing(q) else
                     network_quantity(prior_d, prior_tau, data.nodes, q, better))


def run_agent_doses(records: Records, claim: Claim, settings: SamplerSettings, *,
                    documents: bool = True) -> FamilyRun:
    """Fit the multi-agent Emax network a dose-response claim with ``agents`` asks for."""
    from ..errors import SpecError
    from ..models.dose_agents import (
        INERT,
        CurveDraws,
        agent_dose_document,
        claim_priors,
        fit_agents,
    )

    agents = claim.option("agents")
    names = () if agents in ("all", ("all",)) else tuple(agents)
    measure = "MD" if claim.outcome == "change" else "OR"
    try:
        priors = claim_priors(measure, claim.option("priors", ()))
        data, model, fit = fit_agents(records, claim.outcome, claim.window, claim.filters,
                                      settings, agents=names, ed50=claim.option("ed50",
                                                                                "per-agent"),
                                      emax=claim.option("emax", "fixed"),
                                      inert=tuple(claim.option("inert", INERT)), priors=priors)
    except SpecError as exc:
        return FamilyRun("dose-response", None, [], extra={"reason": str(exc)})
    studies = sorted(data.studies)
    if len(studies) < claim.rule.min_studies:
        return FamilyRun("dose-response", None, studies)
    post = CurveDraws.posterior(fit)
    prior = model.prior_draws(data, PRIOR_DRAWS, np.random.default_rng([settings.seed, 0x5EED]))

    def missing(q: str) -> list[str]:
        parts = q.split(":")
        named = [] if q == "tau" else [parts[1]] + (parts[3:4] if parts[0] == "equivalent"
                                                    else [])
        return [a for a in named if a not in data.agents]

    def unidentified(q: str, c: Claim) -> str | None:
        if missing(q):
            return (f"{', '.join(missing(q))} has no dosed arm in the network (agents: "
                    f"{', '.join(data.agents)})")
        parts = q.split(":")
        if parts[0] in ("effect_at", "equivalent"):
            seen = data.observed_doses(parts[1])
            if float(parts[2]) not in seen:
                return (f"no trial gave {parts[1]} at {float(parts[2]):g} (observed: "
                        f"{', '.join(f'{x:g}' for x in seen)}); the value would come from the "
                        "assumed Emax curve, not from data")
        if parts[0] in ("ed50", "emax"):
            x, p = post.quantity(q), prior.quantity(q)
            if parts[0] == "ed50":
                x, p = np.log(x), np.log(p)
            return _contraction(x, p, f"{'log ' if parts[0] == 'ed50' else ''}{q}",
                                c.rule.sd_ratio)
        return None

    doc = agent_dose_document(fit) if documents else None
    return FamilyRun("dose-response", doc, studies,
                     lambda q, c: None if missing(q) else post.quantity(q),
                     unidentified, fit.diagnostics.passed,
                     extra={"idata": fit.idata, "agents": data.agents},
                     prior_draws=lambda q, c: None if missing(q) else prior.quantity(q))
