"""``trialmeta diff OLD NEW``: what changed between two reports (living reviews, CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOpt, handle_errors


@handle_errors
def diff(
    old: Annotated[Path, typer.Argument(help="The earlier report folder (or its results.json).")],
    new: Annotated[Path, typer.Argument(help="The later report folder (or its results.json).")],
    json: JsonOpt = False,
) -> None:
    """Compare two reports: verdicts, P(region), intervals, pooled estimates and studies.

    Exit status: 0 when no verdict changed, 1 when one did or a claim was added or removed,
    2 on bad input. A warning says when the two reports come from different claims files
    (a verdict may then differ because the claim changed) or share no claim at all.
    """
    from trialmeta.analysis.io.files import dumps_json
    from trialmeta.analysis.pipelines.changes import diff_reports, read_results

    doc = diff_reports(read_results(old), read_results(new), str(old))
    if json:
        typer.echo(dumps_json(doc))
    else:
        typer.echo(format_diff(doc))
    changed = doc["verdicts_changed"] or doc["claims_added"] or doc["claims_removed"]
    raise typer.Exit(1 if changed else 0)


def figure(value: object) -> str:
    """Write a number as a person reads it: 3 significant digits; "absent" if missing."""
    if value is None or (isinstance(value, float) and value != value):
        return "absent"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def format_diff(doc: dict) -> str:
    """Readable summary: warnings, one line per claim that changed, then the data.

    Numbers have three significant digits and a missing one reads "absent" (this text is
    the pull-request comment of the living-review workflow).
    """
    lines = [f"warning: {w}" for w in doc.get("warnings", [])]
    lines.append(f"data: {(doc['data']['before'].get('sha256') or '?')[:12]} -> "
                 f"{(doc['data']['after'].get('sha256') or '?')[:12]}; studies added: "
                 f"{', '.join(doc['studies_added']) or 'none'}; removed: "
                 f"{', '.join(doc['studies_removed']) or 'none'}")
    if doc.get("claims_added") or doc.get("claims_removed"):
        lines.append(f"claims added: {', '.join(doc.get('claims_added') or []) or 'none'}; "
                     f"removed: {', '.join(doc.get('claims_removed') or []) or 'none'}")
    for c in doc["claims"]:
        lines.append(f"{c['id']:<14} {c['status']:<16} {c['reason']}")
    for p in doc["pooled"]:
        b, a = p["before"] or {}, p["after"] or {}
        lines.append(f"{p['comparison']} ({p['group']}): k {b.get('k', 0)} -> {a.get('k', 0)}")
    for e in doc["estimates"]:
        b, a = e["before"] or {}, e["after"] or {}
        lines.append(f"{e['fit']} {e['quantity']}: median {figure(b.get('median'))} "
                     f"({figure(b.get('ci_low'))} to {figure(b.get('ci_high'))}) -> "
                     f"{figure(a.get('median'))} ({figure(a.get('ci_low'))} to "
                     f"{figure(a.get('ci_high'))})")
    return "\n".join(lines)
