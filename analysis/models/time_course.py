"""time-course: the effect relative to control over time after one administration.

Two likelihoods, chosen with ``likelihood`` (``--likelihood``). The default, ``normal``,
is a contrast-level model on every post-dose time point of every study::

    y_i ~ MultivariateNormal(delta_i, S_i)
    delta_it = exp(tau * z_i - tau^2 / 2) * f(t),   z_i ~ Normal(0, 1)

``y_i`` holds the contrasts of study i at all its times (log OR from each 2x2 table, or
MD/SMD). ``S_i`` is their sampling covariance (:func:`sampling_covariance`): each contrast's
full variance on the diagonal; contrasts at the same time share their control's variance;
the same patients at two times correlate ``rho`` (set by the user, default 0.5). No control
is split. ``tau`` is the between-study sd of a log-normal amplitude multiplier (mean 1, so
``f`` is the average curve and a study's curve never changes sign). Forms of ``f``:

- ``bateman`` (rise and decay): f(t) = A * (exp(-t/T_d) - exp(-t/T_r)) / c, where c makes
  the peak of the bracket 1, so A is the peak effect; T_r < T_d.
- ``piecewise``: linear in log(1 + t) between knots (2, 24, 72, 168, 336, 672 h by
  default), zero at t = 0, with a free value at each knot.

``binomial`` (counts, log OR only) is arm-based, as the contrast model is: each study and
time point b has a mean arm logit ``alpha_b ~ Normal(0, 2.5)``; with
``delta_c = exp(tau z_i - tau^2/2) f(t)`` and ``o_b = sum_c delta_c / (J_b + 1)`` its control arm
has logit ``alpha_b - o_b`` and each active arm ``alpha_b + delta_c - o_b`` (the symmetric
form of :mod:`~trialmeta.analysis.models.arms`).
The same patients counted at several times are not independent binomial units, and their
joint distribution needs patient-level concordance no trial reports. So the binomial terms
form a composite (independence) likelihood whose terms in study i are weighted by
``w_i = (1' S_i(rho)^-1 1) / (1' S_i(0)^-1 1)`` (:func:`composite_weights`): the study
then carries the information about a common shift of its contrasts that the joint normal at
``rho`` gives it (1 for a study with one time point, or when rho is 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SpecError
from ..sampling.inference import (
    Diagnostics,
    flat,
    summarize_censored,
    summarize_draws,
)
from ..sampling.settings import SamplerSettings
from ..select.contrasts import ContrastData
from .arms import centring_matrix
from .base import Model

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

    from ..sampling.precompiled import PrecompiledModel

FORMS = ("bateman", "piecewise")
DEFAULT_KNOTS = (2.0, 24.0, 72.0, 168.0, 336.0, 672.0)
#: onset, peak and duration are looked for up to this time; later events are censored
GRID_END_H = 672.0
#: part of a fit's cache token: bump when a likelihood changes
LIKELIHOOD = "joint-normal-2|binomial-1"
LIKELIHOODS = ("normal", "binomial")
#: sd of the binomial likelihood's baselines on the log-odds scale (as fit contrast)
BASELINE_SD = 2.5
#: --timing: which column of the active arm gives T_r and T_d their own values
TIMINGS = {"shared": None, "by-route": "route", "by-treatment": "treatment"}
TIME_GRID = np.exp(np.linspace(np.log(0.25), np.log(GRID_END_H), 600))


@dataclass(frozen=True)
class TimePriors:
    """Default priors.

    ``peak_sd``: sd of the normal prior on the peak effect A (or each knot value);
    ``t_rise``: median of the rise time T_r in hours with ``t_sd`` the sd of its log;
    ``t_decay``: median of T_d - T_r in hours; ``tau_scale``: half-normal scale of the
    sd of the random amplitude multiplier.
    """

    peak_sd: float = 2.5
    t_rise: float = 4.0
    t_decay: float = 150.0
    t_sd: float = 1.5
    tau_scale: float = 0.5

    def as_dict(self) -> dict[str, float]:
        """Return the priors as a JSON-ready dict."""
        return asdict(self)


def contrast_effects_by_time(data: ContrastData) -> tuple[np.ndarray, np.ndarray]:
    """Each contrast's estimate and its full sampling variance (no control is split)."""
    y, v, _ = _estimates(data)
    return y, v


