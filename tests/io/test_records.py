"""Loader and validation: every kind of bad input is reported with file, row and column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import HEADER, base_rows, write_csv
from trialmeta.analysis.errors import DataError
from trialmeta.analysis.io.records import read_records, summarize


def problems_of(path: Path) -> list:
    with pytest.raises(DataError) as exc:
        read_records(path)
    return exc.value.problems


def test_valid_file_loads_with_types(valid_csv: Path) -> None:
    r = read_records(valid_csv)
    assert len(r.table) == 4
    assert str(r.table["n"].dtype) == "Int64"
    assert r.table["control"].tolist() == [False, True, False, True]
    assert len(r.sha256) == 64


def test_bundled_dataset_is_valid_and_sourced() -> None:
    r = read_records()
    t = r.table
    assert t["source"].notna().all()
    assert set(t["evidence"]) <= {"primary", "secondary", "derived", "back_calculated"}
    assert t["study"].nunique() >= 30
    # crossover studies are marked as such
    assert {"Lapidus2014", "Zarate2006", "Berman2000"} <= set(t.loc[t["design"] == "crossover",
                                                               "study"])
    # rows whose counts were derived from percentages say so in their evidence tier
    assert (t.loc[t["study"] == "Murrough2013", "evidence"] == "derived").any()


@pytest.mark.parametrize("suffix", [".tsv", ".xlsx", ".parquet"])
def test_other_formats_load_the_same(tmp_path: Path, valid_csv: Path, suffix: str) -> None:
    df = pd.read_csv(valid_csv, dtype=str, keep_default_na=False)
    path = tmp_path / f"records{suffix}"
    if suffix == ".tsv":
        df.to_csv(path, sep="\t", index=False)
    elif suffix == ".xlsx":
        df.to_excel(path, index=False)
    else:
        typed = df.copy()
        typed["n"] = typed["n"].astype(int)
        typed["time_h"] = typed["time_h"].astype(float)
        typed["control"] = typed["control"] == "true"
        typed.to_parquet(path)
    a, b = read_records(valid_csv).table, read_records(path).table
    cols = ["study", "arm", "n", "responders", "time_h", "control"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_missing_required_column(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "source"]
    probs = problems_of(write_csv(tmp_path / "x.csv", base_rows(), header))
    assert probs[0].column == "source" and probs[0].row == 1
    assert "required column" in probs[0].message


@pytest.mark.parametrize("column,value,expect", [
    ("n", "0", "must be > 0"),
    ("n", "-3", "must be > 0"),
    ("n", "12.5", "not a whole number"),
    ("n", "n/a", "not a number"),
    ("responders", "25", "more than n"),
    ("responders", "-1", "cannot be negative"),
    ("sd", "-2", "must be > 0"),
    ("dose", "1,5", "decimal comma"),
    ("dose", "12%", "percentage"),
    ("dose_unit", "grains", "unknown dose_unit"),
    ("time_h", "-4", "before the dose"),
    ("time_h", "inf", "not a finite number"),
    ("control", "maybe", "not true or false"),
    ("evidence", "hearsay", "unknown evidence"),
    ("study", "", "required value is empty"),
])
def test_each_bad_value_is_named(tmp_path: Path, column: str, value: str, expect: str) -> None:
    rows = base_rows()
    rows[1][column] = value
    if column == "sd":
        rows[1]["mean"], rows[1]["mean_type"] = "-5", "change"
    probs = problems_of(write_csv(tmp_path / "x.csv", rows))
    hit = [p for p in probs if p.row == 3 and expect in p.message]
    assert hit, probs
    assert hit[0].column in (column, "n") and hit[0].file.endswith("x.csv")


def test_duplicate_rows_name_both_lines(tmp_path: Path) -> None:
    rows = base_rows()
    rows.append(dict(rows[0]))
    probs = problems_of(write_csv(tmp_path / "x.csv", rows))
    assert any("duplicate row" in p.message and "row 2" in p.message and p.row == 6
               for p in probs)


def test_multi_arm_study_needs_a_design(tmp_path: Path) -> None:
    rows = base_rows()
    for r in rows[:2]:
        r["design"] = ""
    probs = problems_of(write_csv(tmp_path / "x.csv", rows))
    assert any(p.column == "design" and "crossover" in p.message for p in probs)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    rows = base_rows()
    rows[0]["n"] = "0"
    rows[1]["responders"] = "99"
    rows[2]["dose_unit"] = "furlongs"
    rows[3]["sd"] = "-1"
    probs = problems_of(write_csv(tmp_path / "x.csv", rows))
    assert {p.row for p in probs} >= {2, 3, 4, 5}


def test_unreadable_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty" in problems_of(empty)[0].message
    header_only = tmp_path / "h.csv"
    header_only.write_text(",".join(HEADER) + "\n")
    assert "no rows" in problems_of(header_only)[0].message
    utf16 = tmp_path / "u.csv"
    utf16.write_bytes(",".join(HEADER).encode("utf-16"))
    assert "UTF-16" in problems_of(utf16)[0].message
    latin = tmp_path / "l.csv"
    latin.write_bytes((",".join(HEADER) + "\nZ\xe9\n").encode("latin-1"))
    assert "UTF-8" in problems_of(latin)[0].message
    assert "unknown file type" in problems_of(tmp_path / "x.json")[0].message
    assert "not found" in problems_of(tmp_path / "missing.csv")[0].message


def test_duplicate_columns(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text(",".join(HEADER + ["n"]) + "\n")
    probs = problems_of(p)
    assert probs[0].column == "n" and "more than once" in probs[0].message


def test_summary_counts(valid_csv: Path) -> None:
    s = summarize(read_records(valid_csv))
    assert s["studies"] == 2 and s["arms"] == 4
    assert s["rows_per_outcome"]["responders"] == 4
    assert s["evidence"] == {"primary": 4}


def test_the_row_limit_is_checked_while_reading(tmp_path) -> None:
    """Only max_rows + 1 rows are parsed; the message names the limit."""
    import pytest
    from trialmeta.analysis.errors import DataError
    from trialmeta.analysis.io import records as rec

    lines = ["study,arm,treatment,control,n,responders,time_h,source"]
    lines += [f"S{i},a,ketamine,false,10,5,24,x" for i in range(50)]
    path = tmp_path / "r.csv"
    path.write_text("\n".join(lines) + "\n")
    raw, _ = rec._read_raw(path, max_rows=9)
    assert len(raw) == 10
    with pytest.raises(DataError, match="more than 9 rows"):
        rec.read_records(path, max_rows=9)


def test_a_file_without_a_design_column_is_read_as_parallel_trials(tmp_path: Path) -> None:
    """metafor's files have no design column: every two-arm study was refused before."""
    rows = base_rows()
    header = [c for c in rows[0] if c != "design"]
    records = read_records(write_csv(tmp_path / "r.csv", rows, header))
    assert set(records.table["design"]) == {"parallel"}
    assert any("no 'design' column" in n for n in records.notes)
    assert summarize(records)["notes"] == records.notes
    # a design column with a study left empty is still a problem to fix, named by row
    rows[0]["design"] = rows[1]["design"] = ""
    with pytest.raises(DataError, match="no design"):
        read_records(write_csv(tmp_path / "s.csv", rows))
