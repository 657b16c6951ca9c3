"""`trialmeta import`: a wide, one-row-per-study file written in the long format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import fail, handle_errors


@handle_errors
def import_wide(
    file: Annotated[str, typer.Argument(help="Wide file (CSV, TSV, XLSX or Parquet): one row "
                                             "per study with metafor's escalc columns.")],
    out: Annotated[str, typer.Option("--out", help="The long-format CSV to write.")],
    column: Annotated[list[str] | None, typer.Option(
        "--column", help="NAME=COL: read the file's column COL as escalc's NAME (repeatable), "
                         "as escalc(ai = tpos, ...) says in R.")] = None,
    measure: Annotated[str | None, typer.Option(
        help="For yi/vi or yi/sei files: the measure of yi (OR and RR as log ratios, RD, MD, "
             "SMD).")] = None,
    outcome: Annotated[str | None, typer.Option(
        help="For yi files: events or change (default: from the measure).")] = None,
) -> None:
    """Convert a wide file (one row per study) to trialmeta's long format.

    Reads ai/bi/ci/di, ai/n1i/ci/n2i, m1i/sd1i/n1i/m2i/sd2i/n2i, xi/ni, yi/vi or yi/sei, and
    writes one row per arm with provenance (file and line) on every row.
    """
    from trialmeta.analysis.io.files import write_text_atomic
    from trialmeta.analysis.io.records import import_records, long_csv

    rename: dict[str, str] = {}
    for item in column or []:
        name, sep, col = item.partition("=")
        if not sep or not name.strip() or not col.strip():
            raise fail(f"error: --column '{item}' is not NAME=COL (for example ai=tpos)")
        rename[name.strip()] = col.strip()
    target = Path(out)
    if target.exists() and target.resolve() == Path(file).resolve():
        raise fail("error: --out names the input file; write the long file elsewhere")
    records = import_records(file, rename=rename, measure=measure, outcome=outcome)
    write_text_atomic(target, long_csv(records))
    typer.echo(f"{file}: {len(records.studies)} studies, {len(records.table)} rows written to "
               f"{out}")
    for n in records.notes:
        typer.echo(f"  note: {n}")
