"""Build the report: run the claims' fits, then write HTML, Markdown and results.json.

Everything is written into a temporary folder beside the output folder, which
then replaces the output folder, so an interrupted run leaves the previous
report untouched. The same records, claims, seed and lock file give the same
bytes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..evaluate.claims import ClaimsFile
from ..evaluate.evaluation import Evaluation, evaluate
from ..families.base import get_family
from ..families.results import rounded
from ..io.files import dumps_json, write_text_atomic
from ..io.records import Records, summarize
from ..sampling.inference import SamplerSettings, cached_file, command_line, package_versions
from .contrast_section import run_contrast_section, strip_figures
from .extras import limitations, load_published, published_comparison, sensitivity, to_csv
from .output import MARKER, marker_text, staging_folder, swap_in
from .plots import calibration_plot, svg, use_svg_cache

MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(value: Any) -> str:
    """Escape text for a Markdown table cell (no markup from the data is ever rendered)."""
    text = "" if value is None else str(value)
    return MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def pct(value: float | None) -> str:
    """Format a proportion as a percentage with one decimal."""
    return "–" if value is None else f"{100 * value:.1f}%"


RATES = ("pooled_rate", "predictive_rate", "control_rate")


def qfmt(value: float | None, quantity: str) -> str:
    """Format a claim's quantity: rates as percentages, hours with a unit, else 3 digits."""
    if value is None:
        return "–"
    if quantity in RATES:
        return pct(value)
    if quantity.endswith("_h"):
        return f"{value:.1f} h"
    return f"{value:.3g}"


def cfmt(claim: dict[str, Any], key: str) -> str:
    """Format a claim's median or interval bound; a never-reached time reads "> 672 h"."""
    if key in claim.get("censored_above", []):
        from ..models.time_course import GRID_END_H

        return f"> {GRID_END_H:g} h"
    return qfmt(claim.get(key), claim["quantity"])


def tfmt(value: float | None) -> str:
    """Format an arm's time point in hours; an untimed arm reads "no time point"."""
    if value is None or (isinstance(value, float) and value != value):
        return "no time point"
    return f"{value:g}"


def at_time(value: float | None) -> str:
    """Say when: "at 24 h", or "with no time point" for untimed selections."""
    text = tfmt(value)
    return text if text == "no time point" else f"at {text} h"


def scale_label(measure: str) -> str:
    """Name the scale a measure is pooled on: ratio measures are on the log scale."""
    return f"log {measure}" if measure in ("OR", "RR") else measure


#: longest file-name stem written: a slug of the id plus a hash stays far below NAME_MAX
MAX_STEM = 80


def file_stem(name: str) -> str:
    """Return a safe, bounded file name for an id: its slug, plus a short hash when cut."""
    slug = re.sub(r"[^A-Za-z0-9._=+-]", "_", name).lstrip(".") or "fit"
    if len(slug) <= MAX_STEM:
        return slug
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{slug[:MAX_STEM - 13]}-{digest}"


def prior_text(model: str, priors: dict[str, Any], measure: str = "OR") -> str:
    """Write a fit's priors out as distributions (the report prints every family's)."""
    g = {k: (f"{v:g}" if isinstance(v, float | int) else v) for k, v in priors.items()}
    if model == "pooled-rate":
        return (f"μ ~ N({g['mu_mean']}, {g['mu_sd']}) on the logit scale; τ ~ HalfNormal("
                f"{g['tau_scale']}); σ (study, when a study has several arms) ~ HalfNormal("
                f"{g.get('study_scale', '1')}); moderator coefficients ~ N(0, {g['mu_sd']})")
    if model == "contrast":
        tau = priors.get("tau") or {}
        base = (f"study baselines (control log odds) ~ N(0, {g['baseline_sd']}); "
                if measure in ("OR", "RR", "RD") else "")
        return f"d ~ N(0, {g['effect_sd']}) ({measure}); {base}τ: {tau.get('label', tau)}"
    if model == "dose-response":
        return (f"amplitude ~ N(0, {g['amplitude_sd']}); τ ~ HalfNormal({g['tau_scale']}); "
                f"log ED50 ~ N(log mid-dose, {g['ed50_sd']}); log Hill ~ N(0, {g['hill_sd']}); "
                f"study baselines ~ N(0, {g['baseline_sd']})")
    if model == "network":
        tau = priors.get("tau") or {}
        return (f"d (each treatment vs the reference) ~ N(0, {g['effect_sd']}); study "
                f"baselines ~ N(0, {g['baseline_sd']}); τ: {tau.get('label', tau)}; "
                "multi-arm random effects correlated 0.5")
    if model == "time-course" or {"t_rise", "t_decay"} <= set(priors):
        return (f"peak A ~ N(0, {g['peak_sd']}); log T_r ~ N(log {g['t_rise']} h, {g['t_sd']}); "
                f"log(T_d − T_r) ~ N(log {g['t_decay']} h, {g['t_sd']}); τ (log-normal "
                f"amplitude) ~ HalfNormal({g['tau_scale']})")
    return "; ".join(f"{k} = {v}" for k, v in g.items())


