"""`trialmeta fit contrast` and `trialmeta frequentist`: active vs control within trials."""

from __future__ import annotations

from typing import Annotated

import typer
from trialmeta.analysis.report.numbers import pfmt, ptext

from .common import (
    DEFAULTS,
    BaselineSdOpt,
    ChainsOpt,
    ComparatorOpt,
    CrossoverOpt,
    DomainOpt,
    DoseOpt,
    DosesOpt,
    DoseUnitOpt,
    DrawsOpt,
    EffectSdOpt,
    EndpointOpt,
    EvidenceOpt,
    FileArg,
    FitAllowUnconvergedOpt,
    JsonOpt,
    MeanTypeOpt,
    ModeratorOpt,
    PopulationOpt,
    PriorsOpt,
    RhoOpt,
    RouteOpt,
    SamplerOpt,
    ScaleOpt,
    SeedOpt,
    TreatmentOpt,
    TuneOpt,
    dropped_lines,
    emit_fit,
    fail,
    filters_from_options,
    finite,
    handle_errors,
    prior_lines,
)

OutcomeOpt = Annotated[str, typer.Option(
    help="response, remission, events (counts of any other event; lower is better) or change "
         "(means).")]
MeasureOpt = Annotated[str, typer.Option(help="OR, RR, RD (counts) or MD, SMD (means).")]
#: the target time of a fit on a file with time points when --time is not given
DEFAULT_TIME_H = 24.0
WindowOpt = Annotated[float | None, typer.Option(
    help="Half-width of the time window in hours (default: half of --time, at least 1).",
        callback=finite)]


def _select(file, outcome, measure, time, window, treatment, route, population, scale, evidence,
            doses_given, dose, comparator, crossover, rho, mean_type,
            domain=None, endpoint=None, moderator=None,
            dose_unit=None, auto_time=False):
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.select.contrasts import select_contrasts
    from trialmeta.analysis.select.filters import TimeWindow

    records = read_records(file)
    filters = filters_from_options(treatment, route, population, scale, evidence, doses_given,
                                   dose, domain, endpoint, dose_unit)
    if time is None and auto_time and records.table["time_h"].notna().any():
        time = DEFAULT_TIME_H  # a file with time points: the claims' usual 24 h
    tw = None if time is None else TimeWindow.around(time, window)
    data = select_contrasts(records, outcome, measure.upper(), tw, filters,
                            comparator=tuple(comparator or ()), crossover=crossover, rho=rho,
                            mean_type=mean_type,
                            allow_mixed_mean_types=any(m.startswith("mean_type")
                                                       for m in moderator or ()))
    return records, data


