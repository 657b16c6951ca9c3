"""The one place that calls PyMC and ArviZ to sample and to diagnose.

Keeping these calls here means a move to PyMC 6 / ArviZ 1.x touches one module.
Intervals are equal-tailed with probability :data:`CI_PROB` unless asked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.cache import Cache, memoized
from ..io.provenance import package_versions
from .settings import SamplerSettings

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

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
        cached = Cache(settings.cache_dir).read_posterior(key)
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
        Cache(settings.cache_dir).write_posterior(key, idata)
    return idata


def _convergence(idata: Any, var_names: list[str]) -> dict[str, Any]:
    """Largest rank-normalised R-hat, smallest bulk ESS (every element of every variable)."""
    from ..stats.mcmc_diagnostics import rank_diagnostics

    r_values, e_values, labels = [], [], []
    for name in var_names:
        values = np.asarray(idata.posterior[name].values, dtype=float)
        chains = values.reshape(values.shape[0], values.shape[1], -1)
        for j in range(chains.shape[2]):
            r_hat, ess = rank_diagnostics(chains[:, :, j])
            r_values.append(r_hat)
            e_values.append(ess)
            labels.append(name if chains.shape[2] == 1 else f"{name}[{j}]")
    r = np.asarray(r_values, dtype=float)
    r_hat_max = None if r.size == 0 or np.isnan(r).all() else float(np.nanmax(r))
    ess_min = float(np.nanmin(e_values)) if e_values and not np.isnan(e_values).all() \
        else float("nan")
    div = int(idata.sample_stats["diverging"].values.sum()) if "sample_stats" in idata else 0
    worst_r = labels[int(np.nanargmax(r))] if r_hat_max is not None else None
    worst_e = labels[int(np.nanargmin(e_values))] if np.isfinite(ess_min) else None
    return {"r_hat_max": r_hat_max, "ess_bulk_min": ess_min if np.isfinite(ess_min) else None,
            "divergences": div, "r_hat_worst": worst_r, "ess_worst": worst_e}


def diagnose(idata: az.InferenceData, var_names: list[str]) -> Diagnostics:
    """Check R-hat, bulk ESS and divergences of ``var_names`` against the gate."""
    found = memoized(idata, "diagnose", ",".join(var_names),
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
        where = f" ({found['r_hat_worst']})" if found.get("r_hat_worst") else ""
        msgs.append(f"R-hat {r_hat_max:.3f}{where} > {R_HAT_MAX}: chains disagree; draw more "
                    "(--draws) or simplify the model")
    if not ess_min >= ESS_BULK_MIN:
        where = f" ({found['ess_worst']})" if found.get("ess_worst") else ""
        msgs.append(f"bulk ESS {ess_min:.0f}{where} < {ESS_BULK_MIN}: too few effective "
                    "draws; raise --draws")
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
    return memoized(idata, "loo", "pointwise", lambda: _psis_loo(idata, model))


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
