"""The report's output folder: what `report --out` may replace, and how it is swapped in.

A report folder carries a marker file, ``.trialmeta-report``, listing every file the
report wrote. An existing ``--out`` is replaced only when it is empty or holds nothing but
what that list names; anything else is a foreign folder and is never deleted. The new
report is written beside ``--out`` and exchanged with the old one in one atomic step
(``renameat2(RENAME_EXCHANGE)`` on Linux), so a reader always finds a whole report. Where
the exchange is not available two renames are used; a run killed between them is finished
by the next run, which says so.

Only folders this program made are ever removed. Every report carries a random token in its
marker, and the staging folder a run writes into is named after that token
(``.OUT.new-TOKEN``); a backup of the report being replaced is named after the old report's
token (``.OUT.old-TOKEN``). A leftover folder beside ``--out`` is removed only when its marker
carries the token its name ends with and it holds nothing but report files; anything else is
left where it is and named.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from ..io.files import read_json_or_none, trialmeta_result

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


def new_token() -> str:
    """Return a fresh random token naming one run's staging folder and marker."""
    return secrets.token_hex(8)


def marker_text(files: Iterable[str], token: str | None = None, *,
                complete: bool = True) -> str:
    """Return the marker's content: format version, the run's token and the files written.

    Parameters
    ----------
    files : iterable of str
        The files the report wrote, relative to its folder.
    token : str, optional
        The random token of the run that wrote the report (its staging folder's name ends
        with it). Reports from before tokens existed have none.
    complete : bool
        False for the marker a staging folder gets when it is created, before any file.
    """
    doc: dict[str, object] = {"format": "trialmeta-report", "version": FORMAT_VERSION,
                              "files": sorted(files)}
    if token is not None:
        doc["token"] = token
    if not complete:
        doc["state"] = "staging"
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


def _marker(folder: Path) -> dict | None:
    """Return the folder's marker document, or None when there is no valid marker."""
    doc = read_json_or_none(folder / MARKER, "report marker", 10_000_000)
    if not isinstance(doc, dict) or doc.get("format") != "trialmeta-report":
        return None
    files = doc.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    token = doc.get("token")
    if token is not None and not (isinstance(token, str) and re.fullmatch(r"[0-9a-f]{16}", token)):
        return None
    return doc


def _listed_files(folder: Path) -> set[str] | None:
    """Return the files a complete report's marker lists, or None without such a marker."""
    doc = _marker(folder)
    if doc is None or doc.get("state") == "staging":
        return None
    return set(doc["files"]) | {MARKER}


def _token(folder: Path) -> str | None:
    """Return the token in the folder's marker (None: no marker, or one without a token)."""
    doc = _marker(folder)
    return None if doc is None else doc.get("token")


def _written_by_trialmeta(results: Path) -> bool:
    """Whether ``results.json`` is a report's: trialmeta's provenance and a list of claims."""
    doc = trialmeta_result(results)
    return doc is not None and isinstance(doc.get("claims"), list)


def _is_legacy_report(folder: Path, files: set[str], dirs: set[str]) -> bool:
    """Whether an unmarked folder is exactly a report from before the marker existed.

    The layout alone is not enough (a user's folder may hold an ``index.html`` and a
    ``tables/x.csv``): its ``results.json`` must carry the provenance this program writes.
    """
    return (LEGACY_TOP <= files and MARKER not in files
            and _only_report_files(files, dirs, partial=False)
            and _written_by_trialmeta(folder / "results.json"))


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
        if _is_legacy_report(folder, files, dirs):
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
    """Folders beside ``out`` named like the staging and backup folders of a report run."""
    if not out.parent.is_dir():
        return []
    names = (f".{out.name}.new-", f".{out.name}.old-")
    return sorted(p for p in out.parent.iterdir()
                  if p.name.startswith(names) and p.is_dir() and not p.is_symlink())


def _made_by_us(folder: Path) -> bool:
    """Whether a leftover folder is one a report run made and may remove.

    Its marker must carry the token its name ends with (``.OUT.new-TOKEN`` or
    ``.OUT.old-TOKEN``), and it must hold nothing but report files (and, for a staging
    folder, half-written ones). A folder that merely looks like a report is not enough.
    """
    token = _token(folder)
    if token is None or not folder.name.endswith(f"-{token}"):
        return False
    files, dirs, links = _tree(folder)
    if links:
        return False
    listed = _listed_files(folder)
    if listed is not None:
        return not foreign_entries(folder)
    return _only_report_files(files, dirs)


