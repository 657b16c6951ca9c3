"""Read and write posteriors as ``.npz`` (arrays) + JSON (dims, coords, attributes).

netCDF through h5py costs about 0.25 s to open a posterior with a few hundred variables;
this format reads the same posterior in a few milliseconds and never unpickles anything
(``allow_pickle=False``). The report still ships netCDF files (``fits/*.nc``) for ArviZ
users; this format is only the cache's fast path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az

_META = "__meta__"


def _plain(values: np.ndarray) -> np.ndarray:
    """Object arrays (strings from coordinates) become fixed-width unicode: no pickle."""
    if values.dtype == object:
        return np.asarray([str(v) for v in values.ravel()]).reshape(values.shape)
    return values


def _attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(attrs, default=str))


def write_npz(idata: az.InferenceData, path: Path) -> None:
    """Write ``idata`` to ``path`` (an open-for-writing location; the caller makes it atomic)."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"attrs": _attrs(dict(idata.attrs)), "groups": {}}
    for group in idata.groups():
        ds = idata[group]
        g: dict[str, Any] = {"attrs": _attrs(dict(ds.attrs)), "vars": {}, "coords": {}}
        for name, var in ds.coords.items():
            arrays[f"{group}/c/{name}"] = _plain(var.values)
            g["coords"][name] = list(var.dims)
        for name, var in ds.data_vars.items():
            arrays[f"{group}/v/{name}"] = _plain(var.values)
            g["vars"][name] = list(var.dims)
        meta["groups"][group] = g
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def read_npz(path: Path) -> az.InferenceData:
    """Read a posterior written by :func:`write_npz`."""
    import arviz as az
    import xarray as xr

    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z[_META].tobytes().decode("utf-8"))
        groups = {}
        for group, g in meta["groups"].items():
            coords = {n: (tuple(d), z[f"{group}/c/{n}"]) for n, d in g["coords"].items()}
            data = {n: (tuple(d), z[f"{group}/v/{n}"]) for n, d in g["vars"].items()}
            groups[group] = xr.Dataset(data, coords=coords, attrs=g["attrs"])
    idata = az.InferenceData(**groups)
    idata.attrs.update(meta["attrs"])
    return idata
