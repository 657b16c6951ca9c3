"""Build the report: run the claims' fits, then write HTML, Markdown and results.json.

Everything is written into a temporary folder beside the output folder, which
then replaces the output folder, so an interrupted run leaves the previous
report untouched. The same records, claims, seed and lock file give the same
bytes.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..claims.spec import ClaimsFile
from ..errors import SpecError
from ..evaluate.claims import load_published
from ..evaluate.evaluation import Evaluation
from ..families.base import Figure
from ..families.registry import censor_bound, family_name, get_family
from ..io.cache import cached_file
from ..io.files import dumps_json, rounded, write_text_atomic
from ..io.provenance import command_line, package_versions
from ..io.records import Records, summarize
from ..sampling.settings import SamplerSettings
from .agents_section import agents_section
from .contrast_section import strip_figures
from .extras import limitations, published_comparison, reach, to_csv
from .network_section import network_section
from .numbers import pfmt, ptext
from .output import MARKER, marker_text, staging_folder, swap_in
from .plots import FIGURES, calibration_plot, svg

#: the sections the report builds from a family's document (``report_item``'s ``renderer``)
SECTION_RENDERERS = {"agents": agents_section, "network": network_section}
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


#: claim quantities in words (the code form stays in the JSON and the details)
QUANTITY_WORDS = {
    "pooled_rate": "the pooled rate (median study)",
    "average_rate": "the population-average rate",
    "predictive_rate": "the rate a new study would see",
    "effect": "the pooled effect against control",
    "predictive_effect": "the effect a new study would see",
    "or": "the odds ratio against control", "rr": "the risk ratio against control",
    "rd": "the risk difference against control", "control_rate": "the control rate",
    "tau": "the between-study spread", "onset_h": "the time to onset",
    "time_to_peak_h": "the time to the peak effect", "duration_h": "how long the effect lasts",
}


def moderator_words(term: str) -> str:
    """Say a moderator term in words: "with doses given above 1 (vs at most 1)"."""
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)(>|=)(.+)$", term)
    if not m:
        return f"per unit of {term.replace('_', ' ')}"
    col, op, value = m.group(1).replace("_", " "), m.group(2), m.group(3)
    if op == ">":
        return f"with {col} above {value} (vs at most {value})"
    return f"with {col} {value} (vs the reference level)"


def quantity_words(claim: dict[str, Any]) -> str:
    """Name a claim's quantity in words: "the odds ratio of A vs B", "the time to onset"."""
    q = str(claim["quantity"])
    head, _, rest = q.partition(":")
    if head == "beta":
        return f"the change {moderator_words(rest)}"
    if head == "effect" and rest:
        nodes = rest.split(":")
        return f"the effect of {nodes[0]}" + (f" vs {nodes[1]}" if len(nodes) > 1 else "")
    dose = claim.get("model") == "dose-response"
    if head == "effect_at":
        return f"the effect at dose {rest}" if dose else f"the effect at {rest} h"
    if head == "difference" and rest:
        lo, _, hi = rest.partition(":")
        return f"the effect of dose {hi} over dose {lo}" if dose else q
    return QUANTITY_WORDS.get(q, q)


def _natural(claim: dict[str, Any]) -> str:
    """Return the median and 95 % interval in natural units: odds ratios, per cent, hours."""
    if claim.get("median") is None and not claim.get("censored_above"):
        return ""
    q = str(claim["quantity"])
    binary = claim.get("outcome") != "change"
    on_log_odds = binary and (
        (claim.get("model") in ("contrast", "network", "time-course")
         and (q.startswith("effect") or q == "predictive_effect"))
        or (claim.get("model") == "dose-response" and q.startswith(("effect_at",
                                                                     "difference")))
        or (claim.get("model") == "pooled-rate" and q.startswith("beta:")))
    if on_log_odds and None not in (claim.get("median"), claim.get("ci_low"),
                                    claim.get("ci_high")):
        m, lo, hi = (math.exp(claim[k]) for k in ("median", "ci_low", "ci_high"))
        return f"odds ratio {m:.2f} (95% CrI {lo:.2f} to {hi:.2f})"
    return f"{cfmt(claim, 'median')} (95% CrI {cfmt(claim, 'ci_low')} to {cfmt(claim, 'ci_high')})"


