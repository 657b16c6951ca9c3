"""The cache: every result trialmeta keeps to avoid computing it again, in one folder.

One object, :class:`Cache`, over the ``--cache`` folder:

- **posteriors** ``KEY.npz`` with their SHA-256 ``KEY.npz.sha256`` (an entry whose draws do not
  match is refitted, and the run says so), the numbers derived from them ``KEY.derived.json``
  (bound to the draws' hash) and, when a report ships one, a netCDF copy ``KEY.nc`` (with its
  own hash);
- **results** of tasks (sweep cells, calibration simulations, a baseline's evaluation) in
  ``cells/KEY.json``, each with the SHA-256 of its content;
- **figures** in ``svg/KEY.svg``, each ending with its SHA-256;
- **markers** ``report-*.complete`` saying a report's fits are all cached.

A key names its inputs (data, settings, package versions), so an unchanged result is read
back and a changed one is computed afresh. The cache only saves time: an entry that cannot be
read, or was changed by hand, is computed again; a full or read-only cache warns once and
the run goes on without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .files import dumps_json, regular_file, write_text_atomic
from .posterior_store import StoredPosterior, read_npz, write_npz


class Cache:
    """The ``--cache`` folder: posteriors, task results, figures and report markers."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def read_posterior(self, key: str) -> StoredPosterior | None:
        """Return the cached posterior ``key``, or None (absent, or not intact: refit)."""
        return _cache_read(self.folder, key)

    def write_posterior(self, key: str, idata: Any) -> None:
        """Store a posterior's draws (and their SHA-256) under ``key``."""
        _cache_write(self.folder, key, idata)

    def read_result(self, key: str) -> dict[str, Any] | None:
        """Return the stored result of task ``key``, or None (absent, or edited)."""
        return read_result(self.folder / "cells", key)

    def store_result(self, key: str, result: dict[str, Any]) -> None:
        """Store a task's JSON-ready result under ``key`` (with its SHA-256)."""
        store_result(self.folder / "cells", key, result)

    def read_figure(self, key: str) -> str | None:
        """Return the cached SVG ``key``, or None (absent, truncated or edited)."""
        return _read_figure(self.folder, key)

    def write_figure(self, key: str, text: str) -> None:
        """Store an SVG under ``key`` (with its SHA-256)."""
        _write_figure(self.folder, key, text)

    def netcdf(self, idata: Any) -> Path | None:
        """Return the netCDF copy of a cached posterior (written on first use), or None."""
        return cached_file(idata, self.folder)

    def marker(self, name: str) -> Path:
        """Return the path of the marker file ``name`` (e.g. a report's fits are all cached)."""
        return self.folder / name


def cached_file(idata: Any, cache_dir: str | Path | None) -> Path | None:
    """Return a netCDF copy of a cached posterior, writing it into the cache on first use.

    The cache itself keeps only ``.npz`` (a sweep never ships netCDF, which costs about
    0.3 s a posterior to write); the report's ``fits/`` folder copies this file.
    """
    key = idata.attrs.get("cache_key")
    if not key or not cache_dir:
        return None
    folder = Path(cache_dir)
    path, stamp = folder / f"{key}.nc", folder / f"{key}.nc.sha256"
    stamped = regular_file(stamp)  # (anything but a file in its place is cleared)
    if regular_file(path) and not (stamped and stamp.read_text().strip() == _digest(path)):
        path.unlink()  # truncated or edited: never copied into a report
    if not path.exists() and (folder / f"{key}.npz").exists():
        _write_atomic(folder, key, ".nc", idata.to_netcdf)
        _write_atomic(folder, key, ".nc.sha256",
                      lambda p: Path(p).write_text(_digest(folder / f"{key}.nc")))
    return path if path.exists() else None