@handle_errors
def contrast(
    file: FileArg = None,
    outcome: OutcomeOpt = "response",
    measure: MeasureOpt = "OR",
    time: Annotated[float | None, typer.Option(
        "--time", help="Target hours after the dose (default: 24 h for a file with time "
                       "points; a file without any uses every row, unwindowed).",
        callback=finite)] = None,
    window: WindowOpt = None,
    treatment: TreatmentOpt = None,
    route: RouteOpt = None,
    population: PopulationOpt = None,
    scale: ScaleOpt = None,
    domain: DomainOpt = None,
    endpoint: EndpointOpt = None,
    evidence: EvidenceOpt = None,
    doses_given: DosesOpt = None,
    dose: DoseOpt = None,
    dose_unit: DoseUnitOpt = None,
    comparator: ComparatorOpt = None,
    crossover: CrossoverOpt = "keep",
    rho: RhoOpt = 0.5,
    mean_type: MeanTypeOpt = None,
    tau_prior: Annotated[str | None, typer.Option(
        help="Prior on tau: half-normal[:SCALE], half-cauchy[:SCALE], turner2015[:active] "
             "(log OR) or rhodes2015[:active] (SMD); the preset's when omitted.")] = None,
    priors: PriorsOpt = "default",
    effect_sd: EffectSdOpt = None,
    baseline_sd: BaselineSdOpt = None,
    threshold: Annotated[float, typer.Option(
        help="Report P(effect > threshold) on the analysis scale (log OR, MD, SMD).",
            callback=finite)] = 0.0,
    moderator: ModeratorOpt = None,
    subgroup: Annotated[str | None, typer.Option(
        "--subgroup", help="A column whose levels are pooled separately, with their "
                           "differences from one model with the column as a categorical "
                           "moderator.")] = None,
    cluster: Annotated[list[str] | None, typer.Option(
        "--cluster", help="A column whose levels group studies (repeatable, outer first): "
                          "one more random effect per level above the study, as "
                          "rma.mv(yi, vi, random = ~ 1 | COL/study).")] = None,
    small_study: Annotated[str | None, typer.Option(
        "--small-study", help="pet: adjust for small-study effects by a regression of the "
                              "effects on their standard errors; the pooled effect is that "
                              "of a study with SE 0.")] = None,
    engine: Annotated[str, typer.Option(
        help="mcmc (arm-based binomial or normal contrasts, PyMC NUTS) or exact "
             "(normal-normal model on the contrasts, quadrature; no Monte Carlo "
             "error).")] = "mcmc",
    seed: SeedOpt = DEFAULTS.seed,
    draws: DrawsOpt = DEFAULTS.draws,
    tune: TuneOpt = DEFAULTS.tune,
    chains: ChainsOpt = DEFAULTS.chains,
    sampler: SamplerOpt = DEFAULTS.sampler,
    allow_unconverged: FitAllowUnconvergedOpt = False,
    json: JsonOpt = False,
) -> None:
    """Bayesian random-effects contrast: OR/RR/RD from arm counts, or MD/SMD from means."""
    from trialmeta.analysis.families.contrast import contrast_document, run_contrast
    from trialmeta.analysis.io.files import dumps_json
    from trialmeta.analysis.models.contrast import contrast_unit, default_priors
    from trialmeta.analysis.sampling.settings import SamplerSettings
    from trialmeta.analysis.stats.priors import heterogeneity_prior

    records, data = _select(file, outcome, measure, time, window, treatment, route, population,
                            scale, evidence, doses_given, dose, comparator, crossover, rho,
                            mean_type, domain, endpoint, moderator, dose_unit, auto_time=True)
    tau = heterogeneity_prior(tau_prior) if tau_prior else None
    chosen = default_priors(data.measure, tau, unit=contrast_unit(data), preset=priors,
                            effect_sd=effect_sd, baseline_sd=baseline_sd)
    if engine == "exact" and (cluster or small_study):
        raise fail("error: --cluster and --small-study need --engine mcmc")
    if engine == "exact":
        from trialmeta.analysis.families.contrast import exact_document

        doc = exact_document(data, chosen, records, threshold=threshold)
        typer.echo(dumps_json(doc) if json else format_contrast(doc), nl=not json)
        return
    if engine != "mcmc":
        raise fail(f"error: unknown engine '{engine}'; use mcmc or exact")
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed,
                               sampler=sampler)
    run = run_contrast(data, settings, chosen, threshold=threshold, data_sha256=records.sha256,
                       moderators=tuple(moderator or ()), small_study=small_study,
                       clusters=tuple(cluster or ()))
    doc = contrast_document(run, records)
    if subgroup:
        from trialmeta.analysis.families.contrast import bayesian_subgroups
        from trialmeta.analysis.io.files import rounded

        doc["subgroups"] = rounded(bayesian_subgroups(data, subgroup, settings, chosen,
                                                      data_sha256=records.sha256))
    emit_fit(doc, json, allow_unconverged, format_contrast(doc))


