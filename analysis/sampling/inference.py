"""The one place that calls PyMC and ArviZ to sample and to diagnose.

Keeping these calls here means a move to PyMC 6 / ArviZ 1.x touches one module.
Intervals are equal-tailed with probability :data:`CI_PROB` unless asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.provenance import package_versions
from .settings import SamplerSettings

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

    from ..io.posterior_store import StoredPosterior
    from .precompiled import PrecompiledModel

CI_PROB = 0.95
R_HAT_MAX = 1.01
ESS_BULK_MIN = 400


@dataclass
class Diagnostics:
    """Convergence gate: R-hat, bulk ESS and divergences, with advice on failure."""

    r_hat_max: float
    ess_bulk_min: float
    divergences: int
    passed: bool
    messages: list[str] = field(default_factory=list)
    #: the parameters the gate checked (every parameter a claim can be judged on)
    checked: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the diagnostics as a JSON-ready dict."""
        def finite(x: float, digits: int) -> float | None:
            return round(x, digits) if np.isfinite(x) else None

        return {"r_hat_max": finite(self.r_hat_max, 4),
                "ess_bulk_min": finite(self.ess_bulk_min, 1),
                "divergences": self.divergences, "passed": self.passed,
                "messages": list(self.messages), "checked": list(self.checked)}


def cache_key(token: str, settings: SamplerSettings) -> str:
    """Hash of what determines a posterior: the model's inputs, the settings, the versions."""
    versions = package_versions()
    text = "\n".join([token, repr(sorted(settings.as_dict().items())),
                      repr(sorted(versions.items()))])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class LazyModel:
    """A PyMC model built on first use: not at all when the posterior comes from the cache.

    A warm report then never imports PyMC and PyTensor (about 2.5 s here). A family with a
    precompiled twin (:mod:`trialmeta.analysis.sampling.precompiled`) passes its builder too; the
    default sampler then never builds the PyMC model at all.
    """

    def __init__(self, build: Callable[[], pm.Model],
                 precompiled: Callable[[], PrecompiledModel] | None = None):
        self._build = build
        self.built: pm.Model | None = None
        self.precompiled = precompiled

    def get(self) -> pm.Model:
        """Return the model, building it the first time."""
        if self.built is None:
            self.built = self._build()
        return self.built


def _uses_precompiled(model: pm.Model | LazyModel, settings: SamplerSettings) -> bool:
    return (settings.sampler == "nutpie" and isinstance(model, LazyModel)
            and model.precompiled is not None)


def sample(model: pm.Model | LazyModel, settings: SamplerSettings, *, progress: bool = False,
           token: str | None = None) -> az.InferenceData:
    """Draw posterior samples with NUTS (``settings.sampler``), chains seeded.

    With ``settings.cache_dir`` and a ``token`` describing the model's inputs, a posterior
    computed before for the same inputs, settings and package versions is read back
    instead of resampled; an entry that cannot be read or whose stored key does not
    match is ignored and refitted.
    """
    import logging

    precompiled = _uses_precompiled(model, settings)
    if precompiled and token:
        from .precompiled import ENGINE

        token = f"{token}|{ENGINE}"
    key = cache_key(token, settings) if (token and settings.cache_dir) else None
    if key:
        cached = _cache_read(Path(settings.cache_dir), key)
        if cached is not None:
            return cached
    if precompiled:
        from .precompiled import run as run_precompiled

        idata = run_precompiled(model.precompiled(), settings, progress=progress)
    else:
        from .samplers import run

        logging.getLogger("pymc").setLevel(logging.ERROR)
        idata = run(model.get() if isinstance(model, LazyModel) else model, settings,
                    progress=progress)
    post = idata.posterior.sizes
    if post["chain"] < settings.chains or post["draw"] < settings.draws:
        # PyMC stops quietly on Ctrl-C and returns a partial trace: never use it
        raise KeyboardInterrupt("sampling was interrupted")
    retry = settings.retry_target_accept
    if retry and retry > settings.target_accept and int(idata.sample_stats["diverging"].sum()):
        n_div = int(idata.sample_stats["diverging"].sum())
        idata = sample(model, replace(settings, target_accept=retry, retry_target_accept=None),
                       progress=progress, token=None)
        idata.attrs["refit_note"] = (f"{n_div} divergence(s) at target_accept "
                                     f"{settings.target_accept}; refitted at {retry}")
    if key:
        _cache_write(Path(settings.cache_dir), key, idata)
    return idata


