"""Precompiled models: numba kernels sampled by nutpie's Rust NUTS.

The default sampler for pooled-rate, contrast, dose-response (linear, log-linear, Emax) and
time-course (Bateman, piecewise). A fit needs neither PyMC nor PyTensor: the log density
and gradient are the hand-written kernels of :mod:`trialmeta.analysis.sampling.kernels` and
:mod:`trialmeta.analysis.sampling.kernels_curves` (compiled once, then loaded from numba's on-disk
cache in about 0.3 s), the data travel in one float64 buffer, and nutpie runs the chains in
parallel threads without the GIL.

This module knows no family: each model lays its data out for its kernel in its own
``kernel_model`` (``models/*.py``) with :func:`kernel_header` and :func:`kernel_buffer`, and
hands over a :class:`PrecompiledModel`; kernels are found by the family code they declare.

The draws are stored under the same names, dimensions and coordinates as the PyMC models
store them (``mu, tau, z, theta, rate, pooled_rate``; ``d, tau, u, e, delta, alpha`` ...), with
the pointwise log-likelihood for PSIS-LOO, so everything downstream is unchanged.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..io.posterior_store import StoredPosterior
    from .settings import SamplerSettings

TAU_KINDS = {"half-normal": 0, "half-cauchy": 1, "turner2015": 2, "rhodes2015": 3}
#: part of the cache token of a precompiled fit: bump when a kernel changes its draws
ENGINE = "numba-kernels-2"
_STATS = ("depth", "maxdepth_reached", "index_in_trajectory", "logp", "energy", "energy_error",
          "step_size", "step_size_bar", "mean_tree_accept", "mean_tree_accept_sym", "n_steps",
          "diverging")


@dataclass
class Variable:
    """One stored quantity: its name, dimension names and whether it is a log-likelihood."""

    name: str
    dims: tuple[str, ...]
    loglik: bool = False


@dataclass
class PrecompiledModel:
    """A model ready for nutpie: kernel, data buffer, parameter count, stored variables."""

    family: str  # "pooled-rate", "contrast", "dose-response", "time-course" or "network"
    buffer: np.ndarray
    n_dim: int
    variables: list[Variable]
    coords: dict[str, list[Any]]
    observed: dict[str, tuple[tuple[str, ...], np.ndarray]]
    init_mean: np.ndarray

    def shape(self, v: Variable) -> tuple[int, ...]:
        """Shape of one draw of ``v``."""
        return tuple(len(self.coords[d]) for d in v.dims)


def log_choose(n: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return log C(n, y) (math.lgamma: importing scipy.special would cost more than it saves)."""
    return np.array([math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)
                     for a, b in zip(n.tolist(), y.tolist(), strict=True)])


def kernel_header(family: float, **slots: float) -> np.ndarray:
    """Return a kernel's header: the family code and the named slots (sizes, prior scales)."""
    from . import kernels as kr

    h = np.zeros(kr.HEADER)
    h[kr.H_FAMILY] = family
    names = {"k": kr.H_K, "s": kr.H_S, "c": kr.H_C, "p": kr.H_P, "tau_kind": kr.H_TAU_KIND,
             "tau_scale": kr.H_TAU_SCALE, "tau_loc": kr.H_TAU_LOC, "prior_m": kr.H_PRIOR_M,
             "prior_sd": kr.H_PRIOR_SD, "base_sd": kr.H_BASE_SD, "form": kr.H_FORM,
             "rho": kr.H_RHO, "a": kr.H_A, "b": kr.H_B, "c2": kr.H_C2, "d": kr.H_D}
    for key, value in slots.items():
        h[names[key]] = value
    return h


