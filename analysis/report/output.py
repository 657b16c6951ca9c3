"""The report's output folder: what `report --out` may replace, and how it is swapped in.

A report folder carries a marker file, ``.trialmeta-report``, listing every file the
report wrote. An existing ``--out`` is replaced only when it is empty or holds nothing but
what that list names; anything else is a foreign folder and is never deleted. The new
report is written beside ``--out`` and exchanged with the old one in one atomic step
(``renameat2(RENAME_EXCHANGE)`` on Linux), so a reader always finds a whole report. Where
the exchange is not available two renames are used; a run killed between them is finished
by the next run, which says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError

MARKER = ".trialmeta-report"
FORMAT_VERSION = 1
FORCE_FOLDER = "trialmeta-report"
# what reports written before the marker existed contain (recognised, so they can be replaced)
LEGACY_TOP = {"index.html", "report.md", "results.json"}
LEGACY_DIRS = {"tables": ".csv", "fits": ".nc"}


@dataclass(frozen=True)
class OutputPlan:
    """Where the report goes, decided before any fitting starts.

    Attributes
    ----------
    target : Path
        The folder the report will occupy (``--out``, or a new subfolder with ``--force``).
    notes : tuple of str
        What was found and done on the way (recovered swaps, removed leftovers, --force).
    """

    target: Path
    notes: tuple[str, ...] = ()


def marker_text(files: Iterable[str]) -> str:
    """Return the marker's content: the format version and the files the report wrote."""
    doc = {"format": "trialmeta-report", "version": FORMAT_VERSION, "files": sorted(files)}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _tree(folder: Path) -> tuple[set[str], set[str], set[str]]:
    """Return the relative paths of the files, folders and symbolic links below ``folder``.

    A link is listed among the files or folders too, and never followed.
    """
    files: set[str] = set()
    dirs: set[str] = set()
    links: set[str] = set()
    for root, dirnames, filenames in os.walk(folder):
        rel = Path(root).relative_to(folder)
        dirs.update(str(rel / d) for d in dirnames)
        files.update(str(rel / f) for f in filenames)
        links.update(str(rel / n) for n in (*dirnames, *filenames)
                     if os.path.islink(os.path.join(root, n)))
    return files, dirs, links


def _listed_files(folder: Path) -> set[str] | None:
    """Return the files the marker lists, or None when there is no readable marker."""
    marker = folder / MARKER
    if not marker.is_file() or marker.is_symlink():
        return None
    try:
        doc = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != "trialmeta-report":
        return None
    files = doc.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files) | {MARKER}


def _is_legacy_report(files: set[str], dirs: set[str]) -> bool:
    """Whether an unmarked folder is exactly a report from before the marker existed."""
    return LEGACY_TOP <= files and MARKER not in files and _only_report_files(
        files, dirs, partial=False)


