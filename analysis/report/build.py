"""Build the report: run the claims' fits, then write HTML, Markdown and results.json.

Everything is written into a temporary folder beside the output folder, which
then replaces the output folder, so an interrupted run leaves the previous
report untouched. The same records, claims, seed and lock file give the same
bytes.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..claims import ClaimsFile
from ..evaluate import Evaluation, evaluate
from ..inference import SamplerSettings, command_line, package_versions
from ..io import dumps_json, write_text_atomic
from ..records import Records, summarize
from ..results import pooled_rate_document, rounded
from .contrast_section import run_contrast_section, strip_figures
from .plots import forest_plot, to_svg

MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(value: Any) -> str:
    """Escape text for a Markdown table cell (no markup from the data is ever rendered)."""
    text = "" if value is None else str(value)
    return MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def pct(value: float | None) -> str:
    """Format a proportion as a percentage with one decimal."""
    return "–" if value is None else f"{100 * value:.1f}%"


def num(value: float | None, digits: int = 2) -> str:
    """Format a number, or a dash when missing."""
    return "–" if value is None else f"{value:.{digits}f}"


@dataclass
class Report:
    """The report's content, shared by every output format."""

    context: dict[str, Any]
    results: dict[str, Any]


def fit_id(model: str, outcome: str, time_h: float, claim_ids: list[str]) -> str:
    """Stable, readable identifier of one fit."""
    return f"{model}-{outcome}-{time_h:g}h-{'-'.join(claim_ids)}"


def assemble(records: Records, claims: ClaimsFile, settings: SamplerSettings,
             evaluation: Evaluation, contrasts: list[dict[str, Any]] | None = None) -> Report:
    """Collect every number, table and figure of the report."""
    fits = []
    fit_docs = {}
    used_contrasts = {row["study"] for c in contrasts or [] for g in c["groups"]
                      for row in g.get("bayesian", {}).get("per_study", [])}
    for key, run in evaluation.runs.items():
        ids = evaluation.claims_for_run[key]
        fid = fit_id(key[0], run.outcome, run.window.target_h, ids)
        doc = pooled_rate_document(run, records)
        fit_docs[fid] = doc
        svg = to_svg(forest_plot(run=run, title=f"{run.outcome} at {run.window.target_h:g} h "
                                                f"(claims {', '.join(ids)})"))
        fits.append({"id": fid, "claims": ids, "doc": doc, "svg": svg})
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
    results = rounded({
        "claims": claim_rows,
        "fits": fit_docs,
        "contrasts": strip_figures(contrasts),
        "data": overview,
        "provenance": provenance,
    })
    used = {s for f in fit_docs.values() for s in {a["study"] for a in f["per_arm"]}}
    used |= used_contrasts
    study_rows = []
    for study, rows in records.table.groupby("study", sort=True):
        study_rows.append({
            "study": study,
            "design": rows["design"].dropna().iloc[0] if rows["design"].notna().any() else "",
            "population": rows["population"].dropna().iloc[0]
            if rows["population"].notna().any() else "",
            "arms": int(rows["arm"].nunique()),
            "rows": len(rows),
            "evidence": ", ".join(sorted(set(rows["evidence"].dropna()))),
            "used": study in used,
            "source": rows["source"].iloc[0].split(" | ")[0],
        })
    context = {
        "claims": results["claims"],
        "fits": fits,
        "contrasts": contrasts,
        "overview": results["data"],
        "studies": study_rows,
        "provenance": results["provenance"],
        "pct": pct,
        "num": num,
        "md": md_escape,
    }
    return Report(context, results)


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
    return {"index.html": html, "report.md": md, "results.json": dumps_json(report.results)}


def write_report(files: dict[str, str], out: Path) -> None:
    """Write the files into a fresh folder, then swap it in place of ``out``."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))
    staging.chmod(0o755)
    try:
        for name, text in files.items():
            write_text_atomic(staging / name, text)
        backup = None
        if out.exists():
            backup = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            backup.rmdir()
            out.rename(backup)
        staging.rename(out)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def build_report(records: Records, claims: ClaimsFile, settings: SamplerSettings, out: Path,
                 *, progress: bool = False) -> dict[str, Any]:
    """Run the analysis and write the report; return results.json's content."""
    evaluation = evaluate(records, claims, settings, progress=progress)
    contrasts = run_contrast_section(records, claims.contrasts, settings)
    report = assemble(records, claims, settings, evaluation, contrasts)
    write_report(render(report), out)
    return report.results
