"""Precompiled models: numba kernels sampled by nutpie's Rust NUTS.

The default sampler for pooled-rate, contrast, dose-response (linear, log-linear, Emax) and
time-course (Bateman, piecewise). A fit needs neither PyMC nor PyTensor: the log density
and gradient are the hand-written kernels of :mod:`trialmeta.analysis.sampling.kernels` and
:mod:`trialmeta.analysis.sampling.kernels_curves` (compiled once, then loaded from numba's on-disk
cache in about 0.3 s), the data travel in one float64 buffer, and nutpie runs the chains in
parallel threads without the GIL.

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

_TAU_KINDS = {"half-normal": 0, "half-cauchy": 1, "turner2015": 2, "rhodes2015": 3}
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


def _log_choose(n: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return log C(n, y) (math.lgamma: importing scipy.special would cost more than it saves)."""
    return np.array([math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)
                     for a, b in zip(n.tolist(), y.tolist(), strict=True)])


def _header(family: float, **slots: float) -> np.ndarray:
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


def _finish(header: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    buf = np.ascontiguousarray(np.concatenate([header, *[np.ravel(p) for p in parts]]),
                               dtype=np.float64)
    buf[0] = buf.size
    return buf


def pooled_rate(y: np.ndarray, n: np.ndarray, labels: list[str], *, mu_mean: float,
                mu_sd: float, tau_scale: float, design: np.ndarray | None,
                study_index: np.ndarray | None = None, studies: list[str] | None = None,
                study_scale: float = 1.0) -> PrecompiledModel:
    """pooled-rate (binomial-logit, non-centred) on arms ``y`` of ``n``, optional moderators.

    With ``studies`` (some study has several arms), arms nest in studies: a study effect
    ``sigma * v[s]`` is added to each arm's logit.
    """
    y, n = np.asarray(y, float), np.asarray(n, float)
    k = y.size
    x = np.zeros((k, 0)) if design is None else np.asarray(design, float).reshape(k, -1)
    p = x.shape[1]
    s_n = 0 if studies is None else len(studies)
    sidx = np.zeros(k) if study_index is None else np.asarray(study_index, float)
    buf = _finish(_header(0.0, k=k, p=p, s=s_n, prior_m=mu_mean, prior_sd=mu_sd,
                          tau_scale=tau_scale, base_sd=study_scale),
                  y, n, _log_choose(n, y), x, sidx)
    coords: dict[str, list[Any]] = {"arm": list(labels)}
    variables = [Variable("mu", ()), Variable("tau", ()), Variable("z", ("arm",))]
    if p:
        coords["beta_dim_0"] = list(range(p))
        variables.append(Variable("beta", ("beta_dim_0",)))
    if s_n:
        coords["study"] = list(studies or [])
        variables += [Variable("sigma_study", ()), Variable("v", ("study",))]
    variables += [Variable("theta", ("arm",)), Variable("rate", ("arm",)),
                  Variable("pooled_rate", ()), Variable("events", ("arm",), loglik=True)]
    init = np.zeros(2 + k + p + (1 + s_n if s_n else 0))
    init[0] = mu_mean
    return PrecompiledModel("pooled-rate", buf, init.size, variables, coords,
                            {"events": (("arm",), y.astype("int64"))}, init)


def contrast(*, binary: bool, study_index: np.ndarray, w_shared: np.ndarray,
             w_own: np.ndarray, studies: list[str], contrast_labels: list[str],
             active: tuple[np.ndarray, np.ndarray], control: tuple[np.ndarray, np.ndarray] | None,
             shared_sd: np.ndarray | None, design: np.ndarray | None, effect_sd: float,
             baseline_sd: float, tau_kind: str, tau_scale: float,
             tau_loc: float) -> PrecompiledModel:
    """Contrast model: arm-based binomial or normal contrasts.

    Binary: ``active`` = events, n of the active arms; ``control`` = events, n of each
    study's control. Continuous: ``active`` = yi, own sd; ``shared_sd`` = sd of each
    contrast's shared-control part.
    """
    s_n, c_n = len(studies), len(contrast_labels)
    x = np.zeros((c_n, 0)) if design is None else np.asarray(design, float).reshape(c_n, -1)
    p = x.shape[1]
    ya, na = (np.asarray(a, float) for a in active)
    if binary:
        yc, nc = (np.asarray(a, float) for a in control)
        third, control_cols = _log_choose(na, ya), (yc, nc, _log_choose(nc, yc))
    else:
        third, control_cols = np.asarray(shared_sd, float), (np.zeros(s_n),) * 3
    kind = _TAU_KINDS[tau_kind]
    buf = _finish(_header(1.0 if binary else 2.0, s=s_n, c=c_n, p=p, tau_kind=kind,
                          tau_scale=tau_scale, tau_loc=tau_loc, prior_sd=effect_sd,
                          base_sd=baseline_sd),
                  np.asarray(study_index, float), w_shared, w_own, ya, na, third,
                  *control_cols, x)
    coords: dict[str, list[Any]] = {"study": list(studies), "contrast": list(contrast_labels)}
    variables = [Variable("d", ()), Variable("tau", ())]
    if kind >= _TAU_KINDS["turner2015"]:
        variables.append(Variable("log_tau2", ()))
    variables += [Variable("u", ("study",)), Variable("e", ("contrast",))]
    if p:
        coords["beta_dim_0"] = list(range(p))
        variables.append(Variable("beta", ("beta_dim_0",)))
    variables.append(Variable("delta", ("contrast",)))
    if binary:
        variables += [Variable("alpha", ("study",)),
                      Variable("events_control", ("study",), loglik=True),
                      Variable("events_active", ("contrast",), loglik=True)]
        observed = {"events_control": (("study",), yc.astype("int64")),
                    "events_active": (("contrast",), ya.astype("int64"))}
    else:
        variables += [Variable("z_control", ("study",)), Variable("y", ("contrast",), loglik=True)]
        observed = {"y": (("contrast",), ya)}
    init = np.zeros(2 + s_n + c_n + p + s_n)
    if kind >= _TAU_KINDS["turner2015"]:
        init[1] = tau_loc
    return PrecompiledModel("contrast", buf, init.size, variables, coords, observed, init)


def dose_response(*, binary: bool, form: str, study_index: np.ndarray, studies: list[str],
                  arm_labels: list[str], y: np.ndarray, n_or_se: np.ndarray, dose: np.ndarray,
                  g: np.ndarray | None, design: np.ndarray | None, amplitude_sd: float,
                  tau_scale: float, baseline_sd: float, log_ed50_mean: float,
                  ed50_sd: float, segments: np.ndarray | None = None) -> PrecompiledModel:
    """Dose-response (forms linear, loglinear with ``g`` given; emax without Hill; piecewise).

    The piecewise form takes each arm's ``segments`` (arms x segments, from
    :func:`~trialmeta.analysis.models.dose_response.segment_weights`): its g is those
    weights times the increments ``w``.
    """
    from .kernels_curves import DOSE_PIECEWISE, EMAX, LINEAR, LOGLINEAR

    s_n, a_n = len(studies), len(arm_labels)
    x = np.zeros((s_n, 0)) if design is None else np.asarray(design, float).reshape(s_n, -1)
    p = x.shape[1]
    y, n_or_se = np.asarray(y, float), np.asarray(n_or_se, float)
    lc = _log_choose(n_or_se, y) if binary else np.zeros(a_n)
    code = {"linear": LINEAR, "loglinear": LOGLINEAR, "emax": EMAX,
            "piecewise": DOSE_PIECEWISE}[form]
    coef = np.zeros((a_n, 0)) if segments is None else np.asarray(segments, float)
    k_n = coef.shape[1]
    buf = _finish(_header(3.0 if binary else 4.0, s=s_n, c=a_n, p=p, k=k_n, form=code,
                          prior_sd=amplitude_sd, base_sd=baseline_sd, tau_scale=tau_scale,
                          a=log_ed50_mean, b=ed50_sd),
                  np.asarray(study_index, float), y, n_or_se, lc, np.asarray(dose, float),
                  np.zeros(a_n) if g is None else np.asarray(g, float), x, coef)
    coords: dict[str, list[Any]] = {"study": list(studies), "arm": list(arm_labels)}
    variables = [Variable("theta", ()), Variable("tau", ()), Variable("z", ("study",))]
    if p:
        coords["beta_dim_0"] = list(range(p))
        variables.append(Variable("beta", ("beta_dim_0",)))
    if form == "emax":
        variables += [Variable("log_ed50", ()), Variable("ed50", ())]
    if form == "piecewise":
        coords["w_dim_0"] = list(range(k_n))
        variables.append(Variable("w", ("w_dim_0",)))
    variables.append(Variable("alpha", ("study",)))
    obs = "events" if binary else "y"
    variables.append(Variable(obs, ("arm",), loglik=True))
    init = np.zeros(2 + 2 * s_n + p + (1 if form == "emax" else max(k_n - 1, 0)))
    if form == "emax":
        init[2 + s_n + p] = log_ed50_mean
    return PrecompiledModel("dose-response", buf, init.size, variables, coords,
                            {obs: (("arm",), y.astype("int64") if binary else y)}, init)


def time_course(*, form: str, study_index: np.ndarray, studies: list[str], lik: Any,
                t: np.ndarray, knots: tuple[float, ...], peak_sd: float, t_rise: float,
                t_decay: float, t_sd: float, tau_scale: float,
                group_index: np.ndarray | None = None,
                groups: list[str] | None = None, binomial: Any = None,
                baseline_sd: float | None = None) -> PrecompiledModel:
    """Time-course (bateman or piecewise in log(1 + t)) on the factorised contrasts ``lik``.

    ``lik`` is a :class:`~trialmeta.analysis.models.time_course.SamplingStructure`. With
    ``groups`` (Bateman only), T_r and T_d are estimated per timing group. With
    ``binomial`` (a :class:`~trialmeta.analysis.models.time_course.BinomialStructure`), the
    likelihood is its weighted binomial terms instead, with one baseline per block
    (``alpha ~ N(0, baseline_sd)``).
    """
    from . import kernels as kr
    from .kernels import H_BLOCKS, H_LIK
    from .kernels_curves import BATEMAN, PIECEWISE

    s_n, c_n, k_n = len(studies), len(lik.y), len(knots)
    g_n = len(groups) if groups else 1
    gidx = np.zeros(c_n) if group_index is None else np.asarray(group_index, float)
    t = np.asarray(t, float)
    lk, lt = np.log1p(np.array((0.0, *knots))), np.log1p(t)
    pos = np.clip(np.searchsorted(lk, lt, side="right") - 1, 0, len(lk) - 2)
    frac = np.clip((lt - lk[pos]) / (lk[pos + 1] - lk[pos]), 0.0, 1.0)
    header = _header(5.0, s=s_n, c=c_n, k=k_n,
                     form=BATEMAN if form == "bateman" else PIECEWISE,
                     prior_sd=peak_sd, tau_scale=tau_scale, a=math.log(t_rise),
                     b=math.log(t_decay), c2=t_sd, d=g_n)
    if binomial is None:
        tail = [np.concatenate(lik.w)]
        observed = lik.dense() @ lik.y
    else:
        if baseline_sd is None:
            raise ValueError("a binomial time course needs baseline_sd")
        header[H_LIK], header[H_BLOCKS] = 1.0, len(binomial.blocks)
        header[kr.H_BASE_SD] = baseline_sd
        tail = [binomial.block.astype(float), binomial.y, binomial.n,
                _log_choose(binomial.n, binomial.y), binomial.weight]
        observed = binomial.y.astype("int64")
    buf = _finish(header, np.asarray(study_index, float), lik.y, lik.sd, t,
                  pos.astype(float), frac, lik.start.astype(float), gidx, *tail)
    coords: dict[str, list[Any]] = {"study": list(studies),
                                    "y_dim_0": list(range(observed.size))}
    variables = [Variable("tau", ()), Variable("z", ("study",))]
    if form == "bateman":
        dims: tuple[str, ...] = ()
        if groups:
            coords["timing_group"] = list(groups)
            dims = ("timing_group",)
        variables += [Variable("peak", ())] + [
            Variable(n, dims) for n in ("log_t_rise", "log_t_gap", "t_rise", "t_decay",
                                        "time_to_peak")]
        init = np.zeros(1 + s_n + 1 + 2 * g_n)
        init[-2 * g_n:-g_n] = math.log(t_rise)
        init[-g_n:] = math.log(t_decay)
    else:
        coords["knot_effect_dim_0"] = list(range(k_n))
        variables.append(Variable("knot_effect", ("knot_effect_dim_0",)))
        init = np.zeros(1 + s_n + k_n)
    if binomial is not None:
        coords["block"] = list(binomial.blocks)
        variables.append(Variable("alpha", ("block",)))
        init = np.r_[init, np.zeros(len(binomial.blocks))]
    variables.append(Variable("y", ("y_dim_0",), loglik=True))
    return PrecompiledModel("time-course", buf, init.size, variables, coords,
                            {"y": (("y_dim_0",), observed)}, init)


def network(*, binary: bool, variant: str, study_index: np.ndarray, base: np.ndarray,
            plus: np.ndarray, minus: np.ndarray, w_shared: np.ndarray, w_own: np.ndarray,
            y: np.ndarray, n_or_se: np.ndarray, studies: list[str], arm_labels: list[str],
            effect_names: list[str], nodes: list[str], effect_sd: float, baseline_sd: float,
            tau_kind: str, tau_scale: float, tau_loc: float) -> PrecompiledModel:
    """Network model (consistency, ``ume`` or ``split``): arm-based binomial or normal arms.

    ``plus`` and ``minus`` index each arm's relative effect in the effect parameters
    (``effect_names``: d_free's nodes, or the UME pairs, or d_free's nodes then the split
    pair's direct effect); -1 reads 0.
    """
    from .kernels_network import CONSISTENCY, NETWORK_BINARY, NETWORK_NORMAL, SPLIT, UME

    code = {"consistency": CONSISTENCY, "ume": UME, "split": SPLIT}[variant]
    y, n_or_se = np.asarray(y, float), np.asarray(n_or_se, float)
    lc = _log_choose(n_or_se, y) if binary else np.zeros(y.size)
    kind = _TAU_KINDS[tau_kind]
    s_n, a_n, e_n = len(studies), len(arm_labels), len(effect_names)
    buf = _finish(_header(NETWORK_BINARY if binary else NETWORK_NORMAL, s=s_n, c=a_n, k=e_n,
                          a=code, tau_kind=kind, tau_scale=tau_scale, tau_loc=tau_loc,
                          prior_sd=effect_sd, base_sd=baseline_sd),
                  np.asarray(study_index, float), np.asarray(base, float),
                  np.asarray(plus, float), np.asarray(minus, float), w_shared, w_own, y,
                  n_or_se, lc)
    coords: dict[str, list[Any]] = {"study": list(studies), "arm": list(arm_labels)}
    if variant == "ume":
        coords["pair"] = list(effect_names)
        variables = [Variable("d_pair", ("pair",))]
    else:
        coords["effect_node"] = list(nodes[1:])
        coords["node"] = list(nodes)
        variables = [Variable("d_free", ("effect_node",)), Variable("d", ("node",))]
        if variant == "split":
            variables.append(Variable("d_direct", ()))
    variables.append(Variable("tau", ()))
    if kind >= _TAU_KINDS["turner2015"]:
        variables.append(Variable("log_tau2", ()))
    name = "events" if binary else "y"
    variables += [Variable("mu", ("study",)), Variable("u", ("study",)), Variable("e", ("arm",)),
                  Variable(name, ("arm",), loglik=True)]
    observed = {name: (("arm",), y.astype("int64") if binary else y)}
    init = np.zeros(e_n + 1 + 2 * s_n + a_n)
    if kind >= _TAU_KINDS["turner2015"]:
        init[e_n] = tau_loc
    return PrecompiledModel("network", buf, init.size, variables, coords, observed, init)


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