def foreign_entries(folder: Path) -> list[str]:
    """Return what in ``folder`` a report did not write (empty: the folder may be replaced).

    Parameters
    ----------
    folder : Path
        An existing folder.

    Returns
    -------
    list of str
        Relative paths of foreign files and folders, sorted; ``[]`` for an empty folder, a
        marked report holding only its listed files, or an unmarked report of the old layout.
    """
    files, dirs, links = _tree(folder)
    if not files and not dirs:
        return []
    listed = _listed_files(folder)
    if listed is None:
        if _is_legacy_report(files, dirs):
            return []
        return sorted(files | {d for d in dirs if not any(f.startswith(d + "/") for f in files)})
    parents = {str(p) for f in listed for p in Path(f).parents if str(p) != "."}
    return sorted((files - listed) | (dirs - parents) | links)


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both resolved)."""
    return path == folder or folder in path.parents


def _nearest_existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def check_writable(folder: Path, what: str) -> None:
    """Fail now, not after the fitting, if ``folder`` cannot be created and written to."""
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise SpecError(f"{what} {folder}: {base} is not a folder; choose another {what}")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".trialmeta-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SpecError(f"{what} {folder}: cannot write in {base} ({exc.strerror})") from None


def _leftovers(out: Path) -> list[Path]:
    """Staging and backup folders an interrupted run left beside ``out``."""
    if not out.parent.is_dir():
        return []
    names = (f".{out.name}.new-", f".{out.name}.old-")
    return sorted(p for p in out.parent.iterdir()
                  if p.name.startswith(names) and p.is_dir() and not p.is_symlink())


def recover(out: Path) -> list[str]:
    """Finish or clean up a swap that a killed run left half done; return what was done.

    If ``out`` is missing and a complete report (one with its marker) waits beside it, that
    report is moved into place: a finished new report before a backed-up old one. Leftover
    folders that hold nothing but report files are then removed; anything else is left.
    """
    notes: list[str] = []
    leftovers = _leftovers(out)
    if not out.exists() and not out.is_symlink():
        complete = [p for p in leftovers if _listed_files(p) is not None and not foreign_entries(p)]
        complete.sort(key=lambda p: (".new-" not in p.name, -p.stat().st_mtime))
        if complete:
            complete[0].rename(out)
            leftovers.remove(complete[0])
            notes.append(f"finished an interrupted report swap: restored {out} "
                         f"from {complete[0].name}")
    removed = 0
    for p in leftovers:
        files, dirs, _ = _tree(p)
        if not foreign_entries(p) or _only_report_files(files, dirs):
            shutil.rmtree(p, ignore_errors=True)
            removed += 1
    if removed:
        notes.append(f"removed {removed} leftover folder(s) of an interrupted report beside {out}")
    return notes


def _only_report_files(files: set[str], dirs: set[str], *, partial: bool = True) -> bool:
    """Whether a folder holds nothing but report files (``partial``: or half-written ones)."""
    if not dirs <= set(LEGACY_DIRS):
        return False
    for f in files:
        parent, _, name = f.rpartition("/")
        if partial and name.startswith(".") and name.endswith(".tmp"):
            continue
        if f in LEGACY_TOP or f == MARKER:
            continue
        if parent in LEGACY_DIRS and name.endswith(LEGACY_DIRS[parent]):
            continue
        return False
    return True


def plan_output(out: Path, *, force: bool = False, protected: dict[str, Path | None] | None = None,
                cache: Path | None = None) -> OutputPlan:
    """Decide where the report goes; refuse anything that could lose a file.

    Parameters
    ----------
    out : Path
        The ``--out`` folder.
    force : bool
        Write into a new subfolder of ``out`` instead of refusing a foreign folder.
    protected : dict
        Input files by description (records, claims, sweep, calibration) that ``out`` must
        not equal or contain.
    cache : Path, optional
        The posterior cache folder; checked likewise, and checked writable.

    Returns
    -------
    OutputPlan

    Raises
    ------
    SpecError
        One line naming the folder and what to do; nothing has been touched.
    """
    if out.is_symlink():
        raise SpecError(f"--out {out} is a symbolic link; give the folder itself")
    target = Path(os.path.abspath(out))
    resolved = out.resolve()
    if resolved.exists() and not resolved.is_dir():
        raise SpecError(f"--out {out} is a file, not a folder; choose another --out")
    if _inside(Path.cwd().resolve(), resolved):
        raise SpecError(f"--out {out} is or contains the current folder; choose a new folder "
                        "for the report, e.g. --out reports")
    for what, path in {**(protected or {}), "cache": cache}.items():
        if path is not None and _inside(Path(path).resolve(), resolved):
            raise SpecError(f"--out {out} contains the {what} ({path}); choose another --out")
    check_writable(target.parent, "--out")
    if cache is not None:
        check_writable(Path(cache), "--cache")
    notes = recover(target)
    if target.is_dir():
        foreign = foreign_entries(target)
        if foreign:
            if not force:
                shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                raise SpecError(f"--out {out} holds files a report did not write ({shown}); "
                                "choose another --out, or add --force to write the report "
                                f"into a new subfolder {out}/{FORCE_FOLDER}")
            target = _free_subfolder(target)
            notes += recover(target)
            notes.append(f"--force: {out} holds other files, so the report goes to {target}")
    return OutputPlan(target=target, notes=tuple(notes))


def _free_subfolder(folder: Path) -> Path:
    """Return the first ``trialmeta-report[-N]`` subfolder, absent or a replaceable report."""
    for i in range(1, 1000):
        candidate = folder / (FORCE_FOLDER if i == 1 else f"{FORCE_FOLDER}-{i}")
        if candidate.is_symlink() or (candidate.exists() and not candidate.is_dir()):
            continue
        if not candidate.exists() or not foreign_entries(candidate):
            return candidate
    raise SpecError(f"--force: no free report subfolder in {folder}")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where that is not supported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def swap_in(staging: Path, out: Path, *,
            exchange: Callable[[Path, Path], bool] = _exchange) -> None:
    """Put the finished report ``staging`` at ``out``, keeping a whole report readable.

    ``out`` must be absent or a replaceable report (``plan_output`` checked it); it is
    checked again here in case something was added while the fits ran.
    """
    if not out.exists() and not out.is_symlink():
        staging.rename(out)
        return
    if out.is_symlink() or not out.is_dir():
        raise SpecError(f"--out {out} is not a folder; the new report is left in {staging}")
    foreign = foreign_entries(out)
    if foreign:
        raise SpecError(f"--out {out} gained files a report did not write while the report "
                        f"ran ({', '.join(foreign[:3])}); the new report is left in {staging}")
    if exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # it now holds the old report
        return
    backup = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    backup.rmdir()
    out.rename(backup)
    staging.rename(out)  # a kill before this line is finished by recover() on the next run
    shutil.rmtree(backup, ignore_errors=True)


#: how long a second report into the same --out waits for the first to finish (seconds)
LOCK_WAIT_S = 600.0


@contextlib.contextmanager
def writer_lock(out: Path, wait_s: float | None = None,
                say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock of ``out``'s parent folder while a report runs into ``out``.

    The lock is ``flock`` on the parent folder itself, so nothing is written outside
    ``out``; a second report into the same folder (or a sibling) waits for the first (and
    says so), up to ``wait_s``, then gives up with SpecError.
    """
    import fcntl
    import time

    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    out = Path(os.path.abspath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SpecError(f"another trialmeta report is still writing {out} after "
                                    f"{wait_s:g} s; try again when it has finished") from None
                if not told and say is not None:
                    say(f"another trialmeta report is writing {out}; waiting for it")
                    told = True
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock
