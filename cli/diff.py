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

    Exit status: 0 when no verdict changed, 1 when one did (or a claim was added or
    removed), 2 on bad input.
    """
    from trialmeta.analysis.io.files import dumps_json
    from trialmeta.analysis.pipelines.changes import diff_reports, read_results

    doc = diff_reports(read_results(old), read_results(new), str(old))
    if json:
        typer.echo(dumps_json(doc))
    else:
        typer.echo(format_diff(doc))
    raise typer.Exit(1 if doc["verdicts_changed"] else 0)


def format_diff(doc: dict) -> str:
    """Readable summary: one line per claim that changed, then the data."""
    lines = [f"data: {(doc['data']['before'].get('sha256') or '?')[:12]} -> "
             f"{(doc['data']['after'].get('sha256') or '?')[:12]}; studies added: "
             f"{', '.join(doc['studies_added']) or 'none'}; removed: "
             f"{', '.join(doc['studies_removed']) or 'none'}"]
    for c in doc["claims"]:
        lines.append(f"{c['id']:<14} {c['status']:<16} {c['reason']}")
    for p in doc["pooled"]:
        b, a = p["before"] or {}, p["after"] or {}
        lines.append(f"{p['comparison']} ({p['group']}): k {b.get('k', 0)} -> {a.get('k', 0)}")
    for e in doc["estimates"]:
        b, a = e["before"] or {}, e["after"] or {}
        lines.append(f"{e['fit']} {e['quantity']}: median {b.get('median')} -> "
                     f"{a.get('median')}")
    return "\n".join(lines)