def plain_sentence(claim: dict[str, Any]) -> str:
    """One plain sentence: the data in natural units, verdict, certainty, the main reason."""
    data = _natural(claim)
    said = (f"The data put {quantity_words(claim)} at {data}" if data
            else f"The data do not estimate {quantity_words(claim)}")
    label = claim.get("qualifier") or claim.get("strength")
    verdict = claim["verdict"] + (f" ({label})" if label else "")
    cert = claim.get("certainty") or {}
    if claim["verdict"] == "insufficient data" or claim.get("qualifier"):
        why = re.split(r"(?<=[a-z0-9)])[.;] ", str(claim.get("reason") or ""))[0]
        why = why.removeprefix("capped at inconclusive ").strip()
    else:
        why = (cert.get("reasons") or [""])[0]
    text = f"{said}: {verdict}"
    if cert:
        text += f", {cert['grade']} certainty"
    return text + (f", mainly because {why}." if why else ".")


def cfmt(claim: dict[str, Any], key: str) -> str:
    """Format a claim's median or interval bound; a never-reached time reads "> 672 h"."""
    if key in claim.get("censored_above", []):
        bound = censor_bound(claim.get("model"))
        return "censored" if bound is None else f"> {bound:g} h"
    return qfmt(claim.get(key), claim["quantity"])


def tfmt(value: float | None) -> str:
    """Format an arm's time point in hours; an untimed arm reads "no time point"."""
    if value is None or (isinstance(value, float) and value != value):
        return "no time point"
    return f"{value:g}"


def at_time(value: float | None) -> str:
    """Say when: "at 24 h", or "with no time point" for untimed selections."""
    text = tfmt(value)
    return "with no time point" if text == "no time point" else f"at {text} h"


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
    try:
        family = get_family(family_name(model))
    except SpecError:  # a model not registered in this process: a time-course plug-in's
        family = get_family("time-course")  # priors are recognised by their names
    text = family.describe_priors(model, priors, measure)
    if text is not None:
        return text
    g = {k: (f"{v:g}" if isinstance(v, float | int) else v) for k, v in priors.items()}
    return "; ".join(f"{k} = {v}" for k, v in g.items())


