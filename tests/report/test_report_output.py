"""`report --out`: what may be replaced, refusals before any fitting, crash-safe swaps."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from trialmeta.analysis.errors import SpecError
from trialmeta.analysis.report.output import (
    MARKER,
    foreign_entries,
    marker_text,
    plan_output,
    swap_in,
)
from trialmeta.cli.app import app
from typer.testing import CliRunner

from tests.report.test_report import SMALL, make_inputs, run_report

runner = CliRunner()


def _report_folder(folder: Path, body: str = "old", token: str | None = None) -> Path:
    """A folder laid out as a report writes it, with its marker (and the run's token)."""
    (folder / "tables").mkdir(parents=True)
    files = {"index.html": body, "report.md": body, "results.json": "{}",
             "tables/claims.csv": "a\n"}
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / MARKER).write_text(marker_text(files, token))
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _invoke_report(tmp_path: Path, out: Path, *extra: str, cwd: Path | None = None):
    data, claims = make_inputs(tmp_path)
    old = Path.cwd()
    os.chdir(cwd or old)
    try:
        return runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out",
                                   str(out), "--cache", str(tmp_path / "cache"), *SMALL,
                                   *extra])
    finally:
        os.chdir(old)


def test_foreign_folder_is_refused_and_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    (victim / "chapters").mkdir(parents=True)
    (victim / "thesis.docx").write_bytes(b"years of work")
    (victim / "chapters" / "one.tex").write_text("\\section{One}")
    before = _snapshot(victim)
    r = _invoke_report(tmp_path, victim)
    assert r.exit_code == 2
    assert "holds files a report did not write" in r.output and "--force" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    assert _snapshot(victim) == before
    assert not (tmp_path / "cache").exists()  # refused before any fit was started


def test_current_folder_and_its_parents_are_refused(tmp_path: Path) -> None:
    notes = tmp_path / "work"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    for out in (Path("."), notes, tmp_path):
        r = _invoke_report(tmp_path, out, "--force", cwd=notes)
        assert r.exit_code == 2, r.output
        assert "current folder" in r.output
    assert (notes / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in notes.iterdir()) == ["notes.txt"]


def test_folder_holding_the_inputs_or_the_cache_is_refused(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    data, claims = make_inputs(proj)
    before = _snapshot(proj)
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(proj),
                            "--force", "--cache", str(tmp_path / "cache"), *SMALL])
    assert r.exit_code == 2 and "records file" in r.output
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out",
                            str(tmp_path), "--cache", str(tmp_path / "c"), *SMALL])
    assert r.exit_code == 2 and "contains the" in r.output
    cache = tmp_path / "store" / "cache"
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out",
                            str(tmp_path / "store"), "--cache", str(cache), *SMALL])
    assert r.exit_code == 2 and "cache" in r.output
    assert _snapshot(proj) == before


def test_regular_file_as_out_is_refused(tmp_path: Path) -> None:
    somefile = tmp_path / "somefile"
    somefile.write_text("keep me")
    r = _invoke_report(tmp_path, somefile, "--force")
    assert r.exit_code == 2 and "is a file, not a folder" in r.output
    assert somefile.read_text() == "keep me"


def test_unwritable_out_or_cache_fails_before_fitting(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    r = _invoke_report(tmp_path, blocker / "rep")
    assert r.exit_code == 2 and "--out" in r.output and "not a folder" in r.output
    data, claims = make_inputs(tmp_path)
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out",
                            str(tmp_path / "rep"), "--cache", str(blocker / "cache"), *SMALL])
    assert r.exit_code == 2 and "--cache" in r.output
    assert not (tmp_path / "rep").exists()


def test_report_replaces_only_a_report_and_force_writes_a_subfolder(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    out = tmp_path / "rep"
    out.mkdir()  # an empty folder may be used
    run_report(data, claims, out)
    listed = json.loads((out / MARKER).read_text())["files"]
    assert {"index.html", "report.md", "results.json"} <= set(listed)
    assert sorted(listed) == sorted(k for k in _snapshot(out) if k != MARKER)
    run_report(data, claims, out)  # a report replaces a report
    (out / "my-notes.txt").write_text("added by hand")
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(out),
                            *SMALL])
    assert r.exit_code == 2 and "my-notes.txt" in r.output
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(out),
                            "--force", *SMALL])
    assert r.exit_code == 0, r.output
    assert (out / "my-notes.txt").read_text() == "added by hand"
    assert (out / "trialmeta-report" / "index.html").is_file()
    assert (out / "index.html").is_file()  # the old report is left as it was


