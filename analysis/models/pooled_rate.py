"""pooled-rate: random-effects pooling of single-arm proportions.

Model (non-centred)::

    y_i ~ Binomial(n_i, logit^-1(theta_i))
    theta_i = mu + sigma * v_s(i) + tau * z_i,   v_s, z_i ~ Normal(0, 1)
    mu ~ Normal(mu_mean, mu_sd),   tau ~ HalfNormal(tau_scale),   sigma ~ HalfNormal(study_scale)

The unit ``i`` is an arm, and arms nest in studies: arms of one study (several doses, or
the same patients after one and after several infusions) share the study effect
``sigma * v_s``. With one arm per study the study term is left out (it would be confounded
with the arm term). Reported: the pooled rate logit^-1(mu), the rate of an arm of a new
study logit^-1(mu + sigma * e1 + tau * e2), tau (and sigma), and the shrunken rate of each
arm.

``clusters`` (columns above the study, outer first) add ``sigma_c * w_c[g_c(i)]`` for each,
with the study term's prior and ``w ~ Normal(0, 1)``: a study nested in a site, a site in a
country. A new study's arm then adds every level's variance. These fits use PyMC's sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..sampling.inference import (
    Diagnostics,
    flat,
    summarize_draws,
)
from ..sampling.settings import SamplerSettings
from ..select.filters import BinaryArms
from ..select.moderators import nested_levels
from .base import Model

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

    from ..sampling.precompiled import PrecompiledModel


@dataclass(frozen=True)
class PooledRatePriors:
    """Default priors, on the logit scale.

    ``mu ~ Normal(0, 1.5)`` puts 95 % of its mass on rates between 5 % and 95 %
    and is close to flat on the probability scale; ``tau ~ HalfNormal(1)`` allows
    between-study odds ratios up to about e^2 = 7.4 apart (95 % of the mass below 2).
    """

    mu_mean: float = 0.0
    mu_sd: float = 1.5
    tau_scale: float = 1.0
    #: half-normal scale of the between-study sd when arms nest in studies
    study_scale: float = 1.0

    def as_dict(self) -> dict[str, float]:
        """Return the priors as a JSON-ready dict."""
        return asdict(self)


@dataclass
class FitResult:
    """A fitted model: posterior, the data it saw, settings and diagnostics."""

    model: str
    idata: az.InferenceData
    data: BinaryArms
    priors: PooledRatePriors
    settings: SamplerSettings
    diagnostics: Diagnostics
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class PooledRateSummary:
    """Tables shared by the command line, the report and the tests."""

    estimates: dict[str, dict[str, float]]
    arms: pd.DataFrame
    diagnostics: Diagnostics
    sentence: str


class PooledRate(Model):
    """Random-effects pooled proportion of treated arms (logit-normal, non-centred)."""

    name = "pooled-rate"
    description = "pooled response or remission rate of treated arms (binomial-logit RE)"
    var_names = ["mu", "tau"]

    def __init__(self, priors: PooledRatePriors | None = None,
                 moderators: tuple[str, ...] = (), clusters: tuple[str, ...] = ()):
        self.priors = priors or PooledRatePriors()
        self.moderators = tuple(moderators)
        self.clusters = tuple(clusters)

    def cluster_index(self, data: BinaryArms) -> list[tuple[str, list[str], np.ndarray]]:
        """Each cluster column's levels and every arm's level (labels nested, outer first)."""
        return nested_levels(data.table, self.clusters)

    def _design(self, data: BinaryArms):
        from ..select.moderators import design_matrix

        return design_matrix(data.table, self.moderators)

    @staticmethod
    def nesting(data: BinaryArms) -> tuple[list[str], np.ndarray] | None:
        """Studies and each arm's study index when some study has several arms, else None.

        Arms of one study (two doses, or the same patients after one and after several
        infusions) share a study effect; with one arm per study it would be confounded with
        the arm effect, so the model leaves it out.
        """
        study = data.table["study"]
        if not study.duplicated().any():
            return None
        studies = list(dict.fromkeys(study))
        return studies, study.map({s: i for i, s in enumerate(studies)}).to_numpy()

    def gate_names(self, data: BinaryArms) -> list[str]:
        """Parameters the convergence gate checks."""
        return (self.var_names + (["beta"] if self.moderators else [])
                + (["sigma_study"] if self.nesting(data) else [])
                + [f"sigma:{col}" for col in self.clusters])

    def prepare(self, data: BinaryArms) -> BinaryArms:
        """Drop arms that lack a moderator value, recording why."""
        if not self.moderators:
            return data
        d = self._design(data)
        keep = ~d.missing
        dropped = list(data.dropped) + [
            dict(study=r["study"], arm=r["arm"], reason="a moderator value is missing")
            for r in data.table[~keep].to_dict("records")]
        return BinaryArms(data.outcome, data.table[keep].reset_index(drop=True), dropped)

    def build(self, data: BinaryArms) -> pm.Model:
        """Build the PyMC model for the selected arms (no sampling)."""
        import pymc as pm

        t = data.table
        if t.empty:
            raise SpecError("no arms to pool: the selection left no arm with counts at this "
                            "time point")
        coords = {"arm": t["label"].tolist()}
        with pm.Model(coords=coords) as model:
            n = pm.Data("n", t["n"].to_numpy(dtype="int64"), dims="arm")
            y = pm.Data("y", t["events"].to_numpy(dtype="int64"), dims="arm")
            mu = pm.Normal("mu", self.priors.mu_mean, self.priors.mu_sd)
            tau = pm.HalfNormal("tau", self.priors.tau_scale)
            z = pm.Normal("z", 0.0, 1.0, dims="arm")
            eta = mu + tau * z
            if self.moderators:
                design = self._design(data)
                beta = pm.Normal("beta", 0.0, self.priors.mu_sd, shape=len(design.names))
                eta = mu + pm.math.dot(design.x, beta) + tau * z
            nested = self.nesting(data)
            if nested:
                studies, s_idx = nested
                model.add_coord("study", studies)
                sigma = pm.HalfNormal("sigma_study", self.priors.study_scale)
                v = pm.Normal("v", 0.0, 1.0, dims="study")
                eta = eta + sigma * v[s_idx]
            for col, levels, idx in self.cluster_index(data):
                sigma_c = pm.HalfNormal(f"sigma:{col}", self.priors.study_scale)
                w = pm.Normal(f"w:{col}", 0.0, 1.0, shape=len(levels))
                eta = eta + sigma_c * w[idx]
            theta = pm.Deterministic("theta", eta, dims="arm")
            pm.Deterministic("rate", pm.math.invlogit(theta), dims="arm")
            pm.Deterministic("pooled_rate", pm.math.invlogit(mu))
            pm.Binomial("events", n=n, logit_p=theta, observed=y, dims="arm")
        return model

    def precompiled(self, data: BinaryArms) -> PrecompiledModel:
        """Return the same model for the precompiled (numba) sampler."""
        t = data.table
        if t.empty:
            raise SpecError("no arms to pool: the selection left no arm with counts at this "
                            "time point")
        nested = self.nesting(data)
        return kernel_model(t["events"].to_numpy(), t["n"].to_numpy(), t["label"].tolist(),
                           mu_mean=self.priors.mu_mean, mu_sd=self.priors.mu_sd,
                           tau_scale=self.priors.tau_scale,
                           design=self._design(data).x if self.moderators else None,
                           study_index=nested[1] if nested else None,
                           studies=nested[0] if nested else None,
                           study_scale=self.priors.study_scale)

    def fit_data(self, data: BinaryArms) -> BinaryArms:
        """Return the arms the model uses (see :meth:`prepare`)."""
        return self.prepare(data)

    def kernel(self, data: BinaryArms) -> Callable[[], PrecompiledModel] | None:
        """Return the builder of the precompiled twin (none with clusters)."""
        return None if self.clusters else (lambda: self.precompiled(data))

    def cache_token(self, data: BinaryArms) -> str:
        """Return the model, its priors and moderators, and the arms."""
        return "|".join([self.name, repr(self.priors.as_dict()), repr(self.moderators),
                         repr(self.clusters), data.table.to_csv(index=False)])

    def record(self, data: BinaryArms, settings: SamplerSettings, data_sha256: str,
               versions: dict[str, str]) -> dict[str, Any]:
        """Return the model, data hash, priors, sampler, seed and versions."""
        return {"trialmeta_model": self.name, "data_sha256": data_sha256,
                "priors": repr(self.priors.as_dict()), "sampler": repr(settings.as_dict()),
                "seed": settings.seed, "versions": repr(versions)}

    def fit_result(self, data: BinaryArms, idata: Any, settings: SamplerSettings,
                   diagnostics: Diagnostics, provenance: dict[str, Any],
                   built: Any) -> FitResult:
        """Return the pooled-rate fit."""
        return FitResult(self.name, idata, data, self.priors, settings, diagnostics,
                         provenance)

    #: ``pooled_rate`` is logit^-1(mu), the rate of the median study; ``average_rate`` the
    #: population-average rate E[logit^-1(mu + tau z)] over the random effects
    quantities = ("pooled_rate", "average_rate", "predictive_rate", "tau", "mu_logit")

    def prior_params(self, fit: FitResult, n: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw the parameters :meth:`draws` reads from their priors."""
        pr = self.priors
        out = {"mu": rng.normal(pr.mu_mean, pr.mu_sd, n),
               "tau": np.abs(rng.normal(0.0, pr.tau_scale, n))}
        if self.moderators:
            out["beta"] = rng.normal(0.0, pr.mu_sd, (n, len(self._design(fit.data).names)))
        if self.nesting(fit.data):
            out["sigma_study"] = np.abs(rng.normal(0.0, pr.study_scale, n))
        for col in self.clusters:
            out[f"sigma:{col}"] = np.abs(rng.normal(0.0, pr.study_scale, n))
        return out

    def _above(self, fit: FitResult) -> np.ndarray:
        """Variance of the levels above the arm: the study and every cluster."""
        out = 0.0
        for name in ["sigma_study", *(f"sigma:{col}" for col in self.clusters)]:
            if name in fit.idata.posterior:
                out = out + flat(fit.idata, name) ** 2
        return np.asarray(out)

    def draws(self, fit: FitResult, quantity: str) -> np.ndarray:
        """Posterior draws of a named derived quantity (see :attr:`quantities`)."""
        mu, tau = flat(fit.idata, "mu"), flat(fit.idata, "tau")
        if quantity == "pooled_rate":
            return 1.0 / (1.0 + np.exp(-mu))
        if quantity == "predictive_rate":  # an arm of a new study
            rng = np.random.default_rng(fit.settings.seed)
            theta_new = mu + tau * rng.standard_normal(mu.shape[0])
            theta_new = theta_new + np.sqrt(self._above(fit)) * rng.standard_normal(mu.shape[0])
            return 1.0 / (1.0 + np.exp(-theta_new))
        if quantity == "average_rate":
            return average_rate(mu, np.sqrt(tau ** 2 + self._above(fit)))
        if quantity == "tau":
            return tau
        if quantity == "mu_logit":
            return mu
        if quantity.startswith("beta:") and self.moderators:
            names = self._design(fit.data).names
            name = quantity.removeprefix("beta:")
            if name in names:
                return flat(fit.idata, "beta")[:, names.index(name)]
        raise SpecError(f"model {self.name} has no quantity '{quantity}'; "
                        f"known: {', '.join(self.quantities)}")

    def summary(self, fit: FitResult) -> PooledRateSummary:
        """Pooled and predictive rates, tau and the per-arm table."""
        estimates = {q: summarize_draws(self.draws(fit, q)) for q in self.quantities}
        if "sigma_study" in fit.idata.posterior:
            estimates["sigma_study"] = summarize_draws(flat(fit.idata, "sigma_study"))
        for col in self.clusters:
            estimates[f"sigma:{col}"] = summarize_draws(flat(fit.idata, f"sigma:{col}"))
        if self.moderators:
            for name in self._design(fit.data).names:
                d = self.draws(fit, f"beta:{name}")
                estimates[f"beta:{name}"] = dict(summarize_draws(d),
                                                 p_positive=float(np.mean(d > 0)))
        rates = flat(fit.idata, "rate")
        t = fit.data.table
        rows = []
        for j, rec in enumerate(t.to_dict("records")):
            s = summarize_draws(rates[:, j])
            rows.append({
                "study": rec["study"], "arm": rec["arm"], "time_h": rec["time_h"],
                "events": rec["events"], "n": rec["n"],
                "observed_rate": rec["events"] / rec["n"],
                "shrunken_median": s["median"], "shrunken_ci_low": s["ci_low"],
                "shrunken_ci_high": s["ci_high"], "evidence": rec["evidence"],
                "design": rec["design"],
            })
        pr = estimates["pooled_rate"]
        what = (f"{fit.data.outcome.capitalize()} rate at the reference level of the "
                f"moderators ({', '.join(self.moderators)})" if self.moderators
                else f"Pooled {fit.data.outcome} rate")
        sentence = (f"{what} {pr['median']:.1%} "
                    f"(95% CrI {pr['ci_low']:.1%} to {pr['ci_high']:.1%}) from "
                    f"{len(t)} arm(s) of {fit.data.k_studies} stud(ies), "
                    f"{fit.data.n_total} patients.")
        return PooledRateSummary(estimates, pd.DataFrame(rows), fit.diagnostics, sentence)


