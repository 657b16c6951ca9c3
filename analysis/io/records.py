"""Trial records: load CSV, TSV, Excel or Parquet in the long format and validate it.

One row per study x arm x time point. The column contract is written once here
(:data:`COLUMNS`) and documented in ``data/README.md``. Validation collects every
problem before raising :class:`~trialmeta.analysis.errors.DataError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import DataError, Problem, SpecError
from .files import read_regular
from .text_rules import text_problem
from .wide import WideResult, import_wide, layout_of, to_long

Kind = Literal["str", "float", "int", "bool"]


@dataclass(frozen=True)
class Column:
    """One column of the input contract."""

    name: str
    kind: Kind
    required: bool = False
    description: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("study", "str", True, "study key, e.g. Zarate2006"),
    Column("arm", "str", True, "arm label, unique within study"),
    Column("treatment", "str", True, "active drug or control (ketamine, saline, midazolam, ...)"),
    Column("control", "bool", False, "true for the comparator arm(s)"),
    Column("dose", "float", False, "dose per administration, >= 0; 0 for placebo"),
    Column("dose_unit", "str", False, "mg/kg, mg, mg/day, ug/kg, or standard (a multiple of "
                                      "a common reference dose, as MBNMAdose standardises)"),
    Column("route", "str", False, "iv, intranasal, oral, im, sc, sublingual"),
    Column("doses_given", "int", False, "administrations before this time point (0 = baseline)"),
    Column("population", "str", False, "e.g. unipolar_trd, bipolar, suicidal_ideation"),
    Column("design", "str", False, "parallel, crossover or single_arm"),
    Column("time_h", "float", False, "hours since the last administration; 0 = baseline"),
    Column("endpoint", "str", False, "fixed (assessed at time_h, the default), cumulative (at "
                                     "any point up to time_h) or series_end (after a course)"),
    Column("n", "int", False, "patients contributing at this time point, > 0"),
    Column("n_binary", "int", False, "denominator of the counts when it differs from n"),
    Column("scale", "str", False, "rating scale: HDRS17, MADRS, SSI, ..."),
    Column("domain", "str", False, "construct the outcome measures: depression (default), "
                                   "suicidal_ideation, dissociation, ..."),
    Column("mean", "float", False, "continuous outcome (see mean_type)"),
    Column("sd", "float", False, "standard deviation of the outcome, > 0"),
    Column("se", "float", False, "standard error of the mean, > 0"),
    Column("mean_type", "str", False, "change (from baseline) or endpoint"),
    Column("responders", "int", False, "responders, 0..n"),
    Column("response_def", "str", False, "definition of response"),
    Column("remitters", "int", False, "remitters, 0..n"),
    Column("remission_def", "str", False, "definition of remission"),
    Column("events", "int", False, "patients with an event of any other kind (deaths, "
                                   "infections, adverse events, ...), 0..n"),
    Column("events_def", "str", False, "what an event is"),
    Column("vs", "str", False, "contrast-level rows: the arm label of the comparator"),
    Column("effect_outcome", "str", False,
           "contrast-level rows: response, remission, events or change"),
    Column("effect_measure", "str", False, "contrast-level rows: MD, SMD, logOR, logRR or RD"),
    Column("effect", "float", False, "contrast-level rows: this arm minus the comparator"),
    Column("effect_se", "float", False, "contrast-level rows: standard error of effect, > 0"),
    Column("effect_ci_low", "float", False, "contrast-level rows: 95 % CI lower bound"),
    Column("effect_ci_high", "float", False, "contrast-level rows: 95 % CI upper bound"),
    Column("source", "str", True, "where each number was read (DOI/PMID/registry + table)"),
    Column("evidence", "str", False, "primary, secondary or derived"),
)
COLUMN_BY_NAME = {c.name: c for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)

ALIASES: dict[str, str] = {
    "study_id": "study",
    "trial": "study",
    "group": "arm",
    "drug": "treatment",
    "hours": "time_h",
    "timepoint_hours": "time_h",
    "events_response": "responders",
    "events_remission": "remitters",
}
DOSE_UNITS = frozenset({"mg/kg", "mg", "mg/day", "ug/kg", "standard"})
ROUTES = frozenset({"iv", "intranasal", "oral", "im", "sc", "sublingual"})
DESIGNS = frozenset({"parallel", "crossover", "single_arm"})
MEAN_TYPES = frozenset({"change", "endpoint"})
EVIDENCE = frozenset({"primary", "secondary", "derived", "back_calculated"})
#: an empty ``domain`` is read from the scale: these scales measure suicidal ideation or
#: dissociation, every other scale depression (say the domain when it is something else)
DEFAULT_DOMAIN = "depression"
#: an SD or SE outside this range has a square that underflows or overflows a float
SPREAD_RANGE = (1e-100, 1e100)
#: no outcome, effect or dose is this large in any unit a trial reports
MAX_MAGNITUDE = 1e100
#: columns that name things (studies, arms, scales ...): printable text only, NFC-normalised
NAME_COLUMNS = frozenset({"study", "arm", "treatment", "population", "scale", "domain", "vs",
                          "route", "design", "dose_unit", "mean_type", "endpoint",
                          "effect_outcome", "effect_measure", "evidence"})
ENDPOINTS = frozenset({"fixed", "cumulative", "series_end"})
#: the measures a contrast-level row may give, per outcome
EFFECT_MEASURES = {"change": ("MD", "SMD"), "response": ("logOR", "logRR", "RD"),
                   "remission": ("logOR", "logRR", "RD"), "events": ("logOR", "logRR", "RD")}
EFFECT_COLUMNS = ("vs", "effect_outcome", "effect_measure", "effect", "effect_se",
                  "effect_ci_low", "effect_ci_high")
DOMAIN_BY_SCALE = {"SSI": "suicidal_ideation", "BSS": "suicidal_ideation",
                   "CSSRS": "suicidal_ideation", "CSSRS_ISS": "suicidal_ideation",
                   "MSSI": "suicidal_ideation", "CADSS": "dissociation"}
TRUE_WORDS = frozenset({"true", "yes", "1", "y", "t"})
FALSE_WORDS = frozenset({"false", "no", "0", "n", "f"})
MISSING_WORDS = frozenset({"", "na", "nan", "none", "null"})
ROW_KEY = ("study", "arm", "time_h", "scale", "doses_given")
ARM_ATTRIBUTES = ("treatment", "control", "dose", "dose_unit", "route")
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".xlsx": "excel",
            ".parquet": "parquet", ".pq": "parquet"}
HEADER_LINE = 1  # data row k (0-based) is line k + 2 in the file
MAX_ROWS = 1_000_000  # a larger table is refused (override with max_rows)
MAX_N = 10_000_000  # more patients than this in one arm is taken as a data-entry error


@dataclass
class Records:
    """A validated table of trial records.

    Attributes
    ----------
    table : pandas.DataFrame
        Typed columns of the contract (missing optional columns added as empty),
        plus any extra columns the file had; ``line`` holds each row's line number.
    path : str
        Where the records came from.
    sha256 : str
        SHA-256 of the file's bytes.
    """

    table: pd.DataFrame
    path: str
    sha256: str
    notes: list[str] = field(default_factory=list)

    @property
    def studies(self) -> list[str]:
        """Study keys in order of first appearance."""
        return list(dict.fromkeys(self.table["study"]))


def bundled_path() -> Path:
    """Path of the bundled ketamine dataset."""
    return Path(str(resources.files("trialmeta.data").joinpath("ketamine_trials.csv")))


def is_bundled(records: Records) -> bool:
    """Whether ``records`` are the bundled dataset, byte for byte (its claims apply)."""
    return records.sha256 == hashlib.sha256(bundled_path().read_bytes()).hexdigest()


#: the largest records file read (bytes); a bigger one is refused before it is read
MAX_BYTES = 500_000_000


def _read_raw(path: Path, max_rows: int = MAX_ROWS) -> tuple[pd.DataFrame, str]:
    """Read a file once into a DataFrame of strings (no type guessing) and its SHA-256.

    The hash is of the bytes parsed, so provenance describes exactly what was analysed. A
    FIFO, a device or any other non-regular file is refused (it would block or never end).
    A CSV or TSV is parsed from its bytes, at most ``max_rows + 1`` rows (the limit is
    checked while reading, not after).
    """
    kind = SUFFIXES.get(path.suffix.lower())
    name = str(path)
    if kind is None:
        raise DataError([Problem(name, None, None,
                                 f"unknown file type '{path.suffix}'; use .csv, .tsv, .xlsx "
                                 "or .parquet")])
    if not path.exists():
        raise DataError([Problem(name, None, None, "file not found")])
    try:  # the one bounded read of a regular file (a FIFO or device cannot hold records)
        data = read_regular(path, "records file", MAX_BYTES)
    except SpecError as exc:
        raise DataError([Problem(name, None, None,
                                 str(exc).removeprefix(f"{path}: "))]) from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        if kind in ("csv", "tsv"):
            raw = data
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise DataError([Problem(name, None, None,
                                         "file is UTF-16 encoded; save it as UTF-8")])
            try:
                raw.decode("utf-8-sig")  # validity only: the text itself is not kept
            except UnicodeDecodeError as exc:
                raise DataError([Problem(name, None, None,
                                         f"not valid UTF-8 (byte {exc.start}); save the file "
                                         "as UTF-8")]) from None
            if not raw.strip():
                raise DataError([Problem(name, None, None, "file is empty")])
            import csv
            import io

            sep = "," if kind == "csv" else "\t"
            first = raw[:raw.find(b"\n") if b"\n" in raw else len(raw)]
            header = [h.strip() for h in next(csv.reader(
                io.StringIO(first.decode("utf-8-sig")), delimiter=sep))]
            counts = Counter(header)
            dupes = sorted(h for h, c in counts.items() if c > 1)
            if dupes:
                raise DataError([Problem(name, HEADER_LINE, h,
                                         "column appears more than once; keep one")
                                 for h in dupes])
            _check_ragged(raw, sep, len(header), name, max_rows)
            import warnings

            with warnings.catch_warnings():  # empty trailing fields: checked just above
                warnings.simplefilter("ignore", pd.errors.ParserWarning)
                df = pd.read_csv(io.BytesIO(raw), sep=sep, dtype=str, keep_default_na=False,
                                 na_filter=False, encoding="utf-8-sig", nrows=max_rows + 1,
                                 index_col=False)
        elif kind == "excel":
            df = _read_excel(data, name, max_rows)
        else:
            import io

            import pyarrow.parquet as pq

            meta = pq.ParquetFile(io.BytesIO(data)).metadata  # the row count, before any row
            if meta.num_rows > max_rows:
                raise DataError([Problem(name, None, None,
                                         f"{meta.num_rows:,} rows, more than {max_rows:,} "
                                         "(the limit); split the file or raise the limit "
                                         "(--max-rows)")])
            df = pd.read_parquet(io.BytesIO(data))
            df = df.astype(object).where(df.notna(), "")
            df = df.map(lambda v: v if isinstance(v, str) else _format_scalar(v))
    except DataError:
        raise
    except Exception as exc:  # parsers raise many types; report them as data problems
        raise DataError([Problem(name, None, None, f"cannot be read: {exc}")]) from None
    return df, digest


def _read_excel(data: bytes, name: str, max_rows: int) -> pd.DataFrame:
    """Read the one sheet of a workbook as text, streaming, at most ``max_rows + 1`` rows.

    A workbook compresses well, so a small file can hold millions of rows: the rows are
    read one at a time and reading stops at the limit instead of parsing the whole sheet.
    """
    import io

    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        if len(wb.sheetnames) != 1:
            raise DataError([Problem(name, None, None,
                                     f"workbook has {len(wb.sheetnames)} sheets "
                                     f"({', '.join(wb.sheetnames)}); keep the records on one "
                                     "sheet")])
        rows: list[tuple] = []
        for i, row in enumerate(wb.worksheets[0].iter_rows(values_only=True)):
            if i > max_rows + 1:
                break
            rows.append(row)
    finally:
        wb.close()
    while rows and all(v is None or v == "" for v in rows[-1]):
        rows.pop()  # trailing empty rows are formatting, not records
    if not rows:
        raise DataError([Problem(name, None, None, "the sheet is empty")])
    width = max(len(r) for r in rows)
    header = [("" if v is None else _format_scalar(v)).strip() for v in rows[0]]
    header += [""] * (width - len(header))
    keep = [j for j in range(width)
            if header[j] or any(j < len(r) and r[j] not in (None, "") for r in rows[1:])]
    header = [header[j] or f"Unnamed: {j}" for j in keep]
    body = [["" if j >= len(r) or r[j] is None else _format_scalar(r[j]) for j in keep]
            for r in rows[1:]]
    return pd.DataFrame(body, columns=header, dtype=object)


def _check_ragged(raw: bytes, sep: str, width: int, name: str, max_rows: int) -> None:
    """Refuse rows with more non-empty fields than the header names (all at once).

    A parser would otherwise shift such a row's values into the wrong columns (or take the
    first column as an index). Rows with fewer fields are read with the missing trailing
    cells empty, as every spreadsheet writes them; empty extra fields (trailing separators)
    are ignored.
    """
    import csv
    import io

    problems = []
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=sep)
    next(reader, None)
    for i, row in enumerate(reader):
        if i > max_rows:
            break
        if len(row) > width and any(f.strip() for f in row[width:]):
            problems.append(Problem(name, i + HEADER_LINE + 1, None,
                                    f"row has {len(row)} fields but the header names "
                                    f"{width} columns; quote values that contain '{sep}'"
                                    if sep == "," else
                                    f"row has {len(row)} fields but the header names "
                                    f"{width} columns"))
            if len(problems) >= 50:
                break
    if problems:
        raise DataError(problems)


def _format_scalar(value: object) -> str:
    """Turn a Parquet or spreadsheet cell into text without losing integers or booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _parse_float(text: str) -> tuple[float | None, str | None]:
    """Parse a number; return (value, problem)."""
    t = text.strip().replace("\u2212", "-")
    if t.lower() in MISSING_WORDS:
        return None, None
    if t.endswith("%"):
        return None, f"'{text}' is a percentage; give the number (a count, or a proportion)"
    if re.fullmatch(r"-?\d+,\d+", t):
        return None, f"'{text}' uses a decimal comma; write {t.replace(',', '.')}"
    try:
        value = float(t)
    except ValueError:
        return None, f"'{text}' is not a number"
    if not math.isfinite(value):
        return None, f"'{text}' is not a finite number"
    return value, None