def netcdf_copy(cache_dir: str | Path, key: str) -> Path | None:
    """Write (if needed) and return the netCDF copy of the cached posterior ``key``."""
    idata = _cache_read(Path(cache_dir), key)
    return None if idata is None else cached_file(idata, cache_dir)


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _digest(path: Path) -> str:
    """Return the SHA-256 of a file's bytes (read once per version of the file)."""
    import hashlib

    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _DIGESTS:
        _DIGESTS[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _DIGESTS[key]


#: cache folders a write already failed in (warned once each)
_UNWRITABLE: set[str] = set()


def _write_atomic(folder: Path, key: str, suffix: str, write: Callable[[str], Any]) -> None:
    """Write a cache entry atomically; on a full or read-only disk, warn once and go on.

    The cache only saves time: a fit whose entry cannot be written is still used, and the
    next run refits it.
    """
    import os
    import tempfile

    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=suffix)
        os.close(fd)
        write(tmp)
        os.replace(tmp, folder / f"{key}{suffix}")
    except OSError as exc:
        if str(folder) not in _UNWRITABLE:
            _UNWRITABLE.add(str(folder))
            print(f"trialmeta: warning: cache not written in {folder}: "
                  f"{exc.strerror or exc}; continuing without caching (free space or "
                  "choose another --cache)", file=sys.stderr)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


#: cache folder of every posterior read from or written to a cache in this process
_CACHE_FOLDERS: dict[str, Path] = {}


def _cache_read(folder: Path, key: str) -> StoredPosterior | None:
    """Read a cached posterior; None (and the entry removed) when it cannot be trusted.

    The draws file must match the SHA-256 written beside it (``KEY.npz.sha256``) when it
    was stored: an entry whose draws were edited, replaced or truncated, or that has no
    stamp, is refitted, and the first such entry in a process is reported on stderr.
    """
    path, stamp = folder / f"{key}.npz", folder / f"{key}.npz.sha256"
    if not regular_file(path):
        return None
    try:
        if not regular_file(stamp) or stamp.stat().st_size > 200:
            raise ValueError("no SHA-256 stamp beside the draws")
        if stamp.read_text(encoding="ascii").strip() != _digest(path):
            raise ValueError("its draws do not match the SHA-256 written with them")
        idata = read_npz(path)
        if idata.attrs.get("cache_key") != key:
            raise ValueError("stored key does not match")
    except Exception as exc:  # a corrupt, edited or foreign entry is refitted, never trusted
        _distrusted(folder, key, exc)
        for suffix in (".npz", ".npz.sha256", ".derived.json", ".nc", ".nc.sha256"):
            with contextlib.suppress(OSError):
                (folder / f"{key}{suffix}").unlink(missing_ok=True)
        return None
    _CACHE_FOLDERS[key] = folder
    return idata


#: cache entries found altered in this process (each reported once)
_DISTRUSTED: set[str] = set()


def _distrusted(folder: Path, key: str, why: Exception) -> None:
    """Say (once per entry) that a cached posterior is refitted because it was not intact."""
    if key in _DISTRUSTED:
        return
    _DISTRUSTED.add(key)
    print(f"trialmeta: warning: cache entry {folder / key}.npz is refitted: {why}",
          file=sys.stderr)


def _cache_write(folder: Path, key: str, idata: Any) -> None:  # an InferenceData
    """Store ``idata`` as ``.npz`` (netCDF only when a report ships it: :func:`cached_file`)."""
    folder.mkdir(parents=True, exist_ok=True)
    idata.attrs["cache_key"] = key
    _write_atomic(folder, key, ".npz", lambda p: write_npz(idata, Path(p)))
    if (folder / f"{key}.npz").is_file():  # the stamp last: an entry without it is refitted
        _write_atomic(folder, key, ".npz.sha256",
                      lambda p: Path(p).write_text(_digest(folder / f"{key}.npz"),
                                                   encoding="ascii"))
    _CACHE_FOLDERS[key] = folder