def format_contrast(doc: dict) -> str:
    """Readable summary of a contrast document."""
    e = doc["estimates"]
    log = doc["scale"] == "log"

    def show(q: str, name: str) -> str:
        x = e[q]
        def f(v: float) -> str:
            return f"{v:7.3f}"

        out = f"  {name:<22}{f(x['median'])}  (95% CrI {f(x['ci_low'])} to {f(x['ci_high'])})"
        if log and q in ("effect", "predictive_effect"):
            out += (f"   exp: {f(2.718281828459045 ** x['median'])} "
                    f"({f(2.718281828459045 ** x['ci_low'])} to "
                    f"{f(2.718281828459045 ** x['ci_high'])})")
        return out

    scale = "log " if log else ""
    when = "" if doc["time_h"] is None else f" at {doc['time_h']:g} h"
    lines = [f"contrast: {doc['measure']} on {doc['outcome']}{when}; "
             f"{doc['contrasts']} contrast(s), {doc['k']} stud(ies), {doc['n_total']} patients",
             show("effect", f"pooled {scale}{doc['measure']}"),
             show("predictive_effect", "new study"), show("tau", "tau")]
    for q in [k for k in e if k.startswith(("beta:", "sigma:"))]:
        lines.append(show(q, "small-study slope (SE)" if q == "beta:sei" else q))
    for q in ("rr", "rd", "control_rate"):
        if q in e:
            lines.append(show(q, f"{q} (at pooled control)" if q != "control_rate"
                              else "pooled control rate"))
    lines.append(f"  P(effect > {e['effect']['threshold']:g}) = {e['effect']['p_exceeds']:.3f}")
    lines.append("  per study (observed -> shrunken):")
    for s in doc["per_study"]:
        obs = "   n/a" if s["observed"] is None else f"{s['observed']:7.3f}"
        label = s.get("contrast") or f"{s['study']} {s['arm']} vs {s['control']}"
        lines.append(f"    {label:<46}{obs} -> {s['shrunken_median']:7.3f}")
    if "posterior_predictive" in doc:
        flagged = [p for p in doc["posterior_predictive"] if p["flag"]]
        lines.append(f"  posterior predictive check: {len(flagged)} observation(s) flagged")
    if "subgroups" in doc:
        g = doc["subgroups"]
        lines.append(f"  subgroups by {g['column']} (reference {g['reference']}):")
        for row in g["groups"]:
            if row["status"] != "fitted":
                lines.append(f"    {row['level']:<20} k = {row['k']}: {row['status']}")
                continue
            x = row["effect"]
            lines.append(f"    {row['level']:<20} k = {row['k']:<4}{x['median']:8.3f} "
                         f"({x['ci_low']:.3f} to {x['ci_high']:.3f}), tau "
                         f"{row['tau']['median']:.3f}")
        for d in g["differences"]:
            lines.append(f"    difference {d['term']:<22}{d['median']:8.3f} ({d['ci_low']:.3f} "
                         f"to {d['ci_high']:.3f}), P(> 0) = {d['p_positive']:.3f}")
    lines += prior_lines(doc["priors"])
    lines += dropped_lines(doc["dropped"])
    for n in doc["notes"]:
        lines.append(f"  note: {n}")
    lines += [f"  warning: {w}" for w in doc.get("warnings", [])]
    g = doc["diagnostics"]
    status = "passed" if g["passed"] else "FAILED: " + "; ".join(g["messages"])
    lines.append(f"  diagnostics: {status}")
    return "\n".join(lines)


@handle_errors
def frequentist(
    file: FileArg = None,
    outcome: OutcomeOpt = "response",
    measure: MeasureOpt = "OR",
    method: Annotated[str, typer.Option(help="FE, DL, REML, ML or PM.")] = "REML",
    hksj: Annotated[str, typer.Option(
        "--hksj", help="Hartung-Knapp-Sidik-Jonkman standard error and t(k-1) intervals: "
                       "off, plain (metafor test='knha') or adhoc (never narrower than the "
                       "Wald interval; metafor test='adhoc').")] = "off",
    prediction_interval: Annotated[str, typer.Option(
        "--prediction-interval", help="default (the CI's distribution, as metafor) or "
                                      "higgins2009 (t with k-2 degrees of freedom).")] =
        "default",
    time: Annotated[float | None, typer.Option(
        "--time", help="Target hours after the dose (omit for records without time "
                       "points).", callback=finite)] = None,
    window: WindowOpt = None,
    treatment: TreatmentOpt = None,
    route: RouteOpt = None,
    population: PopulationOpt = None,
    scale: ScaleOpt = None,
    domain: DomainOpt = None,
    endpoint: EndpointOpt = None,
    evidence: EvidenceOpt = None,
    doses_given: DosesOpt = None,
    dose: DoseOpt = None,
    dose_unit: DoseUnitOpt = None,
    comparator: ComparatorOpt = None,
    crossover: CrossoverOpt = "keep",
    rho: RhoOpt = 0.5,
    mean_type: MeanTypeOpt = None,
    moderator: ModeratorOpt = None,
    subgroup: Annotated[str | None, typer.Option(
        "--subgroup", help="A column whose levels are analysed separately, with the test of "
                           "a difference between them (the QM of rma(mods = ~ factor(COL))).")
    ] = None,
    bias: Annotated[list[str] | None, typer.Option(
        "--bias", help="Small-study and publication-bias analysis (repeatable): trimfill "
                       "(L0), trimfill:R0, pet, peese, pet-peese, or step:P1[,P2...][:less|"
                       "two.sided] (a step-function selection model with these p-value "
                       "cut-offs); adds Egger's test in metafor's default form. Equal to "
                       "metafor's trimfill, rma(mods = ~ sqrt(vi) or ~ vi) and "
                       "selmodel(type = 'stepfun').")] = None,
    cluster: Annotated[list[str] | None, typer.Option(
        "--cluster", help="Nested random effects, outer first (repeatable): --cluster study "
                          "--cluster esid is rma.mv(yi, vi, random = ~ 1 | study/esid), "
                          "REML.")] = None,
    robust: Annotated[str | None, typer.Option(
        "--robust", help="Cluster-robust (CR1) standard errors with this column as the "
                         "cluster, as metafor's robust(res, cluster, clubSandwich = "
                         "FALSE).")] = None,
    json: JsonOpt = False,
) -> None:
    """Frequentist random-effects meta-analysis (matches R metafor's rma and rma.mh).

    With meta-regression (--moderator) and subgroups (--subgroup) on any column.
    """
    from trialmeta.analysis.families.contrast import frequentist_document, run_frequentist
    from trialmeta.analysis.io.files import dumps_json

    records, data = _select(file, outcome, measure, time, window, treatment, route, population,
                            scale, evidence, doses_given, dose, comparator, crossover, rho,
                            mean_type, domain, endpoint, moderator, dose_unit=dose_unit)
    run = run_frequentist(data, method.upper(), hksj=hksj, pi_type=prediction_interval,
                          moderators=tuple(moderator or ()), subgroup=subgroup,
                          bias=tuple(bias or ()), clusters=tuple(cluster or ()),
                          robust_column=robust)
    doc = frequentist_document(run, records)
    typer.echo(dumps_json(doc) if json else format_frequentist(doc), nl=not json)


