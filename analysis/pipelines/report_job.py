"""The report job: every fit the report shows, then the report itself.

Fits the claims (through the evaluator), the descriptive comparisons, the other curve forms
for the PSIS-LOO tables and the sensitivity table, optionally on an earlier version of the
records as well, with worker processes where they pay off; then hands the results to the
report layer (:mod:`trialmeta.analysis.report.build`), which presents them and fits nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..claims.spec import ClaimsFile
from ..evaluate.evaluation import Evaluation, evaluate
from ..families.registry import get_family
from ..io.cache import Cache
from ..io.files import rounded, write_text_atomic
from ..io.provenance import package_versions
from ..io.records import Records
from ..report.build import Report, assemble, render, write_report
from ..report.contrast_section import strip_figures, with_figures
from ..report.extras import to_csv
from ..report.plots import svg, use_svg_cache
from ..sampling.settings import SamplerSettings
from .contrast_fits import fit_contrast_section
from .sensitivity import sensitivity


def build_report(records: Records, claims: ClaimsFile, settings: SamplerSettings, out: Path,
                 *, progress: bool = False, jobs: int = 1, records_path: str | None = None,
                 say=None,
                 robustness: dict[str, Any] | None = None,
                 baseline: tuple[Records, str] | None = None,
                 previous: tuple[dict[str, Any], str] | None = None,
                 history: Path | None = None) -> dict[str, Any]:
    """Run the analysis and write the report; return results.json's content.

    With ``jobs > 1`` and a cache folder in ``settings``, independent fits first run in
    worker processes (they fill the cache); the report is then assembled from the cache.
    With ``baseline`` (earlier records and a label), the claims and comparisons are also
    evaluated on them and the report says what the new evidence changed. With
    ``previous`` (an earlier report's results.json and a label), it opens with what changed
    since that report. With ``history`` (a folder), the run is appended to its
    ``history.csv`` once the report is written, and the report draws P(region) over runs.
    """
    say = say or (lambda msg: None)
    use_svg_cache(Path(settings.cache_dir) if settings.cache_dir else None)
    marker = _complete_marker(records, claims, settings)
    if jobs > 1 and settings.cache_dir and not (marker and marker.exists()):
        from .prefetch import prefetch

        say(f"fitting in {jobs} worker processes ...")
        prefetch(records_path, settings, claims, jobs)
    from .report_helper import ReportHelper

    helper = ReportHelper(settings)
    try:
        before = None if baseline is None else _baseline_later(helper, baseline[0], claims,
                                                               settings)
        report = _analyse(records, claims, settings, helper, say, progress, robustness)
        if baseline is not None:
            say(f"the same claims on {baseline[1]} ...")
            add_changes(report, records, before, *baseline)
        history_rows = _extend(report, previous, history)
        helper.wait()
    finally:
        helper.close()
    write_report(render(report), out, report.posteriors, settings)
    if history_rows is not None:
        from ..report.history import history_text

        write_text_atomic(history / "history.csv", history_text(history_rows))
    if marker:
        marker.parent.mkdir(parents=True, exist_ok=True)  # a fit without a sampler caches nothing
        marker.touch()
    return report.results


def _extend(report: Report, previous: tuple[dict[str, Any], str] | None,
            history: Path | None) -> list[dict[str, Any]] | None:
    """Add what changed since the previous report and the run history; return its rows."""
    if previous is not None:
        from .changes import diff_reports

        since = rounded(diff_reports(previous[0], report.results, previous[1]))
        report.results["since_previous"] = since
        report.context["since_previous"] = since
    history_rows = None
    if history is not None:
        from ..report.history import history_plot, read_history, run_rows

        history_rows = read_history(history)
        history_rows += run_rows(report.results, history_rows)
        report.context["history"] = {
            "folder": str(history), "runs": len({r["run"] for r in history_rows}),
            "svg": svg(history_plot, rows=history_rows)}
    return history_rows


def _analyse(records: Records, claims: ClaimsFile, settings: SamplerSettings,
             helper: Any, say: Any, progress: bool,
             robustness: dict[str, Any] | None) -> Report:
    """Evaluate the claims and comparisons; hand each posterior to ``helper`` when known."""
    say(f"claims: {len(claims.claims)} ...")
    evaluation = evaluate(records, claims, settings, progress=progress)
    for claim in claims.descriptive:  # fitted and shown, never judged
        key = claim.fit_key()
        evaluation.runs[key] = get_family(claim.model).run(records, claim, settings)
        evaluation.claims_for_run[key] = []
    for run in evaluation.runs.values():
        if run.doc is not None:
            helper.add_posterior(run.posterior)
    say(f"contrast section: {len(claims.contrasts)} comparison(s) ...")
    contrasts = fit_contrast_section(records, claims.contrasts, settings)
    for g in (g for c in contrasts for g in c["groups"]):
        helper.add_posterior(g.get("_idata"))
    say("functional forms (PSIS-LOO) ...")
    loo_tables = form_comparisons(records, evaluation, settings)
    say("writing ...")
    return assemble(records, claims, settings, evaluation, with_figures(contrasts), loo_tables,
                    robustness, sensitivity(records, claims))


def add_changes(report: Report, records: Records, results: Callable[[], dict[str, Any]],
                before: Records, label: str) -> None:
    """Add "What the new evidence changed": ``results()`` gives the results on ``before``.

    ``results`` is :func:`_baseline_later`'s: stored, or computed alongside by the helper.
    """
    from .changes import compare, data_changes

    old = results()
    changes = rounded(compare(old, report.results, label, data_changes(before, records)))
    report.results["changes"] = changes
    report.context["changes"] = changes
    report.tables["tables/changes.csv"] = to_csv(
        [{"id": c["id"], "status": c["status"],
          **{f"{side}_{k}": (c[side] or {}).get(k) for side in ("before", "after")
             for k in ("verdict", "probability", "median", "ci_low", "ci_high")},
          "studies_added": ";".join(c["studies_added"]),
          "studies_removed": ";".join(c["studies_removed"])} for c in changes["claims"]],
        ["id", "status", "before_verdict", "after_verdict", "before_probability",
         "after_probability", "before_median", "after_median", "before_ci_low",
         "before_ci_high", "after_ci_low", "after_ci_high", "studies_added",
         "studies_removed"])


def _baseline_results(before: Records, claims: ClaimsFile,
                      settings: SamplerSettings) -> dict[str, Any]:
    """Evaluate the claims and comparisons on the baseline records (kept in the cache).

    The document is a function of the records, claims, settings and versions, which key
    it; a warm report reads it back instead of evaluating the baseline again.
    """
    found, cache, key = _stored_baseline(before, claims, settings)
    if found is not None:
        return found
    # only the verdicts are shown
    ev = evaluate(before, claims, settings, documents=False, fragility=False)
    section = fit_contrast_section(before, claims.contrasts, settings)
    results = rounded({"claims": [r.as_dict() for r in ev.results],
                       "contrasts": strip_figures(section)})
    if cache is not None:
        try:
            cache.store_result(key, results)
        except OSError:
            pass  # the cache only saves time
    return results


def _stored_baseline(before: Records, claims: ClaimsFile, settings: SamplerSettings
                     ) -> tuple[dict[str, Any] | None, Cache | None, str]:
    """Return the baseline's stored results (None if absent), the cache and the key."""
    from .engine import task_key

    key = task_key("baseline", before.sha256, claims.sha256, settings.as_dict(),
                   package_versions())
    cache = Cache(settings.cache_dir) if settings.cache_dir else None
    return (cache.read_result(key) if cache is not None else None), cache, key


def _baseline_later(helper: Any, before: Records, claims: ClaimsFile,
                    settings: SamplerSettings) -> Callable[[], dict[str, Any]]:
    """Return a function giving the baseline's results: stored, or computed by ``helper``."""
    found = _stored_baseline(before, claims, settings)[0]
    if found is not None:
        return lambda: found
    return helper.call(_baseline_results, before, claims, settings)


def form_comparisons(records: Records, evaluation: Evaluation,
                     settings: SamplerSettings) -> list[dict[str, Any]]:
    """PSIS-LOO tables for the dose-response and time-course fits the claims used.

    The claims' own fits are reused; only the other forms are fitted.
    """
    tables, seen = [], set()
    for run in evaluation.runs.values():
        if run.doc is None or run.curve_options is None:
            continue
        opts = run.curve_options
        key = (run.family, repr(opts.filters), opts.outcome)
        if key in seen:
            continue
        seen.add(key)
        table = get_family(run.family).form_table(records, run, settings)
        if table is not None:
            tables.append(table)
    return tables


def _complete_marker(records: Records, claims: ClaimsFile,
                     settings: SamplerSettings) -> Path | None:
    """Return the cache file that says "every fit of this report is cached".

    Its name hashes the records, the claims, the settings and the package versions. When it
    exists the worker processes are not started: they would only find cache hits, and
    starting them (each imports PyMC) costs more than the rest of a warm run. If entries
    were deleted since, the report refits them in this process: slower, never wrong.
    """
    if not settings.cache_dir or not records.sha256 or not claims.sha256:
        return None
    text = "\n".join([records.sha256, claims.sha256, repr(sorted(settings.as_dict().items())),
                      repr(sorted(package_versions().items()))])
    name = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Cache(settings.cache_dir).marker(f"report-{name}.complete")
