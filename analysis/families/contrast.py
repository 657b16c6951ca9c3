"""The contrast family: active vs control within trials, Bayesian and frequentist.

Class, runner (``run_contrast_claim``), the contrast analyses the command line and the
report's comparisons run (``run_contrast``, ``run_frequentist``) and their documents.
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
from ..models.contrast import (
    PET_SLOPE_SD,
    SMALL_STUDY,
    Contrast,
    ContrastFit,
    ContrastPriors,
    ContrastSummary,
)
from ..sampling.inference import flat, loo
from ..sampling.settings import SamplerSettings
from ..select.contrasts import (
    RATIO,
    ContrastData,
    contrast_effects,
    informative_contrasts,
    moderator_names,
)
from ..select.moderators import design_matrix, subgroup_levels
from ..stats.effects import Effects
from ..stats.priors import tau_presses_prior
from .base import FamilyRun
from .common import (
    ModeratedFamily,
    _shown,
    check_clusters,
    prior_fit,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..stats.frequentist import MantelHaenszel, MetaResult


#: the quantities a small-study adjustment moves (the pooled effect and what derives from it)
ADJUSTABLE = ("effect", "predictive_effect", "or", "rr", "rd")


class ContrastFamily(ModeratedFamily):
    """Random-effects pooling of active-vs-control contrasts (arm-based for counts)."""

    name = "contrast"
    description = "random-effects meta-analysis of active-vs-control contrasts"
    time_optional = True
    quantities = ("effect", "predictive_effect", "tau", "or", "rr", "rd", "control_rate")
    prior_settings = ("effect_sd", "baseline_sd")
    prior_cells = (("effect_sd", 2.0), ("baseline_sd", 2.0))
    tau_prior = True
    sbc_quantities = (("d", "d", None), ("tau", "tau", None),
                      ("delta[first contrast]", "delta", 0))
    #: ``small_study: pet`` (the Bayesian PET adjustment); ``cluster``: columns above the
    #: study, outer first (a three- or more-level model)
    options = frozenset({"small_study", "cluster"})

    def check_options(self, options: dict[str, Any], fail: Any) -> None:
        """Check ``small_study`` (pet) and ``cluster`` (a name or a list of names)."""
        if "small_study" in options and options["small_study"] not in SMALL_STUDY[1:]:
            raise fail("small_study", f"use {' or '.join(str(x) for x in SMALL_STUDY[1:])}")
        check_clusters(options, fail)

    def sweep_cells(self) -> list[tuple[str, str]]:
        """Refit with the small-study adjustment (PET in the Bayesian model)."""
        return [("bias", "pet")]

    def vary(self, claim: Claim, kind: str, value: str, options: dict[str, Any]) -> bool:
        """Apply ``bias:pet`` to a claim on the pooled effect that is not adjusted yet."""
        if kind != "bias" or options.get("small_study") or claim.quantity not in ADJUSTABLE:
            return False
        options["small_study"] = value
        return True



    def measure(self, claim: Claim) -> str:
        """Return the claim's measure: by default OR for counts, SMD for a change in a scale."""
        return claim.option("measure", "SMD" if claim.outcome == "change" else "OR")

    def describe_priors(self, model: str, priors: dict[str, Any], measure: str) -> str:
        """Describe the contrast priors as distributions (baselines for binary measures)."""
        g, tau = _shown(priors), priors.get("tau") or {}
        base = (f"study baselines (control log odds) ~ N(0, {g['baseline_sd']}); "
                if measure in ("OR", "RR", "RD") else "")
        return f"d ~ N(0, {g['effect_sd']}) ({measure}); {base}τ: {tau.get('label', tau)}"

    def run(self, records: Records, claim: Claim, settings: SamplerSettings, *,
            documents: bool = True) -> FamilyRun:
        """Select the claim's records and fit (:func:`run_contrast_claim`)."""
        return run_contrast_claim(records, claim, settings, documents=documents)

    def default_prior(self, claim: Claim, setting: str) -> float:
        """Return the default of a contrast prior setting for the claim's measure."""
        from ..models.contrast import default_priors

        return float(getattr(default_priors(self.measure(claim)), setting))

    def report_item(self, run: FamilyRun, fid: str, claim_ids: list[str]) -> None:
        """No section of its own: the report's contrast section shows these pools."""
        return None

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:
        """Select the contrasts of the spec's treatments."""
        from ..models.contrast import Contrast
        from ..select.contrasts import select_contrasts
        from ..select.filters import Filters, TimeWindow

        data = select_contrasts(records, spec.outcome, spec.measure,
                                TimeWindow.around(spec.time_h),
                                Filters(treatment=spec.treatments))
        return Contrast(keep_uninformative=True), data, data.k_studies

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:
        """Put the simulated active and control events into the 2x2 tables."""
        from dataclasses import replace

        c = data.contrasts
        s_idx = c["study"].map({s: i for i, s in enumerate(data.studies)}).to_numpy()
        y_c = np.asarray(simulated["events_control"], int)[s_idx]
        a = np.asarray(simulated["events_active"], int)
        c = c.assign(a=a, b=(c["a"] + c["b"]).to_numpy() - a, c=y_c,
                     d=(c["c"] + c["d"]).to_numpy() - y_c)
        return replace(data, contrasts=c)


