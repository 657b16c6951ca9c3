"""``trialmeta calibrate``: simulation-based calibration of a model family on Dask."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULTS,
    MAX_CHAINS,
    MAX_DRAWS,
    CellCacheOpt,
    FileArg,
    JsonOpt,
    SamplerOpt,
    SchedulerOpt,
    SeedOpt,
    WorkersOpt,
    fail,
    finite,
    handle_errors,
)


@handle_errors
def calibrate(
    model: Annotated[str, typer.Argument(
        help="Model family: pooled-rate, contrast, dose-response, time-course or network; or "
             "decision-rule (operating characteristics of the claims' verdicts).")],
    file: FileArg = None,
    sims: Annotated[int, typer.Option(min=1, max=100_000,
                                      help="Number of simulated datasets.")] = 200,
    seed: SeedOpt = DEFAULTS.seed,
    draws: Annotated[int, typer.Option(
        min=10, max=MAX_DRAWS, help="Posterior draws per chain (default: the report's).")] = (
        DEFAULTS.draws),
    tune: Annotated[int, typer.Option(min=10, max=MAX_DRAWS,
                                      help="Warm-up draws per chain.")] = DEFAULTS.tune,
    chains: Annotated[int, typer.Option(
        min=2, max=MAX_CHAINS, help="Number of chains (at least 2: ranks and R-hat compare "
                                    "chains).")] = DEFAULTS.chains,
    sampler: SamplerOpt = DEFAULTS.sampler,
    outcome: Annotated[str, typer.Option(
        help="Outcome whose data shape is simulated (time-course: 'response' is the log ORs "
             "C4-C6 judge, 'change' the change-score SMDs).")] = "response",
    time: Annotated[float, typer.Option("--time", help="Time point (hours).",
        callback=finite)] = 24.0,
    recover: Annotated[bool, typer.Option(
        "--recover", help="Parameter recovery: fix the main parameters at planted values "
                          "(--plant) instead of drawing them from the prior.")] = False,
    plant: Annotated[list[str] | None, typer.Option(
        "--plant", help="NAME=VALUE planted for --recover (repeatable), e.g. tau=0.5.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for calibration-MODEL.json and the rank/coverage plot.")] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cache: CellCacheOpt = Path(".trialmeta-cache"),
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    claims_file: Annotated[str | None, typer.Option(
        "--claims", help="Claims file for decision-rule (the bundled claims if omitted).")] =
        None,
) -> None:
    """Simulate data from the prior, refit, and check ranks and interval coverage.

    ``decision-rule`` instead simulates worlds where each claim is true or false at the
    bundled designs and counts the verdicts (see trialmeta.analysis.pipelines.operating).
    """
    if model == "decision-rule":
        _decision_rule(file, claims_file, sims, seed, draws, tune, chains, out, workers,
                       scheduler, cache, as_json, quiet)
        return
    from trialmeta.analysis.io.files import check_outputs, dumps_json, write_outputs
    from trialmeta.analysis.io.provenance import command_line, package_versions
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.pipelines.calibration import (
        PLANTED,
        CalibrationSpec,
        build,
        calibrated_families,
        summarize,
        tasks,
    )
    from trialmeta.analysis.pipelines.engine import run_tasks

    if model not in calibrated_families():
        raise fail(f"error: calibrate supports {', '.join(calibrated_families())}, not "
                   f"'{model}'")
    planted: dict[str, float] = {}
    if recover and model not in PLANTED:
        raise fail(f"error: --recover supports {', '.join(PLANTED)}, not '{model}'")
    if recover:
        planted = dict(PLANTED[model])
        for item in plant or []:
            name, _, value = item.partition("=")
            if name not in planted:
                raise fail(f"error: --plant {item}: plant one of {', '.join(planted)}")
            try:
                planted[name] = float(value)
            except ValueError:
                raise fail(f"error: --plant {item}: VALUE must be a number") from None
            if not math.isfinite(planted[name]) or (name == "tau" and planted[name] <= 0):
                raise fail(f"error: --plant {item}: VALUE must be a finite number"
                           + (" > 0" if name == "tau" else ""))
    elif plant:
        raise fail("error: --plant needs --recover")
    records = read_records(file)
    name = f"calibration-{model}{'-recovery' if recover else ''}"
    written = {f"{name}.json": "", f"{name}.svg": f"{name}.json"}
    if out is not None:  # before any fit: never overwrite a file of the user's
        check_outputs(out, list(written), "--out", written)
    spec = CalibrationSpec(model, outcome=outcome,
                           measure="SMD" if outcome == "change" else "OR", time_h=time,
                           draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                           planted=tuple(sorted(planted.items())))
    build(spec, records)  # fail here, before any worker starts, if the selection is empty
    results = run_tasks(tasks(spec, records, sims), workers=workers, scheduler=scheduler,
                        cache_dir=cache, label=f"calibrate {model}",
                        progress=False if quiet or as_json else None)
    summary = summarize(spec, results).as_dict()
    summary["provenance"] = {"data_sha256": records.sha256, "seed": seed,
                             "versions": package_versions(), "command": command_line()}
    if out is not None:
        from trialmeta.analysis.report.plots import calibration_plot, to_svg

        write_outputs(out, {f"{name}.json": dumps_json(summary),
                            f"{name}.svg": to_svg(calibration_plot(summary))}, "--out", written)
    if as_json:
        typer.echo(dumps_json(summary))
        return
    typer.echo(f"{model}: {sims} simulations, {draws} draws x {chains} chains each "
               f"({'planted ' + str(planted) if recover else 'parameters from the prior'})")
    typer.echo(f"{'quantity':<24}{'level':>6}{'coverage':>10}{'99% CI':>16}  verdict")
    for r in summary["coverage"]:
        typer.echo(f"{r['quantity']:<24}{r['level']:>6.0%}{r['coverage']:>10.1%}"
                   f"  {r['ci_low']:>6.1%}-{r['ci_high']:<6.1%}  {r['verdict']}")
    for label, verdict in summary["verdicts"].items():
        p = summary["rank_uniformity_p"][label]
        rec = summary["recovery"][label]
        p_text = "n/a (< 40 simulations)" if p is None else f"{p:.3g}"
        typer.echo(f"{label}: {verdict} (rank chi-square p = {p_text}; "
                   f"bias {rec['bias']:+.3f}, rmse {rec['rmse']:.3f})")
    d = summary["diagnostics"]
    typer.echo(f"fits with divergences: {d['with_divergences']}/{d['fits']}; failing the "
               f"report's convergence gate at these settings: {d['failed_gate']}/{d['fits']}")


def _decision_rule(file, claims_file, sims, seed, draws, tune, chains, out, workers,
                   scheduler, cache, as_json, quiet) -> None:
    """Operating characteristics of the decision rule: verdict frequencies by world."""
    from trialmeta.analysis.evaluate.claims import load_claims
    from trialmeta.analysis.io.files import check_outputs, dumps_json, write_outputs
    from trialmeta.analysis.io.provenance import command_line, package_versions
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.pipelines.engine import run_tasks
    from trialmeta.analysis.pipelines.operating import specs_for, summarize, tasks

    records = read_records(file)
    claims = load_claims(claims_file)
    if out is not None:  # before any fit: never overwrite a file of the user's
        check_outputs(out, ["operating-characteristics.json"], "--out")
    specs = specs_for(claims, records, draws=draws, tune=tune, chains=chains, seed=seed)
    if not specs:
        raise fail("error: no claim in the claims file has a type the decision-rule "
                   "simulation covers (pooled_rate in a finite region; effect > 0)")
    results = run_tasks(tasks(specs, records, claims, sims), workers=workers,
                        scheduler=scheduler, cache_dir=cache, label="decision rule",
                        progress=False if quiet or as_json else None)
    doc = {"rows": summarize(specs, results, sims), "sims": sims,
           "settings": {"draws": draws, "tune": tune, "chains": chains},
           "provenance": {"data_sha256": records.sha256, "claims_sha256": claims.sha256,
                          "seed": seed, "versions": package_versions(),
                          "command": command_line()}}
    if out is not None:
        write_outputs(out, {"operating-characteristics.json": dumps_json(doc)}, "--out")
    if as_json:
        typer.echo(dumps_json(doc))
        return
    typer.echo(f"{'claim':<14}{'world':<34}{'supported':>10}{'(strong)':>9}{'contradicted':>13}"
               f"{'inconclusive':>13}{'insufficient':>13}")
    for r in doc["rows"]:
        typer.echo(f"{r['claim']:<14}{r['world']:<34}" + "".join(
            f"{r[v]['p']:>{w}.0%}" for v, w in (("supported", 10), ("supported_strong", 9),
                                              ("contradicted", 13), ("inconclusive", 13),
                                              ("insufficient data", 13))))