def format_frequentist(doc: dict) -> str:
    """Readable summary of a frequentist document."""
    log = doc["scale"] == "log"
    name = f"{'log ' if log else ''}{doc['measure']}"
    test = {"knha": " + HKSJ", "adhoc": " + HKSJ (ad hoc)"}.get(doc.get("test", "z"), "")
    lines = [f"{doc['method']}{test}: {name} on {doc['outcome']}, k = {doc['k']}",
             f"  estimate {doc['estimate']:.4f} (SE {doc['se']:.4f}), 95% CI "
             f"{doc['ci_low']:.4f} to {doc['ci_high']:.4f}"]
    if log:
        lines.append(f"  {doc['measure']} {doc['estimate_exp']:.4f} ({doc['ci_low_exp']:.4f} to "
                     f"{doc['ci_high_exp']:.4f}); prediction interval {doc['pi_low_exp']:.4f} to "
                     f"{doc['pi_high_exp']:.4f}")
    else:
        lines.append(f"  prediction interval {doc['pi_low']:.4f} to {doc['pi_high']:.4f}")
    lines.append(f"  tau2 {doc['tau2']:.4f}, I2 {doc['I2']:.2f}%, H2 {doc['H2']:.3f}, "
                 f"Q {doc['Q']:.3f} (p = {doc['Q_p']:.4g})")
    if "mantel_haenszel" in doc:
        mh = doc["mantel_haenszel"]
        lines.append(f"  Mantel-Haenszel {doc['measure']} {mh['estimate_exp']:.4f} "
                     f"({mh['ci_low_exp']:.4f} to {mh['ci_high_exp']:.4f})")
    if "most_influential" in doc:
        mi = doc["most_influential"]
        lines.append(f"  most influential: {mi['contrast']} (moves the estimate by "
                     f"{mi['shift']:.4f})")
    if doc.get("egger"):
        eg = doc["egger"]
        if eg.get("computable", True):
            lines.append(f"  Egger test (classic, regtest model = 'lm'): t = {eg['t']:.3f}, "
                         f"df = {eg['df']}, {ptext(eg['p_value'])}"
                         + (f" ({eg['note']})" if eg.get("note") else ""))
        else:
            lines.append(f"  Egger test: {eg['note']}")
    if "meta_regression" in doc:
        lines += _regression_lines(doc["meta_regression"])
    if "subgroups" in doc:
        lines += _subgroup_lines(doc["subgroups"], log)
    if "bias" in doc:
        lines += _bias_lines(doc["bias"], log)
    if "multilevel" in doc:
        m = doc["multilevel"]
        sig = ", ".join(f"{lv} {s:.4f} ({u} units)" for lv, s, u in
                        zip(m["levels"], m["sigma2"], m["units"], strict=True))
        lines.append(f"  multilevel (REML, {' / '.join(m['levels'])}): {m['estimate']:.4f} "
                     f"(SE {m['se']:.4f}), 95% CI {m['ci_low']:.4f} to {m['ci_high']:.4f}; "
                     f"sigma2: {sig}")
    if "robust" in doc:
        r = doc["robust"]
        for c in r["coefficients"]:
            lines.append(f"  robust ({r['estimator']}, {r['clusters']} clusters of "
                         f"{r['cluster']}, t df {r['df']}): {c['term']} {c['estimate']:.4f} "
                         f"(SE {c['se']:.4f}), 95% CI {c['ci_low']:.4f} to "
                         f"{c['ci_high']:.4f}, {ptext(c['p'])}")
    lines += dropped_lines(doc["dropped"])
    for n in doc["notes"]:
        lines.append(f"  note: {n}")
    lines += [f"  warning: {w}" for w in doc.get("warnings", [])]
    return "\n".join(lines)


