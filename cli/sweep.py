"""``trialmeta sweep``: how each claim's verdict moves when one analysis choice changes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULTS,
    CellCacheOpt,
    ChainsOpt,
    DrawsOpt,
    FileArg,
    JsonOpt,
    SamplerOpt,
    SchedulerOpt,
    SeedOpt,
    TuneOpt,
    WorkersOpt,
    handle_errors,
)

#: what sweep --out writes (the CSV is the JSON's companion)
SWEEP_FILES = {"sweep.json": "", "sweep.csv": "sweep.json"}


@handle_errors
def sweep(
    file: FileArg = None,
    claims: Annotated[str | None, typer.Option(
        help="Claims file (YAML); the bundled ketamine claims if omitted.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for sweep.json and sweep.csv.")] = None,
    loo: Annotated[bool, typer.Option(
        "--loo/--no-loo", help="Include leave-one-study-out cells.")] = True,
    seed: SeedOpt = DEFAULTS.seed,
    draws: DrawsOpt = DEFAULTS.draws,
    tune: TuneOpt = DEFAULTS.tune,
    chains: ChainsOpt = DEFAULTS.chains,
    sampler: SamplerOpt = DEFAULTS.sampler,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cache: CellCacheOpt = Path(".trialmeta-cache"),
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Refit every claim under one-at-a-time changes of prior, form, data and window."""
    from trialmeta.analysis.evaluate.claims import load_claims
    from trialmeta.analysis.io.files import check_outputs, dumps_json, write_outputs
    from trialmeta.analysis.io.provenance import command_line, package_versions
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.pipelines.engine import Task, run_tasks
    from trialmeta.analysis.pipelines.sweep import (
        Variation,
        cell_tasks,
        fixed_cells,
        loo_cells,
        table,
    )
    from trialmeta.analysis.sampling.settings import SamplerSettings

    records = read_records(file)
    claims_file = load_claims(claims)
    if out is not None:  # before any fit: never overwrite a file of the user's
        check_outputs(out, list(SWEEP_FILES), "--out", SWEEP_FILES)
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed,
                               sampler=sampler, cache_dir=None if cache is None else str(cache))
    show = False if quiet or as_json else None
    common = {"workers": workers, "scheduler": scheduler, "cache_dir": cache}
    [base] = cell_tasks([Variation("baseline")], records, claims_file, settings)

    def leave_one_out(task: Task, result: dict) -> list[Task]:
        """Once the baseline is in, the studies it used give the leave-one-out cells."""
        if task.key != base.key or not loo:
            return []
        return cell_tasks(loo_cells(result), records, claims_file, settings, result)

    # the baseline and the cells that do not depend on it start together, on one cluster
    fixed = cell_tasks(fixed_cells(claims_file, records), records, claims_file, settings)
    baseline, *rest = run_tasks([base, *fixed], label="sweep", progress=show,
                                follow_up=leave_one_out, **common)
    n_loo = len(rest) - len(fixed)  # the baseline's follow-ups come right after it
    results = rest[n_loo:] + rest[:n_loo]
    rows = table(claims_file, baseline, results)
    doc = {"baseline": baseline, "cells": results, "table": rows,
           "provenance": {"data_sha256": records.sha256, "claims_sha256": claims_file.sha256,
                          "settings": settings.as_dict(), "versions": package_versions(),
                          "command": command_line()}}
    if out is not None:
        import pandas as pd

        flat = pd.DataFrame([{k: v for k, v in r.items() if k != "changes"} |
                             {"changed_by": "; ".join(c["change"] for c in r["changes"])}
                             for r in rows])
        write_outputs(out, {"sweep.json": dumps_json(doc),
                            "sweep.csv": flat.to_csv(index=False, lineterminator="\n")},
                      "--out", SWEEP_FILES)
    if as_json:
        typer.echo(dumps_json(doc))
        return
    typer.echo(f"{len(results)} cells (one change each) x {len(rows)} claims")
    for r in rows:
        span = ("" if r["median_min"] is None else
                f"; median {r['median_min']:.3g} to {r['median_max']:.3g}")
        typer.echo(f"{r['id']:<16} {r['baseline_verdict']:<18} same verdict in "
                   f"{r['same_verdict']}/{r['cells']} cells{span}")
        for c in r["changes"]:
            typer.echo(f"{'':<18}-> {c['verdict']} ({c['change']})")