def test_foreign_entries_rules(tmp_path: Path) -> None:
    rep = _report_folder(tmp_path / "rep")
    assert foreign_entries(rep) == []
    (rep / "tables" / "mine.csv").write_text("x")
    assert foreign_entries(rep) == ["tables/mine.csv"]
    (rep / "tables" / "mine.csv").unlink()
    (rep / "outside").symlink_to(tmp_path)  # a link is never a report's own file
    assert foreign_entries(rep) == ["outside"]
    (rep / "outside").unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert foreign_entries(empty) == []
    legacy = _report_folder(tmp_path / "legacy")
    (legacy / MARKER).unlink()  # a report from before the marker: recognised by its layout
    assert foreign_entries(legacy) != []  # ... and by a results.json that trialmeta wrote
    (legacy / "results.json").write_text(_legacy_results())
    assert foreign_entries(legacy) == []
    (legacy / "draft.tmp").write_text("x")
    assert foreign_entries(legacy) != []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux-only")
def test_swap_is_one_atomic_exchange(tmp_path: Path) -> None:
    out = _report_folder(tmp_path / "rep", "old")
    staging = _report_folder(tmp_path / ".rep.new-x", "new")
    seen: list[bool] = []

    def exchange(a: Path, b: Path) -> bool:
        from trialmeta.analysis.report.output import _exchange

        done = _exchange(a, b)
        seen.append(done)
        assert (b / "index.html").read_text() == "new"  # the new report is in place at once
        return done

    swap_in(staging, out, exchange=exchange)
    assert seen == [True]
    assert (out / "index.html").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


def test_swap_refuses_a_folder_that_gained_foreign_files(tmp_path: Path) -> None:
    out = _report_folder(tmp_path / "rep", "old")
    (out / "added-meanwhile.txt").write_text("x")
    staging = _report_folder(tmp_path / ".rep.new-x", "new")
    with pytest.raises(SpecError, match="added-meanwhile"):
        swap_in(staging, out)
    assert (out / "added-meanwhile.txt").exists() and staging.exists()


def test_kill_between_the_two_renames_is_finished_next_run(tmp_path: Path) -> None:
    """Without the exchange: old report moved aside, new one not yet moved in."""
    out = tmp_path / "rep"
    t_new, t_old, t_older = "a" * 16, "b" * 16, "c" * 16
    staging = _report_folder(tmp_path / f".rep.new-{t_new}", "new", t_new)
    backup = _report_folder(tmp_path / f".rep.old-{t_old}", "old", t_old)  # an earlier crash

    class KilledError(Exception):
        pass

    real_rename = Path.rename
    calls = []

    def rename_then_die(self: Path, target: Path) -> Path:
        calls.append(self.name)
        if len(calls) == 2:
            raise KilledError
        return real_rename(self, target)

    _report_folder(out, "older", t_older)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "rename", rename_then_die)
        with pytest.raises(KilledError):
            swap_in(staging, out, exchange=lambda a, b: False)
    assert not out.exists()  # the state a kill leaves
    plan = plan_output(out, cache=None)
    assert (out / "index.html").read_text() == "new"
    assert any("finished an interrupted report swap" in n for n in plan.notes)
    assert any("removed" in n for n in plan.notes)
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]
    assert not backup.exists()  # a backup an earlier run left is cleaned up too


def test_leftover_with_foreign_files_is_never_removed(tmp_path: Path) -> None:
    out = _report_folder(tmp_path / "rep")
    odd = tmp_path / ".rep.old-user"
    odd.mkdir()
    (odd / "precious.txt").write_text("x")
    plan_output(out, cache=None)
    assert (odd / "precious.txt").exists()


def _legacy_results() -> str:
    return json.dumps({"claims": [], "provenance": {"data_sha256": "0" * 64,
                                                     "versions": {"trialmeta": "0.1.0"}}})


@pytest.mark.parametrize("marker", ["none", "no token", "other token"])
def test_folders_that_only_look_like_leftovers_are_never_removed(tmp_path: Path,
                                                                 marker: str) -> None:
    """Issue 27.1: a user's `.rep.old-2024` beside --out survives, and is named."""
    lo = tmp_path / "lo"
    mine = lo / ".rep.old-2024"
    (mine / "tables").mkdir(parents=True)
    (mine / "tables" / "precious.csv").write_text("my,data\n")
    (mine / "index.html").write_text("<p>my page</p>")
    if marker == "no token":
        (mine / MARKER).write_text(marker_text(["index.html", "tables/precious.csv"]))
    elif marker == "other token":
        (mine / MARKER).write_text(marker_text(["index.html", "tables/precious.csv"],
                                               "d" * 16))
    staged = lo / f".rep.new-{'e' * 16}"  # named like ours, but no marker at all
    staged.mkdir()
    (staged / "index.html").write_text("mine too")
    before = _snapshot(lo)
    plan = plan_output(lo / "rep", cache=None)
    assert _snapshot(lo) == before
    said = " ".join(plan.notes)
    assert ".rep.old-2024" in said and staged.name in said and "not made by trialmeta" in said
    assert "removed" not in said


