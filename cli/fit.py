"""`trialmeta fit MODEL`: fit one model family to selected records."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DEFAULTS,
    ChainsOpt,
    DomainOpt,
    DoseOpt,
    DosesOpt,
    DoseUnitOpt,
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
    filters_from_options,
    finite,
    handle_errors,
)


@handle_errors
def pooled_rate(
    file: FileArg = None,
    outcome: Annotated[str, typer.Option(
        help="response, remission or events.")] = "response",
    time: Annotated[float | None, typer.Option(
        "--time", help="Target hours after the dose (default: 24 h for a file with time "
                       "points; a file without any uses each arm's one row, unwindowed).",
        callback=finite)] = None,
    window: Annotated[float | None, typer.Option(
        help="Half-width of the accepted time window in hours (default: half of --time, "
             "at least 1).", callback=finite)] = None,
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
    include_controls: Annotated[bool, typer.Option(
        help="Also pool control arms (normally only treated arms).")] = False,
    include_untimed: Annotated[bool, typer.Option(
        help="Also use arms whose counts have no time point (e.g. after a series of "
             "infusions).")] = False,
    moderator: ModeratorOpt = None,
    subgroup: Annotated[str | None, typer.Option(
        "--subgroup", help="A column whose levels are pooled separately, with their "
                           "differences (logit scale) from one moderated model.")] = None,
    cluster: Annotated[list[str] | None, typer.Option(
        "--cluster", help="A column whose levels group studies (repeatable, outer first): "
                          "one more random effect per level above the study.")] = None,
    seed: SeedOpt = DEFAULTS.seed,
    draws: DrawsOpt = DEFAULTS.draws,
    tune: TuneOpt = DEFAULTS.tune,
    chains: ChainsOpt = DEFAULTS.chains,
    sampler: SamplerOpt = DEFAULTS.sampler,
    allow_unconverged: FitAllowUnconvergedOpt = False,
    json: JsonOpt = False,
) -> None:
    """Pooled rate of treated arms (random effects, logit scale).

    Response, remission or events; single-arm files (metafor's xi/ni) included.
    """
    from trialmeta.analysis.families.pooled_rate import PooledRateRun, pooled_rate_document
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.models.pooled_rate import PooledRate
    from trialmeta.analysis.sampling.settings import SamplerSettings
    from trialmeta.analysis.select.filters import TimeWindow, select_binary_arms

    records = read_records(file)
    filters = filters_from_options(treatment, route, population, scale, evidence, doses_given,
                                   dose, domain, endpoint, dose_unit)
    if time is None and records.table["time_h"].notna().any():
        time = 24.0  # a file with time points: the claims' usual 24 h
    tw = None if time is None else TimeWindow.around(time, window)
    data = select_binary_arms(records, outcome, tw, filters, active_only=not include_controls,
                              untimed=include_untimed)
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed,
                               sampler=sampler)
    model = PooledRate(moderators=tuple(moderator or ()), clusters=tuple(cluster or ()))
    fit = model.fit(data, settings, data_sha256=records.sha256)
    run = PooledRateRun(outcome, tw, filters, fit, model.summary(fit))
    doc = pooled_rate_document(run, records)
    if subgroup:
        from trialmeta.analysis.families.pooled_rate import pooled_rate_subgroups
        from trialmeta.analysis.io.files import rounded

        doc["subgroups"] = rounded(pooled_rate_subgroups(data, subgroup, settings,
                                                         data_sha256=records.sha256))
    emit_fit(doc, json, allow_unconverged, format_pooled_rate(doc))


def format_pooled_rate(doc: dict) -> str:
    """Readable text summary of a pooled-rate document."""
    e = doc["estimates"]

    def line(name: str, q: str, as_pct: bool = True) -> str:
        x = e[q]
        f = (lambda v: f"{100 * v:5.1f}%") if as_pct else (lambda v: f"{v:6.3f}")
        return f"  {name:<16}{f(x['median'])}  (95% CrI {f(x['ci_low'])} to {f(x['ci_high'])})"

    g = doc["diagnostics"]
    out = [
        f"pooled-rate: {doc['outcome']}"
        + ("" if doc["time_h"] is None else f" at {doc['time_h']:g} h (window "
           f"{doc['window_h'][0]:g}-{doc['window_h'][1]:g} h)"),
        f"  {doc['arms']} arm(s), {doc['k']} stud(ies), {doc['n_total']} patients"
        + (f"; scales: {', '.join(doc['scales'])}" if doc["scales"] else ""),
        line("pooled rate", "pooled_rate"),
        line("new study", "predictive_rate"),
        line("tau (logit)", "tau", as_pct=False),
        *[line(k, k, as_pct=False) for k in e if k.startswith(("beta:", "sigma:"))],
        "",
        "  per arm (observed -> shrunken):",
    ]
    for a in doc["per_arm"]:
        out.append(f"    {a['study']:<16} {a['arm']:<14} {a['events']:>3}/{a['n']:<4}"
                   f"{100 * a['observed_rate']:5.1f}% -> {100 * a['shrunken_median']:5.1f}%")
    if "subgroups" in doc:
        sg = doc["subgroups"]
        out.append(f"  subgroups by {sg['column']} (reference {sg['reference']}):")
        for row in sg["groups"]:
            if row["status"] != "fitted":
                out.append(f"    {row['level']:<20} {row['arms']} arm(s): {row['status']}")
                continue
            x = row["pooled_rate"]
            out.append(f"    {row['level']:<20} {row['arms']:>3} arms  {100 * x['median']:5.1f}% "
                       f"({100 * x['ci_low']:.1f}% to {100 * x['ci_high']:.1f}%)")
        for d in sg["differences"]:
            out.append(f"    difference {d['term']:<20} {d['median']:7.3f} logit "
                       f"({d['ci_low']:.3f} to {d['ci_high']:.3f}), P(> 0) = "
                       f"{d['p_positive']:.3f}")
    pr = doc["priors"]
    out.append("  priors: " + ", ".join(f"{k} {v:g}" for k, v in pr.items()
                                        if isinstance(v, int | float)))
    out += dropped_lines(doc["dropped"])
    status = "passed" if g["passed"] else "FAILED: " + "; ".join(g["messages"])
    rhat = "n/a" if g["r_hat_max"] is None else f"{g['r_hat_max']:.3f}"
    ess = "n/a" if g["ess_bulk_min"] is None else f"{g['ess_bulk_min']:.0f}"
    out.append(f"  diagnostics: R-hat max {rhat}, bulk ESS min {ess}, divergences "
               f"{g['divergences']} -> {status}")
    out.append(f"  seed {doc['provenance']['seed']}, data sha256 "
               f"{doc['provenance']['data_sha256'][:12]}")
    return "\n".join(out)
