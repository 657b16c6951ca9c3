"""Issue 27: valid or hostile input that broke a command; each test failed on the main before.

Every case must end in a clear one-line error with exit status 2, or a correct result:
never a traceback, a hang, or a lost file. Items 1 and 2 (leftovers beside --out, two
reports into one folder) are in ``test_report_output.py``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import base_rows, write_csv
from trialmeta.analysis.errors import DataError, SpecError
from trialmeta.analysis.evaluate.claims import load_claims
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.stats.frequentist import egger_test
from trialmeta.cli.app import app
from typer.testing import CliRunner

from tests.report.test_report import SMALL, make_inputs

runner = CliRunner()
BCG = Path(__file__).parents[1] / "data" / "bcg_records.csv"


def _one_line_exit_2(r) -> None:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


# --- 3. a comparison of 10 or more trials; 4. Egger's test with equal standard errors ---

def _bcg_timed(tmp_path: Path) -> Path:
    """metafor's dat.bcg (13 trials) in the record format, each arm at one time point."""
    rows = list(csv.DictReader(BCG.open()))
    out = tmp_path / "bcg.csv"
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[*rows[0], "time_h"], lineterminator="\n")
        w.writeheader()
        w.writerows({**r, "time_h": "24"} for r in rows)
    return out


BCG_CLAIMS = """
claims:
  - id: B1
    quote: the vaccine lowers the risk of tuberculosis
    model: contrast
    outcome: response
    measure: RR
    time_h: 24
    comparator: [none]
    quantity: effect
    region: [-.inf, 0]
    selection:
      treatment: [BCG]
contrasts:
  - id: tb
    title: BCG vs no vaccine
    outcome: response
    measure: RR
    time_h: 24
    comparators:
      none: [none]
"""


def test_a_report_on_13_trials_writes_the_egger_test(tmp_path: Path) -> None:
    data = _bcg_timed(tmp_path)
    claims = tmp_path / "claims.yaml"
    claims.write_text(BCG_CLAIMS)
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(out),
                            *SMALL])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    [group] = [g for g in res["contrasts"][0]["groups"] if g["group"] == "none"]
    egger = group["frequentist"]["egger"]
    assert egger["computable"] is True and egger["note"] is None  # 13 contrasts: no warning
    assert egger["df"] == 11
    assert "Egger's test: t = " in (out / "index.html").read_text()


@pytest.mark.parametrize("k", [3, 9, 10, 13])
def test_every_egger_field_is_present_whatever_k(k: int) -> None:
    rng = np.random.default_rng(k)
    e = egger_test(rng.normal(size=k), rng.uniform(0.05, 0.5, size=k)).as_dict()
    assert set(e) == {"slope", "t", "df", "p_value", "limit_estimate", "computable", "note"}
    assert e["computable"] and (e["note"] is None) == (k >= 10)


def test_egger_with_equal_standard_errors_is_not_computable() -> None:
    e = egger_test([0.1, 0.5, -0.2, 0.3], [0.04] * 4)
    assert not e.computable and e.t is None and "same standard error" in (e.note or "")


def test_frequentist_with_equal_standard_errors_says_why(tmp_path: Path) -> None:
    # 10/50 vs 20/50 and its mirror have the same variance of the log OR: four such
    # trials give four equal standard errors
    rows = []
    for study, (ev_t, ev_c) in {"S0": (10, 20), "S1": (20, 10), "S2": (10, 20),
                                "S3": (20, 10)}.items():
        for arm, treat, ctl, ev in (("t", "drug", "false", ev_t),
                                    ("c", "placebo", "true", ev_c)):
            rows.append({"study": study, "arm": arm, "treatment": treat, "control": ctl,
                         "design": "parallel", "n": "50", "responders": str(ev),
                         "source": "constructed", "evidence": "primary"})
    data = write_csv(tmp_path / "eq.csv", rows, header=list(rows[0]))
    r = runner.invoke(app, ["frequentist", str(data), "--outcome", "response", "--measure",
                            "OR", "--json"])
    assert r.exit_code == 0, r.output
    egger = json.loads(r.stdout)["egger"]
    assert egger["computable"] is False and "same standard error" in egger["note"]
    r = runner.invoke(app, ["frequentist", str(data), "--outcome", "response", "--measure",
                            "OR"])
    assert r.exit_code == 0 and "Egger test: not computable" in r.output


# --- 5. duplicate rows with empty keys, ragged rows ---

