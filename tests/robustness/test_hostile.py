"""Hostile input (issue 20): named errors and exit 2, never a traceback; safe outputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import base_rows, write_csv
from trialmeta.analysis.errors import DataError, SpecError
from trialmeta.analysis.evaluate.claims import load_claims
from trialmeta.analysis.io.records import read_records
from trialmeta.cli.app import app
from typer.testing import CliRunner

from tests.evaluate.test_selection_claims import CLAIM as CLAIM_TEMPLATE
from tests.report.test_report import CLAIMS, CONTRASTS, SMALL, make_inputs

runner = CliRunner()

CLAIM = CLAIM_TEMPLATE.format(region="[0, 1]")


def _claims(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "claims.yaml"
    p.write_text(text)
    return p


DOSE_CLAIM = CLAIM.replace("model: pooled-rate", "model: dose-response").replace(
    "quantity: pooled_rate", "quantity: effect_at:0.5")
TIME_CLAIM = CLAIM.replace("model: pooled-rate", "model: time-course").replace(
    "    time_h: 24\n", "").replace("quantity: pooled_rate", "quantity: onset_h")


@pytest.mark.parametrize("claim,extra,field,problem", [
    (DOSE_CLAIM, "    threshold: big\n", "threshold", "must be a number"),
    (DOSE_CLAIM, "    hill: yes please\n", "hill", "must be true or false"),
    (TIME_CLAIM, "    fraction: 2\n", "fraction", "out of range"),
    (TIME_CLAIM, "    direction: up\n", "direction", "must be 1"),
    (CLAIM, "    hill: true\n", "hill", "only dose-response claims take a hill"),
    (CLAIM, "    direction: 1\n", "direction", "only time-course claims take a direction"),
    (CLAIM, "    threshold: 0.4\n", "threshold", "only dose-response and time-course"),
])
def test_family_fields_are_checked_by_their_family(tmp_path: Path, claim: str, extra: str,
                                                   field: str, problem: str) -> None:
    """Issue 28: a family checks its own fields; another family's claim refuses them."""
    p = _claims(tmp_path, claim + extra)
    with pytest.raises(SpecError, match=f"claim 'X1', field '{field}'.*{problem}"):
        load_claims(p)


@pytest.mark.parametrize("extra,field,problem", [
    ("    untimed: 1\n", "untimed", "must be true or false"),
    ("    selection: [ketamine]\n", "selection", "must be a mapping"),
    ("    selection: {doses_given: one}\n", "selection", "wrong type"),
    ("    selection: {treatment: [[a]]}\n", "selection", "must be a name or a number"),
    ("    form: emax\n", "form", "pooled-rate claims have no curve form"),
    ("    tau_prior: gamma\n", "tau_prior", ""),
])
def test_claims_fields_of_the_wrong_type_are_named(tmp_path: Path, extra: str, field: str,
                                                   problem: str) -> None:
    p = _claims(tmp_path, CLAIM + extra)
    with pytest.raises(SpecError, match=f"claim 'X1', field '{field}'.*{problem}"):
        load_claims(p)
    r = runner.invoke(app, ["claims", "--claims", str(p)])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_unknown_curve_form_is_an_error_not_insufficient_data(tmp_path: Path) -> None:
    text = CLAIM.replace("model: pooled-rate", "model: time-course").replace(
        "    time_h: 24\n", "").replace("quantity: pooled_rate", "quantity: onset_h")
    with pytest.raises(SpecError, match="unknown form 'sigmoid'"):
        load_claims(_claims(tmp_path, text + "    form: sigmoid\n"))