def _parse_cell(col: Column, text: str) -> tuple[object, str | None]:
    """Parse one cell of a contract column; return (value or None, problem or None)."""
    t = text.strip()
    if col.kind == "str":
        t = unicodedata.normalize("NFC", t)  # one spelling per name (stated in the README)
        problem = text_problem(t, name=col.name in NAME_COLUMNS)
        if problem:
            return None, problem
        return (t or None), None
    if t.lower() in MISSING_WORDS:
        return None, None
    if col.kind == "bool":
        if t.lower() in TRUE_WORDS:
            return True, None
        if t.lower() in FALSE_WORDS:
            return False, None
        return None, f"'{text}' is not true or false"
    value, problem = _parse_float(t)
    if problem or value is None:
        return None, problem
    if col.kind == "int":
        if not value.is_integer():
            return None, f"'{text}' is not a whole number"
        if abs(value) >= 2**53:  # beyond exact integers in a float, and any real count
            return None, f"'{text}' is too large to be a count"
        return int(value), None
    return value, None


def _parse_column(col: Column, raw: pd.DataFrame, name: str,
                  problems: list[Problem]) -> list[object]:
    """Parse one contract column; each distinct text is parsed once (10^6 rows in seconds).

    Problems are appended with the file, row and column of every cell that has one.
    """
    if col.name in raw:
        texts = ["" if v is None or v != v else str(v) for v in raw[col.name].tolist()]
    else:
        texts = [""] * len(raw)
    parsed = {t: _parse_cell(col, t) for t in dict.fromkeys(texts)}
    bad = {t for t, (value, problem) in parsed.items()
           if problem or (value is None and col.required)}
    if bad:
        for i, t in enumerate(texts):
            if t in bad:
                value, problem = parsed[t]
                problems.append(Problem(name, i + HEADER_LINE + 1, col.name,
                                        problem or "required value is empty"))
    return [parsed[t][0] for t in texts]