def rate_rows(estimates: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (key, label) of a pooled-rate fit's table rows.

    With moderators, logit^-1(mu) is the rate at the moderators' reference level, not a
    pooled rate, and the coefficients (what a claim may be judged on) are listed too.
    """
    moderated = any(k.startswith("beta:") for k in estimates)
    labels = {"pooled_rate": "rate at the reference level (median study)" if moderated
              else "pooled rate (the median study's rate)",
              "average_rate": "population-average rate at the reference level" if moderated
              else "population-average rate (over the studies' spread)",
              "predictive_rate": "new-study rate at the reference level" if moderated
              else "new-study rate", "tau": "tau (arm, logit)",
              "sigma_study": "sigma (study, logit)"}
    rows = [(k, labels[k]) for k in ("pooled_rate", "average_rate", "predictive_rate", "tau",
                                     "sigma_study")
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
    """Format a number, or a dash when missing (None or NaN)."""
    return "–" if value is None or value != value else f"{value:.{digits}f}"


#: how a section table's raw column names read as headers
HEADERS = {"ci_low": "95% lower", "ci_high": "95% upper", "sucra": "SUCRA",
           "p_value": "p", "median": "median", "vs": "vs", "from": "from", "to": "to",
           "k": "k", "elpd_loo": "elpd (LOO)", "se": "SE", "p_loo": "p (LOO)",
           "pareto_k_max": "Pareto k (max)", "elpd_diff": "elpd difference",
           "dse": "SE of difference"}


def header(column: str) -> str:
    """Return a section table's column name as a header: no raw field names."""
    return HEADERS.get(column, column.replace("_", " "))


def cell(value: Any, column: str) -> str:
    """Format a section table's cell: a dash for missing, p-values as such, 3 decimals."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if column in ("p_value", "p") and isinstance(value, int | float):
        return pfmt(float(value))
    if isinstance(value, float):
        return num(value, 3)
    return str(value)


@dataclass
class Report:
    """The report's content, shared by every output format."""

    context: dict[str, Any]
    results: dict[str, Any]
    tables: dict[str, str]
    posteriors: dict[str, Any]


def render_item(item: dict[str, Any]) -> dict[str, Any]:
    """Draw what a family's report item describes: its figure, or its whole section."""
    renderer = item.get("renderer")
    if renderer is not None:
        return SECTION_RENDERERS[renderer](item["doc"], item["id"], item["claims"])
    figure = item.get("svg")
    if isinstance(figure, Figure):
        return {**item, "svg": svg(FIGURES[figure.plot], **figure.inputs)}
    return item


def assemble(records: Records, claims: ClaimsFile, settings: SamplerSettings,
             evaluation: Evaluation, contrasts: list[dict[str, Any]] | None = None,
             loo_tables: list[dict[str, Any]] | None = None,
             robustness: dict[str, Any] | None = None,
             sensitivity: list[dict[str, Any]] | None = None) -> Report:
    """Collect every number, table and figure of the report; fit nothing.

    Every result comes in: the ``evaluation`` of the claims, the fitted ``contrasts`` (with
    their figures), the PSIS-LOO ``loo_tables``, the ``sensitivity`` rows, and
    ``robustness``: a ``trialmeta sweep`` document (``sweep``) and ``trialmeta calibrate``
    summaries (``calibration``), made beforehand for the same data and claims.
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
        fid = f"{key[0]}-{key[1]}{when}-{'-'.join(ids) or 'described'}"
        fit_docs[fid] = run.doc
        if run.posterior is not None:
            posteriors[fid] = run.posterior
        shown = get_family(run.family).report_item(run, fid, ids)
        if shown is not None:
            {"fits": fits, "curves": curves, "sections": sections}[shown[0]].append(
                render_item(shown[1]))
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
    sens = sensitivity or []
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
        "pfmt": pfmt,
        "ptext": ptext,
        "cell": cell,
        "header": header,
        "qfmt": qfmt,
        "cfmt": cfmt,
        "bfmt": bfmt,
        "plain": plain_sentence,
        "reach": lambda claim_id: None if not results["robustness"].get("operating") else
        reach(results["robustness"]["operating"].get("rows", []), claim_id),
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
            [dict(c, studies=";".join(c["studies"]),
                  certainty_grade=(c.get("certainty") or {}).get("grade"))
             for c in results["claims"]],
            ["id", "title", "model", "outcome", "quantity", "median", "ci_low", "ci_high",
             "p_prior", "probability", "p_below", "p_above", "bayes_factor", "spread_ratio",
             "draws_per_chain", "verdict", "qualifier", "certainty_grade", "basis", "studies",
             "diagnostics_passed", "reason"]),
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


def _template(name: str) -> str:
    return resources.files("trialmeta.analysis.report").joinpath("templates", name).read_text(
        encoding="utf-8")


#: a rendered section heading: its anchor and its title (the template's own markup)
H2 = re.compile(r'<h2 id="([A-Za-z0-9_-]+)">(.*?)</h2>')


def with_contents(html: str) -> str:
    """Insert a table of contents linking every section the page has, in page order.

    Built from the rendered headings, so it lists exactly the sections present (a report of
    the data alone has no claims table; a report with --previous opens with what changed).
    """
    entries = H2.findall(html)
    if not entries:
        return html
    links = "".join(f'<li><a href="#{anchor}">{title}</a></li>' for anchor, title in entries)
    nav = f'<nav id="contents" aria-label="Contents"><h2>Contents</h2><ol>{links}</ol></nav>\n'
    first = html.index("<h2 ")
    return html[:first] + nav + html[first:]


def md_anchor(title: str) -> str:
    """Return the anchor GitHub and most Markdown viewers give a heading."""
    text = re.sub(r"\\(.)", r"\1", title).strip().lower()  # the md escapes are not shown
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def with_md_contents(md: str) -> str:
    """Insert a contents list of the Markdown report's sections before the first one."""
    titles = re.findall(r"^## (.+)$", md, flags=re.M)
    if not titles:
        return md
    links = "".join(f"- [{t}](#{md_anchor(t)})\n" for t in titles)
    first = re.search(r"^## ", md, flags=re.M).start()
    return md[:first] + "Contents:\n\n" + links + "\n" + md[first:]


def render(report: Report) -> dict[str, str]:
    """Render index.html, report.md and results.json as text."""
    from jinja2 import Environment, StrictUndefined

    html_env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                           lstrip_blocks=True, keep_trailing_newline=True)
    md_env = Environment(autoescape=False, undefined=StrictUndefined, trim_blocks=True,
                         lstrip_blocks=True, keep_trailing_newline=True)
    html = with_contents(html_env.from_string(_template("report.html.j2"))
                         .render(**report.context))
    md = with_md_contents(md_env.from_string(_template("report.md.j2"))
                          .render(**report.context))
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
            source = cached_file(idata, settings.cache_dir) if settings else None
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


