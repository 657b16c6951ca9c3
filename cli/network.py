"""``trialmeta fit network``: random-effects network meta-analysis of treatments."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DEFAULTS,
    BaselineSdOpt,
    ChainsOpt,
    DomainOpt,
    DrawsOpt,
    EffectSdOpt,
    EndpointOpt,
    EvidenceOpt,
    FileArg,
    FitAllowUnconvergedOpt,
    JsonOpt,
    PopulationOpt,
    PriorsOpt,
    RouteOpt,
    SamplerOpt,
    ScaleOpt,
    SeedOpt,
    TreatmentOpt,
    TuneOpt,
    emit_fit,
    filters_from_options,
    finite,
    handle_errors,
    prior_lines,
)


@handle_errors
def network(
    file: FileArg = None,
    outcome: Annotated[str, typer.Option(
        help="response, remission, events or change.")] = "response",
    measure: Annotated[str, typer.Option(help="OR (counts) or MD (change).")] = "OR",
    reference: Annotated[str, typer.Option(
        help="The node every effect is against (e.g. saline, placebo).")] = "placebo",
    node: Annotated[str, typer.Option(
        help="What a node is: treatment, treatment+route, treatment+dose or "
             "treatment+route+dose.")
    ] = "treatment",
    inert: Annotated[list[str] | None, typer.Option(
        "--inert", help="Treatments taken as one inert control node, named after the first "
                        "(repeatable), e.g. --inert placebo --inert saline.")] = None,
    time: Annotated[float | None, typer.Option(
        "--time", help="Target hours after the dose (default: 24 h for a file with time "
                       "points; a file without any uses every row, unwindowed).",
        callback=finite)] = None,
    window: Annotated[float | None, typer.Option(
        help="Half-width of the accepted time window in hours.", callback=finite)] = None,
    check_inconsistency: Annotated[bool, typer.Option(
        help="Also fit the unrelated-mean-effects model and compare it by PSIS-LOO (when "
             "the network has more compared pairs than treatments to estimate).")] = True,
    tau_prior: Annotated[str | None, typer.Option(
        help="Prior on tau: half-normal[:SCALE], half-cauchy[:SCALE], turner2015 or "
             "rhodes2015; the preset's when omitted.")] = None,
    priors: PriorsOpt = "default",
    effect_sd: EffectSdOpt = None,
    baseline_sd: BaselineSdOpt = None,
    treatment: TreatmentOpt = None,
    route: RouteOpt = None,
    population: PopulationOpt = None,
    scale: ScaleOpt = None,
    domain: DomainOpt = None,
    endpoint: EndpointOpt = None,
    evidence: EvidenceOpt = None,
    seed: SeedOpt = DEFAULTS.seed,
    draws: DrawsOpt = DEFAULTS.draws,
    tune: TuneOpt = DEFAULTS.tune,
    chains: ChainsOpt = DEFAULTS.chains,
    sampler: SamplerOpt = DEFAULTS.sampler,
    allow_unconverged: FitAllowUnconvergedOpt = False,
    json: JsonOpt = False,
) -> None:
    """Every treatment against a reference, the league table and rankings (consistency model)."""
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.models.network import (
        Network,
        checked_document,
        default_network_priors,
        select_network,
    )
    from trialmeta.analysis.sampling.settings import SamplerSettings
    from trialmeta.analysis.select.filters import TimeWindow
    from trialmeta.analysis.stats.priors import heterogeneity_prior

    records = read_records(file)
    filters = filters_from_options(treatment, route, population, scale, evidence, None, None,
                                   domain, endpoint)
    if time is None and records.table["time_h"].notna().any():
        time = 24.0  # a file with time points: the claims' usual 24 h
    data = select_network(records, outcome, measure.upper(),
                          None if time is None else TimeWindow.around(time, window),
                          filters, reference=reference, node=node, inert=tuple(inert or ()))
    tau = heterogeneity_prior(tau_prior) if tau_prior else None
    chosen = default_network_priors(data.measure, tau, preset=priors, effect_sd=effect_sd,
                                    baseline_sd=baseline_sd)
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed,
                               sampler=sampler)
    fit = Network(chosen).fit(data, settings, data_sha256=records.sha256)
    doc = checked_document(fit, settings, outcome != "change", check=check_inconsistency,
                           data_sha256=records.sha256)
    emit_fit(doc, json, allow_unconverged, format_network(doc))


def format_network(doc: dict) -> str:
    """Effects against the reference with SUCRA, then the edges."""
    lines = [f"network: {doc['measure']} on {doc['outcome']}, {doc['k']} studies, "
             f"{len(doc['nodes'])} nodes, reference {doc['reference']}; {doc['direction']}",
             f"{'node':<28}{'median':>9}{'95% CrI':>22}{'SUCRA':>8}"]
    for name, e in doc["effects"].items():
        lines.append(f"{name:<28}{e['median']:9.3f}   ({e['ci_low']:7.3f} to "
                     f"{e['ci_high']:7.3f}){doc['ranks'][name]['sucra']:8.2f}")
    t = doc["estimates"]["tau"]
    lines.append(f"tau {t['median']:.3f} ({t['ci_low']:.3f} to {t['ci_high']:.3f})")
    lines += [f"  {e['from']} - {e['to']}: {e['trials']} trial(s), {e['patients']} patients"
              for e in doc["edges"]]
    lines += prior_lines(doc["priors"])
    lines += [f"  warning: {w}" for w in doc.get("warnings", [])]
    return "\n".join(lines)