def _regression_lines(r: dict) -> list[str]:
    df = (f"F({r['QM_df']}, {r['QM_df_residual']})" if r["QM_df_residual"] is not None
          else f"chi2({r['QM_df']})")
    out = [f"  meta-regression ({r['method']}, k = {r['k']}): QM {df} = {r['QM']:.4f}, "
           f"{ptext(r['QM_p'])}; residual tau2 {r['tau2']:.4f}, QE {r['QE']:.3f}"]
    out.append(f"    {'term':<24}{'estimate':>10}{'SE':>10}{'95% CI':>22}{'p':>10}")
    for c in r["coefficients"]:
        ci = f"{c['ci_low']:.4f} to {c['ci_high']:.4f}"
        p = pfmt(c["p"])
        out.append(f"    {c['term']:<24}{c['estimate']:>10.4f}{c['se']:>10.4f}{ci:>22}"
                   f"{p:>10}")
    if r.get("left_out"):
        out.append(f"    left out (missing moderator): {', '.join(r['left_out'])}")
    return out


def _bias_lines(bias: dict, log: bool) -> list[str]:
    out = ["  small-study and publication-bias analyses:"]
    for name, b in bias.items():
        if name == "egger_rma":
            out.append(f"    Egger test (metafor default, regtest): z = {b['z']:.3f}, "
                       f"{ptext(b['p'])}")
            continue
        line = (f"    {name:<12} {b['estimate']:8.4f} ({b['ci_low']:.4f} to "
                f"{b['ci_high']:.4f})")
        if log:
            line += (f"; ratio {b['estimate_exp']:.4f} ({b['ci_low_exp']:.4f} to "
                     f"{b['ci_high_exp']:.4f})")
        if "k0" in b:
            line += f"; {b['k0']} stud(ies) filled on the {b['side']} ({b['estimator']})"
        if "chosen" in b:
            line += f"; {b['chosen'].upper()} chosen (PET {ptext(b['pet_p'])})"
        out.append(line)
        if "delta" in b:
            bounds = [0.0, *b["steps"][:-1]]
            weights = ", ".join(f"{lo:g} < p <= {hi:g}: {d:.3f} (k = {n})" for lo, hi, d, n in
                                zip(bounds, b["steps"], b["delta"], b["k_per_interval"],
                                    strict=True))
            out.append(f"      selection weights ({b['alternative']} p-values, ML): {weights}")
            out.append(f"      tau2 {b['tau2']:.4f}; LRT for selection: chi2({b['LRT_df']}) = "
                       f"{b['LRT']:.3f}, {ptext(b['LRT_p'])}")
            out += [f"      warning: {w}" for w in b.get("warnings", [])]
        if b.get("note"):
            out.append(f"      note: {b['note']}")
    return out


def _subgroup_lines(g: dict, log: bool) -> list[str]:
    df = g["Q_between_df"]
    out = [f"  subgroups by {g['column']}: test of difference Q = {g['Q_between']:.4f} "
           f"(df = {df}), {ptext(g['Q_between_p'])}"]
    for grp in g["groups"]:
        line = (f"    {grp['level']:<20} k = {grp['k']:<4} {grp['estimate']:8.4f} "
                f"({grp['ci_low']:.4f} to {grp['ci_high']:.4f}), tau2 {grp['tau2']:.4f}")
        if log:
            import math

            line += (f"; ratio {math.exp(grp['estimate']):.4f} "
                     f"({math.exp(grp['ci_low']):.4f} to {math.exp(grp['ci_high']):.4f})")
        out.append(line)
    return out