@pytest.mark.parametrize("text,problem", [
    ("claims: " + "[" * 10_000 + "]" * 10_000, "nested"),
    ("a: &a [1, 2]\nb: [*a, *a]\n" + CLAIM, "aliases"),
    (CLAIM + "    region: [0.9, 1]\n", "given twice"),
    ("\x00\xff", "not"),
])
def test_yaml_bombs_duplicates_and_garbage_are_refused(tmp_path: Path, text: str,
                                                       problem: str) -> None:
    p = tmp_path / "claims.yaml"
    p.write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text
                  else b"\x00\xff\xfe")
    with pytest.raises(SpecError, match=problem):
        load_claims(p)
    r = runner.invoke(app, ["claims", "--claims", str(p)])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_a_claims_file_cannot_publish_a_file_outside_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "pr"
    folder.mkdir()
    p = folder / "claims.yaml"
    p.write_text("published: ../../../../etc/passwd\n" + CLAIM)
    with pytest.raises(SpecError, match="points outside the claims file's folder"):
        load_claims(p)


@pytest.mark.parametrize("name", ["A\x00B", "A\u200bB", "A\x1bB"])
def test_control_and_invisible_characters_in_names_are_refused(tmp_path: Path,
                                                               name: str) -> None:
    rows = base_rows()
    rows[0]["study"] = rows[1]["study"] = name
    with pytest.raises(DataError) as exc:
        read_records(write_csv(tmp_path / "r.csv", rows))
    assert {(p.row, p.column) for p in exc.value.problems} == {(2, "study"), (3, "study")}


def test_names_are_normalised_so_one_trial_is_not_two(tmp_path: Path) -> None:
    rows = base_rows()
    rows[0]["study"] = "Mu\u0308ller2001"   # decomposed
    rows[1]["study"] = "M\u00fcller2001"    # composed
    t = read_records(write_csv(tmp_path / "r.csv", rows)).table
    assert t.loc[:1, "study"].nunique() == 1


def test_tex_in_names_and_long_ids_do_not_break_the_report(tmp_path: Path) -> None:
    """Figure labels are plain text; fit file names are bounded whatever the claim ids."""
    data, claims = make_inputs(tmp_path, study_name=r"A$_$B $\frac{1}{$ \undefinedcommand")
    long_id = "T" + "x" * 300
    claims.write_text(CLAIMS.replace("id: T1", f"id: {long_id}") + CONTRASTS)
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(out),
                            *SMALL])
    assert r.exit_code == 0, r.output
    assert all(len(p.name) <= 100 for p in (out / "fits").iterdir())
    assert r"A$_$B" in (out / "index.html").read_text()


def test_formula_cells_and_script_links_are_defused(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path, study_name="=cmd|' /C calc'!A0")
    published = tmp_path / "published.csv"
    published.write_text("source,comparison,outcome,time,measure,estimate,ours,url\n"
                         "Evil 2020,x,response,24 h,OR,2.0,claim/T1,javascript:alert(1)\n")
    claims.write_text("published: published.csv\n" + CLAIMS)
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(out),
                            *SMALL])
    assert r.exit_code == 0, r.output
    studies = list(csv.DictReader(io.StringIO((out / "tables" / "studies.csv").read_text())))
    assert any(s["study"] == "'=cmd|' /C calc'!A0" for s in studies)
    assert all(not s["study"].startswith("=") for s in studies)
    assert "javascript:" not in (out / "index.html").read_text()


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_planted_values_must_be_finite(tmp_path: Path, value: str) -> None:
    r = runner.invoke(app, ["calibrate", "pooled-rate", "--recover", "--plant",
                            f"tau={value}", "--sims", "2", "--cache", str(tmp_path)])
    assert r.exit_code == 2 and "finite" in r.output and "Traceback" not in r.output


