"""Report history (``report --history DIR``): one row per claim per run in ``history.csv``.

Each run appends its date, data and claims hashes and every claim's verdict, P(region),
median and interval; the report draws each claim's P(region) over the runs. The date is
the current UTC time, or ``SOURCE_DATE_EPOCH`` when set (reproducible builds).
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Any

from ..errors import SpecError

FIELDS = ["run", "date_utc", "data_sha256", "claims_sha256", "claim", "verdict", "probability",
          "median", "ci_low", "ci_high"]
NUMBERS = ("probability", "median", "ci_low", "ci_high")


def read_history(folder: Path) -> list[dict[str, Any]]:
    """Rows of ``folder/history.csv`` (none if it does not exist), numbers typed.

    Raises SpecError naming the file and row when it is not a trialmeta history.
    """
    path = folder / "history.csv"
    if not path.exists():
        return []
    from ..io.files import read_regular_text

    try:
        rows = list(csv.DictReader(io.StringIO(read_regular_text(path, "history"))))
    except csv.Error as exc:
        raise SpecError(f"{path}: cannot be read ({exc})") from None
    if rows and set(FIELDS) - set(rows[0]):
        raise SpecError(f"{path}: not a trialmeta history (columns {', '.join(FIELDS)})")
    for i, r in enumerate(rows, start=2):
        try:
            r["run"] = int(r["run"])
            for k in NUMBERS:
                r[k] = float(r[k]) if r[k] else None
        except (TypeError, ValueError):
            raise SpecError(f"{path}, row {i}: run must be a whole number and "
                            f"{', '.join(NUMBERS)} numbers or empty") from None
    return rows


def run_rows(results: dict[str, Any], previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return this run's rows: the next run number, date, hashes and each claim's numbers."""
    run = 1 + max((r["run"] for r in previous), default=0)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = time.gmtime(int(epoch) if epoch and epoch.isdigit() else None)
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", stamp)
    prov = results["provenance"]
    return [{"run": run, "date_utc": date, "data_sha256": prov["data_sha256"],
             "claims_sha256": prov["claims_sha256"], "claim": c["id"],
             "verdict": c["verdict"], **{k: c.get(k) for k in NUMBERS}}
            for c in results["claims"]]


def history_text(rows: list[dict[str, Any]]) -> str:
    """Return the whole history as CSV text (formula-like claim ids defused, as every table)."""
    from .extras import to_csv

    return to_csv(rows, FIELDS)


#: ten colours, then six markers and four dashes: 240 claims with a style each
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
MARKERS = ("o", "s", "^", "D", "v", "P")
DASHES = ("-", "--", ":", "-.")


def claim_style(i: int) -> tuple[str, str, str]:
    """Colour, marker and dash of the i-th claim: no two claims of a plot share all three."""
    return (COLOURS[i % len(COLOURS)], MARKERS[(i // len(COLOURS)) % len(MARKERS)],
            DASHES[(i // (len(COLOURS) * len(MARKERS))) % len(DASHES)])


def history_plot(rows: list[dict[str, Any]]):  # a matplotlib Figure
    """P(region) of every claim over the runs (claims without a P are left out)."""
    from .plots import _figure, literal

    fig = _figure(figsize=(7.0, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    claims = list(dict.fromkeys(r["claim"] for r in rows))
    for i, cid in enumerate(claims):
        points = [(r["run"], r["probability"]) for r in rows
                  if r["claim"] == cid and r["probability"] is not None]
        if points:
            x, y = zip(*points, strict=True)
            colour, marker, dash = claim_style(i)
            ax.plot(x, y, marker=marker, ms=4, lw=1, ls=dash, color=colour,
                    label=literal(cid))
    ax.set_ylim(0, 1)
    ax.set_xlabel("run", fontsize=8)
    ax.set_ylabel("P(region)", fontsize=8)
    ax.tick_params(labelsize=7)
    runs = sorted({r["run"] for r in rows})
    ax.set_xticks(runs)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig
