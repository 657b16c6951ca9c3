"""A helper process that does a report's side work on the core the report leaves idle.

A report runs in one process, and on a cold cache two pieces of its work wait on
nothing the main line needs until the end:

- the claims evaluated on the baseline records (``--baseline-data``), and
- each posterior's netCDF copy for ``fits/`` (converted from the cache's ``.npz``,
  about 0.15 s each, with ArviZ and xarray imported first).

:class:`ReportHelper` runs them in one spawned process while the main line evaluates,
fits the comparisons and draws the figures. Their results are the same as the main
line's would be (the same functions, the same cache), and a netCDF conversion that
failed is redone by :func:`~trialmeta.analysis.io.cache.cached_file`, which checks
every copy it ships. On one core, or without a cache folder, nothing starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from ..io.cache import netcdf_copy
from ..sampling.settings import SamplerSettings


class ReportHelper:
    """One helper process, started on first use.

    Parameters
    ----------
    settings : SamplerSettings
        Its ``cache_dir`` holds the posteriors; without one the helper never starts.
    """

    def __init__(self, settings: SamplerSettings):
        self.folder = Path(settings.cache_dir) if settings.cache_dir else None
        self.enabled = self.folder is not None and (os.cpu_count() or 1) > 1
        self._pool: ProcessPoolExecutor | None = None
        self._copies: dict[str, Future] = {}

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            from ..families.plugins import load_plugins, plugin_files

            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                                             initializer=load_plugins,
                                             initargs=(plugin_files(),))
        return self._pool

    def call(self, func: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        """Start ``func(*args)`` in the helper; return a function that waits for its value.

        Without a helper, the returned function runs ``func`` itself when first called.
        """
        if not self.enabled:
            return lambda: func(*args)
        return self._start().submit(func, *args).result

    def add_posterior(self, idata: Any) -> None:
        """Start converting ``idata``'s cached posterior, unless its netCDF copy exists."""
        key = idata.attrs.get("cache_key") if idata is not None else None
        if not self.enabled or not key or key in self._copies:
            return
        if (self.folder / f"{key}.nc").exists() or not (self.folder / f"{key}.npz").exists():
            return
        self._copies[key] = self._start().submit(netcdf_copy, str(self.folder), key)

    def wait(self) -> None:
        """Wait for the netCDF copies; one that failed is left to ``cached_file``."""
        for future in self._copies.values():
            try:
                future.result()
            except Exception:  # - the report writes the copy itself then
                pass

    def close(self) -> None:
        """Stop the helper process (after the work under way)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
