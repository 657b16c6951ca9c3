"""`trialmeta report`: run the claims' analyses and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULTS,
    AllowUnconvergedOpt,
    ChainsOpt,
    DrawsOpt,
    FileArg,
    SamplerOpt,
    SeedOpt,
    TuneOpt,
    claim_numbers,
    exit_if_no_fit_converged,
    fail,
    handle_errors,
    verdict_label,
)


@handle_errors
def report(
    file: FileArg = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("reports"),
    claims: Annotated[str | None, typer.Option(
        help="Claims file (YAML). If omitted: the bundled ketamine claims for the bundled "
             "data; for your own FILE, a report of the data alone (each treatment against "
             "control, forest and funnel plots, heterogeneity; no claims judged).")] = None,
    cluster: Annotated[list[str] | None, typer.Option(
        "--cluster", help="For a report of your own file without --claims: a column whose "
                          "levels group studies (repeatable, outer first). Each comparison "
                          "is then also fitted as a multilevel model with cluster-robust "
                          "errors. With --claims, give 'cluster:' in its contrasts.")] = None,
    seed: SeedOpt = DEFAULTS.seed,
    draws: DrawsOpt = DEFAULTS.draws,
    tune: TuneOpt = DEFAULTS.tune,
    chains: ChainsOpt = DEFAULTS.chains,
    sampler: SamplerOpt = DEFAULTS.sampler,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only errors.")] = False,
    allow_unconverged: AllowUnconvergedOpt = False,
    cache: Annotated[Path | None, typer.Option(
        help="Folder of cached posteriors: an unchanged fit is read back, not resampled.")
    ] = Path(".trialmeta-cache"),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Always resample.")] = False,
    jobs: Annotated[int, typer.Option(
        min=1, max=256, help="Worker processes for independent fits (needs the cache). The "
                    "precompiled models fit in about a second, less than a worker takes to "
                    "start; more jobs pay off for PyTensor-compiled models.")] = 1,
    sweep: Annotated[Path | None, typer.Option(
        help="sweep.json from `trialmeta sweep` on the same data and claims: adds the "
             "section 'Does the conclusion depend on choices?'.")] = None,
    calibration: Annotated[list[Path] | None, typer.Option(
        help="calibration-MODEL.json from `trialmeta calibrate --out` (repeatable, or a "
             "folder of them): adds the calibration section.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="If --out holds files a report did not write, write the report into "
                        "a new subfolder of it (foreign files are never deleted).")] = False,
    baseline_data: Annotated[Path | None, typer.Option(
        "--baseline-data", help="An earlier version of the records (a CSV): the claims and "
                                "comparisons are also evaluated on it, and the section 'What "
                                "the new evidence changed' compares the two.")] = None,
    previous: Annotated[Path | None, typer.Option(
        "--previous", help="An earlier report folder (or its results.json): the report "
                           "opens with 'Since the previous report' (verdicts changed, "
                           "estimates that moved, studies added).")] = None,
    history: Annotated[Path | None, typer.Option(
        "--history", help="A folder: append this run's claims (date, data hash, verdicts, "
                          "P) to its history.csv and draw each claim's P(region) over the "
                          "runs in the report.")] = None,
    baseline_label: Annotated[str | None, typer.Option(
        "--baseline-label", help="How the report names --baseline-data (default: its file "
                                 "name).")] = None,
) -> None:
    """Write index.html, report.md and results.json for the records and claims.

    An existing --out is replaced only when it is empty or a trialmeta report (it carries
    the marker file .trialmeta-report and nothing but the files listed there).
    """
    from trialmeta.analysis.evaluate.claims import bundled_claims_path, load_claims
    from trialmeta.analysis.io.records import bundled_path, is_bundled, read_records
    from trialmeta.analysis.pipelines.report_job import build_report
    from trialmeta.analysis.report.output import claimed_output
    from trialmeta.analysis.sampling.settings import SamplerSettings

    records = read_records(file)
    data_only = claims is None and file is not None and not is_bundled(records)
    if data_only:  # the ketamine claims are never applied to another file
        from trialmeta.analysis.pipelines.data_only import data_only_claims

        claims_file = data_only_claims(records, tuple(cluster or ()))
        if not claims_file.contrasts and not claims_file.descriptive:
            raise fail("error: nothing to describe: no study in the file compares a "
                       "treatment with a control, no two treated arms have counts to pool, "
                       "and there is no claims file (--claims)")
    else:
        if cluster:
            raise fail("error: --cluster is for a report of the data alone; with a claims "
                       "file, give 'cluster:' in its contrasts (and claims)")
        claims_file = load_claims(claims)
    baseline = None if baseline_data is None else (
        read_records(str(baseline_data)), baseline_label or baseline_data.name)
    from trialmeta.analysis.pipelines.changes import read_results

    earlier = None if previous is None else (read_results(previous), str(previous))
    import sys

    cache_dir = None if no_cache or cache is None else str(cache)
    protected = {"records file": Path(file) if file else bundled_path(),
                 **({} if data_only else {
                     "claims file": Path(claims) if claims else bundled_claims_path()}),
                 "sweep file": sweep, "baseline data": baseline_data,
                 "history folder": history,
                 **{f"calibration file {i + 1}": p for i, p in enumerate(calibration or [])}}
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed,
                               sampler=sampler,
                               cache_dir=cache_dir)
    chatty = not quiet and sys.stderr.isatty()

    def say(msg: str) -> None:
        if chatty:
            typer.echo(f"trialmeta report: {msg}", err=True)

    with claimed_output(out, force=force, protected=protected,
                        cache=Path(cache_dir) if cache_dir else None,
                        say=lambda m: typer.echo(f"trialmeta report: {m}", err=True)) as plan:
        for note in plan.notes:
            typer.echo(f"trialmeta report: {note}", err=True)
        out = plan.target
        results = build_report(records, claims_file, settings, out, progress=chatty,
                               jobs=jobs if cache_dir else 1, records_path=file,
                               say=say,
                               robustness=read_robustness(sweep, calibration, records,
                                                          claims_file),
                               baseline=baseline, previous=earlier, history=history)
    if not quiet:
        for c in results["claims"]:
            typer.echo(f"{c['id']:<14} {verdict_label(c):<44} {claim_numbers(c)}"
                       .rstrip("; "))
        typer.echo(f"wrote {out}/index.html, {out}/report.md, {out}/results.json")
    exit_if_no_fit_converged(results["claims"], allow_unconverged)


def read_robustness(sweep: Path | None, calibration: list[Path] | None, records, claims_file):
    """Read the sweep and calibration results, refusing ones made for other data or claims."""
    import json

    from trialmeta.analysis.errors import SpecError
    from trialmeta.analysis.io.files import read_regular_text

    def load(path: Path) -> dict:
        try:
            doc = json.loads(read_regular_text(path, "sweep or calibration result"))
        except ValueError as exc:
            raise SpecError(f"{path}: cannot read ({exc})") from None
        if not isinstance(doc, dict):
            raise SpecError(f"{path}: not a trialmeta sweep or calibration result")
        return doc

    out: dict = {"calibration": []}
    if sweep is not None:
        doc = load(sweep)
        prov = doc.get("provenance", {})
        if (prov.get("data_sha256"), prov.get("claims_sha256")) != (records.sha256,
                                                                     claims_file.sha256):
            raise SpecError(f"{sweep}: made for other records or claims; rerun trialmeta sweep")
        out["sweep"] = doc
    files = []
    for path in calibration or []:
        files += sorted(path.glob("calibration-*.json")) if path.is_dir() else [path]
        rule = path / "operating-characteristics.json"
        if path.is_dir() and rule.exists():
            doc = load(rule)
            prov = doc.get("provenance", {})
            doc["stale"] = (prov.get("data_sha256"), prov.get("claims_sha256")) != (
                records.sha256, claims_file.sha256)
            if doc["stale"]:
                typer.echo(f"warning: {rule} was made for other records or claims; rerun "
                           "make calibrate", err=True)
            out["operating"] = doc
    for path in files:
        doc = load(path)
        if "coverage" not in doc or "spec" not in doc:
            raise SpecError(f"{path}: not a trialmeta calibrate result")
        # simulated from another version of the records: shown, but marked stale
        doc["stale"] = doc.get("provenance", {}).get("data_sha256") != records.sha256
        if doc["stale"]:
            typer.echo(f"warning: {path} was made for other records; rerun make calibrate",
                       err=True)
        out["calibration"].append(doc)
    return out
