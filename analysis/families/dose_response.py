"""The dose-response family: an effect curve over dose, one agent or several.

Class and runners (one agent: ``run_dose_response``; a multi-agent network:
``run_agent_doses``); the curve machinery shared with time-course is in ``curves``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..claims.spec import Claim
from ..errors import SpecError
from ..io.records import Records
from ..sampling.inference import flat
from ..sampling.settings import SamplerSettings
from .base import FamilyRun
from .common import (
    DEPRESSION_SCALES,
    PRIOR_DRAWS,
    _contraction,
    _events_into_arms,
    _moderated,
    _shown,
    check_flag,
    check_number,
    prior_fit,
)
from .curves import CurveFamily


def _agent_quantity_problem(quantity: str, known: tuple[str, ...]) -> str | None:
    """Say what is wrong with a multi-agent quantity, or None."""
    parts = quantity.split(":")
    shapes = {"effect_at": 3, "ed50": 2, "emax": 2, "equivalent": 4}
    if quantity == "tau":
        return None
    if parts[0] in shapes and len(parts) == shapes[parts[0]] and all(parts):
        if parts[0] in ("effect_at", "equivalent"):
            try:
                if float(parts[2]) <= 0:
                    return f"the dose in '{quantity}' must be positive"
            except ValueError:
                return f"'{parts[2]}' in '{quantity}' is not a dose"
        return None
    return (f"multi-agent dose-response has no quantity '{quantity}'; known: "
            f"{', '.join(known)}")


class DoseResponseFamily(CurveFamily):
    """Emax (and other forms) dose-response over arms at several doses."""

    name = kind = "dose-response"
    description = ("dose-response curve (Emax, log-linear, linear, piecewise) across doses, "
                   "or Emax curves of several agents (agents:)")
    quantities = ("ed50", "theta", "tau", "effect_at:DOSE", "difference:LOW:HIGH")
    prior_settings = ("amplitude_sd", "tau_scale", "ed50_sd", "hill_sd", "baseline_sd")
    prior_cells = (("ed50_sd", 2.0), ("amplitude_sd", 2.0), ("tau_scale", 2.0))
    sbc_quantities = (("theta", "theta", None), ("tau", "tau", None), ("ed50", "ed50", None))

    options = frozenset({"agents", "ed50", "emax", "inert", "hill", "threshold"})
    AGENT_QUANTITIES = ("effect_at:AGENT:DOSE", "ed50:AGENT", "emax:AGENT",
                        "equivalent:AGENT:DOSE:OTHER", "tau")


    def measure(self, claim: Claim) -> str:
        """Return OR for counts, MD for a change in a scale (the curves' analysis scale)."""
        return "MD" if claim.outcome == "change" else "OR"

    def describe_priors(self, model: str, priors: dict[str, Any], measure: str) -> str:
        """Describe the dose-response priors as distributions."""
        g = _shown(priors)
        return (f"amplitude ~ N(0, {g['amplitude_sd']}); τ ~ HalfNormal({g['tau_scale']}); "
                f"log ED50 ~ N(log mid-dose, {g['ed50_sd']}); log Hill ~ N(0, {g['hill_sd']}); "
                f"study baselines ~ N(0, {g['baseline_sd']})")

    def forms(self, model: str, options: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Return the dose-response forms (none for the multi-agent Emax network)."""
        from ..models.dose_response import FORMS

        return () if (options or {}).get("agents") else tuple(FORMS)

    def check_options(self, options: dict[str, Any], fail: Any) -> None:
        """Check the multi-agent fields: agents, ED50 and Emax pooling, inert controls."""
        check_flag(options, "hill", fail)
        check_number(options, "threshold", fail)
        from ..models.dose_agents import ED50_POOLING, EMAX_POOLING

        if "agents" not in options:
            for key in ("ed50", "emax", "inert"):
                if key in options:
                    raise fail(key, "only multi-agent claims (with 'agents') take it")
            return
        v = options["agents"]
        names = v if isinstance(v, list) else [v]
        if not names or not all(isinstance(x, str) for x in names):
            raise fail("agents", "must be 'all' or a list of agent names")
        options["agents"] = "all" if names == ["all"] else tuple(names)
        for key, allowed in (("ed50", ED50_POOLING), ("emax", EMAX_POOLING)):
            if options.get(key, allowed[0]) not in allowed:
                raise fail(key, f"use {' or '.join(allowed)}")
        if "inert" in options:
            inert = options["inert"] if isinstance(options["inert"], list) \
                else [options["inert"]]
            if not all(isinstance(x, str) for x in inert):
                raise fail("inert", "must be a name or a list of names")
            options["inert"] = tuple(inert)
        if "form" in options or "hill" in options:
            raise fail("form", "the multi-agent network fits Emax curves (no form or hill)")

    def check_quantity(self, quantity: str, options: dict[str, Any]) -> str | None:
        """Also accept ``effect_at:DOSE``, ``difference:LOW:HIGH`` and moderators' ``beta``.

        A multi-agent claim names the agent: ``effect_at:AGENT:DOSE``, ``ed50:AGENT``,
        ``emax:AGENT``, ``equivalent:AGENT:DOSE:OTHER`` or ``tau``.
        """
        if options.get("agents"):
            return _agent_quantity_problem(quantity, self.AGENT_QUANTITIES)
        head, _, rest = quantity.partition(":")
        try:
            if head == "effect_at":
                float(rest)
                return None
            if head == "difference":
                lo, hi = (float(x) for x in rest.split(":"))
                return None if lo < hi else "difference:LOW:HIGH needs LOW < HIGH"
        except ValueError:
            pass
        if _moderated(quantity, options):
            return None
        return super().check_quantity(quantity, options)

    def run(self, records: Records, claim: Claim, settings: SamplerSettings, *,
            documents: bool = True) -> FamilyRun:
        """Fit the curve, or the multi-agent network (:mod:`runners`)."""
        if claim.option("agents"):
            return run_agent_doses(records, claim, settings, documents=documents)
        return run_dose_response(records, claim, settings, documents=documents)

    def report_item(self, run: FamilyRun, fid: str, claim_ids: list[str]
                    ) -> tuple[str, dict[str, Any]]:
        """Show the curve; a multi-agent network gets a section of its own."""
        if run.agents is not None:
            return "sections", {"renderer": "agents", "doc": run.doc, "id": fid,
                                "claims": claim_ids}
        return super().report_item(run, fid, claim_ids)

    def default_prior(self, claim: Claim, setting: str) -> float:
        """Return the default (unscaled: claims fit counts or SMDs) of a prior setting."""
        from ..models.dose_response import DosePriors

        if claim.option("agents"):
            from ..models.dose_agents import claim_prior_value

            return claim_prior_value("MD" if claim.outcome == "change" else "OR", setting)

        return float(getattr(DosePriors(), setting))

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:
        """Select IV arms of the first treatment at several doses, depression scales."""
        from ..models.dose_response import DoseResponse
        from ..select.doses import select_dose_arms
        from ..select.filters import Filters, TimeWindow

        data = select_dose_arms(records, spec.outcome, TimeWindow.around(spec.time_h),
                                Filters(treatment=spec.treatments[:1], route=("iv",),
                                        scale=DEPRESSION_SCALES))
        return DoseResponse("emax"), data, len(data.studies)

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:
        """Put the simulated events into the arms."""
        return _events_into_arms(data, simulated)


def run_dose_response(records: Records, claim: Claim, settings: SamplerSettings, *,
                      documents: bool = True) -> FamilyRun:
    """Fit the dose-response curve a claim asks for (ED50, effects at doses)."""
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
        return FamilyRun("dose-response", None, [], reason=str(exc))
    data, model, fit = fitted
    studies = sorted(data.studies)
    if len(studies) < claim.rule.min_studies:
        return FamilyRun("dose-response", None, studies)
    observed = {0.0, *map(float, data.doses)}

    prior = prior_fit(model, fit, settings)

    def quantity(f: Any, q: str) -> np.ndarray:
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
                     fit.diagnostics.passed, curve_options=opts, posterior=fit.idata,
                     prior_draws=None if prior is None else lambda q, c: quantity(prior, q),
                     fast_refits=model.kernel(fit.data) is not None)


def run_agent_doses(records: Records, claim: Claim, settings: SamplerSettings, *,
                    documents: bool = True) -> FamilyRun:
    """Fit the multi-agent Emax network a dose-response claim with ``agents`` asks for."""
    from ..models.dose_agents import (
        INERT,
        CurveDraws,
        agent_dose_document,
        claim_priors,
        fit_agents,
    )

    agents = claim.option("agents")
    names = () if agents in ("all", ("all",)) else tuple(agents)
    measure = DoseResponseFamily().measure(claim)
    try:
        priors = claim_priors(measure, claim.option("priors", ()))
        data, model, fit = fit_agents(records, claim.outcome, claim.window, claim.filters,
                                      settings, agents=names, ed50=claim.option("ed50",
                                                                                "per-agent"),
                                      emax=claim.option("emax", "fixed"),
                                      inert=tuple(claim.option("inert", INERT)), priors=priors)
    except SpecError as exc:
        return FamilyRun("dose-response", None, [], reason=str(exc))
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
                     posterior=fit.idata, agents=tuple(data.agents),
                     prior_draws=lambda q, c: None if missing(q) else prior.quantity(q))
