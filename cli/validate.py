"""`trialmeta validate`: check a records file and describe it."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import FileArg, JsonOpt


def validate(file: FileArg = None, json: JsonOpt = False,
             max_rows: Annotated[int, typer.Option(
                 min=1, max=100_000_000,
                 help="Refuse tables with more rows than this.")] = 1_000_000) -> None:
    """Validate trial records; print a summary, or every problem (exit status 2)."""
    from trialmeta.analysis.errors import DataError
    from trialmeta.analysis.io.files import dumps_json
    from trialmeta.analysis.io.records import read_records, summarize

    try:
        records = read_records(file, max_rows=max_rows)
    except DataError as exc:
        if json:
            typer.echo(dumps_json({"valid": False,
                                   "problems": [p.as_dict() for p in exc.problems]}), nl=False)
        else:
            typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    info = summarize(records)
    if json:
        typer.echo(dumps_json({"valid": True, **info}), nl=False)
        return
    per = info["rows_per_outcome"]
    lines = [
        f"{info['file']}: valid",
        f"  studies {info['studies']}, arms {info['arms']}, rows {info['rows']}",
        "  rows with " + ", ".join(f"{k} {per[k]}" for k in ("responders", "remitters", "events")
                                   if per[k] or k != "events")
        + f", means {per['mean']}" + (f", contrasts {per['contrast']}" if per["contrast"]
                                      else ""),
        "  time points (h): " + (", ".join(f"{t:g}" for t in info["time_points_h"])
                                 or "none (the rows carry no time_h)"),
        "  evidence (rows): " + ", ".join(f"{k} {v}" for k, v in info["evidence"].items()),
        "  designs (studies): " + ", ".join(f"{k} {v}" for k, v in info["designs"].items()),
        f"  sha256 {info['sha256']}",
        *(f"  note: {n}" for n in info["notes"]),
    ]
    typer.echo("\n".join(lines))
