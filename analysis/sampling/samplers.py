"""NUTS back ends behind ``--sampler`` for PyMC models: nutpie, PyMC's own, NumPyro.

A family with a precompiled kernel never comes here under the default ``nutpie``: see
:mod:`trialmeta.analysis.sampling.precompiled`. Otherwise (and always with ``nutpie-pytensor``)
``nutpie`` runs nutpie's Rust NUTS on the model's log density and gradient
compiled by PyTensor's C back end. PyTensor keeps compiled C modules on disk, so a model
structure seen before compiles in about a second, where nutpie's own numba back end
recompiles for 3 to 9 s in every process. The compiled functions are kept with the model:
fitting the same model again after ``pm.set_data`` (simulation-based calibration, a
sweep over data of the same shape) reuses them without compiling.

The pointwise log-likelihood of every observed variable is computed with each draw, so
PSIS-LOO needs no second compile.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

    from .settings import SamplerSettings

SAMPLERS = ("nutpie", "nutpie-pytensor", "pymc", "numpyro")
DEFAULT_SAMPLER = "nutpie"
_LOG_LIK_PREFIX = "__loglik__"


class SamplerUnavailableError(SpecError):
    """The chosen sampler is unknown or not installed in this environment."""


@dataclass
class CompiledLogp:
    """A model's log density, gradient and trace expansion, compiled once."""

    n_dim: int
    logp_dlogp: Any  # pytensor Function: flat unconstrained point -> (logp, gradient)
    expand: Any  # pytensor Function: flat point -> stored variables and log-likelihoods
    names: list[str]
    shapes: list[tuple[int, ...]]
    value_names: list[str]
    value_shapes: list[tuple[int, ...]]
    initial_point: Any  # seed -> dict of transformed initial values
    dims: dict[str, tuple[str, ...]]
    coords: dict[str, Any]


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def run(model: pm.Model, settings: SamplerSettings, *, progress: bool) -> az.InferenceData:
    """Sample ``model`` with the back end named in ``settings.sampler``."""
    name = settings.sampler
    if name in ("nutpie", "nutpie-pytensor"):
        return _run_nutpie(model, settings, progress=progress)
    if name == "pymc":
        return _run_pymc(model, settings, progress=progress)
    if name == "numpyro":
        try:
            import numpyro  # noqa: F401
        except ImportError as exc:
            raise SamplerUnavailableError(
                "--sampler numpyro needs JAX and NumPyro, which trialmeta does not install "
                "(about 620 MB); pip install numpyro into the environment to use it") from exc
        return _run_pymc(model, settings, progress=progress, nuts_sampler="numpyro")
    raise SamplerUnavailableError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def _run_pymc(model: pm.Model, settings: SamplerSettings, *, progress: bool,
              nuts_sampler: str = "pymc") -> az.InferenceData:
    import pymc as pm

    with model:
        return pm.sample(
            draws=settings.draws, tune=settings.tune, chains=settings.chains, cores=1,
            target_accept=settings.target_accept, random_seed=settings.seed,
            progressbar=progress, compute_convergence_checks=False, nuts_sampler=nuts_sampler,
            idata_kwargs={"log_likelihood": True},
        )


def compiled(model: pm.Model) -> CompiledLogp:
    """Return the compiled functions of ``model``, compiling on first use."""
    found = _COMPILED.get(model)
    if found is None:
        found = _compile(model)
        _COMPILED[model] = found
    return found


def _compile(model: pm.Model) -> CompiledLogp:
    import pytensor
    import pytensor.tensor as pt
    from pymc.initial_point import make_initial_point_fn
    from pymc.pytensorf import compile as compile_pymc

    value_vars = [model.rvs_to_values[rv] for rv in model.free_RVs]
    start = model.initial_point()
    value_shapes = [tuple(np.shape(start[v.name])) for v in value_vars]
    sizes = [int(np.prod(s)) for s in value_shapes]
    n_dim = int(sum(sizes))
    logp = model.logp()
    grads = pytensor.gradient.grad(logp, value_vars)
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in grads])
    joined = pt.TensorType("float64", shape=(n_dim,))("_point")
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    replace = {v: joined[int(a):int(b)].reshape(s).astype(v.dtype)
               for v, a, b, s in zip(value_vars, offsets[:-1], offsets[1:], value_shapes,
                                     strict=True)}
    logp, grad = pytensor.clone_replace([logp, grad], replace)
    stored = [v for v in model.unobserved_value_vars if not v.name.endswith("__")]
    loglik = model.logp(vars=model.observed_RVs, sum=False, jacobian=False)
    outputs = pytensor.clone_replace([*stored, *loglik], replace)
    with model:
        logp_fn = compile_pymc([joined], [logp, grad])
        expand_fn = compile_pymc([joined], outputs, on_unused_input="ignore")
    logp_fn.trust_input = True
    expand_fn.trust_input = True
    point = np.concatenate([np.ravel(start[v.name]) for v in value_vars]).astype("float64")
    example = expand_fn(point)
    names = [v.name for v in stored] + [_LOG_LIK_PREFIX + rv.name for rv in model.observed_RVs]
    shapes = [tuple(np.shape(x)) for x in example]
    dims = {}
    for name in [v.name for v in stored]:
        if model.named_vars_to_dims.get(name):
            dims[name] = tuple(model.named_vars_to_dims[name])
    for rv in model.observed_RVs:
        if model.named_vars_to_dims.get(rv.name):
            dims[_LOG_LIK_PREFIX + rv.name] = tuple(model.named_vars_to_dims[rv.name])
    coords = {k: [str(x) for x in v] for k, v in model.coords.items() if v is not None}
    for name, shape in zip(names, shapes, strict=True):
        if shape and name not in dims:  # nutpie needs every dimension named and sized
            dims[name] = tuple(f"{name.removeprefix(_LOG_LIK_PREFIX)}_dim_{i}"
                               for i in range(len(shape)))
            coords.update({d: [str(i) for i in range(n)]
                           for d, n in zip(dims[name], shape, strict=True)})
    initial = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                    return_transformed=True)
    return CompiledLogp(n_dim, logp_fn, expand_fn, names, shapes,
                        [v.name for v in value_vars], value_shapes, initial, dims, coords)


