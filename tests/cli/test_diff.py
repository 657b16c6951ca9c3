"""``trialmeta diff OLD NEW``: exit 0 when no verdict changed, 1 when one did, 2 on bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from trialmeta.cli.app import app
from typer.testing import CliRunner

runner = CliRunner()


def _claim(cid: str, verdict: str, p: float, studies: list[str]) -> dict:
    return {"id": cid, "title": cid, "verdict": verdict, "probability": p,
            "probability_mcse": 0.005, "median": 0.5, "ci_low": 0.2, "ci_high": 0.8,
            "quantity": "pooled_rate", "studies": studies}


BEFORE = {"claims": [_claim("C1", "inconclusive", 0.70, ["A", "B"]),
                     _claim("C2", "supported", 0.95, ["A"])],
          "contrasts": [],
          "fits": {"pooled-rate-response": {"estimates": {
              "pooled_rate": {"median": 0.5, "ci_low": 0.3, "ci_high": 0.7, "sd": 0.1}}}},
          "data": {"sha256": "a" * 64, "rows": 10, "studies": 2, "study_list": ["A", "B"]}}


def _write(folder: Path, doc: dict) -> Path:
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(doc))
    return folder


def test_same_reports_exit_0(tmp_path: Path) -> None:
    old, new = _write(tmp_path / "old", BEFORE), _write(tmp_path / "new", BEFORE)
    r = runner.invoke(app, ["diff", str(old), str(new), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["verdicts_changed"] == [] and doc["studies_added"] == []
    assert doc["estimates"] == []
    assert [c["changed"] for c in doc["claims"]] == [False, False]


def test_a_changed_verdict_exits_1_and_says_why(tmp_path: Path) -> None:
    after = copy.deepcopy(BEFORE)
    after["claims"][0] = _claim("C1", "supported", 0.85, ["A", "B", "C"])
    after["claims"].append(_claim("C3", "inconclusive", 0.5, ["C"]))
    after["fits"]["pooled-rate-response"]["estimates"]["pooled_rate"]["median"] = 0.55
    after["data"] = {"sha256": "b" * 64, "rows": 12, "studies": 3,
                     "study_list": ["A", "B", "C"]}
    old = _write(tmp_path / "old", BEFORE)
    new = _write(tmp_path / "new", after)
    r = runner.invoke(app, ["diff", str(old), str(new / "results.json"), "--json"])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    rows = {c["id"]: c for c in doc["claims"]}
    assert doc["verdicts_changed"] == ["C1", "C3"]
    assert rows["C1"]["before"]["verdict"] == "inconclusive"
    assert rows["C1"]["after"]["verdict"] == "supported"
    assert "verdict inconclusive -> supported" in rows["C1"]["reason"]
    assert "beyond Monte Carlo error" in rows["C1"]["reason"]
    assert rows["C3"]["status"] == "added" and doc["studies_added"] == ["C"]
    [moved] = doc["estimates"]
    assert moved["quantity"] == "pooled_rate" and moved["after"]["median"] == 0.55
    text = runner.invoke(app, ["diff", str(old), str(new)])
    assert text.exit_code == 1 and "C1" in text.stdout and "studies added: C" in text.stdout


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    old = _write(tmp_path / "old", BEFORE)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for other in (bad, tmp_path / "missing", _write(tmp_path / "empty", {"x": 1})):
        r = runner.invoke(app, ["diff", str(old), str(other)])
        assert r.exit_code == 2 and "Traceback" not in r.output
        assert r.output.startswith("error:"), r.output


def test_report_previous_opens_with_what_changed(tmp_path: Path) -> None:
    """--previous may name the folder being replaced: it is read before anything is written."""
    from tests.report.test_report import SMALL, make_inputs

    data, claims = make_inputs(tmp_path)
    out = tmp_path / "rep"
    args = ["report", str(data), "--claims", str(claims), "--out", str(out), *SMALL]
    assert runner.invoke(app, args).exit_code == 0
    first = json.loads((out / "results.json").read_text())
    edited = copy.deepcopy(first)
    edited["claims"][0]["verdict"] = "supported"  # as if the last report had said so
    (tmp_path / "last.json").write_text(json.dumps(edited))
    r = runner.invoke(app, [*args, "--previous", str(tmp_path / "last.json")])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "results.json").read_text())
    cid = first["claims"][0]["id"]
    assert doc["since_previous"]["verdicts_changed"] == [cid]
    md = (out / "report.md").read_text()
    assert md.index("## Since the previous report") < md.index("## Claims")
    assert "Since the previous report" in (out / "index.html").read_text()
    r = runner.invoke(app, [*args, "--previous", str(out)])  # the folder it replaces
    assert r.exit_code == 0, r.output
    assert json.loads((out / "results.json").read_text())["since_previous"][
        "verdicts_changed"] == []


def test_history_appends_each_run_and_is_drawn(tmp_path: Path,
                                               monkeypatch: object) -> None:
    import csv

    from tests.report.test_report import SMALL, make_inputs

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764547200")  # 2025-12-01
    data, claims = make_inputs(tmp_path)
    out, hist = tmp_path / "rep", tmp_path / "hist"
    args = ["report", str(data), "--claims", str(claims), "--out", str(out), "--history",
            str(hist), *SMALL]
    for _ in range(2):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((hist / "history.csv").open()))
    n_claims = len(json.loads((out / "results.json").read_text())["claims"])
    assert len(rows) == 2 * n_claims and {r["run"] for r in rows} == {"1", "2"}
    assert {r["date_utc"] for r in rows} == {"2025-12-01T00:00:00Z"}
    assert "## History of the claims" in (out / "report.md").read_text()
    assert "<svg" in (out / "index.html").read_text().split('id="history"')[1][:20000]
    r = runner.invoke(app, [*args[:-len(SMALL)], "--history", str(out), *SMALL])
    assert r.exit_code == 2  # a history inside the report folder would be deleted with it


def test_a_refused_history_folder_is_not_created(tmp_path: Path) -> None:
    """Nothing is written when --history lies inside --out (refused before any work)."""
    from tests.report.test_report import SMALL, make_inputs

    data, claims = make_inputs(tmp_path)
    out = tmp_path / "rep"
    args = ["report", str(data), "--claims", str(claims), "--out", str(out), *SMALL]
    assert runner.invoke(app, args).exit_code == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    r = runner.invoke(app, [*args, "--history", str(out / "hist")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_history_defuses_formula_ids_and_names_a_bad_row(tmp_path: Path) -> None:
    from trialmeta.analysis.errors import SpecError
    from trialmeta.analysis.report.history import history_text, read_history, run_rows

    results = {"provenance": {"data_sha256": "a", "claims_sha256": "b"},
               "claims": [{"id": "=cmd|x", "verdict": "supported", "probability": 0.9,
                           "median": -0.25, "ci_low": -0.5, "ci_high": None}]}
    rows = run_rows(results, [])
    (tmp_path / "history.csv").write_text(history_text(rows))
    back = read_history(tmp_path)
    assert back[0]["claim"] == "'=cmd|x" and back[0]["median"] == -0.25
    assert back[0]["ci_high"] is None and run_rows(results, back)[0]["run"] == 2
    (tmp_path / "history.csv").write_text(
        history_text(back).replace(",0.9,", ",high,"))
    import pytest

    with pytest.raises(SpecError, match=r"history.csv, row 2"):
        read_history(tmp_path)


def test_diff_warns_on_different_claims_files_and_lists_added_claims(tmp_path: Path) -> None:
    """Before: two unrelated analyses were compared without a word, and diff.txt printed
    raw 10-digit floats and None."""
    after = copy.deepcopy(BEFORE)
    after["claims"].append(_claim("C3", "supported", 0.9, ["A"]))
    after["fits"]["pooled-rate-response"]["estimates"]["pooled_rate"]["median"] = 0.523456789
    after["fits"]["pooled-rate-response"]["estimates"]["tau"] = {"median": 0.1}
    before = copy.deepcopy(BEFORE)
    before["provenance"] = {"claims": "a.yaml", "claims_sha256": "1" * 64}
    after["provenance"] = {"claims": "b.yaml", "claims_sha256": "2" * 64}
    old, new = _write(tmp_path / "old", before), _write(tmp_path / "new", after)
    r = runner.invoke(app, ["diff", str(old), str(new)])
    assert r.exit_code == 1  # a claim was added
    assert "warning: the two reports come from different claims files" in r.output
    assert "claims added: C3" in r.output
    assert "0.523" in r.output and "0.523456789" not in r.output
    assert "None" not in r.output and "absent" in r.output
    doc = json.loads(runner.invoke(app, ["diff", str(old), str(new), "--json"]).stdout)
    assert doc["claims_added"] == ["C3"] and len(doc["warnings"]) == 1