def read_records(path: str | Path | None = None, *, max_rows: int = MAX_ROWS) -> Records:
    """Load and validate trial records.

    Parameters
    ----------
    path : str or Path, optional
        CSV, TSV, Excel (.xlsx, one sheet) or Parquet file; the bundled dataset
        when omitted.
    max_rows : int
        Refuse larger tables (a guard against absurd inputs).

    Returns
    -------
    Records
        The validated, typed records.

    Raises
    ------
    DataError
        With every problem found (file, row, column, what to do).
    """
    p = Path(path) if path is not None else bundled_path()
    raw, digest = _read_raw(p, max_rows)
    name = str(path) if path is not None else "bundled:ketamine_trials.csv"
    if len(raw) > max_rows:
        raise DataError([Problem(name, None, None,
                                 f"more than {max_rows:,} rows (the limit); split the file or "
                                 "raise the limit (--max-rows)")])
    return validate(raw, name, digest)


def validate(raw: pd.DataFrame, name: str, sha256: str = "") -> Records:
    """Validate a DataFrame of strings against the contract and type it.

    A wide file (one row per study, metafor's ``ai/bi/ci/di``, ``m1i/sd1i/n1i/...``,
    ``xi/ni`` or ``yi/vi`` columns) is first converted to the long format by
    :func:`.wide.to_long`; problems then name the wide file's lines.
    """
    raw = raw.copy()
    raw.columns = [str(c).strip() for c in raw.columns]
    if layout_of(list(raw.columns)) is not None and not raw.empty:
        return _validate_wide(to_long(raw, name, reserved=RESERVED), name, sha256)
    return _validate(raw, name, sha256)