def _run_nutpie(model: pm.Model, settings: SamplerSettings, *,
                progress: bool) -> az.InferenceData:
    try:
        import nutpie
        from nutpie.compiled_pyfunc import from_pyfunc
    except ImportError as exc:  # pragma: no cover - nutpie is in the lock file
        raise SamplerUnavailableError("nutpie is not installed; use --sampler pymc") from exc
    c = compiled(model)

    def make_logp():
        fn = c.logp_dlogp.copy()

        def logp(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = fn(x)
            return float(value), grad
        return logp

    def make_expand(seed1: int, seed2: int, chain: int):
        fn = c.expand.copy()

        def expand(x: np.ndarray) -> dict[str, np.ndarray]:
            return {n: np.asarray(v, dtype="float64").reshape(s)
                    for n, v, s in zip(c.names, fn(x), c.shapes, strict=True)}
        return expand

    def initial_point(seed: int) -> np.ndarray:
        point = c.initial_point(seed)
        return np.concatenate([np.ravel(point[n]) for n in c.value_names]).astype("float64")

    compiled_model = from_pyfunc(
        ndim=c.n_dim, make_logp_fn=make_logp, make_expand_fn=make_expand,
        make_initial_point_fn=initial_point, expanded_dtypes=[np.dtype("float64")] * len(c.names),
        expanded_shapes=c.shapes, expanded_names=c.names, dims=c.dims, coords=c.coords)
    raw = nutpie.sample(compiled_model, draws=settings.draws, tune=settings.tune,
                        chains=settings.chains, cores=1, seed=settings.seed,
                        save_warmup=False, progress_bar=progress,
                        target_accept=settings.target_accept)
    return _tidy(raw, c, model)


def _tidy(raw: az.InferenceData, c: CompiledLogp, model: pm.Model) -> az.InferenceData:
    """Move log-likelihoods to their own group and add the observed data, as PyMC does."""
    import arviz as az
    import xarray as xr

    post = raw.posterior
    loglik_names = [n for n in c.names if n.startswith(_LOG_LIK_PREFIX)]
    posterior = post.drop_vars(loglik_names)
    loglik = post[loglik_names].rename({n: n[len(_LOG_LIK_PREFIX):] for n in loglik_names})
    # nutpie stores coordinates as strings: give back the model's own values
    own = {k: list(v) for k, v in model.coords.items() if v is not None}
    observed = xr.Dataset({
        rv.name: (c.dims.get(_LOG_LIK_PREFIX + rv.name) or
                  tuple(f"{rv.name}_dim_{i}" for i in range(rv.ndim)),
                  np.asarray(model.rvs_to_values[rv].eval()))
        for rv in model.observed_RVs})
    observed = observed.assign_coords({k: v for k, v in own.items() if k in observed.dims})
    # dimensions the model did not name count 0, 1, ... as PyMC numbers them
    for ds in (posterior, loglik, observed):
        own.update({d: list(range(n)) for d, n in ds.sizes.items()
                    if d not in own and d not in ("chain", "draw")})
    posterior = posterior.assign_coords({k: v for k, v in own.items() if k in posterior.dims})
    loglik = loglik.assign_coords({k: v for k, v in own.items() if k in loglik.dims})
    observed = observed.assign_coords({k: v for k, v in own.items() if k in observed.dims})
    return az.InferenceData(posterior=posterior, sample_stats=raw.sample_stats,
                            log_likelihood=loglik, observed_data=observed)