def memoized(idata: Any, kind: str, name: str,
              compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Return ``compute()``, kept next to a cached posterior (``<key>.derived.json``).

    Diagnostics and PSIS-LOO are functions of the draws alone, and the cache key fixes
    the draws (and the ArviZ version): a warm run then needs no ArviZ at all. The side file
    carries the SHA-256 of the draws' file and a check over its numbers; a file that does
    not match (a restored or edited cache) is ignored and the numbers are computed again.
    """
    import json


    key = idata.attrs.get("cache_key")
    folder = _CACHE_FOLDERS.get(key) if key else None
    if folder is None or not regular_file(folder / f"{key}.npz"):
        return compute()
    path = folder / f"{key}.derived.json"
    draws = _digest(folder / f"{key}.npz")
    try:
        if not regular_file(path):
            raise ValueError("no side file")
        memo = json.loads(path.read_text(encoding="utf-8"))
        entries = memo["entries"]
        if memo["draws_sha256"] != draws or memo["check"] != _memo_check(draws, entries):
            raise ValueError("the side file does not describe these draws")
    except (OSError, ValueError, KeyError, TypeError):
        entries = {}  # missing, stale or edited: computed again from the draws
    if name in entries.get(kind, {}):
        return entries[kind][name]
    value = compute()
    entries.setdefault(kind, {})[name] = value
    try:
        write_text_atomic(path, json.dumps({"draws_sha256": draws, "entries": entries,
                                            "check": _memo_check(draws, entries)},
                                           sort_keys=True))
    except OSError:
        pass  # a side file only saves time; the numbers are recomputed next time
    return value


def _memo_check(draws: str, entries: dict[str, Any]) -> str:
    """Bind a side file's numbers to the draws they were computed from."""
    import hashlib
    import json

    return hashlib.sha256((draws + json.dumps(entries, sort_keys=True)).encode()).hexdigest()


def read_result(folder: Path | None, key: str) -> dict[str, Any] | None:
    """Return the result stored under ``key`` in ``folder`` (None if absent or not it)."""
    if folder is None:
        return None
    path = folder / f"{key}.json"
    try:
        if not regular_file(path):
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (isinstance(doc, dict) and doc.get("key") == key
          and doc.get("sha256") == _result_digest(doc.get("result")))
    if not ok:  # edited, truncated or foreign: recomputed, and said (once a process)
        if not _DISTRUSTED_RESULTS:
            print(f"trialmeta: warning: cached result {path} does not match its SHA-256 "
                  "(edited, or from an older trialmeta); recomputing it and any others",
                  file=sys.stderr)
        _DISTRUSTED_RESULTS.append(str(path))
        return None
    return doc["result"]


#: cached results found altered in this process
_DISTRUSTED_RESULTS: list[str] = []


def _result_digest(result: Any) -> str:
    """SHA-256 of a result's canonical JSON (binds a stored result to its text)."""
    return hashlib.sha256(json.dumps(result, sort_keys=True, allow_nan=True)
                          .encode("utf-8")).hexdigest()


def store_result(folder: Path, key: str, result: dict[str, Any]) -> None:
    """Store a JSON-ready result under ``key`` (atomically; :func:`read_result` reads it)."""
    write_text_atomic(folder / f"{key}.json", dumps_json(
        {"key": key, "result": result, "sha256": _result_digest(result)}))


def _read_figure(folder: Path, key: str) -> str | None:
    """Return a cached SVG, or None (absent, truncated or edited: it is drawn again)."""
    path = folder / "svg" / f"{key}.svg"
    if not regular_file(path):
        return None
    cached = path.read_text(encoding="utf-8", errors="replace")
    body, _, stamp = cached.rpartition("\n<!-- sha256 ")
    if stamp.strip().removesuffix("-->").strip() == hashlib.sha256(body.encode()).hexdigest():
        return body  # whole, as written
    return None


def _write_figure(folder: Path, key: str, text: str) -> None:
    """Store an SVG with its SHA-256 (a full or read-only cache: it is drawn again next time)."""
    path = folder / "svg" / f"{key}.svg"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".svg-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{text}\n<!-- sha256 {hashlib.sha256(text.encode()).hexdigest()} -->")
        os.replace(tmp, path)
    except OSError:
        pass  # a figure cache only saves time