def cached_file(idata: Any, settings: SamplerSettings) -> Path | None:
    """Return a netCDF copy of a cached posterior, writing it into the cache on first use.

    The cache itself keeps only ``.npz`` (a sweep never ships netCDF, which costs about
    0.3 s a posterior to write); the report's ``fits/`` folder copies this file.
    """
    key = idata.attrs.get("cache_key")
    if not key or not settings.cache_dir:
        return None
    from ..io.files import regular_file

    folder = Path(settings.cache_dir)
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
    return None if idata is None else cached_file(idata, SamplerSettings(cache_dir=str(cache_dir)))


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
    from ..io.files import regular_file
    from ..io.posterior_store import read_npz

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


def _cache_write(folder: Path, key: str, idata: az.InferenceData) -> None:
    """Store ``idata`` as ``.npz`` (netCDF only when a report ships it: :func:`cached_file`)."""
    from ..io.posterior_store import write_npz

    folder.mkdir(parents=True, exist_ok=True)
    idata.attrs["cache_key"] = key
    _write_atomic(folder, key, ".npz", lambda p: write_npz(idata, Path(p)))
    if (folder / f"{key}.npz").is_file():  # the stamp last: an entry without it is refitted
        _write_atomic(folder, key, ".npz.sha256",
                      lambda p: Path(p).write_text(_digest(folder / f"{key}.npz"),
                                                   encoding="ascii"))
    _CACHE_FOLDERS[key] = folder


def _memoized(idata: Any, kind: str, name: str,
              compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Return ``compute()``, kept next to a cached posterior (``<key>.derived.json``).

    Diagnostics and PSIS-LOO are functions of the draws alone, and the cache key fixes
    the draws (and the ArviZ version): a warm run then needs no ArviZ at all. The side file
    carries the SHA-256 of the draws' file and a check over its numbers; a file that does
    not match (a restored or edited cache) is ignored and the numbers are computed again.
    """
    import json

    from ..io.files import regular_file, write_text_atomic

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


def _convergence(idata: Any, var_names: list[str]) -> dict[str, Any]:
    """Largest rank-normalised R-hat, smallest bulk ESS (every element of every variable)."""
    from ..stats.mcmc_diagnostics import rank_diagnostics

    r_values, e_values = [], []
    for name in var_names:
        values = np.asarray(idata.posterior[name].values, dtype=float)
        chains = values.reshape(values.shape[0], values.shape[1], -1)
        for j in range(chains.shape[2]):
            r_hat, ess = rank_diagnostics(chains[:, :, j])
            r_values.append(r_hat)
            e_values.append(ess)
    r = np.asarray(r_values, dtype=float)
    r_hat_max = None if r.size == 0 or np.isnan(r).all() else float(np.nanmax(r))
    ess_min = float(np.nanmin(e_values)) if e_values and not np.isnan(e_values).all() \
        else float("nan")
    div = int(idata.sample_stats["diverging"].values.sum()) if "sample_stats" in idata else 0
    return {"r_hat_max": r_hat_max, "ess_bulk_min": ess_min if np.isfinite(ess_min) else None,
            "divergences": div}


def diagnose(idata: az.InferenceData, var_names: list[str]) -> Diagnostics:
    """Check R-hat, bulk ESS and divergences of ``var_names`` against the gate."""
    found = _memoized(idata, "diagnose", ",".join(var_names),
                      lambda: _convergence(idata, var_names))
    r_hat_max = float("nan") if found["r_hat_max"] is None else found["r_hat_max"]
    ess_min = float("nan") if found["ess_bulk_min"] is None else found["ess_bulk_min"]
    div = found["divergences"]
    msgs = []
    if div:
        msgs.append(f"{div} divergent transition(s): raise target_accept, tighten the prior on "
                    "tau, or check the data for a study that fits badly")
    if np.isnan(r_hat_max):
        msgs.append("R-hat cannot be computed (one chain?); run at least 2 chains")
    elif not r_hat_max <= R_HAT_MAX:
        msgs.append(f"R-hat {r_hat_max:.3f} > {R_HAT_MAX}: chains disagree; draw more "
                    "(--draws) or simplify the model")
    if not ess_min >= ESS_BULK_MIN:
        msgs.append(f"bulk ESS {ess_min:.0f} < {ESS_BULK_MIN}: too few effective draws; "
                    "raise --draws")
    passed = not msgs
    if "refit_note" in idata.attrs:
        msgs.append(str(idata.attrs["refit_note"]))
    return Diagnostics(r_hat_max, ess_min, div, passed, msgs, list(var_names))


def summarize_draws(draws: np.ndarray, ci_prob: float = CI_PROB) -> dict[str, float]:
    """Mean, median, sd and the equal-tailed interval of a vector of draws."""
    x = np.asarray(draws, dtype=float).ravel()
    lo, hi = np.quantile(x, [(1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2])
    return {"mean": float(x.mean()), "median": float(np.median(x)), "sd": float(x.std(ddof=1)),
            "ci_low": float(lo), "ci_high": float(hi)}


def summarize_censored(draws: np.ndarray, ci_prob: float = CI_PROB) -> dict[str, float] | None:
    """Summarize draws that may hold +inf (an event never reached): quantiles keep them.

    Median and interval come from the quantiles with +inf in place; mean and SD are given
    only when no draw is censored. None for fewer than two draws.
    """
    from ..stats.decision import censored_quantiles

    x = np.asarray(draws, float)
    x = x[~np.isnan(x)]
    if x.size < 2:
        return None
    if np.isfinite(x).all():
        return summarize_draws(x, ci_prob)
    lo, med, hi = censored_quantiles(x, [(1 - ci_prob) / 2, 0.5, 1 - (1 - ci_prob) / 2])
    return {"median": float(med), "ci_low": float(lo), "ci_high": float(hi)}


def flat(idata: az.InferenceData, name: str) -> np.ndarray:
    """Posterior draws of a variable with chains and draws flattened into axis 0."""
    values = idata.posterior[name].values
    return values.reshape((-1,) + values.shape[2:])


def loo(idata: az.InferenceData, model: pm.Model | None) -> dict[str, Any]:
    """PSIS-LOO of a fit, with ArviZ's Pareto-k warnings spelled out.

    Observations are the likelihood terms of the model (arms or contrasts).
    """
    if "log_likelihood" not in idata and model is None:
        from ..errors import SpecError

        raise SpecError("this posterior has no log-likelihood group: refit to compare forms")
    return _memoized(idata, "loo", "pointwise", lambda: _psis_loo(idata, model))


def stacked_loglik(group: Any) -> np.ndarray:  # a log_likelihood group
    """Every observed variable's pointwise log-likelihood as one chains x draws x terms array."""
    arrays = [np.asarray(group[v].values) for v in group.data_vars]
    return np.concatenate([a.reshape(a.shape[:2] + (-1,)) for a in arrays], axis=2)


def _psis_loo(idata: az.InferenceData, model: pm.Model | None) -> dict[str, Any]:
    """PSIS-LOO (:func:`~trialmeta.analysis.stats.psis.psis_loo`: ArviZ's, without ArviZ)."""
    from ..stats.psis import psis_loo

    if "log_likelihood" in idata:
        ll = idata.log_likelihood
    else:
        import pymc as pm

        ll = pm.compute_log_likelihood(idata, model=model, extend_inferencedata=False,
                                       progressbar=False)
    res = psis_loo(stacked_loglik(ll))
    k = np.asarray(res["pareto_k"])
    msgs = list(res["warnings"])
    if np.any(k > 0.7):
        msgs.append(f"{int(np.sum(k > 0.7))} observation(s) with Pareto k > 0.7: PSIS-LOO is "
                    "unreliable for them (influential data points)")
    return {"elpd_loo": res["elpd_loo"], "se": res["se"], "p_loo": res["p_loo"],
            "pareto_k_max": float(k.max()), "warnings": sorted(set(msgs))}