def contrast_setup(records: Records, claim: Claim) -> tuple[Any, Any]:
    """Return the contrast model a claim asks for and the contrasts it selects."""
    from ..models.contrast import Contrast, contrast_unit, default_priors
    from ..select.contrasts import select_contrasts
    from ..stats.priors import heterogeneity_prior

    measure = ContrastFamily().measure(claim)
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
        priors = replace(default_priors(measure, tau, unit=contrast_unit(data)), **overrides)
    return Contrast(priors, 0.0, moderators, small_study=claim.option("small_study"),
                    clusters=tuple(claim.option("cluster", ()))), data


def run_contrast_claim(records: Records, claim: Claim, settings: SamplerSettings, *,
                 documents: bool = True) -> FamilyRun:
    """Fit the contrast model a claim asks for (pooled effect vs control)."""
    model, data = contrast_setup(records, claim)
    if data.binary:
        data = informative_contrasts(data)
    if data.k_studies < claim.rule.min_studies:
        gone = [d for d in data.dropped if "odds ratio" in str(d["reason"])]
        reason = (f"{len(gone)} stud(ies) left out with no events (or only events) in every "
                  f"arm, which carry no information about the odds ratio: "
                  f"{', '.join(str(d['study']) for d in gone)}") if gone else None
        return FamilyRun("contrast", None, data.studies, reason=reason)
    fit = model.fit(data, settings, data_sha256=records.sha256)
    doc = contrast_document(ContrastRun(fit, model.summary(fit)), records) if documents else None
    prior = prior_fit(model, fit, settings)
    return FamilyRun("contrast", doc, sorted(data.studies),
                     lambda q, c: model.draws(fit, q),
                     diagnostics_passed=fit.diagnostics.passed,
                     posterior=fit.idata,
                     prior_draws=lambda q, c: model.draws(prior, q),
                     fast_refits=model.kernel(fit.data) is not None)


@dataclass
class FrequentistRun:
    """A frequentist analysis of contrasts with its diagnostics."""

    data: ContrastData
    method: str
    hksj: bool | str
    effects: Effects
    result: MetaResult
    mantel_haenszel: MantelHaenszel | None
    leave_one_out: list[MetaResult]
    egger: dict[str, Any] | None
    meta_regression: dict[str, Any] | None = None
    subgroups: dict[str, Any] | None = None
    bias: dict[str, Any] | None = None
    multilevel: dict[str, Any] | None = None
    robust: dict[str, Any] | None = None