def recover(out: Path) -> list[str]:
    """Finish or clean up a swap that a killed run left half done; return what was done.

    Call it holding ``writer_lock(out)``, so that a running report's staging folder is
    never taken for a leftover. If ``out`` is missing and a complete report this program
    made waits beside it, that report is moved into place: a finished new report before a
    backed-up old one. Leftover folders this program made are then removed; any other
    folder named like one is left where it is, and named.
    """
    notes: list[str] = []
    found = _leftovers(out)
    ours = [p for p in found if _made_by_us(p)]
    strangers = [p for p in found if p not in ours]
    if not out.exists() and not out.is_symlink():
        complete = [p for p in ours if _listed_files(p) is not None]
        complete.sort(key=lambda p: (".new-" not in p.name, -p.stat().st_mtime))
        if complete:
            complete[0].rename(out)
            ours.remove(complete[0])
            notes.append(f"finished an interrupted report swap: restored {out} "
                         f"from {complete[0].name}")
    for p in ours:
        shutil.rmtree(p, ignore_errors=True)
    if ours:
        notes.append(f"removed {len(ours)} leftover folder(s) of an interrupted report beside "
                     f"{out}: {', '.join(p.name for p in ours)}")
    if strangers:
        notes.append(f"left {len(strangers)} folder(s) beside {out} that look like a report's "
                     "leftovers but were not made by trialmeta (no marker with their token): "
                     f"{', '.join(p.name for p in strangers)}")
    return notes


def staging_folder(out: Path) -> tuple[Path, str]:
    """Create the folder a new report is written into, beside ``out``; return it and its token.

    The folder is ``.OUT.new-TOKEN`` and holds a staging marker with the same token from the
    start, so a run killed while writing leaves a folder the next run can recognise as its
    own and remove.
    """
    from ..io.files import write_text_atomic

    for _ in range(100):
        token = new_token()
        staging = out.parent / f".{out.name}.new-{token}"
        try:
            staging.mkdir(mode=0o755)
        except FileExistsError:
            continue
        staging.chmod(0o755)
        write_text_atomic(staging / MARKER, marker_text([], token, complete=False))
        return staging, token
    raise SpecError(f"--out {out}: cannot create a staging folder beside it")


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
    old_token = _token(out)
    if exchange(staging, out):
        # ``staging`` now holds the old report; named after its own token it is a leftover
        # the next run recognises, should this run be killed before removing it
        old = staging
        if old_token is not None:
            old = out.parent / f".{out.name}.old-{old_token}"
            if not old.exists():
                staging.rename(old)
            else:
                old = staging
        shutil.rmtree(old, ignore_errors=True)
        return
    if old_token is not None and not (out.parent / f".{out.name}.old-{old_token}").exists():
        backup = out.parent / f".{out.name}.old-{old_token}"
    else:  # a report without a token: its backup is named, not removed, by a later run
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
    check_writable(out.parent, "--out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise SpecError(f"--out {out}: cannot create or open its folder {out.parent} "
                        f"({exc.strerror})") from None
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


@contextlib.contextmanager
def claimed_output(out: Path, *, force: bool = False,
                   protected: dict[str, Path | None] | None = None, cache: Path | None = None,
                   say: Callable[[str], None] | None = None,
                   wait_s: float | None = None) -> Iterator[OutputPlan]:
    """Lock ``out``, then check it and clean up what an interrupted run of ours left.

    The lock is taken before anything beside ``out`` is looked at or removed, so a second
    report into the same folder waits for the first and never mistakes its live staging
    folder for a leftover. With ``--force`` the subfolder's own parent is locked as well.

    Yields
    ------
    OutputPlan
        Where the report goes, with the notes of what was found and done.
    """
    with writer_lock(out, wait_s=wait_s, say=say):
        plan = plan_output(out, force=force, protected=protected, cache=cache)
        if plan.target.parent == Path(os.path.abspath(out)).parent:
            yield plan
            return
        with writer_lock(plan.target, wait_s=wait_s, say=say):
            notes = recover(plan.target)
            yield OutputPlan(target=plan.target, notes=(*plan.notes, *notes))
