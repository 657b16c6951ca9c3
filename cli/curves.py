"""`trialmeta fit dose-response`, `fit time-course` and `compare-forms`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .common import (
    DEFAULTS,
    ChainsOpt,
    ComparatorOpt,
    DomainOpt,
    DrawsOpt,
    EndpointOpt,
    EvidenceOpt,
    FileArg,
    FitAllowUnconvergedOpt,
    JsonOpt,
    ModeratorOpt,
    PopulationOpt,
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
)

FloatList = Annotated[list[float] | None, typer.Option(help="Repeatable.", callback=finite)]


def _defaults(file: str | None, kind: str):
    """Options for the bundled data from the bundled claims file's ``analyses`` section."""
    from trialmeta.analysis.evaluate.claims import load_claims
    from trialmeta.analysis.families.curves import DoseOptions, TimeOptions, options_from_mapping

    if file is None:
        raw = load_claims().analyses.get(kind)
        if raw:
            return options_from_mapping(kind, raw)
    return DoseOptions() if kind == "dose-response" else TimeOptions()


def _override(opts, **given):
    """Replace options the user gave on the command line (None means: not given)."""
    from dataclasses import replace

    from trialmeta.analysis.select.filters import Filters

    filt = {k: given.pop(k) for k in ("treatment", "route", "population", "scale", "evidence",
                                      "dose_unit", "domain", "endpoint", "mean_type") if k in given}
    new = {k: v for k, v in given.items() if v is not None}
    fd = dict(opts.filters.__dict__)
    for k, v in filt.items():
        if v:
            fd[k] = tuple(v)
    return replace(opts, filters=Filters(**fd), **new)


def _settings(seed: int, draws: int, tune: int, chains: int, sampler: str):
    from trialmeta.analysis.sampling.settings import SamplerSettings

    return SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed,
                               sampler=sampler)


def _format(doc: dict, title: str) -> str:
    lines = [title]
    for name, e in doc["estimates"].items():
        if e:
            v = {k: f"> {e['censored_above_h']:g}" if e.get(k) is None else f"{e[k]:.3f}"
                 for k in ("median", "ci_low", "ci_high")}
            lines.append(f"  {name:<26}{v['median']:>9}  (95% CrI {v['ci_low']} to "
                         f"{v['ci_high']})")
    for name, p in doc.get("probabilities", {}).items():
        if isinstance(p, float):
            lines.append(f"  {name:<40}{p:.3f}")
        elif p is not None:
            lines.append(f"  {name}: {p}")
    for w in doc["warnings"]:
        lines.append(f"  WARNING: {w}")
    if doc.get("priors"):
        lines.append("  priors: " + ", ".join(
            f"{k} {v:g}" if isinstance(v, int | float) else f"{k} {v}"
            for k, v in doc["priors"].items() if not isinstance(v, dict | list)))
    lines += dropped_lines(doc["dropped"])
    if "loo" in doc:
        lines.append(f"  PSIS-LOO elpd {doc['loo']['elpd_loo']:.2f} (se {doc['loo']['se']:.2f})")
    g = doc["diagnostics"]
    lines.append("  diagnostics: " + ("passed" if g["passed"]
                                      else "FAILED: " + "; ".join(g["messages"])))
    return "\n".join(lines)