def _metafor_design(data: ContrastData, specs: tuple[str, ...]
                    ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Return the rows with every moderator, their design matrix and terms.

    The matrix has an intercept and metafor's coding; the last item says how each moderator
    was coded.
    """
    design = design_matrix(data.contrasts, specs, known=moderator_names(data.contrasts),
                           coding="metafor")
    keep = ~design.missing
    x = np.column_stack([np.ones(int(keep.sum())), design.x[keep]])
    return keep, x, ["intercept", *design.names], design.description


def _regression_document(data: ContrastData, eff: Effects, specs: tuple[str, ...],
                         method: str, hksj: bool | str) -> dict[str, Any]:
    """``rma(yi, vi, mods = ~ ...)``: coefficients, QM, QE and tau²."""
    from ..stats.frequentist import meta_regression

    keep, x, terms, coding = _metafor_design(data, specs)
    fit = meta_regression(eff.yi[keep], eff.vi[keep], x, terms, method, hksj=hksj)
    doc = fit.as_dict()
    doc["moderators"] = list(specs)
    doc["coding"] = coding
    if (~keep).any():
        labels = np.asarray(_contrast_labels(data))[~keep]
        doc["left_out"] = [str(lab) for lab in labels]
    return doc


def _subgroup_document(data: ContrastData, eff: Effects, column: str, method: str,
                       hksj: bool | str) -> dict[str, Any]:
    """Fit each level (``rma(subset = COL == level)``) and test the difference.

    The between-group test is the QM of ``rma(mods = ~ factor(COL))``: one tau² across groups.
    """
    from ..stats.frequentist import meta_analysis

    c = data.contrasts
    levels, text = subgroup_levels(c, column, moderator_names(c))
    labels = _contrast_labels(data)
    groups = []
    for level in levels:
        rows = text == level
        k = int(rows.sum())
        res = meta_analysis(eff.yi[rows], eff.vi[rows], method if k > 1 else "FE",
                            hksj=hksj if k > 1 else False)
        groups.append({"level": level, "k": k, "estimate": res.estimate, "se": res.se,
                       "ci_low": res.ci_low, "ci_high": res.ci_high, "tau2": res.tau2,
                       "I2": res.I2 if k > 1 else None,
                       "contrasts": [lab for lab, r in zip(labels, rows, strict=True)
                                     if r]})
    between = _regression_document(data, eff, (f"{column}:categorical",), method, hksj)
    doc = {"column": column, "groups": groups, "Q_between": between["QM"],
           "Q_between_df": between["QM_df"], "Q_between_p": between["QM_p"],
           "test": "QM of rma(mods = ~ factor(COL)): one tau² across groups",
           "tau2_common": between["tau2"]}
    if between["QM_df_residual"] is not None:
        doc["Q_between_df_residual"] = between["QM_df_residual"]
    if "left_out" in between:
        doc["left_out"] = between["left_out"]
    return doc


def _column(data: ContrastData, column: str, what: str) -> np.ndarray:
    """Return the contrast-table column a dependence option names (study, or a user's)."""
    c = data.contrasts
    if column not in c.columns:
        raise SpecError(f"{what} column '{column}' is not available here; known: study, "
                        f"{', '.join(sorted(moderator_names(c)))}")
    values = c[column].to_numpy(dtype=object)
    missing = [lab for lab, val in zip(_contrast_labels(data), values, strict=True)
               if val is None or val != val]
    if missing:
        raise SpecError(f"{what} column '{column}' is empty for {', '.join(missing[:10])}"
                        + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
    return values


def _dependence(data: ContrastData, eff: Effects, method: str, clusters: tuple[str, ...],
                robust_column: str | None, moderators: tuple[str, ...]
                ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Fit the multilevel model (``--cluster``) and the robust errors (``--robust``)."""
    from ..stats.dependence import multilevel, robust

    levels = None
    if clusters:
        levels = multilevel(eff.yi, eff.vi, [_column(data, c, "cluster") for c in clusters],
                            list(clusters))
    sandwich = None
    if robust_column:
        groups = _column(data, robust_column, "robust cluster")
        keep, x, terms, _ = _metafor_design(data, moderators)
        if not keep.all():
            raise SpecError("robust errors with moderators need every contrast to have "
                            "them; drop the contrasts with a missing moderator first")
        sandwich = robust(eff.yi, eff.vi, x, terms, groups, method)
        sandwich["cluster"] = robust_column
    return levels, sandwich


def run_frequentist(data: ContrastData, method: str = "REML", *, hksj: bool | str = False,
                    pi_type: str = "default", moderators: tuple[str, ...] = (),
                    subgroup: str | None = None, bias: tuple[str, ...] = (),
                    clusters: tuple[str, ...] = (),
                    robust_column: str | None = None,
                    bias_tolerant: bool = False) -> FrequentistRun:
    """Pool the contrasts; add Mantel–Haenszel, leave-one-out and Egger's test.

    The meta-regression on ``moderators`` and the ``subgroup`` analysis are added when asked;
    so are the ``bias`` methods (with ``bias_tolerant``, a method that cannot run on these
    contrasts gives its reason instead of stopping the analysis, as the report needs).
    """
    from ..stats.frequentist import egger_test, leave_one_out, mantel_haenszel, meta_analysis

    eff = contrast_effects(data)
    res = meta_analysis(eff.yi, eff.vi, method, hksj=hksj, pi_type=pi_type)
    mh = None
    arm_only = "level" not in data.contrasts or (data.contrasts["level"] == "arm").all()
    if data.binary and data.measure in RATIO and arm_only:
        c = data.contrasts
        m = c.groupby("study", sort=False)["arm"].transform("count").to_numpy(float)
        try:
            mh = mantel_haenszel(c["a"], c["b"], c["c"] / m, c["d"] / m, data.measure)
        except SpecError:
            mh = None
    loo = leave_one_out(eff.yi, eff.vi, method, hksj=hksj) if len(eff.yi) > 2 else []
    egger = None
    if len(eff.yi) >= 3:
        egger = egger_test(eff.yi, eff.vi).as_dict()
        egger["variant"] = ("classic: regtest(model = 'lm'), weighted least squares of the "
                            "effects on their SE, t test with k - 2 df")
    regression = (_regression_document(data, eff, moderators, method, hksj)
                  if moderators else None)
    groups = _subgroup_document(data, eff, subgroup, method, hksj) if subgroup else None
    adjusted = None
    if bias:
        from ..stats.bias import bias_analysis, bias_panel, egger_rma

        adjusted = (bias_panel(eff.yi, eff.vi, method, bias) if bias_tolerant else
                    {name: bias_analysis(name, eff.yi, eff.vi, method) for name in bias})
        if len(eff.yi) >= 3:
            adjusted["egger_rma"] = egger_rma(eff.yi, eff.vi, method)
    levels, sandwich = _dependence(data, eff, method, clusters, robust_column, moderators)
    return FrequentistRun(data, method, hksj, eff, res, mh, loo, egger, regression, groups,
                          adjusted, levels, sandwich)


def _exp_twins(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {f"{k}_exp": float(np.exp(d[k])) for k in keys if d.get(k) is not None}


def _contrast_labels(data: ContrastData) -> list[str]:
    """``study arm`` for each contrast; the study alone when it gives one contrast."""
    c = data.contrasts
    per_study = c["study"].map(c["study"].value_counts())
    return [str(s) if k == 1 else f"{s} {a}"
            for s, a, k in zip(c["study"], c["arm"], per_study, strict=True)]


def frequentist_document(run: FrequentistRun, records: Records) -> dict[str, Any]:
    """Build the ``trialmeta frequentist --json`` document."""
    r = run.result
    doc: dict[str, Any] = {
        "engine": "frequentist", "outcome": run.data.outcome, "measure": run.data.measure,
        "method": r.method, "hksj": r.hksj, "test": r.test, "pi_type": r.pi_type,
        "warnings": list(r.warnings),
        "time_h": None if run.data.window is None else run.data.window.target_h,
        "scale": "log" if run.data.measure in RATIO else "identity",
        "k": r.k, "estimate": r.estimate, "se": r.se, "ci_low": r.ci_low, "ci_high": r.ci_high,
        "tau2": r.tau2, "tau": float(np.sqrt(r.tau2)), "I2": r.I2, "H2": r.H2, "Q": r.Q,
        "Q_p": r.Q_p, "pi_low": r.pi_low, "pi_high": r.pi_high,
    }
    if run.data.measure in RATIO:
        doc.update(_exp_twins(doc, ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")))
    labels = _contrast_labels(run.data)
    doc["studies"] = [{"contrast": lab, "yi": float(y), "vi": float(v)}
                      for lab, y, v in zip(labels, run.effects.yi, run.effects.vi, strict=True)]
    if run.mantel_haenszel is not None:
        mh = run.mantel_haenszel.as_dict()
        mh.update(_exp_twins(mh, ("estimate", "ci_low", "ci_high")))
        doc["mantel_haenszel"] = mh
    if run.leave_one_out:
        doc["leave_one_out"] = [{"omitted": lab, "estimate": x.estimate, "ci_low": x.ci_low,
                                 "ci_high": x.ci_high, "tau2": x.tau2}
                                for lab, x in zip(labels, run.leave_one_out, strict=True)]
        shifts = [abs(x.estimate - r.estimate) for x in run.leave_one_out]
        j = int(np.argmax(shifts))
        doc["most_influential"] = {"contrast": labels[j], "shift": shifts[j]}
    doc["egger"] = run.egger
    if run.meta_regression is not None:
        doc["meta_regression"] = run.meta_regression
    if run.subgroups is not None:
        doc["subgroups"] = run.subgroups
    if run.multilevel is not None:
        doc["multilevel"] = run.multilevel
    if run.robust is not None:
        doc["robust"] = run.robust
    if run.bias is not None:
        doc["bias"] = run.bias
        if run.data.measure in RATIO:
            for entry in run.bias.values():
                if "estimate" in entry:
                    entry.update(_exp_twins(entry, ("estimate", "ci_low", "ci_high")))
    doc["dropped"] = run.data.dropped
    doc["notes"] = run.data.notes
    doc["provenance"] = {"data": records.path, "data_sha256": records.sha256,
                         "command": command_line()}
    return rounded(doc)


@dataclass
class ContrastRun:
    """A Bayesian contrast fit with its summary."""

    fit: ContrastFit
    summary: ContrastSummary


def run_contrast(data: ContrastData, settings: SamplerSettings,
                 priors: ContrastPriors | None = None, *, threshold: float = 0.0,
                 data_sha256: str = "", progress: bool = False,
                 moderators: tuple[str, ...] = (), small_study: str | None = None,
                 clusters: tuple[str, ...] = ()) -> ContrastRun:
    """Fit the Bayesian contrast model and summarise it."""
    model = Contrast(priors, threshold, moderators, small_study=small_study,
                     clusters=clusters)
    fit = model.fit(data, settings, data_sha256=data_sha256, progress=progress)
    return ContrastRun(fit, model.summary(fit))


def contrast_document(run: ContrastRun, records: Records) -> dict[str, Any]:
    """Build the ``trialmeta fit contrast --json`` document."""
    fit, s = run.fit, run.summary
    data = fit.data

    def records_of(df):
        return df.astype(object).where(df.notna(), None).to_dict("records")

    pressed = tau_presses_prior(flat(fit.idata, "tau"), fit.priors.tau)
    priors = fit.priors.as_dict()
    if "beta:sei" in s.estimates:
        priors["pet_slope"] = f"N(0, {PET_SLOPE_SD:g}^2)"
    if any(k.startswith("sigma:") for k in s.estimates):
        priors["cluster_sigma"] = "has tau's prior"
    return rounded({
        "model": fit.model, "outcome": data.outcome, "measure": data.measure,
        "warnings": [pressed] if pressed else [],
        "scale": "log" if data.binary and data.measure in RATIO else "identity",
        "time_h": None if data.window is None else data.window.target_h,
        "window_h": None if data.window is None else [data.window.low_h, data.window.high_h],
        "k": data.k_studies, "contrasts": len(data.contrasts), "n_total": data.n_total,
        "estimates": s.estimates, "per_study": records_of(s.studies),
        "posterior_predictive": records_of(s.ppc), "dropped": data.dropped,
        "notes": data.notes, "diagnostics": fit.diagnostics.as_dict(),
        "loo": loo(fit.idata, fit.pymc_model),
        "priors": priors, "sampler": fit.settings.as_dict(),
        "summary": s.sentence,
        "provenance": {"data": records.path, "data_sha256": records.sha256,
                       "seed": fit.settings.seed, "versions": fit.provenance["versions"],
                       "command": command_line()},
    })


def exact_document(data: ContrastData, priors: ContrastPriors, records: Records, *,
                   threshold: float = 0.0) -> dict[str, Any]:
    """Fit the normal-normal model exactly (``--engine exact``) and describe it.

    Effects and variances are those of the frequentist engine (a shared control is
    split); binary outcomes use the normal approximation of log OR, log RR or RD.
    """
    from ..stats.exact import exact_normal_normal

    eff = contrast_effects(data)
    post = exact_normal_normal(eff.yi, eff.vi, tau_prior=priors.tau,
                               mu_prior=(0.0, priors.effect_sd))
    labels = _contrast_labels(data)
    per_study = [{"contrast": lab, "observed": float(y), "observed_se": float(np.sqrt(v)),
                  "shrunken_median": s["median"], "shrunken_ci_low": s["ci_low"],
                  "shrunken_ci_high": s["ci_high"]}
                 for lab, y, v, s in zip(labels, eff.yi, eff.vi, post.shrinkage, strict=True)]
    effect = dict(post.mu, p_exceeds=_exact_exceedance(eff, priors, threshold),
                  threshold=threshold)
    return rounded({
        "model": "contrast", "engine": "exact", "outcome": data.outcome,
        "measure": data.measure,
        "scale": "log" if data.measure in RATIO else "identity",
        "time_h": None if data.window is None else data.window.target_h,
        "k": data.k_studies, "contrasts": len(data.contrasts), "n_total": data.n_total,
        "estimates": {"effect": effect, "predictive_effect": post.predictive, "tau": post.tau},
        "per_study": per_study, "dropped": data.dropped, "notes": data.notes,
        "diagnostics": {"passed": True, "messages": ["exact quadrature: no Monte Carlo error"],
                        "r_hat_max": None, "ess_bulk_min": None, "divergences": 0},
        "priors": priors.as_dict(),
        "provenance": {"data": records.path, "data_sha256": records.sha256,
                       "command": command_line()},
    })


def _exact_exceedance(eff: Effects, priors: ContrastPriors, threshold: float) -> float:
    """P(mu > threshold) under the exact posterior."""
    from ..stats.exact import _Grid

    g = _Grid(np.asarray(eff.yi, float), np.asarray(eff.vi, float), priors.tau,
              (0.0, priors.effect_sd))
    return 1.0 - g.mu_cdf(threshold)


def bayesian_subgroups(data: ContrastData, column: str, settings: SamplerSettings,
                       priors: ContrastPriors | None = None, *,
                       data_sha256: str = "") -> dict[str, Any]:
    """Fit each level of ``column`` on its own, and the levels' differences in one model.

    Each level's pooled effect is the contrast model fitted to that level's studies alone
    (its own tau), as ``--subgroup`` does in the frequentist engine. The differences come
    from one model with ``column`` as a categorical moderator (one tau across levels):
    ``beta:COL=level`` is the level's effect minus the reference level's, with
    P(difference > 0). A level with fewer than two studies is reported but not fitted.
    """
    c = data.contrasts
    levels, text = subgroup_levels(c, column, moderator_names(c))
    groups = []
    for level in levels:
        studies = set(c.loc[text == level, "study"])
        sub = replace(data, contrasts=c[c["study"].isin(studies)].reset_index(drop=True),
                      arms=data.arms[data.arms["study"].isin(studies)].reset_index(drop=True)
                      if len(data.arms) else data.arms, dropped=[], notes=[])
        row: dict[str, Any] = {"level": level, "k": sub.k_studies}
        if sub.k_studies < 2:
            row["status"] = "fewer than two studies: not pooled on its own"
        else:
            run = run_contrast(sub, settings, priors, data_sha256=data_sha256)
            e = run.summary.estimates
            row.update(status="fitted", effect=e["effect"], tau=e["tau"],
                       diagnostics_passed=run.fit.diagnostics.passed)
        groups.append(row)
    spec = f"{column}:categorical"
    both = run_contrast(data, settings, priors, data_sha256=data_sha256, moderators=(spec,))
    differences = []
    for term, e in both.summary.estimates.items():
        if term.startswith("beta:"):
            draws = Contrast(priors, 0.0, (spec,)).draws(both.fit, term)
            differences.append({"term": term.removeprefix("beta:"), **e,
                                "p_positive": float(np.mean(np.asarray(draws) > 0))})
    named = {d["term"] for d in differences}
    reference = next((lv for lv in levels if f"{column}={lv}" not in named), None)
    return {"column": column, "groups": groups, "reference": reference,
            "differences": differences, "diagnostics_passed": both.fit.diagnostics.passed}