#: the names a wide file's own column may not keep (long-format columns and aliases)
RESERVED = frozenset(COLUMN_BY_NAME) | frozenset(ALIASES)


def import_records(path: str | Path, *, rename: dict[str, str] | None = None,
                   measure: str | None = None, outcome: str | None = None,
                   max_rows: int = MAX_ROWS) -> Records:
    """Read a wide file (``trialmeta import``): rename its columns, convert and validate.

    Parameters
    ----------
    path : str or Path
        The wide file.
    rename : dict, optional
        escalc name -> the file's column (``{"ai": "tpos"}``).
    measure, outcome : str, optional
        The measure and outcome of a ``yi`` column.
    max_rows : int
        Refuse larger tables.

    Returns
    -------
    Records
        The long-format records (``table`` holds the contract's columns and the carried
        ones; ``line`` is each row's line in the wide file).
    """
    raw, digest = _read_raw(Path(path), max_rows)
    return _validate_wide(import_wide(raw, str(path), rename=rename, measure=measure,
                                      outcome=outcome, reserved=RESERVED), str(path), digest)


def _validate_wide(wide: WideResult, name: str, sha256: str) -> Records:
    """Validate a wide file's long rows; problems name the wide file's lines."""
    if wide.problems:
        raise DataError(sorted(wide.problems, key=lambda p: (p.row or 0, p.column or "")))
    if wide.table.empty:
        raise DataError([Problem(name, None, None, "no study has every number its columns "
                                 f"need ({wide.layout}); " + "; ".join(wide.notes))])
    return _validate(wide.table.drop(columns="_line"), name, sha256,
                     lines=[int(x) for x in wide.table["_line"]], notes=wide.notes)