def test_the_issue_27_command_keeps_the_users_file(tmp_path: Path) -> None:
    lo = tmp_path / "lo"
    (lo / ".rep.old-2024" / "tables").mkdir(parents=True)
    precious = lo / ".rep.old-2024" / "tables" / "precious.csv"
    precious.write_text("my,data\n")
    r = _invoke_report(tmp_path, lo / "rep")
    assert r.exit_code == 0, r.output
    assert precious.read_text() == "my,data\n"
    assert "left 1 folder(s)" in r.output and "removed" not in r.output
    assert (lo / "rep" / "index.html").is_file()


def test_only_our_own_leftovers_are_removed(tmp_path: Path) -> None:
    token = "f" * 16
    ours = _report_folder(tmp_path / f".rep.old-{token}", "old", token)
    half = tmp_path / f".rep.new-{'1' * 16}"  # a run killed while writing: staging marker
    half.mkdir()
    (half / MARKER).write_text(marker_text([], "1" * 16, complete=False))
    (half / ".index.html.x.tmp").write_text("half")
    (half / "report.md").write_text("# half")
    mixed = _report_folder(tmp_path / f".rep.old-{'2' * 16}", "old", "2" * 16)
    (mixed / "notes.txt").write_text("added by a user")  # ours, but with a foreign file
    _report_folder(tmp_path / "rep", "current", "3" * 16)
    plan = plan_output(tmp_path / "rep", cache=None)
    assert not ours.exists() and not half.exists()
    assert (mixed / "notes.txt").read_text() == "added by a user"
    assert any("removed 2 leftover" in n for n in plan.notes)
    assert any(mixed.name in n and "left 1" in n for n in plan.notes)


@pytest.mark.parametrize("results", ["{}", "not json", "user"])
def test_a_user_folder_with_a_report_layout_is_not_replaced(tmp_path: Path,
                                                            results: str) -> None:
    """Issue 27.1: index.html + report.md + results.json + tables/x.csv is not a report."""
    out = _report_folder(tmp_path / "rep")
    (out / MARKER).unlink()
    (out / "results.json").write_text(
        json.dumps({"claims": [], "provenance": {"author": "me"}}) if results == "user"
        else results)
    assert foreign_entries(out) != []
    with pytest.raises(SpecError, match="holds files a report did not write"):
        plan_output(out, cache=None)
    (out / "results.json").write_text(_legacy_results())  # one trialmeta wrote: replaceable
    assert foreign_entries(out) == []


def test_a_report_run_leaves_no_leftover_and_its_marker_names_its_token(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    out = tmp_path / "rep"
    run_report(data, claims, out)
    first = json.loads((out / MARKER).read_text())["token"]
    run_report(data, claims, out)
    second = json.loads((out / MARKER).read_text())["token"]
    assert first != second and len(second) == 16
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".rep")) == []


A_HOLDS_THE_LOCK = """
import sys, time
from pathlib import Path
from trialmeta.analysis.io.files import write_text_atomic
from trialmeta.analysis.report.output import (MARKER, claimed_output, marker_text,
                                              staging_folder, swap_in)
out = Path(sys.argv[1])
with claimed_output(out) as plan:
    staging, token = staging_folder(plan.target)
    write_text_atomic(staging / "index.html", "first")
    print("staging", staging.name, flush=True)
    time.sleep(float(sys.argv[2]))
    assert (staging / "index.html").read_text() == "first", "staging folder was touched"
    write_text_atomic(staging / MARKER, marker_text(["index.html"], token))
    swap_in(staging, plan.target)
print("done", flush=True)
"""


def test_two_reports_into_one_out_the_second_waits(tmp_path: Path) -> None:
    """Issue 27.2: two processes; the second's clean-up never touches the first's staging."""
    import subprocess

    data, claims = make_inputs(tmp_path)
    out = tmp_path / "rep"
    first = subprocess.Popen([sys.executable, "-c", A_HOLDS_THE_LOCK, str(out), "6"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stdout is not None
    line = first.stdout.readline()
    assert line.startswith("staging"), first.stderr.read() if first.stderr else line
    second = subprocess.run(
        [str(Path(sys.executable).parent / "trialmeta"), "report", str(data), "--claims",
         str(claims), "--out", str(out), "--cache", str(tmp_path / "cache"), *SMALL],
        capture_output=True, text=True, timeout=600)
    rest, err = first.communicate(timeout=60)
    assert first.returncode == 0 and "done" in rest, err
    assert second.returncode == 0, second.stderr
    assert "waiting" in second.stderr
    assert "removed" not in second.stderr  # nothing was taken for a leftover
    assert "T1" in (out / "results.json").read_text()  # the second report replaced the first
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".rep")) == []