def kernel_buffer(header: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    """Return the one float64 buffer a kernel reads: the header, then the data, its size first.

    Each model's ``kernel_model`` (``models/*.py``) lays its data out for its kernel.
    """
    buf = np.ascontiguousarray(np.concatenate([header, *[np.ravel(p) for p in parts]]),
                               dtype=np.float64)
    buf[0] = buf.size
    return buf


def _load_lib():
    """Return nutpie's compiled core, without running nutpie's package ``__init__``.

    ``import nutpie`` imports its PyMC and Stan front ends and, through them, ArviZ,
    xarray, matplotlib and SciPy (about a second); the precompiled path needs only the
    extension module ``nutpie._lib`` (milliseconds). It is registered as ``nutpie._lib``,
    so a later ``import nutpie`` (``--sampler nutpie-pytensor``) reuses the same module.
    """
    import importlib.machinery
    import importlib.util
    import sys

    if "nutpie._lib" in sys.modules:
        return sys.modules["nutpie._lib"]
    spec = importlib.util.find_spec("nutpie")
    folder = Path(next(iter(spec.submodule_search_locations or [])))
    found = [folder / f"_lib{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES
             if (folder / f"_lib{suffix}").is_file()]
    if not found:  # an unusual install: the ordinary import
        from nutpie import _lib

        return _lib
    loader = importlib.machinery.ExtensionFileLoader("nutpie._lib", str(found[0]))
    lib_spec = importlib.util.spec_from_file_location("nutpie._lib", found[0], loader=loader)
    module = importlib.util.module_from_spec(lib_spec)
    sys.modules["nutpie._lib"] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules["nutpie._lib"]
        raise
    return module


def _kernel(family: str, suffix: str) -> Any:
    """Return a family's kernel function ``<family>_<suffix>``; curve kernels load when used."""
    if family in ("pooled-rate", "contrast"):
        from . import kernels as k
    elif family == "network":
        from . import kernels_network as k
    else:
        from . import kernels_curves as k
    return getattr(k, f"{family.replace('-', '_')}_{suffix}")


def _entry_points(family: str) -> tuple[Any, Any]:
    """Return the C functions (log density, expansion)."""
    return _kernel(family, "logp_c"), _kernel(family, "expand_c")


def run(model: PrecompiledModel, settings: SamplerSettings, *,
        progress: bool) -> StoredPosterior:
    """Sample ``model`` with nutpie (diagonal mass matrix, as ``nutpie.sample``)."""
    lib = _load_lib()
    logp_c, expand_c = _entry_points(model.family)
    buf = model.buffer
    shapes = [model.shape(v) for v in model.variables]
    n_out = int(sum(int(np.prod(s)) for s in shapes))
    names = [v.name if not v.loglik else f"__loglik__{v.name}" for v in model.variables]
    dims = {n: v.dims for n, v in zip(names, model.variables, strict=True) if v.dims}
    coords = {k: [str(x) for x in v] for k, v in model.coords.items()}
    sizes = {k: len(v) for k, v in coords.items()}
    variables = lib.PyVariable.new_variables(names, ["float64"] * len(names), shapes, sizes, dims)

    def initial_point(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return model.init_mean + rng.uniform(-1.0, 1.0, model.n_dim)

    check_start(model, initial_point, settings.seed)
    nuts = lib.PyNutsSettings.Diag(settings.seed)
    nuts.num_tune, nuts.num_draws, nuts.num_chains = settings.tune, settings.draws, settings.chains
    nuts.target_accept = settings.target_accept
    logp_fn = lib.LogpFunc(logp_c.address, buf.ctypes.data, buf)
    expand_fn = lib.ExpandFunc(model.n_dim, n_out, expand_c.address, buf.ctypes.data, buf)
    py_model = lib.PyMcModel(logp_fn, expand_fn, variables, model.n_dim, sizes, coords,
                             initial_point, None)
    cores = max(1, min(settings.chains, os.cpu_count() or 1))
    bar = lib.ProgressType.indicatif(500) if progress else lib.ProgressType.none()
    sampler = lib.PySampler.from_pymc(nuts, cores, py_model, bar, lib.PyStorage.arrow())
    try:
        while True:  # short waits, so that Ctrl-C gets through
            try:
                sampler.wait(0.2)
                break
            except TimeoutError:
                continue
    except KeyboardInterrupt:
        sampler.abort()
        raise
    draws, stats = sampler.take_results().get_arrow_trace()
    return _inference_data(model, settings, draws, stats)


#: starting points tried before sampling; nutpie's own threads are never started without one
START_TRIES = 20


def check_start(model: PrecompiledModel, initial_point: Any, seed: int) -> None:
    """Raise ConvergenceError unless some starting point has a finite density and gradient.

    nutpie draws its chains' starting points the same way; when none is finite its threads
    fail together (once seen to end in a segmentation fault), so the check runs first, in
    this process, on the kernel itself.
    """
    from ..errors import ConvergenceError

    logp = _kernel(model.family, "logp")
    grad = np.zeros(model.n_dim)
    for i in range(START_TRIES):
        x = initial_point(seed + i)
        with np.errstate(all="ignore"):
            value = logp(np.ascontiguousarray(x, dtype=np.float64), model.buffer, grad)
        if np.isfinite(value) and np.isfinite(grad).all():
            return
    raise ConvergenceError(
        f"{model.family}: no chain can start: the log density or its gradient is not finite at "
        f"any of {START_TRIES} starting points; look for extreme values in the data (a huge "
        "mean, a tiny SD) or a prior scale far from the data's")


def _column(batch: Any, name: str, skip: int, shape: tuple[int, ...]) -> np.ndarray:
    col = batch.column(name)
    values = col.flatten() if hasattr(col, "flatten") else col
    return values.to_numpy(zero_copy_only=False).reshape((-1, *shape))[skip:]


def _inference_data(model: PrecompiledModel, settings: SamplerSettings, draw_batches: list,
                    stat_batches: list) -> StoredPosterior:
    """Posterior, log-likelihood, sample statistics and observed data, as PyMC stores them.

    Held as plain arrays (:class:`~trialmeta.analysis.io.posterior_store.StoredPosterior`, the
    part of ``InferenceData`` trialmeta reads), so a precompiled fit imports neither ArviZ
    nor xarray; ``to_arviz()`` gives the ``InferenceData``.
    """
    import pyarrow as pa

    from ..io.posterior_store import StoredGroup, StoredPosterior, StoredVar

    draw_batches = [pa.record_batch(b) for b in draw_batches]
    stat_batches = [pa.record_batch(b) for b in stat_batches]
    tuned = [int(np.asarray(s.column("tuning").to_numpy(zero_copy_only=False)).sum())
             for s in stat_batches]
    if any(b.num_rows - t < settings.draws for b, t in zip(draw_batches, tuned, strict=True)):
        raise KeyboardInterrupt("sampling was interrupted")
    coords = {k: list(v) for k, v in model.coords.items()}

    def stacked(batches: list, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.stack([_column(b, name, t, shape)
                         for b, t in zip(batches, tuned, strict=True)])

    post, loglik = {}, {}
    for v in model.variables:
        key = f"__loglik__{v.name}" if v.loglik else v.name
        values = stacked(draw_batches, key, model.shape(v))
        (loglik if v.loglik else post)[v.name] = (("chain", "draw", *v.dims), values)
    stats = {s: (("chain", "draw"), stacked(stat_batches, s, ())) for s in _STATS
             if s in stat_batches[0].schema.names}
    stats["diverging"] = (("chain", "draw"), stats["diverging"][1].astype(bool))
    base = {"chain": np.arange(settings.chains), "draw": np.arange(settings.draws)}

    def dataset(data: dict, with_draws: bool = True) -> StoredGroup:
        used = {d for dims, _ in data.values() for d in dims}
        c = {k: StoredVar(np.asarray(v), (k,), {})
             for k, v in {**(base if with_draws else {}), **coords}.items() if k in used}
        variables = {name: StoredVar(np.asarray(values), tuple(dims),
                                     {d: c[d] for d in dims if d in c})
                     for name, (dims, values) in data.items()}
        return StoredGroup(variables, c, {})

    return StoredPosterior({"posterior": dataset(post), "log_likelihood": dataset(loglik),
                            "sample_stats": dataset(stats),
                            "observed_data": dataset(model.observed, with_draws=False)},
                           {}, Path("precompiled"))
