"""`trialmeta forest`: the forest plot of any data, with subgroups when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    ComparatorOpt,
    CrossoverOpt,
    DomainOpt,
    DoseOpt,
    DosesOpt,
    DoseUnitOpt,
    EndpointOpt,
    EvidenceOpt,
    FileArg,
    MeanTypeOpt,
    PopulationOpt,
    RhoOpt,
    RouteOpt,
    ScaleOpt,
    TreatmentOpt,
    fail,
    finite,
    handle_errors,
)
from .contrast import MeasureOpt, OutcomeOpt, WindowOpt, _select

#: figure formats by file suffix
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


@handle_errors
def forest(
    file: FileArg = None,
    out: Annotated[str, typer.Option("--out", help="The figure to write: .svg, .png or .pdf.")
                   ] = "forest.svg",
    outcome: OutcomeOpt = "response",
    measure: MeasureOpt = "OR",
    method: Annotated[str, typer.Option(help="FE, DL, REML, ML or PM.")] = "REML",
    subgroup: Annotated[str | None, typer.Option(
        "--subgroup", help="A column whose levels get their own block and diamond, with the "
                           "test of a difference between them.")] = None,
    direction: Annotated[str | None, typer.Option(
        "--better", help="lower or higher: which side favours treatment (labels under the "
                         "axis; default lower for events, higher for response and remission, "
                         "none for means).")] = None,
    title: Annotated[str | None, typer.Option(help="Figure title (default: what is pooled).")
                     ] = None,
    time: Annotated[float | None, typer.Option(
        "--time", help="Target hours after the dose (omit for records without time points).",
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
) -> None:
    """Forest plot of any data: estimates, CIs, weights, the pooled diamond.

    With the prediction interval; ratio measures on a log axis; subgroups when asked.
    """
    from trialmeta.analysis.families.contrast import frequentist_document, run_frequentist
    from trialmeta.analysis.io.files import write_bytes_atomic
    from trialmeta.analysis.report.plots import figure_bytes, study_forest

    target = Path(out)
    kind = FORMATS.get(target.suffix.lower())
    if kind is None:
        raise fail(f"error: --out must end in .svg, .png or .pdf (got '{target.name}')")
    if direction not in (None, "lower", "higher"):
        raise fail(f"error: --better must be lower or higher (got '{direction}')")
    records, data = _select(file, outcome, measure, time, window, treatment, route, population,
                            scale, evidence, doses_given, dose, comparator, crossover, rho,
                            mean_type, domain, endpoint, dose_unit=dose_unit)
    run = run_frequentist(data, method.upper(), subgroup=subgroup)
    doc = frequentist_document(run, records)
    if direction is None:
        direction = {"events": "lower", "response": "higher", "remission": "higher"}.get(outcome)
    if direction is not None:
        doc["lower_is_better"] = direction == "lower"
    what = title or (f"{doc['measure']} on {doc['outcome']}"
                     + ("" if doc["time_h"] is None else f" at {doc['time_h']:g} h")
                     + f", {doc['method']} random effects")
    write_bytes_atomic(target, figure_bytes(study_forest(doc=doc, title=what), kind))
    typer.echo(f"{out}: forest plot of {doc['k']} contrast(s)"
               + (f" in {len(doc['subgroups']['groups'])} subgroups" if subgroup else ""))