@pytest.mark.parametrize("text,expect", [
    ("study,arm,treatment,source\nS,a,k,s\nS,a,k,s\n", "duplicate row"),
    ("study,arm,treatment,source\n,,k,s\n,,k,s\n", "required value is empty"),
    ("study,arm,treatment,source\nS,a,k,s,extra,more\nT,b,k,s\n", "row has 6 fields"),
])
def test_duplicate_and_ragged_rows_are_named(tmp_path: Path, text: str, expect: str) -> None:
    p = tmp_path / "d.csv"
    p.write_text(text)
    r = runner.invoke(app, ["validate", str(p)])
    _one_line_exit_2(r)
    assert expect in r.output


def test_trailing_empty_fields_are_not_ragged(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("study,arm,treatment,source\nS,a,k,s,,\n")
    assert len(read_records(p).table) == 1


# --- 6. small files that would take minutes ---

def test_a_long_workbook_stops_at_the_row_limit(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import openpyxl
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["study", "arm", "treatment", "source"])
    for i in range(3000):
        ws.append([f"S{i}", "a", "k", "s"])
    path = tmp_path / "long.xlsx"
    wb.save(path)
    yielded = []
    real = ReadOnlyWorksheet._cells_by_row

    def counting(self, *args, **kwargs):
        for row in real(self, *args, **kwargs):
            yielded.append(1)
            yield row

    monkeypatch.setattr(ReadOnlyWorksheet, "_cells_by_row", counting)
    with pytest.raises(DataError, match="more than 100 rows"):
        read_records(path, max_rows=100)
    assert len(yielded) <= 103  # the header, the limit and one more: not 3,001 rows


def test_a_workbook_reads_as_before(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    rows = base_rows()
    header = list(rows[0])
    ws.append(header)
    for r in rows:
        ws.append([int(v) if v.isdigit() else v for v in r.values()])
    ws.append([None] * len(header))  # a formatted but empty row at the end
    wb.save(tmp_path / "r.xlsx")
    got = read_records(tmp_path / "r.xlsx").table
    want = read_records(write_csv(tmp_path / "r.csv", rows)).table
    assert got["n"].tolist() == want["n"].tolist()
    assert got["study"].tolist() == want["study"].tolist()


def test_parquet_row_count_is_read_from_its_metadata(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    path = tmp_path / "big.parquet"
    pd.DataFrame({"study": [f"S{i}" for i in range(5000)], "arm": "a", "treatment": "k",
                  "source": "s"}).to_parquet(path)

    def never(*a, **k):
        raise AssertionError("the rows were read")

    monkeypatch.setattr(pd, "read_parquet", never)
    with pytest.raises(DataError, match="5,000 rows, more than 100"):
        read_records(path, max_rows=100)


def test_twenty_thousand_columns_are_read_in_one_step(tmp_path: Path) -> None:
    cols = ["study", "arm", "treatment", "source"] + [f"x{i}" for i in range(20000)]
    lines = [",".join(cols)] + [",".join([f"S{r}", "a", "k", "s"] + ["1"] * 20000)
                                for r in range(3)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")
    t = read_records(path).table
    assert t.shape[0] == 3 and "x19999" in t.columns


# --- 7. FIFOs and devices ---

def test_a_fifo_published_table_is_refused(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    fifo = tmp_path / "published.csv"
    os.mkfifo(fifo)
    claims.write_text("published: published.csv\n" + claims.read_text())
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out",
                            str(tmp_path / "rep"), *SMALL])
    _one_line_exit_2(r)
    assert "not a regular file" in r.output


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_diff_and_previous_refuse_what_is_not_a_file(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        bad = tmp_path / "results.json"
        os.mkfifo(bad)
    else:
        bad = Path("/dev/zero")
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"claims": []}))
    r = runner.invoke(app, ["diff", str(bad), str(ok)])
    _one_line_exit_2(r)
    assert "not a regular file" in r.output
    data, claims = make_inputs(tmp_path)
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out",
                            str(tmp_path / "rep"), "--previous", str(bad), *SMALL])
    _one_line_exit_2(r)


# --- 8. a hand-edited results.json ---

@pytest.mark.parametrize("edit,problem", [
    (lambda c: c.update(probability="high"), "is not a finite number"),
    (lambda c: c.update(id=["C1"]), "not text"),
    (lambda c: c.update(studies="Zarate2006"), "not a list of text"),
    (lambda c: c.update(median=1e400), "not a finite number"),
])
def test_diff_refuses_an_edited_results_json_with_exit_2(tmp_path: Path, edit,
                                                         problem: str) -> None:
    good = {"claims": [{"id": "C1", "verdict": "supported", "probability": 0.9,
                        "probability_mcse": 0.01, "median": 0.3, "ci_low": 0.2,
                        "ci_high": 0.4, "studies": ["A"], "title": "t", "quantity": "q"}]}
    old = tmp_path / "old.json"
    old.write_text(json.dumps(good))
    edited = json.loads(json.dumps(good))
    edit(edited["claims"][0])
    new = tmp_path / "new.json"
    new.write_text(json.dumps(edited).replace("Infinity", "1e400"))
    r = runner.invoke(app, ["diff", str(old), str(new)])
    _one_line_exit_2(r)  # never 1, which means "a verdict changed"
    assert problem in r.output
    assert runner.invoke(app, ["diff", str(old), str(old)]).exit_code == 0


# --- 9. an edited cache entry ---

def test_an_edited_cached_posterior_is_refitted_and_said(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    cache = tmp_path / "cache"
    args = ["report", str(data), "--claims", str(claims), "--cache", str(cache),
            *[a for a in SMALL if a != "--no-cache"]]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    edited = 0
    for npz in cache.glob("*.npz"):
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        for k in arrays:
            if k.startswith("posterior/v/") and arrays[k].dtype.kind == "f":
                arrays[k] = arrays[k] + 3.0  # valid draws, other numbers
                edited += 1
        with open(npz, "wb") as fh:
            np.savez(fh, **arrays)
    assert edited
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "two")])
    assert r.exit_code == 0, r.output
    assert "is refitted: its draws do not match the SHA-256" in r.output
    one, two = (json.loads((tmp_path / d / "results.json").read_text())["claims"]
                for d in ("one", "two"))
    assert [(c["verdict"], c["probability"]) for c in one] == \
        [(c["verdict"], c["probability"]) for c in two]


def test_an_edited_cached_result_is_recomputed(tmp_path: Path) -> None:
    from trialmeta.analysis.io.cache import read_result, store_result

    store_result(tmp_path, "k1", {"verdict": "inconclusive", "p": 0.5})
    assert read_result(tmp_path, "k1") == {"verdict": "inconclusive", "p": 0.5}
    path = tmp_path / "k1.json"
    path.write_text(path.read_text().replace("inconclusive", "contradicted"))
    assert read_result(tmp_path, "k1") is None


# --- 12. claims files: unknown keys, versions, types ---

BASE = """version: 1
claims:
  - id: X1
    quote: most respond
    model: pooled-rate
    outcome: response
    time_h: 24
    quantity: pooled_rate
    region: [0.4, 0.6]
"""


@pytest.mark.parametrize("text,expect", [
    ("defualts:\n  support: 0.9\n" + BASE, "line 1: unknown top-level key 'defualts'; did "
                                           "you mean 'defaults'?"),
    (BASE.replace("version: 1", "version: 99"), "line 1: version 99 is not one"),
    (BASE.replace("id: X1", "id: [C1]"), "field 'id': must be text"),
    (BASE.replace("quote: most respond", "quote: !!binary aGVsbG8="), "binary data"),
    (BASE + "    min_studies: 2.7\n", "2.7 must be a whole number"),
    (BASE + "    min_studies: " + "9" * 400 + "\n", "400 digits"),
    (BASE + "    selection:\n      route: []\n", "an empty list would select nothing"),
    (BASE.replace("region: [0.4, 0.6]", "region: [-.inf, .inf]"), "holds every value"),
    (BASE.replace("id: X1", 'id: "X1\\0"'), "U+0000"),
    (BASE.replace("id: X1", 'id: "X1\\u202e"'), "U+202E"),
    (BASE.replace("id: X1", 'id: "\\e[31mX1"'), "U+001B"),
    (BASE.replace("quote: most respond", 'quote: "most\\0 respond"'), "U+0000"),
])
def test_claims_files_that_were_misread_are_refused(tmp_path: Path, text: str,
                                                    expect: str) -> None:
    p = tmp_path / "claims.yaml"
    p.write_text(text)
    with pytest.raises(SpecError) as exc:
        load_claims(p)
    assert expect in str(exc.value)
    assert "\x00" not in str(exc.value) and "\x1b" not in str(exc.value)
    assert "\u202e" not in str(exc.value)


def test_a_valid_claims_file_still_loads(tmp_path: Path) -> None:
    p = tmp_path / "claims.yaml"
    p.write_text(BASE + "    title: \"two\\nlines are fine in a title\"\n")
    assert load_claims(p).claims[0].id == "X1"


# --- 13. text that reaches terminals and files ---

def test_a_nul_in_source_never_reaches_a_report(tmp_path: Path) -> None:
    rows = base_rows()
    rows[0]["source"] = "doi:10.0/x\x00 Table 2"
    p = write_csv(tmp_path / "r.csv", rows)
    r = runner.invoke(app, ["validate", str(p)])
    assert r.exit_code == 2 and "U+0000" in r.output and "\x00" not in r.output


def test_escape_sequences_in_a_users_own_column_are_refused(tmp_path: Path) -> None:
    rows = base_rows()
    for r in rows:
        r["note"] = "fine"
    rows[1]["note"] = "\x1b[2J wiped"
    p = write_csv(tmp_path / "r.csv", rows, header=[*rows[0]])
    with pytest.raises(DataError, match="column 'note': contains a control"):
        read_records(p)


# --- 10. numeric options ---

@pytest.mark.parametrize("args,option", [
    (["fit", "pooled-rate", "--seed", "-1"], "--seed"),
    (["fit", "pooled-rate", "--seed", str(2**32)], "--seed"),
    (["fit", "pooled-rate", "--draws", "1e20"], "--draws"),
    (["fit", "pooled-rate", "--draws", "100000000"], "--draws"),
    (["fit", "pooled-rate", "--chains", "100000"], "--chains"),
    (["calibrate", "pooled-rate", "--chains", "1"], "--chains"),
    (["fit", "contrast", "--threshold", "nan"], "--threshold"),
    (["fit", "pooled-rate", "--time", "inf"], "--time"),
    (["fit", "dose-response", "--dose", "nan"], "--dose"),
    (["fit", "time-course", "--at", "-inf"], "--at"),
    (["report", "--jobs", "100000"], "--jobs"),
])
def test_implausible_option_values_are_refused_at_parse_time(args: list[str],
                                                             option: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and option in r.output and "Traceback" not in r.output


def test_sampler_settings_refuse_what_no_sampler_can_run() -> None:
    from trialmeta.analysis.sampling.settings import SamplerSettings

    for bad in ({"seed": -1}, {"draws": 10**20}, {"chains": 0}, {"target_accept": float("nan")}):
        with pytest.raises(SpecError, match=next(iter(bad))):
            SamplerSettings(**bad)


# --- 11. sweep --out and calibrate --out never overwrite a user's file ---

@pytest.mark.parametrize("command,name", [
    (["sweep"], "sweep.csv"),
    (["sweep"], "sweep.json"),
    (["calibrate", "pooled-rate", "--sims", "2"], "calibration-pooled-rate.json"),
    (["calibrate", "decision-rule", "--sims", "2"], "operating-characteristics.json"),
])
def test_sweep_and_calibrate_refuse_to_overwrite_a_users_file(tmp_path: Path, command: list[str],
                                                              name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_text("my own numbers\n")
    r = runner.invoke(app, [*command, "--out", str(out), "--cache", str(tmp_path / "c")])
    _one_line_exit_2(r)
    assert name in r.output and (out / name).read_text() == "my own numbers\n"
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_outputs_trialmeta_wrote_may_be_replaced_until_someone_edits_them(tmp_path: Path) -> None:
    from trialmeta.analysis.io.files import foreign_outputs, write_outputs

    files = {"sweep.json": '{"a": 1}\n', "sweep.csv": "a\n1\n"}
    write_outputs(tmp_path, files, "--out")
    write_outputs(tmp_path, {"sweep.json": '{"a": 2}\n', "sweep.csv": "a\n2\n"}, "--out")
    assert (tmp_path / "sweep.csv").read_text() == "a\n2\n"
    (tmp_path / "sweep.csv").write_text("a\n2\nmy note\n")  # edited by hand: the user's now
    assert foreign_outputs(tmp_path, ["sweep.json", "sweep.csv"], {}) == ["sweep.csv"]
    with pytest.raises(SpecError, match="sweep.csv"):
        write_outputs(tmp_path, files, "--out")
    assert (tmp_path / "sweep.csv").read_text() == "a\n2\nmy note\n"


def test_the_committed_calibration_folder_may_be_rewritten() -> None:
    from trialmeta.analysis.io.files import foreign_outputs

    folder = Path(__file__).parents[2] / "calibration"
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    companions = {n: n.replace(".svg", ".json") for n in names if n.endswith(".svg")}
    assert foreign_outputs(folder, names, companions) == []


# --- 14. plug-ins run code ---

@pytest.mark.parametrize("code", ["0", "None", "'done'"])
def test_a_plugin_that_exits_at_import_cannot_make_a_failed_validate_pass(tmp_path: Path,
                                                                          code: str) -> None:
    plugin = tmp_path / "exits.py"
    plugin.write_text(f"import sys\nsys.exit({code})\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("study,arm,treatment,source\nS,a,k,s\nS,a,k,s\n")
    r = runner.invoke(app, ["--plugin", str(plugin), "validate", str(bad)])
    _one_line_exit_2(r)
    assert "called sys.exit" in r.output


def test_help_says_plugins_execute_code() -> None:
    r = runner.invoke(app, ["--help"], terminal_width=200)
    text = " ".join(r.output.replace("\u2502", " ").split())
    assert "executed as Python code with your rights" in text


# --- also: a cached sweep with a bad scheduler; a silent server; ENOSPC names the target ---

def test_a_bad_scheduler_is_refused_even_when_everything_is_cached(tmp_path: Path) -> None:
    from trialmeta.analysis.io.cache import store_result
    from trialmeta.analysis.pipelines.engine import Task, run_tasks

    store_result(tmp_path / "cells", "k", {"x": 1})
    assert run_tasks([Task("k", print, ())], cache_dir=tmp_path, progress=False) == [{"x": 1}]
    with pytest.raises(SpecError, match="not a Dask scheduler address"):
        run_tasks([Task("k", print, ())], cache_dir=tmp_path, progress=False,
                  scheduler="ucx://10.0.0.1:8786")


def test_a_server_that_accepts_but_never_speaks_is_described_as_such(tmp_path: Path) -> None:
    import socket

    from trialmeta.analysis.pipelines import engine

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    old = engine.CONNECT_TIMEOUT_S
    engine.CONNECT_TIMEOUT_S = 1
    try:
        with pytest.raises(SpecError, match="accepted but nothing was sent back"):
            engine._connect(object, f"tcp://127.0.0.1:{server.getsockname()[1]}")
    finally:
        engine.CONNECT_TIMEOUT_S = old
        server.close()


def test_a_full_disk_while_copying_a_posterior_names_the_report_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import shutil


    data, claims = make_inputs(tmp_path)
    args = ["report", str(data), "--claims", str(claims), "--cache", str(tmp_path / "cache"),
            *[a for a in SMALL if a != "--no-cache"]]
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "one")]).exit_code == 0

    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    monkeypatch.setattr(shutil, "copyfile", full)
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "two")])
    assert r.exit_code == 2 and "No space left on device" in r.output
    [line] = [x for x in r.output.splitlines() if x.startswith("error")]
    assert ".two.new-" in line and "/fits/" in line and str(tmp_path / "cache") not in line
    assert not (tmp_path / "two").exists()


def test_a_count_too_large_for_an_integer_is_named(tmp_path: Path) -> None:
    """Found by make fuzz: doses_given = 1e300 overflowed the integer column."""
    rows = base_rows()
    rows[0]["doses_given"] = "1e300"
    with pytest.raises(DataError, match="too large to be a count"):
        read_records(write_csv(tmp_path / "r.csv", rows))


def test_control_characters_in_the_published_table_are_refused(tmp_path: Path) -> None:
    """Issue 27.13: the published table's cells reach index.html too."""
    data, claims = make_inputs(tmp_path)
    table = tmp_path / "published.csv"
    table.write_text("source,comparison,outcome,time,measure,estimate,ours,url\n"
                     "Smith\x1b[2J 2020,A vs B,response,24,OR,1.5,,https://x\n")
    claims.write_text("published: published.csv\n" + claims.read_text())
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out",
                            str(tmp_path / "rep"), *SMALL])
    _one_line_exit_2(r)
    assert "row 2, column 'source'" in r.output and "U+001B" in r.output
    assert not (tmp_path / "rep").exists()
    with pytest.raises(SpecError, match="U\\+001B"):  # refused with the claims, before a fit
        load_claims(claims)