def test_a_fifo_is_not_read_as_a_claims_file(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "claims.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="not a regular file"):
        load_claims(fifo)


def test_report_exits_1_when_every_fit_failed_its_gate(tmp_path: Path) -> None:
    """As `fit` does: a report whose verdicts all stand on unconverged draws is a failure."""
    data, claims = make_inputs(tmp_path)
    args = ["report", str(data), "--claims", str(claims), "--out", str(tmp_path / "rep"),
            *[a for a in SMALL if a != "--allow-unconverged"]]
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "every fit failed" in r.output
    assert (tmp_path / "rep" / "index.html").exists()  # written, marked FAILED inside
    r = runner.invoke(app, ["claims", str(data), "--claims", str(claims), "--draws", "150",
                            "--tune", "150", "--chains", "2"])
    assert r.exit_code == 1 and "every fit failed" in r.output


@pytest.mark.parametrize("column,value", [("sd", "1e-300"), ("sd", "1e300"),
                                          ("mean", "1e300")])
def test_degenerate_numbers_are_refused_at_validation(tmp_path: Path, column: str,
                                                      value: str) -> None:
    """They used to crash the samplers' threads or the exact engine (a native abort)."""
    rows = base_rows()
    for r in rows:
        r.update(mean="-5", sd="4", mean_type="change")
    rows[0][column] = value
    with pytest.raises(DataError) as exc:
        read_records(write_csv(tmp_path / "r.csv", rows))
    assert {(p.row, p.column) for p in exc.value.problems} == {(2, column)}


def test_a_tau_prior_scale_no_chain_can_start_from_is_refused(tmp_path: Path) -> None:
    data, _ = make_inputs(tmp_path)
    r = runner.invoke(app, ["fit", "contrast", str(data), "--tau-prior", "half-normal:1e-300",
                            "--draws", "100", "--tune", "100", "--chains", "2"])
    assert r.exit_code == 2 and "between 1e-6 and 1e6" in r.output
    assert "Traceback" not in r.output


def test_a_truncated_cached_figure_is_drawn_again(tmp_path: Path) -> None:
    from trialmeta.analysis.report import plots

    plots.use_svg_cache(tmp_path)
    try:
        summary = json.loads((Path(__file__).parents[2] / "calibration" /
                              "calibration-pooled-rate.json").read_text())
        first = plots.svg(plots.calibration_plot, summary=summary)
        [cached] = (tmp_path / "svg").glob("*.svg")
        cached.write_text(first[: len(first) // 2])
        assert plots.svg(plots.calibration_plot, summary=summary) == first
    finally:
        plots.use_svg_cache(None)


@pytest.mark.parametrize("address,problem", [
    ("not an address", "not a Dask scheduler address"),
    ("http://127.0.0.1:8786", "not a Dask scheduler address"),
    ("tcp://127.0.0.1:1", "cannot connect"),
    ("tcp://no-such-host.invalid:8786", "cannot connect"),
])
def test_bad_scheduler_addresses_fail_fast_with_one_line(tmp_path: Path, address: str,
                                                         problem: str) -> None:
    import time

    start = time.monotonic()
    r = runner.invoke(app, ["calibrate", "pooled-rate", "--sims", "2", "--scheduler", address,
                            "--cache", str(tmp_path)])
    assert r.exit_code == 2 and problem in r.output and "Traceback" not in r.output
    assert time.monotonic() - start < 30


def test_a_silent_server_does_not_hang_the_client(tmp_path: Path) -> None:
    import socket
    import time

    from trialmeta.analysis.pipelines import engine

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    old = engine.CONNECT_TIMEOUT_S
    engine.CONNECT_TIMEOUT_S = 2
    try:
        start = time.monotonic()
        with pytest.raises(SpecError, match="no Dask scheduler answered"):
            engine.run_tasks([engine.Task("k", print, ())], scheduler=f"tcp://127.0.0.1:{port}",
                             progress=False)
        assert time.monotonic() - start < 20
    finally:
        engine.CONNECT_TIMEOUT_S = old
        server.close()


def test_a_dose_in_several_units_must_say_which(tmp_path: Path) -> None:
    from trialmeta.analysis.select.filters import Filters, TimeWindow, select_binary_arms

    rows = base_rows()
    rows[2]["dose_unit"] = "mg"  # B2002's ketamine arm: 0.5 mg, not 0.5 mg/kg
    records = read_records(write_csv(tmp_path / "r.csv", rows))
    with pytest.raises(SpecError, match="several units.*--dose-unit"):
        select_binary_arms(records, "response", TimeWindow.around(24.0), Filters(dose=0.5))
    one = select_binary_arms(records, "response", TimeWindow.around(24.0),
                             Filters(dose=0.5, dose_unit=("mg/kg",)))
    assert list(one.table["study"]) == ["A2001"]
    r = runner.invoke(app, ["fit", "pooled-rate", str(tmp_path / "r.csv"), "--dose", "0.5"])
    assert r.exit_code == 2 and "--dose-unit" in r.output


def test_two_columns_naming_the_same_field_are_an_error(tmp_path: Path) -> None:
    rows = base_rows()
    for r in rows:
        r["study_id"] = r["trial"] = r.pop("study")
    header = ["study_id", "trial", *[c for c in rows[0] if c not in ("study_id", "trial")]]
    with pytest.raises(DataError, match="both name the column 'study'"):
        read_records(write_csv(tmp_path / "r.csv", rows, header))


def test_a_fifo_or_device_is_not_read_as_records(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "records.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        read_records(fifo)
    link = tmp_path / "zero.csv"
    link.symlink_to("/dev/zero")
    with pytest.raises(DataError, match="not a regular file"):
        read_records(link)


def test_the_records_hash_is_of_the_bytes_analysed(tmp_path: Path) -> None:
    import hashlib

    path = write_csv(tmp_path / "r.csv", base_rows())
    assert read_records(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_second_report_into_the_same_folder_waits_then_gives_up(tmp_path: Path) -> None:
    from trialmeta.analysis.report.output import writer_lock

    out = tmp_path / "rep"
    said = []
    with writer_lock(out), pytest.raises(SpecError, match="still writing"):
        with writer_lock(out, wait_s=0.5, say=said.append):
            pass
    assert said and "waiting" in said[0]
    with writer_lock(out, wait_s=0.5):  # free again once the first is done
        pass


def test_every_bad_claim_is_named_at_once(tmp_path: Path) -> None:
    two = CLAIM + CLAIM.split("claims:\n", 1)[1].replace("X1", "X2")
    p = _claims(tmp_path, two.replace("region: [0, 1]", "region: [1, 0]"))
    with pytest.raises(SpecError) as exc:
        load_claims(p)
    assert "2 problems" in str(exc.value)
    assert "claim 'X1'" in str(exc.value) and "claim 'X2'" in str(exc.value)


def test_every_problem_of_one_claim_is_named_at_once(tmp_path: Path) -> None:
    """A claim with a bad region, a bad time and a bad decision rule: three problems."""
    text = CLAIM.replace("region: [0, 1]", "region: [1, 0]").replace("time_h: 24",
                                                                     "time_h: -1")
    p = _claims(tmp_path, text + "    support: high\n    colour: red\n")
    with pytest.raises(SpecError) as exc:
        load_claims(p)
    message = str(exc.value)
    assert "colour" in message and "unknown field" in message  # stops the other checks
    p = _claims(tmp_path, text + "    support: high\n")
    with pytest.raises(SpecError) as exc:
        load_claims(p)
    message = str(exc.value)
    assert "3 problems" in message
    for fld in ("region", "time_h", "support"):
        assert f"claim 'X1', field '{fld}'" in message, fld


def _enospc(path: object) -> OSError:
    import errno

    return OSError(errno.ENOSPC, "No space left on device", str(path))


def test_a_full_disk_for_out_is_one_line_and_the_previous_report_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Class 4: ENOSPC while writing the report: exit 2, one line naming the path, the old
    report intact and no staging folder left."""
    from trialmeta.analysis.report import build

    data, claims = make_inputs(tmp_path)
    out = tmp_path / "rep"
    args = ["report", str(data), "--claims", str(claims), "--out", str(out),
            "--cache", str(tmp_path / "cache"), *SMALL]
    assert runner.invoke(app, args).exit_code == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real = build.write_text_atomic
    calls = []

    def full(path: Path, text: str) -> None:
        calls.append(path)
        if len(calls) > 1:
            raise _enospc(path)
        real(path, text)

    monkeypatch.setattr(build, "write_text_atomic", full)
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "Traceback" not in r.output
    [line] = [x for x in r.output.splitlines() if x.startswith("error")]
    assert "No space left on device" in line and "free some space" in line
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rep.new-")]


def test_a_full_cache_warns_once_and_the_report_is_still_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trialmeta.analysis.io import cache as inference  # the cache lives in io now

    data, claims = make_inputs(tmp_path)
    monkeypatch.setattr(inference, "_UNWRITABLE", set())

    def full(path: str) -> None:
        raise _enospc(path)

    real = inference._write_atomic
    monkeypatch.setattr(inference, "_write_atomic",
                        lambda folder, key, suffix, write: real(folder, key, suffix, full))
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(out),
                            "--cache", str(tmp_path / "cache"), *SMALL])
    assert r.exit_code == 0, r.output
    assert r.output.count("cache not written") == 1 and "No space left" in r.output
    assert (out / "results.json").is_file()
    assert not list((tmp_path / "cache").rglob(".*.npz"))  # no half-written entry


def test_a_model_no_chain_can_start_is_a_clean_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """Class 10: when no starting point is finite, nutpie is never started; the command says
    why and exits 1 (a valid input whose fit cannot run), whatever the number of chains."""
    import numpy as np
    from trialmeta.analysis.errors import ConvergenceError
    from trialmeta.analysis.models.pooled_rate import PooledRate
    from trialmeta.analysis.sampling import precompiled

    from tests.models.test_pooled_rate import arms

    model = PooledRate().precompiled(arms([3, 5], [10, 12]))
    bad = precompiled.PrecompiledModel(model.family, model.buffer, model.n_dim,
                                       model.variables, model.coords, model.observed,
                                       np.full(model.n_dim, 1e6))  # exp(1e6) overflows tau
    with pytest.raises(ConvergenceError, match="no chain can start"):
        precompiled.check_start(bad, lambda seed: bad.init_mean, 1)
    precompiled.check_start(model, lambda seed: model.init_mean, 1)  # a finite start passes

    def never(*args: object, **kwargs: object) -> None:
        raise ConvergenceError("pooled-rate: no chain can start: test")

    monkeypatch.setattr(precompiled, "check_start", never)
    r = runner.invoke(app, ["fit", "pooled-rate", "--outcome", "response", "--chains", "4"])
    assert r.exit_code == 1 and "no chain can start" in r.output
    assert "Traceback" not in r.output


def test_cache_entries_replaced_by_folders_are_refitted(tmp_path: Path) -> None:
    """Class 4: a directory where a cache file belongs (posterior, side file, netCDF, its
    stamp, a figure) is cleared, refitted and rewritten; the report is unaffected."""
    data, claims = make_inputs(tmp_path)
    cache = tmp_path / "cache"
    args = ["report", str(data), "--claims", str(claims), "--cache", str(cache), *SMALL]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    replaced = []
    for pattern in ("*.npz", "*.derived.json", "*.nc", "*.nc.sha256", "svg/*.svg"):
        victim = sorted(cache.glob(pattern))[0]
        victim.unlink()
        victim.mkdir()
        replaced.append(victim)
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert all(p.is_file() for p in replaced)
    assert (tmp_path / "a" / "results.json").read_text() != ""
    claims_a = json.loads((tmp_path / "a" / "results.json").read_text())["claims"]
    claims_b = json.loads((tmp_path / "b" / "results.json").read_text())["claims"]
    assert [c["verdict"] for c in claims_a] == [c["verdict"] for c in claims_b]
