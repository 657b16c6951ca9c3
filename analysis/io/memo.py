"""Memoise record selections within one process, keyed by the records' content hash.

A sweep or a report selects the same rows for many fits (every cell of a sweep re-runs
the same selections on the same records). ``Records.sha256`` names the records' content
(a changed table gets a new hash, as in :mod:`trialmeta.analysis.pipelines.operating`), so a
selection is a function of that hash and its other arguments. Each call returns a deep
copy, so a caller that edits its selection never edits the stored one.
"""

from __future__ import annotations

import copy
import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
#: selections kept per function (the least recently used is dropped first)
MAX_ENTRIES = 128


def per_records(func: F) -> F:
    """Cache ``func(records, ...)`` by ``records.sha256`` and its other (hashable) arguments.

    Calls with an unhashable argument, and calls that raise, are not cached.
    """
    stored: OrderedDict[tuple, Any] = OrderedDict()

    @functools.wraps(func)
    def cached(records: Any, *args: Any, **kwargs: Any) -> Any:
        key = (records.sha256, args, tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:
            return func(records, *args, **kwargs)
        if key in stored:
            stored.move_to_end(key)
        else:
            stored[key] = func(records, *args, **kwargs)
            if len(stored) > MAX_ENTRIES:
                stored.popitem(last=False)
        return copy.deepcopy(stored[key])

    cached.cache_clear = stored.clear  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]