@dataclass(frozen=True)
class SamplingStructure:
    """The contrasts' joint normal likelihood, factorised one contrast at a time.

    Within a study, ``y`` has covariance ``S`` (:func:`sampling_structure`). With the
    Cholesky factor ``S = L L'``, the rows of ``W = diag(L) L^-1`` (unit lower-triangular)
    give ``e = W (y - mean) ~ Normal(0, diag(L)^2)``: ``e_c / L_cc`` is the standardised
    residual of contrast c given the study's earlier contrasts, so the pointwise terms sum to
    the joint log density. ``start[c]`` is the first contrast of c's study; ``w[c]`` holds
    row c of ``W`` from ``start[c]`` to c.
    """

    y: np.ndarray
    v: np.ndarray
    sd: np.ndarray
    start: np.ndarray
    w: tuple[np.ndarray, ...]

    def dense(self) -> np.ndarray:
        """``W`` as a dense matrix (block lower-triangular)."""
        out = np.zeros((self.y.size, self.y.size))
        for c, row in enumerate(self.w):
            out[c, self.start[c]:c + 1] = row
        return out


def _estimates(data: ContrastData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each contrast's estimate, its whole variance and its control's part of it."""
    from ..select.contrasts import BINARY_FN, check_estimable
    from ..stats.effects import control_variance

    check_estimable(data)
    c = data.contrasts
    if data.binary:
        arm = (c["level"] != "contrast").to_numpy() if "level" in c else np.ones(len(c), bool)
        y, v, vc = (np.full(len(c), np.nan) for _ in range(3))
        if arm.any():
            a = c[arm]
            eff = BINARY_FN[data.measure](a["a"], a["b"], a["c"], a["d"])
            y[arm], v[arm] = np.asarray(eff.yi, float), np.asarray(eff.vi, float)
            vc[arm] = control_variance(data.measure, a["a"], a["b"], a["c"], a["d"])
        if not arm.all():  # reported estimates, their variances and shared parts
            y[~arm], v[~arm] = c["yi"].to_numpy(float)[~arm], c["vi"].to_numpy(float)[~arm]
            vc[~arm] = c["shared_var"].to_numpy(float)[~arm]
    else:
        y, v = c["yi"].to_numpy(float), c["vi"].to_numpy(float)
        vc = c["shared_var"].to_numpy(float)
    return y, v, np.clip(vc, 0.0, v)


def sampling_covariance(data: ContrastData, rho: float) -> tuple[np.ndarray, ...]:
    """Estimates, variances and the covariance matrix of a study's contrasts over time.

    A contrast is an active arm minus its control at time t; its variance splits into the
    active arm's part ``va`` and the control's part ``vc``. Contrasts at the same time share
    their control: covariance ``vc``. The same patients measured at two times correlate
    ``rho``: covariance ``rho * sqrt(vc vc')`` through the control at any two times, plus
    ``rho * sqrt(va va')`` when the active arm is the same. Different studies are independent.
    """
    y, v, vc = _estimates(data)
    c = data.contrasts
    sc, sa = np.sqrt(vc), np.sqrt(v - vc)
    study, arm = c["study"].to_numpy(), c["arm"].to_numpy()
    t = c["time_h"].to_numpy(float)
    same_study = study[:, None] == study[None, :]
    over_time = np.where(t[:, None] == t[None, :], 1.0, rho)
    cov = (np.outer(sc, sc) * same_study
           + np.outer(sa, sa) * (same_study & (arm[:, None] == arm[None, :]))) * over_time
    return y, v, cov


def sampling_structure(data: ContrastData, rho: float) -> SamplingStructure:
    """Factorise :func:`sampling_covariance` study by study (contrasts grouped by study)."""
    y, v, cov = sampling_covariance(data, rho)
    study = data.contrasts["study"].to_numpy()
    first = {s: i for i, s in reversed(list(enumerate(study)))}
    start = np.array([first[s] for s in study], dtype=int)
    blocks = np.flatnonzero(np.r_[True, study[1:] != study[:-1]])
    if len(blocks) != len(first):
        raise SpecError("internal: time-course contrasts must be grouped by study")
    sd = np.empty(y.size)
    w: list[np.ndarray] = []
    for lo, hi in zip(blocks, [*blocks[1:], y.size], strict=True):
        try:
            chol = np.linalg.cholesky(cov[lo:hi, lo:hi])
        except np.linalg.LinAlgError:
            raise SpecError(f"study {study[lo]}: the contrasts' covariance is not positive "
                            "definite (a zero variance?)") from None
        rows = np.diag(np.diag(chol)) @ np.linalg.inv(chol)
        sd[lo:hi] = np.diag(chol)
        w.extend(rows[j, :j + 1].copy() for j in range(hi - lo))
    return SamplingStructure(y, v, sd, start, tuple(w))


def composite_weights(data: ContrastData, rho: float) -> np.ndarray:
    """Each contrast's study weight for the binomial composite likelihood.

    ``w = (1' S(rho)^-1 1) / (1' S(0)^-1 1)`` per study, where ``S(rho)`` is the contrasts'
    sampling covariance of :func:`sampling_covariance`: the share of the independence
    likelihood's information about a common shift that the correlated measurements carry.
    """
    _, _, cov = sampling_covariance(data, rho)
    _, _, cov0 = sampling_covariance(data, 0.0)
    study = data.contrasts["study"].to_numpy()
    out = np.ones(study.size)
    for s in dict.fromkeys(study):
        i = np.flatnonzero(study == s)
        ones = np.ones(i.size)
        out[i] = (ones @ np.linalg.solve(cov[np.ix_(i, i)], ones)
                  / (ones @ np.linalg.solve(cov0[np.ix_(i, i)], ones)))
    return out


@dataclass(frozen=True)
class BinomialStructure:
    """The arm-level binomial terms: active arms (one per contrast), then controls.

    ``block[c]`` is contrast c's (study, time, control) block, which holds one baseline;
    ``weight`` is the composite-likelihood weight of each term (:func:`composite_weights`).
    """

    block: np.ndarray
    blocks: list[str]
    y: np.ndarray
    n: np.ndarray
    weight: np.ndarray

    @property
    def terms(self) -> int:
        """Number of binomial terms (active arms, then one control per block)."""
        return self.y.size


def binomial_structure(data: ContrastData, rho: float) -> BinomialStructure:
    """Arm-level counts of the contrasts, their baseline blocks and weights."""
    if not data.binary or data.measure != "OR":
        raise SpecError("the binomial time-course likelihood needs response or remission "
                        "counts on the log-odds scale (--measure OR)")
    c = data.contrasts
    if "level" in c and (c["level"] != "arm").any():
        raise SpecError("the binomial time-course likelihood needs arm-level counts")
    keys = [f"{s}|{t:g} h|{ctl}" for s, t, ctl in
            zip(c["study"], c["time_h"].astype(float), c["control"], strict=True)]
    blocks = list(dict.fromkeys(keys))
    block = np.array([blocks.index(k) for k in keys], dtype=int)
    first = [keys.index(b) for b in blocks]
    w = composite_weights(data, rho)
    a, b = c["a"].to_numpy(float), c["b"].to_numpy(float)
    ce, cd = c["c"].to_numpy(float)[first], c["d"].to_numpy(float)[first]
    return BinomialStructure(block, blocks, np.r_[a, ce], np.r_[a + b, ce + cd],
                             np.r_[w, w[first]])


@dataclass
class TimeFit:
    """A fitted time-course model."""

    model: str
    form: str
    rho: float
    idata: az.InferenceData
    data: ContrastData
    priors: TimePriors
    settings: SamplerSettings
    diagnostics: Diagnostics
    knots: tuple[float, ...] = DEFAULT_KNOTS
    pymc_model: pm.Model | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    #: timing groups (Bateman T_r, T_d per route or treatment); empty when shared
    timing_groups: tuple[str, ...] = ()
    likelihood: str = "normal"


def bateman(t: np.ndarray, a: np.ndarray, t_r: np.ndarray, t_d: np.ndarray) -> np.ndarray:
    """Evaluate A·(exp(-t/T_d) − exp(-t/T_r)) scaled so its peak is A (draws x times)."""
    t = np.asarray(t, float)[None, :]
    t_r, t_d, a = (np.asarray(x, float)[:, None] for x in (t_r, t_d, a))
    peak = np.log(t_d / t_r) * t_d * t_r / (t_d - t_r)
    c = np.exp(-peak / t_d) - np.exp(-peak / t_r)
    return a * (np.exp(-t / t_d) - np.exp(-t / t_r)) / c


def time_to_peak(t_r: np.ndarray, t_d: np.ndarray) -> np.ndarray:
    """Return the time of the peak: t* = ln(T_d / T_r) · T_d · T_r / (T_d − T_r)."""
    return np.log(t_d / t_r) * t_d * t_r / (t_d - t_r)


class TimeCourse(Model):
    """Effect vs time after one dose: rise-and-decay or piecewise in log-time."""

    name = "time-course"
    description = "effect vs control over hours to weeks after one dose (rise-decay, piecewise)"
    quantities = ("effect_at", "onset_h", "time_to_peak_h", "duration_h", "peak")

    def __init__(self, form: str = "bateman", *, rho: float = 0.5,
                 priors: TimePriors | None = None, knots: tuple[float, ...] = DEFAULT_KNOTS,
                 timing: str = "shared", likelihood: str = "normal"):
        if form not in self.gate:
            raise SpecError(f"unknown time-course form '{form}'; use one of "
                            f"{', '.join(self.gate)}")
        if not 0 <= rho < 1:
            raise SpecError("the within-study correlation rho must lie in [0, 1)")
        if timing not in TIMINGS:
            raise SpecError(f"unknown timing '{timing}'; use {', '.join(TIMINGS)}")
        if timing != "shared" and form != "bateman":
            raise SpecError(f"--timing {timing} needs the bateman form (rise and decay times "
                            "per group)")
        if likelihood not in LIKELIHOODS:
            raise SpecError(f"unknown time-course likelihood '{likelihood}'; use "
                            f"{' or '.join(LIKELIHOODS)}")
        self.form, self.rho, self.knots = form, rho, tuple(sorted(knots))
        self.priors = priors or TimePriors()
        self.timing = timing
        self.likelihood = likelihood

    def timing_groups(self, data: ContrastData) -> tuple[list[str], np.ndarray] | None:
        """Return the timing groups (route or treatment) and each contrast's; None if shared."""
        if self.timing == "shared":
            return None
        column = TIMINGS[self.timing]
        values = data.contrasts[column].astype(str)
        groups = sorted(set(values))
        if len(groups) < 2:
            return None  # one group: the same model as shared timing
        return groups, values.map({g: i for i, g in enumerate(groups)}).to_numpy()

    def build(self, data: ContrastData) -> pm.Model:
        """Build the PyMC model (no sampling)."""
        import pymc as pm
        import pytensor.tensor as pt

        if len(data.contrasts) == 0:
            raise SpecError("no contrasts: no study has active and control arms after one dose")
        c = data.contrasts
        t = c["time_h"].to_numpy(float)
        studies = data.studies
        s_idx = c["study"].map({s: i for i, s in enumerate(studies)}).to_numpy()
        pr = self.priors
        grouped = self.timing_groups(data)
        coords: dict[str, Any] = {"study": studies}
        self._group_index = None
        if grouped:
            coords["timing_group"] = grouped[0]
            self._group_index = grouped[1]
        binomial = (binomial_structure(data, self.rho) if self.likelihood == "binomial"
                    else None)
        if binomial:
            coords["block"] = binomial.blocks
        with pm.Model(coords=coords) as model:
            tau = pm.HalfNormal("tau", pr.tau_scale)
            z = pm.Normal("z", 0.0, 1.0, dims="study")
            f = self.curve_tensor(t)
            delta = pt.exp(tau * z - 0.5 * tau**2)[s_idx] * f
            if binomial:
                _binomial_terms(binomial, delta)
            else:
                # decorrelated contrasts W y (see SamplingStructure): one term per contrast
                lik = sampling_structure(data, self.rho)
                w = lik.dense()
                pm.Normal("y", mu=pt.dot(w, delta), sigma=lik.sd, observed=w @ lik.y)
        return model

    #: parameters the convergence gate checks, per form (a plug-in sets its own)
    gate = {"bateman": ["tau", "peak", "t_rise", "t_decay"], "piecewise": ["tau", "knot_effect"]}

    def curve_tensor(self, t: np.ndarray):  # a PyTensor expression
        """Create the curve's parameters in the current PyMC model; return f(t).

        A plug-in time-course form overrides this and :meth:`curve_draws`.
        """
        import pymc as pm
        import pytensor.tensor as pt

        pr = self.priors
        if self.form == "bateman":
            index = getattr(self, "_group_index", None)
            dims = "timing_group" if index is not None else None
            a = pm.Normal("peak", 0.0, pr.peak_sd)
            t_r = pm.Deterministic("t_rise", pt.exp(pm.Normal("log_t_rise", np.log(pr.t_rise),
                                                              pr.t_sd, dims=dims)), dims=dims)
            gap = pt.exp(pm.Normal("log_t_gap", np.log(pr.t_decay), pr.t_sd, dims=dims))
            t_d = pm.Deterministic("t_decay", t_r + gap, dims=dims)
            tp = pm.Deterministic("time_to_peak", pt.log(t_d / t_r) * t_d * t_r / (t_d - t_r),
                                  dims=dims)
            norm = pt.exp(-tp / t_d) - pt.exp(-tp / t_r)
            if index is not None:
                t_r, t_d, norm = t_r[index], t_d[index], norm[index]
            return a * (pt.exp(-t / t_d) - pt.exp(-t / t_r)) / norm
        knots = np.array((0.0, *self.knots))
        vals = pm.Normal("knot_effect", 0.0, pr.peak_sd, shape=len(self.knots))
        allv = pt.concatenate([pt.zeros(1), vals])
        lt, lk = np.log1p(t), np.log1p(knots)
        pos = np.clip(np.searchsorted(lk, lt, side="right") - 1, 0, len(lk) - 2)
        frac = np.clip((lt - lk[pos]) / (lk[pos + 1] - lk[pos]), 0.0, 1.0)
        return allv[pos] + frac * (allv[pos + 1] - allv[pos])

    def curve_draws(self, fit: TimeFit, times: np.ndarray, group: int = 0) -> np.ndarray:
        """Posterior draws of f(t) at ``times`` (draws x times); ``group``: a timing group."""
        if fit.form == "bateman":
            return bateman(times, flat(fit.idata, "peak"), _group(fit, "t_rise", group),
                           _group(fit, "t_decay", group))
        vals = flat(fit.idata, "knot_effect")
        lk = np.log1p(np.array((0.0, *fit.knots)))
        allv = np.concatenate([np.zeros((vals.shape[0], 1)), vals], axis=1)
        lt = np.log1p(np.clip(times, 0, fit.knots[-1]))
        return np.stack([np.interp(lt, lk, row) for row in allv])

    def prior_params(self, fit: TimeFit, n: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray] | None:
        """Draw the curve parameters :meth:`curve_draws` reads from their priors.

        A plug-in form with its own curve overrides this; until it does, None (the claims
        engine then says it cannot compare the claim's quantity with its prior).
        """
        if type(self).curve_draws is not TimeCourse.curve_draws:
            return None
        pr = self.priors
        if fit.form == "bateman":
            groups = getattr(fit, "timing_groups", ())
            shape = (n, len(groups)) if groups else n
            t_r = np.exp(rng.normal(np.log(pr.t_rise), pr.t_sd, shape))
            t_d = t_r + np.exp(rng.normal(np.log(pr.t_decay), pr.t_sd, shape))
            return {"peak": rng.normal(0.0, pr.peak_sd, n), "t_rise": t_r, "t_decay": t_d,
                    "time_to_peak": time_to_peak(t_r, t_d),
                    "tau": np.abs(rng.normal(0.0, pr.tau_scale, n))}
        return {"knot_effect": rng.normal(0.0, pr.peak_sd, (n, len(fit.knots))),
                "tau": np.abs(rng.normal(0.0, pr.tau_scale, n))}

    def _precompilable(self) -> bool:
        """Built-in forms of this class only (a plug-in's own curve needs PyTensor)."""
        cls = type(self)
        return (self.form in ("bateman", "piecewise") and cls.build is TimeCourse.build
                and cls.curve_tensor is TimeCourse.curve_tensor)

    def precompiled(self, data: ContrastData) -> PrecompiledModel:
        """Return the same model for the precompiled (numba) sampler."""
        if len(data.contrasts) == 0:
            raise SpecError("no contrasts: no study has active and control arms after one dose")
        c = data.contrasts
        pr = self.priors
        grouped = self.timing_groups(data)
        return kernel_model(
            form=self.form,
            study_index=c["study"].map({s: i for i, s in enumerate(data.studies)}).to_numpy(),
            studies=list(data.studies), lik=sampling_structure(data, self.rho),
            binomial=(binomial_structure(data, self.rho) if self.likelihood == "binomial"
                      else None), baseline_sd=BASELINE_SD,
            t=c["time_h"].to_numpy(float), knots=self.knots, peak_sd=pr.peak_sd,
            t_rise=pr.t_rise, t_decay=pr.t_decay, t_sd=pr.t_sd, tau_scale=pr.tau_scale,
            group_index=grouped[1] if grouped else None,
            groups=grouped[0] if grouped else None)

    def kernel(self, data: ContrastData) -> Callable[[], PrecompiledModel] | None:
        """Return the precompiled twin's builder for the forms that have a kernel."""
        return (lambda: self.precompiled(data)) if self._precompilable() else None

    def cache_token(self, data: ContrastData) -> str:
        """Return the model, likelihood, form, correlation, timing, priors and contrasts."""
        return "|".join([self.name, LIKELIHOOD, type(self).__qualname__, self.form,
                         repr(self.rho), self.timing, self.likelihood,
                         repr(self.knots), repr(self.priors.as_dict()), data.measure,
                         data.contrasts.to_csv(index=False)])

    def gate_names(self, data: ContrastData) -> list[str]:
        """Return the form's gated parameters."""
        return self.gate[self.form]

    def record(self, data: ContrastData, settings: SamplerSettings, data_sha256: str,
               versions: dict[str, str]) -> dict[str, Any]:
        """Return the model, form, correlation, likelihood, data hash, priors, sampler."""
        return {"trialmeta_model": self.name, "form": self.form, "rho": self.rho,
                "likelihood": self.likelihood,
                "data_sha256": data_sha256, "priors": repr(self.priors.as_dict()),
                "sampler": repr(settings.as_dict()), "seed": settings.seed,
                "versions": repr(versions)}

    def fit_result(self, data: ContrastData, idata: Any, settings: SamplerSettings,
                   diagnostics: Diagnostics, provenance: dict[str, Any],
                   built: Any) -> TimeFit:
        """Return the time-course fit (with its timing groups)."""
        grouped = self.timing_groups(data)
        return TimeFit(self.name, self.form, self.rho, idata, data, self.priors, settings,
                       diagnostics, self.knots, built, provenance,
                       tuple(grouped[0]) if grouped else (), self.likelihood)

    def effect(self, fit: TimeFit, times: np.ndarray, group: int = 0) -> np.ndarray:
        """Draws of the mean effect at each time (draws x times), for one timing group."""
        if group:
            return self.curve_draws(fit, np.asarray(times, float), group)
        return self.curve_draws(fit, np.asarray(times, float))


def _binomial_terms(lik: BinomialStructure, delta) -> None:  # PyTensor
    """Add the weighted binomial terms (active arms, then controls) as the observed ``y``."""
    import pymc as pm
    import pytensor.tensor as pt

    alpha = pm.Normal("alpha", 0.0, BASELINE_SD, dims="block")
    # arms centred on their block's mean (models.arms): no arm's prior is wider
    offset = pm.math.dot(centring_matrix(lik.block, len(lik.blocks), extra=1), delta)
    eta = pt.concatenate([alpha[lik.block] + delta - offset[lik.block], alpha - offset])

    def logp(value, n, eta, weight):
        return weight * pm.logp(pm.Binomial.dist(n=n, logit_p=eta), value)

    pm.CustomDist("y", lik.n, eta, lik.weight, logp=logp, observed=lik.y)


def _group(fit: TimeFit, name: str, group: int) -> np.ndarray:
    """Draws of a per-group parameter for one timing group (the whole vector if shared)."""
    x = flat(fit.idata, name)
    return x[:, group] if x.ndim == 2 else x


def grid_events(curve: np.ndarray, threshold: float,
                fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per draw of a curve on :data:`TIME_GRID` (draws x grid, benefit positive).

    Returns the onset (first time above ``threshold``), the index and value of the peak,
    and the end (first time after the peak below ``fraction`` of it); +inf for an event
    that never happens within the grid.
    """
    above = curve > threshold
    onset = np.where(above.any(axis=1), TIME_GRID[np.argmax(above, axis=1)], np.inf)
    peak_i = np.argmax(curve, axis=1)
    peak_v = curve[np.arange(len(curve)), peak_i]
    after = (np.arange(len(TIME_GRID))[None, :] > peak_i[:, None]) & (
        curve < fraction * peak_v[:, None])
    end = np.where(after.any(axis=1), TIME_GRID[np.argmax(after, axis=1)], np.inf)
    return onset, peak_i, peak_v, end


def time_quantity(model: TimeCourse, fit: TimeFit, q: str, direction: int, threshold: float,
                  fraction: float, group: int = 0,
                  grid: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
    """Draws of a named time-course quantity; a time never reached within the grid is +inf.

    ``grid(group)``, when given, returns the curve's draws on :data:`TIME_GRID` (so that
    several quantities of one fit evaluate the curve once).

    Time to peak is exact: t* = ln(T_d/T_r) T_d T_r / (T_d - T_r) for the Bateman curve,
    and the best knot for the piecewise curve (linear between knots in log time, so its
    maximum sits on a knot). A curve with no benefit at all has no peak: +inf.
    """
    post = fit.idata.posterior
    if q == "time_to_peak_h" and "t_rise" in post and "peak" in post:
        t_star = (_group(fit, "time_to_peak", group) if "time_to_peak" in post
                  else time_to_peak(_group(fit, "t_rise", group),
                                    _group(fit, "t_decay", group)))
        return np.where(direction * flat(fit.idata, "peak") > 0, t_star, np.inf)
    if q == "time_to_peak_h" and "knot_effect" in post:
        knots = direction * flat(fit.idata, "knot_effect")
        best = np.argmax(knots, axis=1)
        return np.where(knots.max(axis=1) > 0, np.asarray(fit.knots)[best], np.inf)
    if q.startswith("effect_at:"):
        return model.effect(fit, np.array([float(q.partition(":")[2])]), group)[:, 0]
    if q not in ("onset_h", "time_to_peak_h", "peak", "duration_h"):
        raise SpecError(f"time-course has no quantity '{q}'")
    curve = grid(group) if grid is not None else model.effect(fit, TIME_GRID, group)
    onset, peak_i, peak_v, end = grid_events(direction * curve, threshold, fraction)
    return {"onset_h": onset, "duration_h": end, "peak": direction * peak_v,
            "time_to_peak_h": np.where(peak_v > 0, TIME_GRID[peak_i], np.inf)}[q]


def time_summary(model: TimeCourse, fit: TimeFit, *, times: tuple[float, ...] = (),
                 threshold: float = 0.0, fraction: float = 0.5,
                 direction: int = 1, group: int = 0,
                 by_group: bool = True) -> dict[str, Any]:
    """Effects at chosen times, onset, time to peak and duration, with warnings.

    Onset: per draw, the first time on a fine grid where direction * effect > threshold;
    ``onset_h_p95`` is the first grid time where that holds with probability >= 0.95.
    Duration: per draw, the time after the peak until the effect falls below
    ``fraction`` of the peak. Both need the curve to reach the threshold or to fall,
    within the grid (0.25 h to 4 weeks); draws that do not are reported as such.
    """
    grid = TIME_GRID
    curve = direction * model.effect(fit, grid, group)
    est: dict[str, dict[str, float]] = {}
    times = times or (2.0, 4.0, 24.0, 72.0, 168.0, 336.0)
    eff = model.effect(fit, np.array(times), group)
    for j, t in enumerate(times):
        est[f"effect_at_{t:g}h"] = summarize_draws(eff[:, j])
    onset, peak_i, peak_v, end = grid_events(curve, threshold, fraction)
    extra: dict[str, Any] = {}

    def put(name: str, x: np.ndarray, what: str) -> None:
        """Summarize with never-reached draws (+inf) kept in the quantiles (None in JSON)."""
        ok = np.isfinite(x)
        extra[f"share_of_draws_with_{name}"] = float(ok.mean())
        if ok.sum() > 1:
            s = summarize_censored(x)
            est[name] = {k: (v if np.isfinite(v) else None) for k, v in s.items()}
            if not ok.all():
                est[name]["censored_above_h"] = GRID_END_H
        else:
            extra[f"{name}_missing"] = what

    put("onset_h", onset, "the effect never exceeds the threshold within 4 weeks")
    put("duration_h", end, "the effect does not fall below the fraction of its peak within "
                           "4 weeks")
    # exact, as the claims use it: Bateman t*, or the best knot of a piecewise curve
    put("time_to_peak_h", time_quantity(model, fit, "time_to_peak_h", direction, threshold,
                                        fraction, group), "the curve shows no benefit at any time")
    est["peak"] = summarize_draws(flat(fit.idata, "peak") if "peak" in fit.idata.posterior
                                  else direction * peak_v)
    prob = (curve > threshold).mean(axis=0)
    sure = np.nonzero(prob >= 0.95)[0]
    extra["onset_h_p95"] = float(grid[sure[0]]) if len(sure) else None
    observed = sorted(set(fit.data.contrasts["time_h"].astype(float)))
    warnings = []
    if len(observed) < 3:
        warnings.append(f"only {len(observed)} distinct time point(s) "
                        f"({', '.join(f'{x:g}' for x in observed)} h): the curve's shape comes "
                        "mostly from the prior")
    early = [t for t in times if t < min(observed)]
    late = [t for t in times if t > max(observed)]
    if early or late:
        warnings.append("times outside the observed range "
                        f"({min(observed):g}-{max(observed):g} h) are extrapolated: "
                        + ", ".join(f"{t:g} h" for t in early + late))
    if "t_rise" in fit.idata.posterior:
        for name, prior_sd in (("t_rise", fit.priors.t_sd),):
            post_sd = float(np.std(np.log(_group(fit, name, group))))
            if post_sd > 0.7 * prior_sd:
                warnings.append(f"{name} is weakly identified (posterior sd of its log "
                                f"{post_sd:.2f} vs prior {prior_sd:.2f})")
    band = np.quantile(direction * curve, [0.025, 0.5, 0.975], axis=0)
    out = {"estimates": est, "probabilities": extra, "warnings": warnings,
           "observed_times_h": observed,
           "curve": {"time_h": grid.tolist(), "median": band[1].tolist(),
                     "ci_low": band[0].tolist(), "ci_high": band[2].tolist()}}
    if getattr(fit, "timing_groups", ()) and by_group:
        out["timing_group"] = fit.timing_groups[group]
        out["by_group"] = {
            name: {k: v for k, v in time_summary(
                model, fit, times=times, threshold=threshold, fraction=fraction,
                direction=direction, group=j, by_group=False).items()
                if k in ("estimates", "probabilities")}
            for j, name in enumerate(fit.timing_groups)}
    return out


def kernel_model(*, form: str, study_index: np.ndarray, studies: list[str], lik: Any,
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
    from ..sampling import kernels as kr
    from ..sampling.kernels import H_BLOCKS, H_LIK
    from ..sampling.kernels_curves import BATEMAN, PIECEWISE
    from ..sampling.precompiled import (
        PrecompiledModel,
        Variable,
        kernel_buffer,
        kernel_header,
        log_choose,
    )

    s_n, c_n, k_n = len(studies), len(lik.y), len(knots)
    g_n = len(groups) if groups else 1
    gidx = np.zeros(c_n) if group_index is None else np.asarray(group_index, float)
    t = np.asarray(t, float)
    lk, lt = np.log1p(np.array((0.0, *knots))), np.log1p(t)
    pos = np.clip(np.searchsorted(lk, lt, side="right") - 1, 0, len(lk) - 2)
    frac = np.clip((lt - lk[pos]) / (lk[pos + 1] - lk[pos]), 0.0, 1.0)
    header = kernel_header(5.0, s=s_n, c=c_n, k=k_n,
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
                log_choose(binomial.n, binomial.y), binomial.weight]
        observed = binomial.y.astype("int64")
    buf = kernel_buffer(header, np.asarray(study_index, float), lik.y, lik.sd, t,
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