def rate_rows(estimates: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (key, label) of a pooled-rate fit's table rows.

    With moderators, logit^-1(mu) is the rate at the moderators' reference level, not a
    pooled rate, and the coefficients (what a claim may be judged on) are listed too.
    """
    moderated = any(k.startswith("beta:") for k in estimates)
    labels = {"pooled_rate": "rate at the reference level" if moderated else "pooled rate",
              "predictive_rate": "new-study rate at the reference level" if moderated
              else "new-study rate", "tau": "tau (arm, logit)",
              "sigma_study": "sigma (study, logit)"}
    rows = [(k, labels[k]) for k in ("pooled_rate", "predictive_rate", "tau", "sigma_study")
            if k in estimates]
    return rows + [(k, f"coefficient {k.removeprefix('beta:')} (log odds)")
                   for k in estimates if k.startswith("beta:")]


def efmt(estimate: dict[str, Any], key: str, digits: int) -> str:
    """Format one number of an estimate; a censored median or bound reads "> 672"."""
    value = estimate.get(key)
    if value is None and "censored_above_h" in estimate and key in ("median", "ci_high"):
        return f"> {estimate['censored_above_h']:g}"
    return num(value, digits)


def bfmt(value: float | None) -> str:
    """Format a Bayes factor with three significant digits."""
    return "–" if value is None else f"{value:.3g}"


def region(bounds: list) -> str:
    """Format a region with open ends as infinities."""
    lo = "−∞" if bounds[0] is None else f"{bounds[0]:g}"
    hi = "∞" if bounds[1] is None else f"{bounds[1]:g}"
    return f"[{lo}, {hi}]"


def num(value: float | None, digits: int = 2) -> str:
    """Format a number, or a dash when missing."""
    return "–" if value is None else f"{value:.{digits}f}"


@dataclass
class Report:
    """The report's content, shared by every output format."""

    context: dict[str, Any]
    results: dict[str, Any]
    tables: dict[str, str]
    posteriors: dict[str, Any]


def assemble(records: Records, claims: ClaimsFile, settings: SamplerSettings,
             evaluation: Evaluation, contrasts: list[dict[str, Any]] | None = None,
             loo_tables: list[dict[str, Any]] | None = None,
             robustness: dict[str, Any] | None = None) -> Report:
    """Collect every number, table and figure of the report.

    ``robustness`` holds a ``trialmeta sweep`` document (``sweep``) and ``trialmeta
    calibrate`` summaries (``calibration``), made beforehand for the same data and claims.
    """
    fits, curves, sections = [], [], []
    fit_docs, posteriors = {}, {}
    used_contrasts = {row["study"] for c in contrasts or [] for g in c["groups"]
                      for row in g.get("bayesian", {}).get("per_study", [])}
    for key, run in evaluation.runs.items():
        if run.doc is None:
            continue
        ids = evaluation.claims_for_run[key]
        when = "" if key[2] is None else f"-{key[2].target_h:g}h"
        fid = f"{key[0]}-{key[1]}{when}-{'-'.join(ids)}"
        fit_docs[fid] = run.doc
        if "idata" in run.extra:
            posteriors[fid] = run.extra["idata"]
        shown = get_family(run.family).report_item(run, fid, ids)
        if shown is not None:
            {"fits": fits, "curves": curves, "sections": sections}[shown[0]].append(shown[1])
    claim_rows = [r.as_dict() for r in evaluation.results]
    provenance = {
        "data": records.path,
        "data_sha256": records.sha256,
        "claims": claims.path,
        "claims_sha256": claims.sha256,
        "seed": settings.seed,
        "sampler": settings.as_dict(),
        "versions": package_versions(),
        "command": command_line(),
    }
    overview = summarize(records)
    contrasts = contrasts or []
    for c in contrasts:
        for g in c["groups"]:
            if "_idata" in g:
                posteriors[f"contrast-{c['id']}-{g['group'].replace(' ', '_')}"] = g["_idata"]
    blank = {"r_hat_max": None, "ess_bulk_min": None, "divergences": None, "passed": None,
             "messages": []}  # a plug-in's fit may have no sampler diagnostics
    diagnostics_rows = [{"id": fid, **blank, **doc.get("diagnostics", {})}
                        for fid, doc in fit_docs.items()]
    prior_rows = [{"id": fid, "text": prior_text(doc.get("model", ""), doc.get("priors") or {},
                                                 doc.get("measure", "OR"))}
                  for fid, doc in fit_docs.items() if doc.get("priors")]
    for c in contrasts or []:
        for g in c["groups"]:
            if g.get("bayesian"):
                prior_rows.append({"id": f"contrast-{c['id']}-{g['group']}",
                                   "text": prior_text("contrast", g["bayesian"]["priors"],
                                                      g["bayesian"]["measure"])})
    for c in contrasts:
        for g in c["groups"]:
            if g.get("bayesian"):
                diagnostics_rows.append({"id": f"contrast-{c['id']}-{g['group']}",
                                         **g["bayesian"]["diagnostics"]})
    published = published_comparison(load_published(claims, claims.published), claim_rows,
                                      contrasts, records)
    sens = sensitivity(records, claims)
    limits = limitations(records, claim_rows, curves, diagnostics_rows)
    results = rounded({
        "claims": claim_rows,
        "fits": fit_docs,
        "contrasts": strip_figures(contrasts),
        "form_comparisons": loo_tables or [],
        "published_comparison": published,
        "sensitivity": sens,
        "robustness": _robustness_results(robustness),
        "limitations": limits,
        "data": overview,
        "provenance": provenance,
    })
    used = {s for run in evaluation.runs.values() if run.doc is not None for s in run.studies}
    used |= used_contrasts
    study_rows = []
    for study, rows in records.table.groupby("study", sort=True):
        notes = [n for n in rows.get("notes", []) if isinstance(n, str) and n]
        study_rows.append({
            "study": study,
            "design": rows["design"].dropna().iloc[0] if rows["design"].notna().any() else "",
            "population": rows["population"].dropna().iloc[0]
            if rows["population"].notna().any() else "",
            "arms": int(rows["arm"].nunique()),
            "rows": len(rows),
            "evidence": ", ".join(sorted(set(rows["evidence"].dropna()))),
            "used": study in used,
            "why_not_used": "" if study in used else (notes[0] if notes else
                                                      "no analysis selected its rows"),
            "source": rows["source"].iloc[0].split(" | ")[0],
        })
    context = {
        "claims": results["claims"],
        "fits": fits,
        "curves": curves,
        "sections": sections,
        "diagnostics_rows": rounded(diagnostics_rows),
        "prior_rows": prior_rows,
        "loo_tables": loo_tables or [],
        "published": results["published_comparison"],
        "sensitivity": results["sensitivity"],
        "sweep": results["robustness"]["sweep"],
        "calibration": [dict(c, svg=svg(calibration_plot, summary=c))
                        for c in results["robustness"]["calibration"]],
        "operating": results["robustness"].get("operating"),
        "limitations": limits,
        "contrasts": contrasts,
        "overview": results["data"],
        "studies": study_rows,
        "provenance": results["provenance"],
        "pct": pct,
        "num": num,
        "qfmt": qfmt,
        "cfmt": cfmt,
        "bfmt": bfmt,
        "efmt": efmt,
        "tfmt": tfmt,
        "scale_label": scale_label,
        "rate_rows": rate_rows,
        "at_time": at_time,
        "region": region,
        "md": md_escape,
        "changes": None,  # set by add_changes when the report has a baseline
        "since_previous": None,  # set by build_report with --previous
        "history": None,  # set by build_report with --history
    }
    tables = {
        "tables/claims.csv": to_csv(
            [dict(c, studies=";".join(c["studies"])) for c in results["claims"]],
            ["id", "title", "model", "outcome", "quantity", "median", "ci_low", "ci_high",
             "p_prior", "probability", "p_below", "p_above", "bayes_factor", "spread_ratio",
             "draws_per_chain", "verdict", "basis", "studies", "diagnostics_passed", "reason"]),
        "tables/studies.csv": to_csv(study_rows, ["study", "design", "population", "arms",
                                                  "rows", "evidence", "used", "why_not_used",
                                                  "source"]),
        "tables/estimates.csv": to_csv(
            [{"fit": fid, "quantity": q, **e} for fid, doc in results["fits"].items()
             for q, e in doc.get("estimates", {}).items() if isinstance(e, dict) and e],
            ["fit", "quantity", "mean", "median", "sd", "ci_low", "ci_high"]),
        "tables/contrasts.csv": to_csv(
            [{"contrast": c["id"], "group": g["group"], "k": g["k"],
              **{f"bayes_{k}": v for k, v in g.get("bayesian", {}).get("estimates", {})
                 .get("effect", {}).items() if k in ("median", "ci_low", "ci_high")},
              **{f"freq_{k}": g.get("frequentist", {}).get(k) for k in
                 ("method", "estimate", "ci_low", "ci_high", "tau2", "I2")}}
             for c in results["contrasts"] for g in c["groups"]],
            ["contrast", "group", "k", "bayes_median", "bayes_ci_low", "bayes_ci_high",
             "freq_method", "freq_estimate", "freq_ci_low", "freq_ci_high", "freq_tau2",
             "freq_I2"]),
        "tables/published_comparison.csv": to_csv(
            [dict(p, ours_median=(p["ours"] or {}).get("median"),
                  ours_ci_low=(p["ours"] or {}).get("ci_low"),
                  ours_ci_high=(p["ours"] or {}).get("ci_high")) for p in published],
            ["source", "comparison", "outcome", "time", "measure", "estimate", "ci_low",
             "ci_high", "studies", "ours_median", "ours_ci_low", "ours_ci_high", "url"]),
    }
    return Report(context, results, tables, posteriors)


def form_comparisons(records: Records, evaluation: Evaluation,
                     settings: SamplerSettings) -> list[dict[str, Any]]:
    """PSIS-LOO tables for the dose-response and time-course fits the claims used.

    The claims' own fits are reused; only the other forms are fitted.
    """
    tables, seen = [], set()
    for run in evaluation.runs.values():
        if run.doc is None or "opts" not in run.extra:
            continue
        opts = run.extra["opts"]
        key = (run.family, repr(opts.filters), opts.outcome)
        if key in seen:
            continue
        seen.add(key)
        table = get_family(run.family).form_table(records, run, settings)
        if table is not None:
            tables.append(table)
    return tables


def _template(name: str) -> str:
    return resources.files("trialmeta.analysis.report").joinpath("templates", name).read_text(
        encoding="utf-8")


def render(report: Report) -> dict[str, str]:
    """Render index.html, report.md and results.json as text."""
    from jinja2 import Environment, StrictUndefined

    html_env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                           lstrip_blocks=True, keep_trailing_newline=True)
    md_env = Environment(autoescape=False, undefined=StrictUndefined, trim_blocks=True,
                         lstrip_blocks=True, keep_trailing_newline=True)
    html = html_env.from_string(_template("report.html.j2")).render(**report.context)
    md = md_env.from_string(_template("report.md.j2")).render(**report.context)
    return {"index.html": html, "report.md": md, "results.json": dumps_json(report.results),
            **report.tables}


