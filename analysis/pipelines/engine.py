"""Run many independent fits on Dask, with a result cache that makes runs resumable.

A unit of work is a :class:`Task`: a top-level function and plain arguments (record
tables, claim definitions, numbers), never PyMC objects, so any ``dask.distributed``
worker can run it. :func:`run_tasks` starts a ``LocalCluster`` (one single-threaded
worker process per core) or connects to ``--scheduler tcp://HOST:PORT``. Each finished
task's JSON result is written at once to ``cache_dir/cells/<key>.json`` on the machine
that submitted the work, so an interrupted run redoes only the tasks that had not
finished, and workers need no shared disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..io.cache import Cache


@dataclass(frozen=True)
class Task:
    """One unit of work: ``func(*args)`` returns a JSON-ready dict; ``key`` names its result."""

    key: str
    func: Callable[..., dict[str, Any]]
    args: tuple


def task_key(*parts: Any) -> str:
    """Hash JSON-ready parts (the inputs that decide a task's result) into a key."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal, unless forced)."""

    def __init__(self, total: int, label: str, *, enabled: bool | None = None):
        self.total, self.label, self.done = total, label, 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def advance(self, n: int = 1) -> None:
        """Count ``n`` finished tasks and redraw."""
        self.done += n
        if self.enabled:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                             f"{self.done}/{self.total}")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def run_tasks(tasks: Sequence[Task], *, workers: int | None = None, scheduler: str | None = None,
              cache_dir: str | Path | None = None, label: str = "fits",
              progress: bool | None = None,
              follow_up: Callable[[Task, dict[str, Any]], list[Task]] | None = None,
              ) -> list[dict[str, Any]]:
    """Run ``tasks`` (cached ones are read back), return their results in task order.

    Parameters
    ----------
    tasks : sequence of Task
        The work; tasks with the same key run once.
    workers : int, optional
        Worker processes of the local cluster (default: the number of cores).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://HOST:PORT``); no local cluster.
    cache_dir : path, optional
        Folder whose ``cells/`` holds finished results; ``None`` caches nothing.
    label : str
        Name shown on the progress bar.
    progress : bool, optional
        Draw the progress bar (default: when stderr is a terminal).
    follow_up : callable, optional
        Called once with each finished (or cached) task and its result; the tasks it
        returns join this run, so work that depends on one result starts as soon as that
        result is in, on the same cluster. Their results follow their parent's in the list.
    """
    cache = Cache(cache_dir) if cache_dir is not None else None
    if scheduler is not None:  # refused even when every task is cached and none would run
        scheduler_address(scheduler)
    results: dict[str, dict[str, Any]] = {}
    children: dict[str, list[Task]] = {}  # follow-ups, listed after the task that made them
    todo: dict[str, Task] = {}
    bar = Progress(0, label, enabled=progress)

    def admit(new: Sequence[Task]) -> list[Task]:
        """Queue ``new``; resolve cached ones (and their follow-ups); return what must run."""
        runnable = []
        for t in new:
            bar.total += 1
            if t.key in todo:  # the same work queued twice runs once
                continue
            if t.key in results:
                bar.advance()
                continue
            hit = cache.read_result(t.key) if cache is not None else None
            if hit is None:
                todo[t.key] = t
                runnable.append(t)
                continue
            results[t.key] = hit
            bar.advance()
            runnable += adopt(t, hit)
        return runnable

    def adopt(task: Task, result: dict[str, Any]) -> list[Task]:
        if follow_up is None or task.key in children:
            return []
        children[task.key] = list(follow_up(task, result))
        return admit(children[task.key])

    first = admit(tasks)
    if first:
        for task, result in _submit(first, workers, scheduler, follow_up is not None, adopt):
            if cache is not None:
                cache.store_result(task.key, result)
            results[task.key] = result
            bar.advance()

    def in_order(ts: Sequence[Task]) -> list[dict[str, Any]]:
        return [r for t in ts for r in [results[t.key], *in_order(children.get(t.key, []))]]

    return in_order(tasks)


#: seconds to wait for a scheduler to answer (a silent server must not hang a run)
CONNECT_TIMEOUT_S = 10


def scheduler_address(address: str) -> str:
    """Return ``tcp://HOST:PORT`` for a scheduler address, or raise SpecError saying why."""
    import re

    text = address.strip()
    m = re.fullmatch(r"(?:tcp://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})", text)
    if m is None or not 0 < int(m.group(2)) < 65536:
        raise SpecError(f"--scheduler {address!r} is not a Dask scheduler address; use "
                        "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    return f"tcp://{m.group(1)}:{m.group(2)}"


def _connect(client_class: Any, address: str) -> Any:
    """Connect to a scheduler within CONNECT_TIMEOUT_S; any failure is one clear error."""
    import socket

    url = scheduler_address(address)
    host, port = url.removeprefix("tcp://").rsplit(":", 1)
    try:  # a quick TCP check first: refused ports and unknown hosts fail in milliseconds
        probe = socket.create_connection((host.strip("[]"), int(port)),
                                         timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise SpecError(f"--scheduler {url}: cannot connect ({exc.strerror or exc}); is the "
                        "scheduler running and reachable?") from None
    head, silent = b"", False
    try:  # a Dask server speaks first: a frame count (8 bytes, little-endian, small)
        while len(head) < 8:
            chunk = probe.recv(8 - len(head))
            if not chunk:
                break
            head += chunk
    except TimeoutError:
        silent = True
    except OSError:
        pass
    finally:
        probe.close()
    if len(head) < 8 or not 0 < int.from_bytes(head, "little") < 1024:
        why = ("the connection was accepted but nothing was sent back: not a Dask scheduler, "
               "or one too busy to answer" if silent and not head else
               "the server closed the connection without a word" if not head else
               "the server answered, but not in Dask's protocol")
        raise SpecError(f"--scheduler {url}: no Dask scheduler answered within "
                        f"{CONNECT_TIMEOUT_S} s ({why})")
    try:
        return client_class(url, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SpecError(f"--scheduler {url}: no Dask scheduler answered within "
                        f"{CONNECT_TIMEOUT_S} s ({type(exc).__name__})") from None


def _submit(first: list[Task], workers: int | None, scheduler: str | None, grows: bool,
            adopt: Callable[[Task, dict[str, Any]], list[Task]]):
    """Yield (task, result) as tasks finish; follow-up tasks are submitted as they appear."""
    import logging

    from distributed import Client, LocalCluster, as_completed

    logging.getLogger("distributed").setLevel(logging.ERROR)
    if scheduler:
        client, cluster = _connect(Client, scheduler), None
    else:
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=n if grows else min(n, len(first)),
                               threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        tasks: dict[Any, Task] = {}

        from ..families.plugins import plugin_files, with_plugins

        plugins = plugin_files()

        def submit(batch: list[Task]) -> list[Any]:
            futures = [client.submit(with_plugins, plugins, t.func, *t.args,
                                     key=f"trialmeta-{t.key}", pure=False) for t in batch]
            tasks.update(zip(futures, batch, strict=True))
            return futures

        queue = as_completed(submit(first))
        for future in queue:
            task = tasks[future]
            result = future.result()
            yield task, result
            for f in submit(adopt(task, result)):
                queue.add(f)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