def average_rate(mu: np.ndarray, sd: np.ndarray, nodes: int = 40) -> np.ndarray:
    """Population-average rate E[logit^-1(mu + sd z)], z ~ N(0, 1), per draw.

    Gauss-Hermite quadrature with ``nodes`` points (exact to about 1e-10 for sd up to 3);
    for sd = 0 it is logit^-1(mu), the median study's rate.
    """
    x, w = np.polynomial.hermite.hermgauss(nodes)
    eta = np.asarray(mu)[:, None] + np.sqrt(2.0) * np.asarray(sd)[:, None] * x[None, :]
    return (w[None, :] / (1.0 + np.exp(-eta))).sum(axis=1) / np.sqrt(np.pi)


def kernel_model(y: np.ndarray, n: np.ndarray, labels: list[str], *, mu_mean: float,
                mu_sd: float, tau_scale: float, design: np.ndarray | None,
                study_index: np.ndarray | None = None, studies: list[str] | None = None,
                study_scale: float = 1.0) -> PrecompiledModel:
    """pooled-rate (binomial-logit, non-centred) on arms ``y`` of ``n``, optional moderators.

    With ``studies`` (some study has several arms), arms nest in studies: a study effect
    ``sigma * v[s]`` is added to each arm's logit.
    """
    from ..sampling.precompiled import (
        PrecompiledModel,
        Variable,
        kernel_buffer,
        kernel_header,
        log_choose,
    )

    y, n = np.asarray(y, float), np.asarray(n, float)
    k = y.size
    x = np.zeros((k, 0)) if design is None else np.asarray(design, float).reshape(k, -1)
    p = x.shape[1]
    s_n = 0 if studies is None else len(studies)
    sidx = np.zeros(k) if study_index is None else np.asarray(study_index, float)
    buf = kernel_buffer(kernel_header(0.0, k=k, p=p, s=s_n, prior_m=mu_mean, prior_sd=mu_sd,
                          tau_scale=tau_scale, base_sd=study_scale),
                  y, n, log_choose(n, y), x, sidx)
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
