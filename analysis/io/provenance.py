"""Provenance: what produced a result (package versions, the command line).

Every result file carries these beside the data's hash and the seed, so a number can be traced
to the code and inputs that made it.
"""

from __future__ import annotations

import functools
import platform
import sys
from importlib import metadata

#: the packages a result depends on (their versions are recorded in every result)
PACKAGES = ("trialmeta", "pymc", "pytensor", "arviz", "numpy", "scipy", "pandas")


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a result depends on."""
    return dict(_package_versions())


@functools.cache
def _package_versions() -> dict[str, str]:
    """Read once per process: importlib.metadata parses each package's METADATA file."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def command_line() -> str:
    """Return the command that produced a result (program name without its path)."""
    argv = list(sys.argv)
    if argv:
        argv[0] = argv[0].rsplit("/", 1)[-1]
    return " ".join(argv)
