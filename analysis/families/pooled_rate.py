"""The pooled-rate family: one arm type's response or remission rate, pooled.

Class, runner and JSON document (see :mod:`trialmeta.analysis.models.pooled_rate` for the
model and its equations).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..claims.spec import Claim
from ..errors import SpecError
from ..io.files import rounded
from ..io.provenance import command_line
from ..io.records import Records
from ..sampling.settings import SamplerSettings
from .base import FamilyRun, Figure
from .common import (
    ModeratedFamily,
    _shown,
    check_clusters,
    check_flag,
    prior_fit,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..models.pooled_rate import FitResult, PooledRateSummary
    from ..select.filters import Filters, TimeWindow


class PooledRateFamily(ModeratedFamily):
    """Random-effects logistic pooling of one arm type's response or remission rate."""

    name = "pooled-rate"
    description = "hierarchical logistic pooling of single-arm response/remission rates"
    outcomes = ("response", "remission", "events")
    #: a claim on a file without time points pools every arm's one row, unwindowed
    time_optional = True
    quantities = ("pooled_rate", "average_rate", "predictive_rate", "tau", "mu_logit")
    prior_settings = ("mu_mean", "mu_sd", "tau_scale")
    prior_cells = (("mu_sd", 2.0),)
    tau_prior = True
    sbc_quantities = (("mu", "mu", None), ("tau", "tau", None),
                      ("pooled_rate", "pooled_rate", None), ("theta[first arm]", "theta", 0))



    #: ``untimed``: also arms whose counts have no time point; ``cluster``: columns above
    #: the study, outer first
    options = frozenset({"untimed", "cluster"})

    def check_options(self, options: dict[str, Any], fail: Any) -> None:
        """Check ``untimed`` (true or false) and ``cluster`` (column names)."""
        check_flag(options, "untimed", fail)
        check_clusters(options, fail)

    def describe_priors(self, model: str, priors: dict[str, Any], measure: str) -> str:
        """Describe the pooled-rate priors as distributions."""
        g = _shown(priors)
        return (f"μ ~ N({g['mu_mean']}, {g['mu_sd']}) on the logit scale; τ ~ HalfNormal("
                f"{g['tau_scale']}); σ (study, when a study has several arms, and each "
                f"cluster) ~ HalfNormal("
                f"{g.get('study_scale', '1')}); moderator coefficients ~ N(0, {g['mu_sd']})")

    def run(self, records: Records, claim: Claim, settings: SamplerSettings, *,
            documents: bool = True) -> FamilyRun:
        """Select the claim's records and fit (:func:`run_pooled_rate`)."""
        return run_pooled_rate(records, claim, settings, documents=documents)

    def default_prior(self, claim: Claim, setting: str) -> float:
        """Return the default of a pooled-rate prior setting."""
        from ..models.pooled_rate import PooledRatePriors

        return float(getattr(PooledRatePriors(), setting))

    def report_item(self, run: FamilyRun, fid: str, claim_ids: list[str]
                    ) -> tuple[str, dict[str, Any]]:
        """Show the fit in "Pooled rates" with a forest plot."""
        r = run.pooled_run
        label = f"claims {', '.join(claim_ids)}" if claim_ids else "the data alone"
        image = Figure("forest", {"arms": r.summary.arms, "estimates": r.summary.estimates,
                                  "outcome": r.outcome,
                                  "title": f"{r.outcome}{at_time(r.window)} ({label})"})
        return "fits", {"id": fid, "claims": claim_ids, "doc": run.doc, "svg": image}

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:
        """Select the response arms of the spec's treatments."""
        from ..models.pooled_rate import PooledRate
        from ..select.filters import Filters, TimeWindow, select_binary_arms

        model = PooledRate()
        data = model.prepare(select_binary_arms(records, spec.outcome,
                                                TimeWindow.around(spec.time_h),
                                                Filters(treatment=spec.treatments)))
        return model, data, data.k_studies

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:
        """Put the simulated events into the arms."""
        from ..select.filters import BinaryArms

        t = data.table.assign(events=np.asarray(simulated["events"], int))
        return BinaryArms(data.outcome, t, list(data.dropped))


def pooled_rate_setup(records: Records, claim: Claim) -> tuple[Any, Any]:
    """Return the pooled-rate model a claim asks for and the arms it selects."""
    from ..models.pooled_rate import PooledRate
    from ..select.filters import select_binary_arms

    data = select_binary_arms(records, claim.outcome, claim.window, claim.filters,
                              untimed=bool(claim.option("untimed", False)))
    model = PooledRate(_pooled_rate_priors(claim.option("tau_prior"), claim.option("priors", ())),
                       moderators=claim.option("moderators", ()),
                       clusters=tuple(claim.option("cluster", ())))
    return model, data


def at_time(window: Any) -> str:
    """Say " at 24 h" for a window, nothing for an unwindowed selection."""
    return "" if window is None else f" at {window.target_h:g} h"


def run_pooled_rate(records: Records, claim: Claim, settings: SamplerSettings, *,
                    documents: bool = True) -> FamilyRun:
    """Fit the pooled-rate model a claim asks for (pooled, predictive rate, tau)."""
    model, data = pooled_rate_setup(records, claim)
    studies = sorted(set(data.table["study"]))
    if len(studies) < claim.rule.min_studies:
        return FamilyRun("pooled-rate", None, studies)
    fit = model.fit(data, settings, data_sha256=records.sha256)
    doc, pooled = None, None
    if documents:
        pooled = PooledRateRun(claim.outcome, claim.window, claim.filters, fit,
                               model.summary(fit))
        doc = pooled_rate_document(pooled, records)
    prior = prior_fit(model, fit, settings)
    return FamilyRun("pooled-rate", doc,
                     sorted(set(fit.data.table["study"])),
                     lambda q, c: model.draws(fit, q), diagnostics_passed=fit.diagnostics.passed,
                     posterior=fit.idata, pooled_run=pooled,
                     prior_draws=lambda q, c: model.draws(prior, q),
                     fast_refits=model.kernel(fit.data) is not None)


def _pooled_rate_priors(spec: str | None, overrides: tuple = ()):
    """Default priors, with tau's half-normal scale from a ``half-normal:S`` option."""
    from ..models.pooled_rate import PooledRatePriors
    from ..stats.priors import heterogeneity_prior

    priors = replace(PooledRatePriors(), **dict(overrides))
    if spec is None:
        return priors
    prior = heterogeneity_prior(spec)
    if prior.kind != "half-normal":
        raise SpecError(f"pooled-rate takes a half-normal prior on tau, not '{spec}'")
    return replace(priors, tau_scale=prior.scale)


@dataclass
class PooledRateRun:
    """What one pooled-rate analysis used and found."""

    outcome: str
    window: TimeWindow | None
    filters: Filters
    fit: FitResult
    summary: PooledRateSummary


def pooled_rate_document(run: PooledRateRun, records: Records) -> dict[str, Any]:
    """Build the ``--json`` document of a pooled-rate fit."""
    fit, s = run.fit, run.summary
    arms = s.arms.astype(object).where(s.arms.notna(), None).to_dict("records")
    return rounded({
        "model": fit.model,
        "outcome": run.outcome,
        "time_h": None if run.window is None else run.window.target_h,
        "window_h": None if run.window is None else [run.window.low_h, run.window.high_h],
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


def pooled_rate_subgroups(data: Any, column: str, settings: SamplerSettings, *,
                          data_sha256: str = "") -> dict[str, Any]:
    """Pool each level of ``column`` on its own; the differences from one moderated model.

    As :func:`~trialmeta.analysis.families.contrast.bayesian_subgroups` for rates: each
    level's pooled rate is the model fitted to that level's arms alone; ``beta:COL=level``
    (logit scale) is the level's difference from the reference level in one model with the
    column as a categorical moderator, with P(difference > 0).
    """
    from ..models.pooled_rate import PooledRate
    from ..select.moderators import subgroup_levels

    t = data.table
    own = [c for c in t.columns if c not in ("label", "line", "events", "n", "source")]
    levels, text = subgroup_levels(t, column, own)
    groups = []
    for level in levels:
        sub = replace(data, table=t[text == level].reset_index(drop=True), dropped=[])
        row: dict[str, Any] = {"level": level, "arms": len(sub.table),
                               "k": int(sub.table["study"].nunique())}
        if row["arms"] < 2:
            row["status"] = "fewer than two arms: not pooled on its own"
        else:
            model = PooledRate()
            fit = model.fit(sub, settings, data_sha256=data_sha256)
            e = model.summary(fit).estimates
            row.update(status="fitted", pooled_rate=e["pooled_rate"], tau=e["tau"],
                       diagnostics_passed=fit.diagnostics.passed)
        groups.append(row)
    spec = f"{column}:categorical"
    model = PooledRate(moderators=(spec,))
    fit = model.fit(data, settings, data_sha256=data_sha256)
    differences = []
    for term, e in model.summary(fit).estimates.items():
        if term.startswith("beta:"):
            draws = np.asarray(model.draws(fit, term))
            differences.append({"term": term.removeprefix("beta:"), **e,
                                "p_positive": float(np.mean(draws > 0))})
    named = {d["term"] for d in differences}
    return {"column": column, "groups": groups, "scale": "logit",
            "reference": next((lv for lv in levels if f"{column}={lv}" not in named), None),
            "differences": differences, "diagnostics_passed": fit.diagnostics.passed}