@handle_errors
def dose_response(
    file: FileArg = None,
    outcome: Annotated[str | None, typer.Option(
        help="response, remission, events or change.")] = None,
    time: Annotated[float | None, typer.Option("--time", help="Target hours.",
        callback=finite)] = None,
    form: Annotated[str | None, typer.Option(
        help="emax, loglinear, linear or piecewise.")] = None,
    hill: Annotated[bool | None, typer.Option("--hill/--no-hill",
                                              help="Emax with a Hill coefficient.")] = None,
    treatment: TreatmentOpt = None,
    route: RouteOpt = None,
    population: PopulationOpt = None,
    scale: ScaleOpt = None,
    domain: DomainOpt = None,
    endpoint: EndpointOpt = None,
    evidence: EvidenceOpt = None,
    dose_unit: Annotated[list[str] | None, typer.Option("--dose-unit")] = None,
    comparator: ComparatorOpt = None,
    standardize: Annotated[bool | None, typer.Option(
        "--standardize/--raw", help="Put arm means of several scales on an SMD scale.")] = None,
    dose: FloatList = None,
    compare: Annotated[tuple[float, float] | None, typer.Option(
        help="Two doses LO HI: report P(effect(HI) - effect(LO) > delta).",
            callback=finite)] = None,
    delta: Annotated[float | None, typer.Option(callback=finite)] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Smallest effect of interest (analysis scale, direction of benefit).",
            callback=finite)] = None,
    moderator: ModeratorOpt = None,
    agents: Annotated[str | None, typer.Option(
        help="'all', or agents separated by commas: one network with an Emax curve per agent "
             "around a shared inert control (doses in each agent's own unit).")] = None,
    ed50: Annotated[str, typer.Option(
        help="With --agents: per-agent, or common (doses on one standardised scale).")
    ] = "per-agent",
    emax: Annotated[str, typer.Option(
        help="With --agents: fixed (an Emax per agent) or random (exchangeable).")
    ] = "fixed",
    inert: Annotated[list[str] | None, typer.Option(
        "--inert", help="With --agents: the inert controls, pooled as dose 0 of every agent "
                        "(repeatable; default placebo and saline).")] = None,
    seed: SeedOpt = DEFAULTS.seed,
    draws: DrawsOpt = DEFAULTS.draws,
    tune: TuneOpt = DEFAULTS.tune,
    chains: ChainsOpt = DEFAULTS.chains,
    sampler: SamplerOpt = DEFAULTS.sampler,
    allow_unconverged: FitAllowUnconvergedOpt = False,
    json: JsonOpt = False,
) -> None:
    """Effect of dose relative to control (arm-level, study baselines, random amplitude).

    With --agents: several agents' Emax curves in one network (MBNMAdose-style).
    """
    from trialmeta.analysis.families.curves import dose_document
    from trialmeta.analysis.io.records import read_records

    if agents is not None:
        _agents(file, agents, ed50, emax, tuple(inert or ()), outcome, time,
                filters_from_options(treatment, route, population, scale, evidence, None, None,
                                     domain, endpoint),
                _settings(seed, draws, tune, chains, sampler), allow_unconverged, json)
        return

    opts = _override(_defaults(file, "dose-response"), outcome=outcome, time_h=time, form=form,
                     hill=hill, standardize=standardize, doses=tuple(dose) if dose else None,
                     compare=compare, delta=delta, threshold=threshold,
                     moderators=tuple(moderator) if moderator else None,
                     comparator=tuple(comparator) if comparator else None, treatment=treatment,
                     route=route, population=population, scale=scale, evidence=evidence,
                     dose_unit=dose_unit, domain=domain, endpoint=endpoint)
    records = read_records(file)
    doc = dose_document(records, opts, _settings(seed, draws, tune, chains, sampler))
    title = (f"dose-response ({doc['form']}): {doc['treatment']} ({doc['dose_unit']}), "
             f"{doc['outcome']} at {doc['time_h']:g} h; {doc['arms']} arms in {doc['k']} "
             f"studies; doses observed {doc['doses_observed']}; effects on the "
             f"{doc['scale']} scale, {doc['direction']}")
    emit_fit(doc, json, allow_unconverged, _format(doc, title))


def _agents(file: str | None, agents: str, ed50: str, emax: str, inert: tuple[str, ...],
            outcome: str | None, time: float | None, filters: Any, settings: Any,
            allow_unconverged: bool, json: bool) -> None:
    """``fit dose-response --agents``: the multi-agent Emax network."""
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.models.dose_agents import (
        INERT,
        agent_dose_document,
        fit_agents,
        format_agents,
    )
    from trialmeta.analysis.select.filters import TimeWindow

    names = () if agents.strip() == "all" else tuple(a.strip() for a in agents.split(",")
                                                     if a.strip())
    _, _, fit = fit_agents(read_records(file), outcome or "response",
                           TimeWindow.around(24.0 if time is None else time), filters, settings,
                           agents=names, ed50=ed50, emax=emax, inert=inert or INERT)
    doc = agent_dose_document(fit)
    emit_fit(doc, json, allow_unconverged, format_agents(doc))


