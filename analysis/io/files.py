"""File input and output: bounded reads of regular files, atomic writes."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ..errors import SpecError

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
    try:
        return read_regular(path, what, max_bytes).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: the {what} is not UTF-8 text (byte {exc.start})") from None


def read_json_or_none(path: Path, what: str, max_bytes: int = MAX_INPUT_BYTES) -> Any:
    """Return the JSON document in ``path``, or None when there is no such document.

    For files whose absence or damage only means "not ours" (markers, results we may
    replace): a symbolic link, anything but a regular file, a file over ``max_bytes`` or one
    that is not JSON all give None.
    """
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return json.loads(read_regular_text(path, what, max_bytes))
    except (SpecError, ValueError):
        return None


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



#: the file in a --out folder of sweep or calibrate that lists what trialmeta wrote there
OUTPUTS_MARKER = ".trialmeta-outputs"


def _owned_listing(folder: Path) -> dict[str, str] | None:
    """Return {file: sha256} from the folder's outputs marker, or None without a valid one."""
    doc = read_json_or_none(folder / OUTPUTS_MARKER, "outputs marker", 1_000_000)
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict) or doc.get("format") != "trialmeta-outputs":
        return None
    return {str(k): str(v) for k, v in files.items()}


def trialmeta_result(path: Path) -> dict[str, Any] | None:
    """Return a JSON result file's document if its provenance is the one trialmeta writes.

    That is: a mapping with ``provenance`` holding the data's SHA-256 and the package
    versions, trialmeta's among them. Anything else (absent, not JSON, a user's file) is None.
    """
    doc = read_json_or_none(path, "result")
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    ours = (isinstance(prov, dict) and isinstance(prov.get("data_sha256"), str)
            and isinstance(prov.get("versions"), dict) and "trialmeta" in prov["versions"])
    return doc if ours else None


def foreign_outputs(folder: Path, names: list[str], companions: dict[str, str]) -> list[str]:
    """Return the files among ``names`` in ``folder`` that trialmeta may not overwrite.

    A file may be replaced when it is absent, when the folder's outputs marker lists it with
    its current SHA-256 (trialmeta wrote it and nobody changed it), or, for a folder from
    before the marker existed, when it is a JSON result carrying trialmeta's provenance, or
    the companion (``companions[name]``: its JSON) of such a file. Anything else is the
    user's and is never overwritten.
    """
    import hashlib

    listing = _owned_listing(folder)
    out = []
    for name in names:
        path = folder / name
        if not os.path.lexists(path):
            continue
        if path.is_symlink() or not path.is_file():
            out.append(name)
            continue
        if listing is not None and name in listing:
            if hashlib.sha256(path.read_bytes()).hexdigest() == listing[name]:
                continue
            out.append(name)
            continue
        if name.endswith(".json") and trialmeta_result(path) is not None:
            continue
        sibling = companions.get(name)
        if listing is None and sibling and trialmeta_result(folder / sibling) is not None:
            continue
        out.append(name)
    return out


def check_outputs(folder: Path, names: list[str], option: str,
                  companions: dict[str, str] | None = None) -> None:
    """Refuse (SpecError, nothing touched) when writing ``names`` would overwrite user files.

    Called before any work starts and again just before writing.
    """
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise SpecError(f"{option} {folder}: not a folder; choose another {option}")
    if not folder.exists():
        return
    foreign = foreign_outputs(folder, names, companions or {})
    if foreign:
        raise SpecError(f"{option} {folder} holds {', '.join(foreign)}, which trialmeta did "
                        f"not write (or which was changed since); it is never overwritten: "
                        f"choose another {option}, or move the file(s)")


def write_outputs(folder: Path, files: dict[str, str], option: str,
                  companions: dict[str, str] | None = None) -> None:
    """Write text files into ``folder`` atomically and list them in its outputs marker.

    Each file is checked first (``check_outputs``); the marker records the SHA-256 of every
    file written, so a later run may replace exactly those, as long as nobody changed them.
    """
    import hashlib

    check_outputs(folder, list(files), option, companions)
    folder.mkdir(parents=True, exist_ok=True)
    listing = _owned_listing(folder) or {}
    for name, text in files.items():
        write_text_atomic(folder / name, text)
        listing[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    write_text_atomic(folder / OUTPUTS_MARKER, dumps_json(
        {"format": "trialmeta-outputs", "files": dict(sorted(listing.items()))}))


#: significant digits of every float in a JSON result (stable text across platforms)
SIGNIFICANT = 10


def rounded(obj: Any, digits: int = SIGNIFICANT) -> Any:
    """Round every float to ``digits`` significant digits (stable, readable text output)."""
    import numpy as np

    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, np.floating):
        return rounded(float(obj), digits)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [rounded(v, digits) for v in obj]
    return obj