def write_report(files: dict[str, str], out: Path, posteriors: dict[str, Any] | None = None,
                 settings: SamplerSettings | None = None) -> None:
    """Write the files (and posterior netCDF files) into a fresh folder, then swap it in.

    Names come from the code, never from the data, so nothing can escape ``out``. The
    folder gets a marker listing every file written; an existing ``out`` is replaced only
    when it is empty or a report (see ``output.py``), never when it holds other files.
    """
    out = Path(os.path.abspath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging, token = staging_folder(out)
    try:
        written = []
        for name, text in files.items():
            write_text_atomic(staging / name, text)
            written.append(name)
        for fid, idata in (posteriors or {}).items():
            safe = file_stem(fid)
            target = staging / "fits" / f"{safe}.nc"
            target.parent.mkdir(exist_ok=True)
            source = cached_file(idata, settings) if settings else None
            if source is not None:
                try:
                    shutil.copyfile(source, target)
                except OSError as exc:  # a full disk: name the file being written
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
                        raise OSError(exc.errno, exc.strerror, str(target)) from None
                    raise
            else:
                idata.to_netcdf(str(target))
            written.append(f"fits/{safe}.nc")
        write_text_atomic(staging / MARKER, marker_text(written, token))  # last: whole
        swap_in(staging, out)
    except SpecError:
        raise  # swap_in refused: the finished report stays in ``staging``, as it says
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def build_report(records: Records, claims: ClaimsFile, settings: SamplerSettings, out: Path,
                 *, progress: bool = False, jobs: int = 1, records_path: str | None = None,
                 claims_path: str | None = None, say=None,  # noqa: ANN001
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
        from ..pipelines.prefetch import prefetch

        say(f"fitting in {jobs} worker processes ...")
        prefetch(records_path, claims_path, settings, claims, jobs)
    from ..pipelines.report_helper import ReportHelper

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
        from .history import history_text

        write_text_atomic(history / "history.csv", history_text(history_rows))
    if marker:
        marker.parent.mkdir(parents=True, exist_ok=True)  # a fit without a sampler caches nothing
        marker.touch()
    return report.results


def _extend(report: Report, previous: tuple[dict[str, Any], str] | None,
            history: Path | None) -> list[dict[str, Any]] | None:
    """Add what changed since the previous report and the run history; return its rows."""
    if previous is not None:
        from ..pipelines.changes import diff_reports

        since = rounded(diff_reports(previous[0], report.results, previous[1]))
        report.results["since_previous"] = since
        report.context["since_previous"] = since
    history_rows = None
    if history is not None:
        from .history import history_plot, read_history, run_rows

        history_rows = read_history(history)
        history_rows += run_rows(report.results, history_rows)
        report.context["history"] = {
            "folder": str(history), "runs": len({r["run"] for r in history_rows}),
            "svg": svg(history_plot, rows=history_rows)}
    return history_rows


def _analyse(records: Records, claims: ClaimsFile, settings: SamplerSettings,
             helper: Any, say: Any, progress: bool,  # noqa: ANN401
             robustness: dict[str, Any] | None) -> Report:
    """Evaluate the claims and comparisons; hand each posterior to ``helper`` when known."""
    say(f"claims: {len(claims.claims)} ...")
    evaluation = evaluate(records, claims, settings, progress=progress)
    for run in evaluation.runs.values():
        if run.doc is not None:
            helper.add_posterior(run.extra.get("idata"))
    say(f"contrast section: {len(claims.contrasts)} comparison(s) ...")
    contrasts = run_contrast_section(records, claims.contrasts, settings)
    for g in (g for c in contrasts for g in c["groups"]):
        helper.add_posterior(g.get("_idata"))
    say("functional forms (PSIS-LOO) ...")
    loo_tables = form_comparisons(records, evaluation, settings)
    say("writing ...")
    return assemble(records, claims, settings, evaluation, contrasts, loo_tables, robustness)


def add_changes(report: Report, records: Records, results: Callable[[], dict[str, Any]],
                before: Records, label: str) -> None:
    """Add "What the new evidence changed": ``results()`` gives the results on ``before``.

    ``results`` is :func:`_baseline_later`'s: stored, or computed alongside by the helper.
    """
    from ..pipelines.changes import compare, data_changes

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
    from ..pipelines.engine import store_result

    found, folder, key = _stored_baseline(before, claims, settings)
    if found is not None:
        return found
    ev = evaluate(before, claims, settings, documents=False)  # only the verdicts are shown
    section = run_contrast_section(before, claims.contrasts, settings, figures=False)
    results = rounded({"claims": [r.as_dict() for r in ev.results],
                       "contrasts": strip_figures(section)})
    if folder is not None:
        try:
            store_result(folder, key, results)
        except OSError:
            pass  # the cache only saves time
    return results


def _stored_baseline(before: Records, claims: ClaimsFile, settings: SamplerSettings
                     ) -> tuple[dict[str, Any] | None, Path | None, str]:
    """Return the baseline's stored results (None if absent), their folder and key."""
    from ..pipelines.engine import read_result, task_key

    key = task_key("baseline", before.sha256, claims.sha256, settings.as_dict(),
                   package_versions())
    folder = Path(settings.cache_dir) / "cells" if settings.cache_dir else None
    return read_result(folder, key), folder, key


def _baseline_later(helper: Any, before: Records, claims: ClaimsFile,  # noqa: ANN401
                    settings: SamplerSettings) -> Callable[[], dict[str, Any]]:
    """Return a function giving the baseline's results: stored, or computed by ``helper``."""
    found = _stored_baseline(before, claims, settings)[0]
    if found is not None:
        return lambda: found
    return helper.call(_baseline_results, before, claims, settings)


def _robustness_results(robustness: dict[str, Any] | None) -> dict[str, Any]:
    """Return the sweep table and calibration summaries as results.json carries them."""
    robustness = robustness or {}
    sweep = robustness.get("sweep")
    return {
        "sweep": None if sweep is None else {
            "cells": len(sweep["cells"]), "table": sweep["table"],
            "settings": sweep["provenance"]["settings"]},
        "calibration": [{k: c.get(k) for k in ("spec", "sims", "coverage", "ranks",
                                               "rank_uniformity_p", "recovery", "verdicts",
                                               "diagnostics", "stale", "provenance")}
                        for c in robustness.get("calibration", [])],
        "operating": robustness.get("operating"),
    }


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
    return Path(settings.cache_dir) / f"report-{name}.complete"