def _validate(raw: pd.DataFrame, name: str, sha256: str, *, lines: list[int] | None = None,
              notes: list[str] | tuple[str, ...] = ()) -> Records:
    """Validate long-format rows.

    ``lines`` gives each row's line when they came from a wide file (its problems then name
    those lines).
    """
    problems: list[Problem] = []
    wide_lines, wide_notes = lines, list(notes)
    dupes = sorted(c for c, k in Counter(raw.columns).items() if k > 1)
    for c in dupes:
        problems.append(Problem(name, HEADER_LINE, c, "column appears more than once; keep one"))
    if dupes:
        raise DataError(problems)
    renames: dict[str, str] = {}
    for alias, target in ALIASES.items():
        if alias not in raw.columns:
            continue
        if target in raw.columns or target in renames.values():
            other = target if target in raw.columns else next(
                a for a, t in renames.items() if t == target)
            problems.append(Problem(name, HEADER_LINE, alias,
                                    f"'{alias}' and '{other}' both name the column "
                                    f"'{target}'; keep one"))
            continue
        renames[alias] = target
    if problems:
        raise DataError(problems)
    raw = raw.rename(columns=renames)
    if len(raw.columns) == 1 and raw.columns[0].count(";") >= 2:
        raise DataError([Problem(name, HEADER_LINE, None,
                                 "the header looks semicolon-separated; use commas (CSV) or "
                                 "tabs (TSV)")])
    if len(raw.columns) == 1 and raw.columns[0].count("\t") >= 2:
        raise DataError([Problem(name, HEADER_LINE, None,
                                 "the header looks tab-separated; name the file .tsv")])
    missing = [c for c in REQUIRED if c not in raw.columns]
    for c in missing:
        problems.append(Problem(name, HEADER_LINE, c,
                                f"required column '{c}' is missing "
                                f"(required: {', '.join(REQUIRED)})"))
    if problems:
        raise DataError(problems)
    if raw.empty:
        raise DataError([Problem(name, None, None, "the file has a header but no rows")])

    typed: dict[str, list[object]] = {}
    for col in COLUMNS:
        typed[col.name] = _parse_column(col, raw, name, problems)
    notes = list(wide_notes)
    if "design" not in raw.columns:  # metafor's files have none: two-arm trials, parallel
        typed["design"] = ["parallel"] * len(raw)
        notes.append("the file has no 'design' column: every study is read as a "
                     "parallel-group trial (add the column to mark crossover or single-arm "
                     "studies)")
    extras = [c for c in raw.columns if c not in COLUMN_BY_NAME]
    for c in extras:  # the user's own columns reach tables and reports too: free-text rule
        problem = text_problem(str(c), name=True)
        if problem:
            problems.append(Problem(name, HEADER_LINE, ascii(str(c)), f"column name {problem}"))
            continue
        texts = ["" if v is None or v != v else str(v) for v in raw[c].tolist()]
        bad = {t for t in set(texts) if text_problem(t, name=False)}  # each distinct text once
        for i in [i for i, t in enumerate(texts) if t in bad][:20] if bad else []:
            problems.append(Problem(name, i + HEADER_LINE + 1, str(c),
                                    text_problem(texts[i], name=False) or "bad text"))
    if wide_lines is not None:  # a long row's problem is about its wide file's line
        problems = [dataclasses.replace(p, row=wide_lines[p.row - HEADER_LINE - 1])
                    if p.row is not None and HEADER_LINE < p.row <= HEADER_LINE + len(wide_lines)
                    else p for p in problems]
    # the user's own columns: an empty cell (or NA, nan, none, null) is missing, as R reads it
    cells = raw[extras].to_numpy(dtype=object)  # one array, whatever the width
    missing = pd.isna(cells) | np.isin(np.char.lower(np.char.strip(cells.astype(str))),
                                       list(MISSING_WORDS))
    own = pd.DataFrame(np.where(missing, None, cells), columns=extras, dtype=object)
    table = pd.concat([pd.DataFrame(typed, dtype=object), own], axis=1)  # one step, any width
    table["line"] = (wide_lines if wide_lines is not None
                     else range(HEADER_LINE + 1, HEADER_LINE + 1 + len(table)))
    problems += _check_values(table, name)
    problems += _check_structure(table, name)
    if problems:
        raise DataError(sorted(dict.fromkeys(problems),
                               key=lambda p: (p.row or 0, p.column or "")))
    table["endpoint"] = [e if e is not None else _default_endpoint(t, g)
                         for e, t, g in zip(table["endpoint"], table["time_h"],
                                            table["doses_given"], strict=True)]
    table["domain"] = [d if d is not None else DOMAIN_BY_SCALE.get(sc, DEFAULT_DOMAIN)
                       for d, sc in zip(table["domain"], table["scale"], strict=True)]
    for col in COLUMNS:
        if col.kind == "int":
            table[col.name] = pd.array(table[col.name], dtype="Int64")
        elif col.kind == "float":
            table[col.name] = pd.array(table[col.name], dtype="Float64")
        elif col.kind == "bool":
            table[col.name] = pd.array(table[col.name], dtype="boolean")
    return Records(table=table, path=name, sha256=sha256, notes=notes)