@handle_errors
def time_course(
    file: FileArg = None,
    outcome: Annotated[str | None, typer.Option(
        help="response, remission, events or change.")] = None,
    measure: Annotated[str | None, typer.Option(help="OR, RR, RD, MD or SMD.")] = None,
    form: Annotated[str | None, typer.Option(help="bateman or piecewise.")] = None,
    model: Annotated[str | None, typer.Option(
        help="A registered time-course model (a plug-in's name); default time-course.")] = None,
    rho: Annotated[float | None, typer.Option(
        help="Correlation between time points of the same patients (0-1).",
            callback=finite)] = None,
    timing: Annotated[str | None, typer.Option(
        help="shared (one rise and decay time), by-route or by-treatment (bateman: T_r and "
             "T_d per route or drug; summaries per group under by_group).")] = None,
    likelihood: Annotated[str | None, typer.Option(
        help="normal (joint normal of the contrasts, default) or binomial (counts: "
             "arm-level binomial terms with a baseline per study and time, weighted for "
             "repeated measurement at rho).")] = None,
    treatment: TreatmentOpt = None,
    route: RouteOpt = None,
    population: PopulationOpt = None,
    scale: ScaleOpt = None,
    domain: DomainOpt = None,
    endpoint: EndpointOpt = None,
    mean_type: Annotated[str | None, typer.Option(
        "--mean-type", help="change or endpoint means only (outcome change); a study "
                             "reporting both uses its change scores.")] = None,
    evidence: EvidenceOpt = None,
    comparator: ComparatorOpt = None,
    at: Annotated[list[float] | None, typer.Option(help="Report effects at these hours.",
        callback=finite)] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Effect that defines onset (analysis scale, direction of benefit).",
            callback=finite)] = None,
    fraction: Annotated[float | None, typer.Option(
        help="Duration ends when the effect falls below this fraction of its peak.",
            callback=finite)] = None,
    seed: SeedOpt = DEFAULTS.seed,
    draws: DrawsOpt = DEFAULTS.draws,
    tune: TuneOpt = DEFAULTS.tune,
    chains: ChainsOpt = DEFAULTS.chains,
    sampler: SamplerOpt = DEFAULTS.sampler,
    allow_unconverged: FitAllowUnconvergedOpt = False,
    json: JsonOpt = False,
) -> None:
    """Effect relative to control over time after one dose: onset, peak and duration."""
    from trialmeta.analysis.families.curves import time_document
    from trialmeta.analysis.io.records import read_records

    opts = _override(_defaults(file, "time-course"), outcome=outcome,
                     measure=measure.upper() if measure else None, form=form, rho=rho,
                     timing=timing, likelihood=likelihood,
                     model=model,
                     times=tuple(at) if at else None, threshold=threshold, fraction=fraction,
                     comparator=tuple(comparator) if comparator else None, treatment=treatment,
                     route=route, population=population, scale=scale, evidence=evidence,
                     domain=domain, endpoint=endpoint,
                     mean_type=[mean_type] if mean_type else None)
    records = read_records(file)
    doc = time_document(records, opts, _settings(seed, draws, tune, chains, sampler))
    title = (f"time-course ({doc['form']}): {doc['measure']} on {doc['outcome']}, "
             f"{doc['contrasts']} contrasts in {doc['k']} studies at "
             f"{', '.join(f'{t:g}' for t in doc['observed_times_h'])} h; rho {doc['rho']:g}; "
             f"{doc['likelihood']} likelihood; "
             f"{doc['direction']}")
    emit_fit(doc, json, allow_unconverged, _format(doc, title))


@handle_errors
def compare_forms(
    kind: Annotated[str, typer.Argument(help="dose-response or time-course.")],
    file: FileArg = None,
    seed: SeedOpt = DEFAULTS.seed,
    draws: DrawsOpt = DEFAULTS.draws,
    tune: TuneOpt = DEFAULTS.tune,
    chains: ChainsOpt = DEFAULTS.chains,
    sampler: SamplerOpt = DEFAULTS.sampler,
    json: JsonOpt = False,
) -> None:
    """Rank the functional forms of a model by PSIS-LOO (uses the analysis defaults)."""
    from trialmeta.analysis.families.curves import compare_forms as run
    from trialmeta.analysis.io.files import dumps_json
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.models.dose_response import FORMS as DOSE_FORMS
    from trialmeta.analysis.models.time_course import FORMS as TIME_FORMS

    if kind not in ("dose-response", "time-course"):
        raise fail("error: compare-forms takes dose-response or time-course")
    forms = DOSE_FORMS if kind == "dose-response" else TIME_FORMS
    doc = run(read_records(file), kind, _defaults(file, kind),
              _settings(seed, draws, tune, chains, sampler), forms)
    if json:
        typer.echo(dumps_json(doc), nl=False)
        return
    typer.echo(f"{kind}: forms ranked by PSIS-LOO")
    typer.echo(f"  {'form':<12}{'elpd_loo':>10}{'se':>8}{'elpd_diff':>11}{'p_loo':>8}"
               f"{'max k':>8}")
    for r in doc["comparison"]:
        typer.echo(f"  {r['form']:<12}{r['elpd_loo']:10.2f}{r['se']:8.2f}{r['elpd_diff']:11.2f}"
                   f"{r['p_loo']:8.2f}{r['pareto_k_max']:8.2f}")
        for w in r["warnings"]:
            typer.echo(f"    warning: {w}")
    typer.echo(f"  {doc['note']}")
