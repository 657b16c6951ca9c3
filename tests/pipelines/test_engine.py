"""The Dask engine: cached, resumable tasks; a real scheduler with two workers on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from engine_tasks import calls, square
from trialmeta.analysis.pipelines.engine import Task, run_tasks, task_key
from trialmeta.cli.app import app
from typer.testing import CliRunner

HERE = Path(__file__).parents[1]


def _tasks(log: Path, xs: list[int]) -> list[Task]:
    return [Task(task_key("square", x), square, (x, str(log))) for x in xs]


def test_finished_tasks_are_not_redone(tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    first = run_tasks(_tasks(log, [1, 2, 3]), workers=2, cache_dir=tmp_path / "c",
                      progress=False)
    assert [r["square"] for r in first] == [1, 4, 9]
    assert sorted(calls(str(log))) == [1, 2, 3]
    # an "interrupted" run: the entry of task 2 is lost; a rerun redoes only that one
    (tmp_path / "c" / "cells" / f"{task_key('square', 2)}.json").unlink()
    again = run_tasks(_tasks(log, [1, 2, 3, 4]), workers=2, cache_dir=tmp_path / "c",
                      progress=False)
    assert [r["square"] for r in again] == [1, 4, 9, 16]
    assert sorted(calls(str(log))) == [1, 2, 2, 3, 4]


def test_corrupt_or_foreign_cache_entry_is_redone(tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    run_tasks(_tasks(log, [5]), workers=1, cache_dir=tmp_path, progress=False)
    entry = tmp_path / "cells" / f"{task_key('square', 5)}.json"
    entry.write_text(json.dumps({"key": "someone else", "result": {"square": 0}}))
    [r] = run_tasks(_tasks(log, [5]), workers=1, cache_dir=tmp_path, progress=False)
    assert r["square"] == 25 and calls(str(log)) == [5, 5]


def test_follow_up_tasks_join_the_run_as_results_arrive(tmp_path: Path) -> None:
    """A result can add tasks (the sweep's leave-one-out cells wait for the baseline)."""
    log = tmp_path / "calls.txt"

    def more(task: Task, result: dict) -> list[Task]:
        return _tasks(log, [result["square"]]) if result["x"] in (2, 3) else []

    out = run_tasks(_tasks(log, [1, 2, 3]), workers=2, cache_dir=tmp_path / "c",
                    progress=False, follow_up=more)
    assert [r["square"] for r in out] == [1, 4, 16, 9, 81]  # each follow-up after its parent
    # all cached now: follow-ups of cached results are found without a cluster
    again = run_tasks(_tasks(log, [1, 2, 3]), workers=2, cache_dir=tmp_path / "c",
                      progress=False, follow_up=more)
    assert again == out and sorted(calls(str(log))) == [1, 2, 3, 4, 9]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def loopback_cluster(tmp_path: Path):
    """A real dask scheduler and two single-threaded workers on 127.0.0.1."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get(
        "PYTHONPATH", "")])}
    logs = [open(tmp_path / f"dask-{i}.log", "w") for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                               "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=logs[0], stderr=subprocess.STDOUT, env=env)]
    for i in (1, 2):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
             "--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard", "--no-nanny"],
            stdout=logs[i], stderr=subprocess.STDOUT, env=env))
    from distributed import Client

    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()


def test_tasks_and_a_sweep_run_on_a_two_worker_loopback_cluster(
        tmp_path: Path, loopback_cluster: str) -> None:
    log = tmp_path / "calls.txt"
    results = run_tasks(_tasks(log, list(range(8))), scheduler=loopback_cluster,
                        cache_dir=tmp_path / "c", progress=False)
    assert [r["square"] for r in results] == [x * x for x in range(8)]
    pids = {r["pid"] for r in results}
    assert os.getpid() not in pids  # nothing ran in this process: the workers did it
    # a small sweep through the same scheduler, from the command line
    from conftest import base_rows, write_csv

    from tests.report.test_report import CLAIMS

    data = write_csv(tmp_path / "records.csv", base_rows())
    claims = tmp_path / "claims.yaml"
    claims.write_text(CLAIMS)
    r = CliRunner().invoke(app, ["sweep", str(data), "--claims", str(claims), "--no-loo",
                                 "--scheduler", loopback_cluster, "--cache",
                                 str(tmp_path / "sweep-cache"), "--out", str(tmp_path / "sw"),
                                 "--draws", "150", "--tune", "150", "--chains", "2",
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    ids = {c["variation"] for c in doc["cells"]}
    assert {"prior:half-normal:0.25", "evidence:primary", "window:narrow",
            "window:wide"} <= ids
    assert "crossover:exclude" not in ids  # no crossover trial in these records: no such cell
    assert {row["id"] for row in doc["table"]} == {"T1", "T2", "T3"}
    # a rerun is answered from the cell cache: no fit, no file of the cache rewritten
    cache = tmp_path / "sweep-cache"
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    r = CliRunner().invoke(app, ["sweep", str(data), "--claims", str(claims), "--no-loo",
                                 "--scheduler", loopback_cluster, "--cache",
                                 str(tmp_path / "sweep-cache"), "--draws", "150", "--tune",
                                 "150", "--chains", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["table"] == doc["table"]
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == before
