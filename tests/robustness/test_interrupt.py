"""An interrupted report never damages the previous one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.report.test_report import make_inputs, run_report

# PyTensor-compiled models and long chains: the report is still sampling when the signal comes
ARGS = ["--draws", "40000", "--tune", "2000", "--chains", "4", "--no-cache", "--quiet",
        "--sampler", "nutpie-pytensor"]


def _default_sigint() -> None:
    """In the child: SIGINT as a terminal delivers it, even when this test runs in a
    background job (whose shell started it with SIGINT ignored, which children inherit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(data: Path, claims: Path, out: Path) -> subprocess.Popen:
    code = "from trialmeta.cli.app import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "report", str(data), "--claims", str(claims), "--out",
         str(out), *ARGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_default_sigint)


def _wait_for_sampling(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Block until the process runs nutpie's sampler threads (Linux: /proc/PID/task).

    A fixed sleep is not enough on a loaded machine: a signal that lands while numba or
    PyTensor is still loading the compiled model is not what these tests are about.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the process ended early: {proc.communicate()[1]}")
        names = []
        for comm in Path(f"/proc/{proc.pid}/task").glob("*/comm"):
            try:
                names.append(comm.read_text())
            except OSError:
                continue
        if any(n.startswith("nutpie") for n in names):
            time.sleep(0.5)
            return
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("sampling did not start")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_killed_report_leaves_previous_report_intact(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    out = tmp_path / "rep"
    run_report(data, claims, out)
    before = _snapshot(out)
    proc = _start(data, claims, out)
    _wait_for_sampling(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _snapshot(out) == before


def test_interrupted_report_says_so_and_cleans_up(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    out = tmp_path / "rep"
    run_report(data, claims, out)
    before = _snapshot(out)
    proc = _start(data, claims, out)
    _wait_for_sampling(proc)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # never leave a runaway sampler behind for the next tests
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert _snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rep")] == []


def test_interrupted_precompiled_fit_stops_promptly() -> None:
    """Ctrl-C reaches the precompiled sampler's threads: exit 130 within seconds."""
    code = "from trialmeta.cli.app import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "fit", "pooled-rate", "--draws", "1000000", "--chains",
         "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint)
    _wait_for_sampling(proc)
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert time.monotonic() - start < 30


def _session_processes(sid: int) -> list[str]:
    """Command lines of the live processes in session ``sid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError, IndexError):
            continue
    return out


def test_a_killed_sweep_leaves_no_worker_processes(tmp_path: Path) -> None:
    """Issue 20, class 7: SIGKILL of a sweep with Dask workers leaves nothing running and no
    shared-memory semaphores."""
    code = "from trialmeta.cli.app import main; main()"
    shm_before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "sweep", "--out", str(tmp_path / "sw"), "--cache",
         str(tmp_path / "cache"), "--workers", "2", "--quiet", "--draws", "3000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_session_processes(proc.pid)) < 3:
        time.sleep(0.5)  # the workers have started
    assert len(_session_processes(proc.pid)) >= 3, "the sweep never started its workers"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _session_processes(proc.pid):
        time.sleep(0.5)
    assert _session_processes(proc.pid) == []
    shm_after = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    assert not {n for n in shm_after - shm_before if n.startswith(("sem.", "psm_"))}
