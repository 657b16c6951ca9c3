"""File input and output: bounded reads of regular files, atomic writes."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

#: the largest file read as an input that is not the records (claims, results, tables)
MAX_INPUT_BYTES = 200_000_000


def read_regular(path: Path, what: str, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """Return the bytes of a regular file of at most ``max_bytes``.

    Every path the program reads goes through here (or an equivalent check), so a FIFO, a
    device such as ``/dev/zero``, a folder or a huge file is refused at once with a
    one-line ``SpecError`` instead of blocking or filling the memory. The file is opened
    without blocking and checked with ``fstat`` on the open descriptor, so it cannot be
    swapped for a FIFO between the check and the read.

    Parameters
    ----------
    path : Path
        The file.
    what : str
        How the error names it (e.g. "results.json", "published table").
    max_bytes : int
        Refuse larger files.
    """
    from .errors import SpecError

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SpecError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot open the {what} ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, " \
                "device or socket)"
            raise SpecError(f"{path}: the {what} is {kind}; give a regular file")
        if info.st_size > max_bytes:
            raise SpecError(f"{path}: the {what} has {info.st_size:,} bytes, more than the "
                            f"limit of {max_bytes:,}")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise SpecError(f"{path}: the {what} is larger than the limit of "
                                f"{max_bytes:,} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    finally:
        os.close(fd)


def read_regular_text(path: Path, what: str, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """Return a regular file's UTF-8 text (see ``read_regular``); SpecError if not UTF-8."""
    from .errors import SpecError

    try:
        return read_regular(path, what, max_bytes).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: the {what} is not UTF-8 text (byte {exc.start})") from None


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 text atomically (LF line endings)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Serialise to stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file; anything else in its place is removed.

    For cache entries only: a directory, symlink, FIFO or device where a cache file belongs
    (a damaged or tampered cache) is cleared away, so the entry is refitted and rewritten.
    """
    import shutil

    if not os.path.lexists(path):
        return False
    if path.is_symlink() or not path.is_file():
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            pass
        return False
    return True

