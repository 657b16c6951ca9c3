"""Read and write posteriors as ``.npz`` (arrays) + JSON (dims, coords, attributes).

netCDF through h5py costs about 0.25 s to open a posterior with a few hundred variables;
this format reads the same posterior in a few milliseconds and never unpickles anything
(``allow_pickle=False``). The report still ships netCDF files (``fits/*.nc``) for ArviZ
users; this format is only the cache's fast path.

A posterior read back is a :class:`StoredPosterior`: the part of ArviZ's
``InferenceData`` interface trialmeta uses (groups, ``[name].values``, dims, coords,
``sizes``, ``attrs``), over plain arrays, so a warm run imports neither ArviZ nor xarray
(about 1.3 s); :meth:`StoredPosterior.to_arviz` gives the real thing when needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass
class StoredVar:
    """One variable: values with named dimensions (``.values``, ``.dims``, ``.coords``)."""

    values: np.ndarray
    dims: tuple[str, ...]
    coords: dict[str, StoredVar]

    def sum(self) -> Any:  # a NumPy scalar, as xarray gives
        """Sum over every element."""
        return self.values.sum()


class StoredGroup:
    """One group (posterior, sample_stats, ...): variables by name, coordinates, sizes."""

    def __init__(self, data: dict[str, StoredVar], coords: dict[str, StoredVar],
                 attrs: dict[str, Any]):
        self.data_vars, self.coords, self.attrs = data, coords, attrs
        self.sizes = {d: n for v in data.values() for d, n in zip(v.dims, v.values.shape,
                                                                    strict=True)}
        self.dims = self.sizes

    def __contains__(self, name: object) -> bool:
        return name in self.data_vars

    def __iter__(self):
        return iter(self.data_vars)

    def __getitem__(self, name: str | list[str]) -> StoredVar | StoredGroup:
        if isinstance(name, list):
            return StoredGroup({n: self.data_vars[n] for n in name}, self.coords, self.attrs)
        return self.data_vars[name]


class StoredPosterior:
    """A cached posterior: ``idata.posterior["mu"].values`` etc. without ArviZ."""

    def __init__(self, groups: dict[str, StoredGroup], attrs: dict[str, Any], path: Path):
        self._groups, self.attrs, self.path = groups, attrs, path

    def groups(self) -> list[str]:
        """Names of the groups, as ``InferenceData.groups()``."""
        return list(self._groups)

    def __contains__(self, group: object) -> bool:
        return group in self._groups

    def __getitem__(self, group: str) -> StoredGroup:
        return self._groups[group]

    def __getattr__(self, group: str) -> StoredGroup:
        groups = self.__dict__.get("_groups", {})
        if group in groups:
            return groups[group]
        raise AttributeError(group)

    def to_arviz(self) -> az.InferenceData:
        """Return the same posterior as an ArviZ ``InferenceData``."""
        import arviz as az
        import xarray as xr

        datasets = {}
        for name, g in self._groups.items():
            coords = {n: (c.dims, c.values) for n, c in g.coords.items()}
            data = {n: (v.dims, v.values) for n, v in g.data_vars.items()}
            datasets[name] = xr.Dataset(data, coords=coords, attrs=g.attrs)
        idata = az.InferenceData(**datasets)
        idata.attrs.update(self.attrs)
        return idata

    def to_netcdf(self, path: str) -> None:
        """Write as netCDF (through ArviZ)."""
        self.to_arviz().to_netcdf(path)


def as_arviz(idata: Any) -> az.InferenceData:
    """Return ``idata`` as ArviZ ``InferenceData`` (converting a stored posterior)."""
    return idata.to_arviz() if isinstance(idata, StoredPosterior) else idata


def read_npz(path: Path) -> StoredPosterior:
    """Read a posterior written by :func:`write_npz`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z[_META].tobytes().decode("utf-8"))
        groups = {}
        for group, g in meta["groups"].items():
            coords = {n: StoredVar(z[f"{group}/c/{n}"], tuple(d), {})
                      for n, d in g["coords"].items()}
            data = {}
            for n, d in g["vars"].items():
                data[n] = StoredVar(z[f"{group}/v/{n}"], tuple(d),
                                    {c: coords[c] for c in d if c in coords})
            groups[group] = StoredGroup(data, coords, g["attrs"])
    return StoredPosterior(groups, dict(meta["attrs"]), Path(path))


def draws_as_posterior(params: dict[str, np.ndarray], label: str = "prior") -> StoredPosterior:
    """Wrap plain draws (draws first) as a one-chain posterior that ``flat`` can read.

    Used to push prior draws through the same derived-quantity code as the posterior.
    """
    data = {}
    for name, values in params.items():
        v = np.asarray(values)[None, ...]
        dims = ("chain", "draw", *(f"{name}_dim_{i}" for i in range(v.ndim - 2)))
        data[name] = StoredVar(v, dims, {})
    return StoredPosterior({"posterior": StoredGroup(data, {}, {})}, {"source": label},
                           Path(label))