def _effect_problems(rec: dict) -> list[tuple[str, str]]:
    """Return (column, message) for every problem of a row's contrast-level numbers."""
    given = [c for c in EFFECT_COLUMNS if rec[c] is not None]
    if not given:
        return []
    out = []
    for col in ("vs", "effect_outcome", "effect_measure", "effect"):
        if rec[col] is None:
            out.append((col, f"a contrast-level row needs {col} (it gives {', '.join(given)})"))
    outcome, measure = rec["effect_outcome"], rec["effect_measure"]
    if outcome is not None and outcome not in EFFECT_MEASURES:
        out.append(("effect_outcome", f"unknown effect_outcome '{outcome}'; use response, "
                                      "remission, events or change"))
    elif measure is not None and outcome is not None and \
            measure not in EFFECT_MEASURES[outcome]:
        out.append(("effect_measure", f"effect_measure '{measure}' does not fit {outcome}; use "
                                      f"{' or '.join(EFFECT_MEASURES[outcome])}"))
    se, lo, hi, eff = rec["effect_se"], rec["effect_ci_low"], rec["effect_ci_high"], rec["effect"]
    if se is not None and se <= 0:
        out.append(("effect_se", f"effect_se = {se:g}; must be > 0"))
    if (lo is None) != (hi is None):
        out.append(("effect_ci_low" if lo is None else "effect_ci_high",
                    "give both bounds of the 95 % CI"))
    if se is None and (lo is None or hi is None):
        out.append(("effect_se", "a contrast-level row needs effect_se or a 95 % CI "
                                 "(effect_ci_low and effect_ci_high)"))
    if lo is not None and hi is not None and eff is not None and not lo < eff < hi:
        out.append(("effect_ci_low", f"the CI {lo:g} to {hi:g} does not contain the effect "
                                     f"{eff:g}"))
    if rec["vs"] is not None and rec["vs"] == rec["arm"]:
        out.append(("vs", "an arm cannot be compared with itself"))
    return out


def _default_endpoint(time_h: float | None, doses_given: int | None) -> str:
    """Return the endpoint of a row that gives none (series_end: untimed after a course)."""
    return "series_end" if time_h is None and (doses_given or 0) > 1 else "fixed"


def _check_values(t: pd.DataFrame, name: str) -> list[Problem]:
    """Row-wise range and vocabulary checks."""
    out: list[Problem] = []
    contract = [c for c in t.columns if c in COLUMN_BY_NAME or c == "line"]
    for rec in t[contract].to_dict("records"):  # the user's extra columns are not checked
        line = rec["line"]

        def bad(col: str, msg: str, line: int = line) -> None:
            out.append(Problem(name, line, col, msg))

        n, nb = rec["n"], rec["n_binary"]
        if n is not None and n <= 0:
            bad("n", f"n = {n}; the number of patients must be > 0")
        if n is not None and n > MAX_N:
            bad("n", f"n = {n:,} is implausibly large (more than {MAX_N:,} in one arm); "
                     "check the value")
        if nb is not None and nb <= 0:
            bad("n_binary", f"n_binary = {nb}; must be > 0")
        denom = nb if nb is not None else n
        if denom is not None and denom <= 0:
            denom = None  # already reported; do not repeat it for every count
        for col in ("responders", "remitters", "events"):
            k = rec[col]
            if k is None:
                continue
            if k < 0:
                bad(col, f"{col} = {k}; counts cannot be negative")
            elif denom is None:
                if n is None and nb is None:
                    bad("n", f"{col} given without n; add the number of patients")
            elif k > denom:
                which = "n_binary" if nb is not None else "n"
                bad(col, f"{col} = {k} is more than {which} = {denom}")
        for col in ("sd", "se", "effect_se"):
            v = rec[col]
            if v is not None and v <= 0:
                bad(col, f"{col} = {v:g}; must be > 0 (leave it empty if unknown)")
            elif v is not None and not SPREAD_RANGE[0] <= v <= SPREAD_RANGE[1]:
                bad(col, f"{col} = {v:g} is outside {SPREAD_RANGE[0]:g} to "
                         f"{SPREAD_RANGE[1]:g}; its square would underflow or overflow "
                         "(check the unit)")
        for col in ("mean", "effect", "effect_ci_low", "effect_ci_high", "dose"):
            v = rec[col]
            if v is not None and abs(v) > MAX_MAGNITUDE:
                bad(col, f"{col} = {v:g} is larger than {MAX_MAGNITUDE:g} in size; check the "
                         "value")
        if rec["mean"] is not None and rec["mean_type"] is None:
            bad("mean_type", "mean given without mean_type; say 'change' or 'endpoint'")
        if (rec["sd"] is not None or rec["se"] is not None) and rec["mean"] is None:
            bad("mean", "sd or se given without a mean")
        if rec["dose"] is not None and rec["dose"] < 0:
            bad("dose", f"dose = {rec['dose']:g}; must be >= 0")
        if rec["dose"] is not None and rec["dose"] > 0 and rec["dose_unit"] is None:
            bad("dose_unit", "dose given without dose_unit (mg/kg, mg, mg/day, ug/kg, standard)")
        if rec["time_h"] is not None and rec["time_h"] < 0:
            bad("time_h", f"time_h = {rec['time_h']:g}; times before the dose are not "
                          "outcomes: use 0 for baseline")
        if rec["doses_given"] is not None and rec["doses_given"] < 0:
            bad("doses_given", f"doses_given = {rec['doses_given']}; must be >= 0")
        out.extend(Problem(name, line, col, msg) for col, msg in _effect_problems(rec))
        implied = DOMAIN_BY_SCALE.get(rec["scale"])
        if rec["domain"] is not None and implied and rec["domain"] != implied:
            bad("domain", f"domain '{rec['domain']}' but scale {rec['scale']} measures "
                          f"{implied}")
        if rec["endpoint"] == "cumulative" and rec["time_h"] is None:
            bad("time_h", "a cumulative endpoint needs time_h: the end of its window")
        vocab = [("endpoint", ENDPOINTS),
                 ("dose_unit", DOSE_UNITS), ("route", ROUTES), ("design", DESIGNS),
                 ("mean_type", MEAN_TYPES), ("evidence", EVIDENCE)]
        for col, allowed in vocab:
            v = rec[col]
            if v is not None and v not in allowed:
                bad(col, f"unknown {col} '{v}'; use one of {', '.join(sorted(allowed))}")
    return out


def _check_structure(t: pd.DataFrame, name: str) -> list[Problem]:
    """Duplicate rows, designs and arm attributes that must agree within a study.

    Vectorised over the table (groupby and duplicated), so 10^6 rows take seconds; a
    problem's message is built only for the rows that have it.
    """
    out: list[Problem] = []
    key = t[list(ROW_KEY)].astype(object).where(t[list(ROW_KEY)].notna(), None)
    dup = key.duplicated(keep="first").to_numpy()
    if dup.any():
        # empty key cells (already reported as missing) form a group of their own
        group = key.fillna("\x00").groupby(list(ROW_KEY), sort=False, dropna=False).ngroup()
        first_line = t["line"].groupby(group.to_numpy()).transform("first")
        for i in np.flatnonzero(dup):
            k = tuple(key.iloc[i])
            out.append(Problem(name, int(t["line"].iloc[i]), None,
                               f"duplicate row: same study, arm, time_h, scale and doses_given "
                               f"as row {int(first_line.iloc[i])} "
                               f"({k[0] or '(empty)'}/{k[1] or '(empty)'}, "
                               + ("no time_h)" if k[2] is None else f"time_h={k[2]:g})")))
    out += _contrast_row_problems(t, name)
    by_study = t.groupby("study", sort=False)
    designs = by_study["design"].nunique()
    first = by_study["line"].first()
    for study in designs.index[designs > 1]:
        values = sorted(set(t.loc[t["study"] == study, "design"].dropna()))
        out.append(Problem(name, int(first[study]), "design",
                           f"study {study} has several designs ({', '.join(values)});"
                           " one design per study"))
    arms = by_study["arm"].nunique()
    no_design = t[t["design"].isna()].groupby("study", sort=False)["line"].first()
    for study, line in no_design.items():
        if arms[study] > 1:
            out.append(Problem(name, int(line), "design",
                               f"study {study} has {arms[study]} arms but no design; say "
                               "'parallel' or 'crossover' (crossover arms share patients)"))
    by_arm = t.groupby(["study", "arm"], sort=False)
    arm_first = by_arm["line"].first()
    for col in ARM_ATTRIBUTES:
        if col not in t:
            continue
        counts = by_arm[col].nunique()
        for study, arm in counts.index[counts > 1]:
            rows = t.loc[(t["study"] == study) & (t["arm"] == arm), col]
            values = {v for v in rows if v is not None and v == v}
            out.append(Problem(name, int(arm_first[(study, arm)]), col,
                               f"arm {study}/{arm} has different {col} values "
                               f"({', '.join(map(str, sorted(values, key=str)))}); "
                               "an arm has one value"))
    return out


#: the arm-level column that carries each outcome
ARM_LEVEL = {"response": "responders", "remission": "remitters", "events": "events",
             "change": "mean"}


def _contrast_row_problems(t: pd.DataFrame, name: str) -> list[Problem]:
    """``vs`` must name an arm of the study; a contrast is given in one form, not both.

    Looks only at rows that carry an effect, against sets of (study, arm[, time]) keys.
    """
    out: list[Problem] = []
    eff = t[t["effect"].notna() & t["vs"].notna()]
    if eff.empty:
        return out
    arms = set(zip(t["study"], t["arm"], strict=True))
    times = [None if x is None or x != x else float(x) for x in t["time_h"]]
    with_numbers = {col: {(s, a, x) for s, a, x, v in zip(t["study"], t["arm"], times, t[col],
                                                          strict=True)
                          if v is not None and v == v}
                    for col in ARM_LEVEL.values()}
    for rec in eff.to_dict("records"):
        study = rec["study"]
        if (study, rec["vs"]) not in arms:
            names = sorted(a for s, a in arms if s == study)
            out.append(Problem(name, rec["line"], "vs",
                               f"vs '{rec['vs']}' names no arm of study {study} (arms: "
                               f"{', '.join(names)})"))
            continue
        col = ARM_LEVEL.get(rec["effect_outcome"])
        if col is None:
            continue
        x = rec["time_h"]
        x = None if x is None or x != x else float(x)
        have = with_numbers[col]
        if (study, rec["arm"], x) in have and (study, rec["vs"], x) in have:
            out.append(Problem(name, rec["line"], "effect",
                               f"study {study} gives {rec['arm']} vs {rec['vs']} "
                               f"({rec['effect_outcome']}) both as arm-level numbers and as a "
                               "contrast; keep one form"))
    return out


def summarize(records: Records) -> dict[str, object]:
    """Describe the records: studies, arms, rows per outcome, time points, tiers."""
    t = records.table
    has = {
        "responders": int(t["responders"].notna().sum()),
        "remitters": int(t["remitters"].notna().sum()),
        "events": int(t["events"].notna().sum()),
        "mean": int(t["mean"].notna().sum()),
        "contrast": int(t["effect"].notna().sum()),
    }
    times = sorted({float(x) for x in t["time_h"].dropna()})
    return {
        "file": records.path,
        "sha256": records.sha256,
        "rows": len(t),
        "studies": int(t["study"].nunique()),
        "arms": int(t[["study", "arm"]].drop_duplicates().shape[0]),
        "rows_per_outcome": has,
        "time_points_h": times,
        "evidence": {k: int(v) for k, v in t["evidence"].fillna("unstated").value_counts()
                     .sort_index().items()},
        "designs": {k: int(v) for k, v in t.drop_duplicates("study")["design"]
                    .fillna("unstated").value_counts().sort_index().items()},
        "treatments": sorted(t["treatment"].unique().tolist()),
        "study_list": sorted(t["study"].unique().tolist()),
        "notes": list(records.notes),
    }


def long_csv(records: Records) -> str:
    """Write the records as a long-format CSV (what ``trialmeta import`` writes).

    The contract's non-empty columns, then the file's own columns; it reads back as the same
    records.
    """
    t = records.table
    contract = [c.name for c in COLUMNS if t[c.name].notna().any()
                and not (c.name == "endpoint" and (t[c.name] == "fixed").all())
                and not (c.name == "domain" and (t[c.name] == DEFAULT_DOMAIN).all())]
    extras = [c for c in t.columns if c not in COLUMN_BY_NAME and c != "line"]
    return t[contract + extras].to_csv(index=False, lineterminator="\n")
