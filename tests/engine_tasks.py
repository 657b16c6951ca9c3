"""Top-level task functions for the engine tests (workers import them by name)."""

from __future__ import annotations

import os
from pathlib import Path


def square(x: int, log: str) -> dict:
    """Return x squared and the worker's pid; append a line to ``log`` (counts calls)."""
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"{x}\n")
    return {"x": x, "square": x * x, "pid": os.getpid()}


def calls(log: str) -> list[int]:
    """The arguments the task was called with so far."""
    p = Path(log)
    return [int(v) for v in p.read_text().split()] if p.exists() else []
