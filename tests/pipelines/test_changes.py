"""What the new evidence changed: the comparison of two analyses, and the report section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.pipelines.changes import compare_claims, compare_pooled, data_changes

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "data" / "snapshots" / "ketamine_trials-first-extraction.csv"


def _claim(cid: str, verdict: str, p: float | None, mcse: float | None,
           studies: list[str]) -> dict:
    return {"id": cid, "title": cid, "verdict": verdict, "probability": p,
            "probability_mcse": mcse, "median": 0.5, "ci_low": 0.1, "ci_high": 0.9,
            "quantity": "pooled_rate", "studies": studies}


def test_claims_changes_are_judged_against_monte_carlo_error() -> None:
    before = [_claim("A", "inconclusive", 0.70, 0.01, ["S1", "S2"]),
              _claim("B", "inconclusive", 0.70, 0.01, ["S1"]),
              _claim("C", "supported", 0.90, 0.02, ["S1"]),
              _claim("D", "insufficient data", None, None, ["S1"]),
              _claim("gone", "supported", 0.9, 0.01, [])]
    after = [_claim("A", "supported", 0.85, 0.01, ["S1", "S2", "S3"]),
             _claim("B", "inconclusive", 0.74, 0.01, ["S1", "S3"]),  # 0.04 > 2 x 0.0141
             _claim("C", "supported", 0.93, 0.02, ["S1", "S3"]),  # 0.03 < 2 x 0.0283
             _claim("D", "insufficient data", None, None, ["S1"]),
             _claim("new", "inconclusive", 0.5, 0.01, ["S3"])]
    rows = {r["id"]: r for r in compare_claims(before, after)}
    assert list(rows) == ["A", "B", "C", "D", "new", "gone"]
    assert rows["A"]["changed"] and rows["A"]["status"] == "verdict changed"
    assert rows["A"]["studies_added"] == ["S3"] and rows["A"]["studies_removed"] == []
    assert rows["B"]["moved"] is True and rows["B"]["status"] == "moved"
    assert rows["C"]["moved"] is False and rows["C"]["status"] == "within error"
    assert rows["D"]["moved"] is None and rows["D"]["status"] == "same studies"
    assert rows["new"]["status"] == "added" and rows["gone"]["status"] == "removed"


def test_pooled_comparisons_are_listed_only_when_their_data_changed() -> None:
    def section(k: int, labels: list[str], median: float) -> list[dict]:
        return [{"id": "x", "title": "X", "groups": [{
            "group": "all", "k": k, "frequentist": {"estimate": median, "studies": [
                {"contrast": c} for c in labels]},
            "bayesian": {"estimates": {"effect": {"median": median}}, "per_study": []}}]}]

    same = compare_pooled(section(2, ["S1 a", "S2 a"], -5.0), section(2, ["S1 a", "S2 a"], -5.0))
    assert same == []
    [row] = compare_pooled(section(2, ["S1 a", "S2 a"], -5.0),
                           section(3, ["S1 a", "S2 a", "S3 b"], -6.0))
    assert row["studies_added"] == ["S3"] and row["after"]["k"] == 3


def test_data_changes_name_added_and_changed_studies(tmp_path: Path) -> None:
    before, after = read_records(str(SNAPSHOT)), read_records(None)
    d = data_changes(before, after)
    assert d["studies_added"] == ["Fu2020", "Singh2016b"] and d["studies_removed"] == []
    assert d["studies_with_new_rows"] == ["Canuso2018"]
    assert (d["before"]["rows"], d["after"]["rows"]) == (137, 144)


@pytest.mark.skipif(not (ROOT.parent / "shared" / "data" / "ketamine-extractions").is_dir(),
                    reason="the extractions folder (../shared) is not next to this clone")
def test_the_build_script_writes_the_bundled_file_and_the_snapshot(tmp_path: Path) -> None:
    """Both files are reproduced byte for byte from the extractions, every number checked."""
    folder = ROOT.parent / "shared" / "data" / "ketamine-extractions"
    script = ROOT / "scripts" / "build_ketamine_dataset.py"
    for extra, want in (([], ROOT / "data" / "ketamine_trials.csv"),
                        (["--without", "D2,R2,T2"], SNAPSHOT)):
        out = tmp_path / want.name
        subprocess.run([sys.executable, str(script), str(folder), str(out), *extra],
                       check=True, capture_output=True, env={**os.environ})
        assert out.read_bytes() == want.read_bytes(), want.name


def test_report_with_a_baseline_says_what_changed(tmp_path: Path) -> None:
    """A study added to the records: its claims list it, in HTML, Markdown and JSON."""
    from trialmeta.cli.app import app

    from tests.report.test_report import SMALL, make_inputs, runner

    data, claims = make_inputs(tmp_path)
    lines = data.read_text().splitlines()
    dropped = [lines[0]] + [x for x in lines[1:] if not x.startswith("A2001,")]
    assert len(dropped) < len(lines)
    before = tmp_path / "before.csv"
    before.write_text("\n".join(dropped) + "\n")
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(out),
                            "--baseline-data", str(before), "--baseline-label", "last year",
                            *SMALL])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "results.json").read_text())
    changes = doc["changes"]
    assert changes["baseline"] == "last year"
    assert changes["data"]["studies_added"] == ["A2001"]
    t1 = next(c for c in changes["claims"] if c["id"] == "T1")
    assert "A2001" in t1["studies_added"] and "A2001" not in t1["before"]["studies"]
    md = (out / "report.md").read_text()
    assert "## What the new evidence changed" in md and "last year" in md
    assert "What the new evidence changed" in (out / "index.html").read_text()
    assert (out / "tables" / "changes.csv").read_text().startswith("id,status,")
