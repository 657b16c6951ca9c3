"""Wide, one-row-per-study files (metafor's ``escalc`` columns) read as long-format records.

A metafor user's data has one row per study and the columns ``escalc`` takes:

=====================================  =============================================
columns                                read as
=====================================  =============================================
``ai, bi, ci, di`` (or ``ai, n1i,``    two arms with ``events`` and ``n``: group 1
``ci, n2i``)                           (``ai``) the treatment, group 2 (``ci``) the
                                       control, as in ``escalc(measure = "OR", ...)``
``m1i, sd1i, n1i, m2i, sd2i, n2i``     two arms with ``mean``, ``sd`` and ``n``
                                       (``mean_type = endpoint``)
``xi, ni``                             one single-arm row with ``events`` and ``n``
``yi, vi`` or ``yi, sei``              a contrast-level row (treatment vs control)
=====================================  =============================================

Every other column (``ablat``, ``year``, ``alloc`` ...) is carried to each row of the study,
so it can be a moderator or a subgroup. A user column named ``source`` is kept as
``source_column``: ``source`` is the provenance column of the long format, and is set to the
file and line each number was read from. A study with a missing number is left out with a
note naming it, as metafor leaves out studies with missing values.

The conversion returns strings (the long format's raw form), so the one validator of
:mod:`.records` checks and types the result; a wide column's own problems (a negative count,
``ai`` greater than ``n1i``) are reported here with the wide file's line and column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ..errors import Problem

#: the wide layouts, most specific first: (name, columns that must all be present)
LAYOUTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("two-group means", ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")),
    ("2x2 table", ("ai", "bi", "ci", "di")),
    ("events and totals", ("ai", "n1i", "ci", "n2i")),
    ("effect and variance", ("yi", "vi")),
    ("effect and standard error", ("yi", "sei")),
    ("single-group proportions", ("xi", "ni")),
)
#: every column a layout reads (not carried as a moderator)
WIDE_COLUMNS = frozenset(c for _, cols in LAYOUTS for c in cols)
#: columns naming the study, in order of preference (metadat files use several)
#: (``author`` with ``year`` gives "Aronson 1948", kinder in a forest plot than a number)
STUDY_COLUMNS = ("study", "author", "authors", "trial", "study_id", "id")
#: contrast-level measures a wide ``yi`` may carry (metafor's names and ours)
YI_MEASURES = {"OR": "logOR", "LOGOR": "logOR", "RR": "logRR", "LOGRR": "logRR", "RD": "RD",
               "MD": "MD", "SMD": "SMD"}
HEADER_LINE = 1


@dataclass
class WideResult:
    """A wide file converted to the long format (strings), with its notes and problems."""

    table: pd.DataFrame
    layout: str
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def layout_of(columns: list[str]) -> str | None:
    """Return the wide layout a header has, or None for a long-format header.

    A file with an ``arm`` column is in the long format whatever else it has.
    """
    cols = {c.strip() for c in columns}
    if "arm" in cols or "group" in cols:
        return None
    for name, needed in LAYOUTS:
        if set(needed) <= cols:
            return name
    return None


def _number(text: str) -> float | None:
    t = str(text).strip()
    if t.lower() in ("", "na", "nan", "none", "null"):
        return None
    try:
        v = float(t)
    except ValueError:
        return math.nan  # not a number: reported by the caller
    return v


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 2**53 else repr(float(v))


def _study_labels(raw: pd.DataFrame) -> tuple[list[str], str | None]:
    """Return one label per row and the column the labels came from.

    The study column, else ``author year``, else ``row N``.
    """
    for col in STUDY_COLUMNS:
        if col in raw.columns:
            labels = [str(v).strip() for v in raw[col]]
            if col in ("author", "authors") and "year" in raw.columns:
                labels = [f"{a} {str(y).strip()}".strip() for a, y in zip(labels, raw["year"],
                                                                      strict=True)]
            if all(labels):
                # a label that repeats gets its row number, so studies stay distinct
                seen: dict[str, int] = {}
                for lab in labels:
                    seen[lab] = seen.get(lab, 0) + 1
                return [lab if seen[lab] == 1 else f"{lab} (row {i + HEADER_LINE + 1})"
                        for i, lab in enumerate(labels)], col
    return [f"row {i + HEADER_LINE + 1}" for i in range(len(raw))], None


def to_long(raw: pd.DataFrame, name: str, *, reserved: frozenset[str] = frozenset(),
            measure: str | None = None, outcome: str | None = None) -> WideResult:
    """Convert a wide table of strings to long-format rows (strings).

    Parameters
    ----------
    raw : pandas.DataFrame
        The file as read: one row per study, every cell a string.
    name : str
        The file's name, for provenance and problems.
    reserved : frozenset of str
        Long-format column names and aliases: a carried column of that name is renamed
        ``NAME_column`` (a wide file's ``dose`` is about one arm, not both).
    measure : str, optional
        For ``yi`` files: the measure of ``yi`` (OR, RR, RD on the log scale for ratios, MD,
        SMD). Else a ``measure`` column, else MD with a note.
    outcome : str, optional
        For ``yi`` files: the outcome (events or change); from the measure when omitted.

    Returns
    -------
    WideResult
        The long table (with ``_line``: each row's line in the wide file), the layout read,
        notes and problems.
    """
    raw = raw.copy()
    raw.columns = [str(c).strip() for c in raw.columns]
    layout = layout_of(list(raw.columns))
    assert layout is not None, "to_long needs a wide header"
    problems: list[Problem] = []
    notes: list[str] = [f"read as a wide file ({layout}: one row per study)"]
    if "source" in raw.columns:
        raw = raw.rename(columns={"source": "source_column"})
        notes.append("the file's own 'source' column is kept as 'source_column' ('source' is "
                     "the provenance column: the file and line each number was read from)")
    labels, label_column = _study_labels(raw)
    needed = dict(LAYOUTS)[layout]
    optional = [c for c in ("n1i", "n2i", "measure", "outcome") if c in raw.columns
                and c not in needed]
    # every other column is carried, the one the labels came from included (renamed when it
    # clashes, e.g. study -> study_column): a file with several effects per study keeps
    # the study as a cluster for --robust and --cluster
    used = set(needed) | set(optional)
    carried = [c for c in raw.columns if c not in used and c not in WIDE_COLUMNS]
    clashes = [c for c in carried if c in reserved]
    if clashes:
        raw = raw.rename(columns={c: f"{c}_column" for c in clashes})
        carried = [f"{c}_column" if c in clashes else c for c in carried]
        notes.append("the file's own column(s) " + ", ".join(f"'{c}'" for c in clashes)
                     + " name long-format columns or their aliases; kept as "
                     + ", ".join(f"'{c}_column'" for c in clashes))
    rows: list[dict[str, str]] = []
    left_out: list[str] = []
    for i, rec in enumerate(raw.to_dict("records")):
        line = i + HEADER_LINE + 1
        label = labels[i]
        values = {c: _number(rec[c]) for c in (*needed, *[o for o in optional
                                                          if o in ("n1i", "n2i")])}
        bad = [c for c, v in values.items() if v is not None and not math.isfinite(v)]
        for c in bad:
            problems.append(Problem(name, line, c, f"'{rec[c]}' is not a number"))
        if bad:  # the row's other numbers are still checked: every problem at once
            problems += _value_problems(layout, {c: (None if c in bad else x)
                                                 for c, x in values.items()}, name, line)
            continue
        if any(values[c] is None for c in needed):
            left_out.append(label)
            continue
        extra = {c: str(rec[c]) for c in carried}
        base = {"study": label, "source": f"{name}, line {line}", "_line": str(line), **extra}
        problems += _value_problems(layout, values, name, line)
        rows += _rows(layout, values, base, rec, measure, outcome, notes)
    if left_out:
        notes.append(f"{len(left_out)} stud{'y' if len(left_out) == 1 else 'ies'} left out "
                     f"with a missing number: {', '.join(left_out)}")
    table = pd.DataFrame(rows, dtype=object).fillna("") if rows else pd.DataFrame(
        columns=["study", "arm", "treatment", "source", "_line"])
    return WideResult(table, layout, notes, problems)


def _value_problems(layout: str, v: dict[str, float | None], name: str,
                    line: int) -> list[Problem]:
    out: list[Problem] = []
    counts = [c for c in ("ai", "bi", "ci", "di", "n1i", "n2i", "xi", "ni") if c in v]
    for c in counts:
        x = v[c]
        if x is not None and (x < 0 or not float(x).is_integer()):
            out.append(Problem(name, line, c, f"{c} = {x:g}; a count is a whole number >= 0"))
    for events, total in (("ai", "n1i"), ("ci", "n2i"), ("xi", "ni")):
        e, n = v.get(events), v.get(total)
        if e is not None and n is not None and e > n:
            out.append(Problem(name, line, events, f"{events} = {e:g} is more than {total} = "
                                                   f"{n:g}"))
    for c in ("sd1i", "sd2i", "vi", "sei"):
        x = v.get(c)
        if x is not None and x <= 0:
            out.append(Problem(name, line, c, f"{c} = {x:g}; must be > 0"))
    return out


def _rows(layout: str, v: dict[str, float | None], base: dict[str, str], rec: dict,
          measure: str | None, outcome: str | None, notes: list[str]) -> list[dict[str, str]]:
    """Return the long rows of one wide row."""
    treat = {**base, "arm": "treatment", "treatment": "treatment", "control": "false",
             "design": "parallel"}
    ctrl = {**base, "arm": "control", "treatment": "control", "control": "true",
            "design": "parallel"}
    if layout in ("2x2 table", "events and totals"):
        n1 = v["ai"] + v["bi"] if layout == "2x2 table" else v["n1i"]
        n2 = v["ci"] + v["di"] if layout == "2x2 table" else v["n2i"]
        return [{**treat, "events": _fmt(v["ai"]), "n": _fmt(n1)},
                {**ctrl, "events": _fmt(v["ci"]), "n": _fmt(n2)}]
    if layout == "two-group means":
        return [{**treat, "mean": _fmt(v["m1i"]), "sd": _fmt(v["sd1i"]), "n": _fmt(v["n1i"]),
                 "mean_type": "endpoint"},
                {**ctrl, "mean": _fmt(v["m2i"]), "sd": _fmt(v["sd2i"]), "n": _fmt(v["n2i"]),
                 "mean_type": "endpoint"}]
    if layout == "single-group proportions":
        return [{**base, "arm": "all", "treatment": "treatment", "design": "single_arm",
                 "events": _fmt(v["xi"]), "n": _fmt(v["ni"])}]
    # contrast level: the treatment row carries the effect; the control row names the arm
    m = measure or str(rec.get("measure", "") or "").strip() or None
    key = (m or "MD").upper()
    if key not in YI_MEASURES:
        key = "MD"
    effect_measure = YI_MEASURES[key]
    if m is None and not any("measure of yi" in n for n in notes):
        notes.append("the measure of yi is not given (no --measure, no 'measure' column): yi "
                     "is pooled as a mean difference on its own scale (MD); say the measure "
                     "to pool log odds or risk ratios as ratios")
    out_name = outcome or str(rec.get("outcome", "") or "").strip() or (
        "change" if effect_measure in ("MD", "SMD") else "events")
    se = math.sqrt(v["vi"]) if "vi" in v and v.get("vi") is not None else v["sei"]
    n1, n2 = v.get("n1i"), v.get("n2i")
    return [{**treat, "vs": "control", "effect_outcome": out_name,
             "effect_measure": effect_measure, "effect": repr(float(v["yi"])),
             "effect_se": repr(float(se)), **({"n": _fmt(n1)} if n1 else {})},
            {**ctrl, **({"n": _fmt(n2)} if n2 else {})}]


def import_wide(raw: pd.DataFrame, name: str, *, rename: dict[str, str] | None = None,
                measure: str | None = None, outcome: str | None = None,
                reserved: frozenset[str] = frozenset()) -> WideResult:
    """Convert a wide table to the long format, after renaming the user's columns.

    Parameters
    ----------
    raw : pandas.DataFrame
        The wide file, every cell a string.
    name : str
        The file's name (provenance, problems).
    rename : dict, optional
        escalc name -> the file's column (``{"ai": "tpos", "bi": "tneg"}``), for files whose
        columns are named otherwise, as ``escalc(ai = tpos, ...)`` says in R.
    measure, outcome, reserved
        As :func:`to_long`.
    """
    raw = raw.copy()
    raw.columns = [str(c).strip() for c in raw.columns]
    problems = []
    for target, column in (rename or {}).items():
        if target not in WIDE_COLUMNS:
            problems.append(Problem(name, HEADER_LINE, column, f"'{target}' is not a wide "
                                    f"column; use one of {', '.join(sorted(WIDE_COLUMNS))}"))
        elif column not in raw.columns:
            problems.append(Problem(name, HEADER_LINE, column, f"no column '{column}' to read "
                                    f"as {target}"))
    if problems:
        return WideResult(pd.DataFrame(), "", [], problems)
    raw = raw.rename(columns={v: k for k, v in (rename or {}).items()})
    if layout_of(list(raw.columns)) is None:
        return WideResult(pd.DataFrame(), "", [], [Problem(
            name, HEADER_LINE, None, "no wide layout found: the file needs ai/bi/ci/di, "
            "ai/n1i/ci/n2i, m1i/sd1i/n1i/m2i/sd2i/n2i, xi/ni, yi/vi or yi/sei columns (name "
            "yours with --column ai=COL ...), and no 'arm' column")])
    return to_long(raw, name, reserved=reserved, measure=measure, outcome=outcome)
