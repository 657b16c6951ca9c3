"""contrast: Bayesian random-effects meta-analysis of active vs control within trials.

Binary outcomes (arm-based, logit link; Smith, Spiegelhalter & Thomas 1995, in the
symmetric form of :mod:`~trialmeta.analysis.models.arms`)::

    events_ic ~ Bin(n_ic, logit^-1(alpha_i - c_i))                control arm of study i
    events_ij ~ Bin(n_ij, logit^-1(alpha_i + delta_ij - c_i))     active arm j
    c_i = sum_j delta_ij / (J_i + 1)                              (J_i active arms)
    alpha_i ~ Normal(0, baseline_sd)                              mean arm logit of study i
    delta_ij = d + tau * (w_s u_i + w_o e_ij),  u_i, e_ij ~ Normal(0, 1)

with w_s = w_o = sqrt(1/2) in multi-arm studies (so that arms of one study
correlate 0.5, the usual consistency assumption) and w_s = 0, w_o = 1 otherwise.
``d`` is the pooled log odds ratio; RR and RD are derived at the pooled control
rate logit^-1(mean_i (alpha_i - c_i)). In a two-arm trial the arms' logits are
``alpha_i -/+ delta_i / 2``: mirrored data give a mirrored posterior, and a trial with no
events (or only events) in every arm leaves ``d`` where the prior had it.

Continuous outcomes (contrast level): ``y_ij ~ Normal(delta_ij + c_i, sqrt(v_ij - s_i))``
with ``c_i ~ Normal(0, sqrt(s_i))``, where ``s_i`` is the variance of the shared
control's contribution: contrasts that share a control keep their covariance s_i.

Moderators add ``x_ij' beta`` to the mean of ``delta_ij`` (``beta ~ Normal(0, effect_sd)``;
numbers centred, so ``d`` is the effect at their mean). Two further options:

- **Small-study adjustment** (``small_study="pet"``, the Bayesian form of PET; Stanley &
  Doucouliagos 2014): the mean of ``delta_ij`` is ``d + b se_ij``, where ``se_ij`` is the
  contrast's standard error on the model's scale (that of the frequentist engine; log OR
  for counts), not centred, with
  ``b ~ Normal(0, 2^2)`` (slopes of the size a funnel cut at p = 0.05 produces, 1 to 3, are
  well inside it). ``d`` is then the effect of a study with SE 0.
- **Nesting** (``clusters``, outer first): ``delta_ij`` gains ``sigma_1 v_1[g_1(i)] +
  sigma_2 v_2[g_2(i)] + ...``, one random effect per level of each cluster column above the
  study (a three-level model, as ``rma.mv(yi, vi, random = ~ 1 | cluster/study)``), each
  ``sigma`` with the prior of ``tau`` and ``v ~ Normal(0, 1)``. A new study's predictive
  effect adds every level's variance. These fits use PyMC's sampler (no precompiled twin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
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
from ..select.contrasts import (
    ContrastData,
    contrast_effects,
    informative_contrasts,
    moderator_names,
)
from ..select.moderators import design_matrix, nested_levels
from ..stats.priors import (
    MD_EFFECT_UNITS,
    MD_TAU_UNITS,
    PRESETS,
    VAGUE_SD,
    VAGUE_TAU_SCALE,
    HeterogeneityPrior,
    heterogeneity_prior,
    outcome_unit,
)
from .arms import centring_matrix, control_logits
from .base import Model

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

    from ..sampling.precompiled import PrecompiledModel


#: the small-study adjustments the model takes (None: none)
SMALL_STUDY = (None, "pet")
#: prior SD of the PET slope (effect per unit of standard error)
PET_SLOPE_SD = 2.0


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class ContrastPriors:
    """Default priors.

    ``d ~ Normal(0, effect_sd)``: 2.5 on the log-OR scale (ORs from 1/135 to 135
    within 2 sd), and for MD/SMD scaled by the user (default 10 scale points for
    MD, 2.5 for SMD). ``alpha_i ~ Normal(0, baseline_sd)`` with baseline_sd 2.5
    (control rates 0.7 % to 99.3 % within 2 sd). ``tau``: see
    :class:`~trialmeta.analysis.stats.priors.HeterogeneityPrior` (default half-normal 0.5
    for log OR and SMD, 5 for MD).
    """

    effect_sd: float = 2.5
    baseline_sd: float = 2.5
    tau: HeterogeneityPrior = field(default_factory=HeterogeneityPrior)

    def as_dict(self) -> dict[str, Any]:
        """Return the priors as a JSON-ready dict."""
        return asdict(self)


def default_priors(measure: str, tau: HeterogeneityPrior | None = None, *,
                   unit: float | None = None, preset: str = "default",
                   effect_sd: float | None = None,
                   baseline_sd: float | None = None) -> ContrastPriors:
    """Priors scaled to the measure and, for mean differences, to the outcome.

    Parameters
    ----------
    measure : str
        OR, RR, RD (log-odds scale), SMD, or MD.
    tau : HeterogeneityPrior, optional
        Replaces the preset's prior on tau.
    unit : float, optional
        The outcome's spread (:func:`~trialmeta.analysis.stats.priors.outcome_unit`, the
        median arm SD): an MD prior is ``d ~ N(0, (2.5 unit)^2)``, ``tau ~ HN(unit)``, so
        that length of stay in days and a depression scale get priors of the same strength.
        Without it (contrast-level MDs only) the depression-scale defaults N(0, 10²), HN(5).
    preset : {"default", "vague"}
        ``vague``: N(0, 100²) on effects and baselines and HN(5) on tau (NICE TSD2,
        multinma), in units of ``unit`` for an MD.
    effect_sd, baseline_sd : float, optional
        Replace the preset's value.
    """
    if preset not in PRESETS:
        raise SpecError(f"unknown prior preset '{preset}'; use {' or '.join(PRESETS)}")
    md = measure == "MD"
    u = unit if md and unit else 1.0
    if preset == "vague":
        priors = ContrastPriors(VAGUE_SD * u, VAGUE_SD, _half_normal(VAGUE_TAU_SCALE * u))
    elif md and unit:
        priors = ContrastPriors(MD_EFFECT_UNITS * u, 2.5, _half_normal(MD_TAU_UNITS * u))
    elif md:
        priors = ContrastPriors(10.0, 2.5, _half_normal(5.0))
    else:
        priors = ContrastPriors(2.5, 2.5, HeterogeneityPrior())
    return replace(priors, tau=tau or priors.tau,
                   effect_sd=priors.effect_sd if effect_sd is None else effect_sd,
                   baseline_sd=priors.baseline_sd if baseline_sd is None else baseline_sd)


def _half_normal(scale: float) -> HeterogeneityPrior:
    """Half-normal on tau at ``scale`` (4 significant digits), as ``--tau-prior`` parses it."""
    return heterogeneity_prior(f"half-normal:{scale:.4g}")


def contrast_unit(data: ContrastData) -> float | None:
    """Return the median arm SD of a continuous contrast selection (None for counts)."""
    c = data.contrasts
    if data.binary or not len(c):
        return None
    sds = [c[col].to_numpy(float) for col in ("sd1", "sd2") if col in c]
    return outcome_unit(np.concatenate(sds)) if sds else None


@dataclass
class ContrastFit:
    """A fitted contrast model."""

    model: str
    idata: az.InferenceData
    data: ContrastData
    priors: ContrastPriors
    settings: SamplerSettings
    diagnostics: Diagnostics
    pymc_model: pm.Model | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class ContrastSummary:
    """Tables shared by the command line, the report and the tests."""

    estimates: dict[str, dict[str, float]]
    studies: pd.DataFrame
    ppc: pd.DataFrame
    diagnostics: Diagnostics
    sentence: str


def _reported(contrasts: pd.DataFrame) -> np.ndarray:
    """Which contrasts come from contrast-level rows (a reported estimate and its SE)."""
    if "level" not in contrasts:
        return np.zeros(len(contrasts), bool)
    return (contrasts["level"] == "contrast").to_numpy()


def _mixed_arrays(c: pd.DataFrame, reported: np.ndarray, s_idx: np.ndarray,
                  multi: np.ndarray) -> dict[str, Any]:
    """Arrays of the shared-parameter binary model: counts of arm rows, reported log ORs.

    Arm-level contrasts keep the arm-based binomial terms (a baseline for every study; a
    study with no arm-level counts leaves its baseline to the prior, and no quantity reads
    it); reported log ORs enter as ``y ~ Normal(delta + shared_sd z, own_sd)``,
    the comparator's variance shared by a study's reported contrasts, as in the normal model.
    """
    arm = ~reported
    arm_c = c[arm]
    first = arm_c.drop_duplicates("study")
    arm_studies = list(first["study"])
    shared = np.where(multi & reported, c["shared_var"].fillna(0.0).to_numpy(float), 0.0)
    return {
        "reported": np.flatnonzero(reported), "arm": np.flatnonzero(arm),
        "arm_study": arm_studies,
        "control_s_idx": np.array([list(dict.fromkeys(c["study"])).index(s)
                                   for s in arm_studies], dtype=int),
        "arm_s_idx": s_idx[arm],
        "centring": centring_matrix(s_idx[arm], int(s_idx.max()) + 1, extra=1),
        "y_control": first["c"].to_numpy(dtype="int64"),
        "n_control": (first["c"] + first["d"]).to_numpy(dtype="int64"),
        "y_active": arm_c["a"].to_numpy(dtype="int64"),
        "n_active": (arm_c["a"] + arm_c["b"]).to_numpy(dtype="int64"),
        "yi": c["yi"].to_numpy(float)[reported],
        "own_sd": np.sqrt(c["vi"].to_numpy(float) - shared)[reported],
        "shared_sd": np.sqrt(shared)[reported], "rep_s_idx": s_idx[reported]}


def _mixed_coords(a: dict[str, Any]) -> dict[str, list[str]]:
    """Dimensions of the shared-parameter model's three observed terms."""
    return {"arm_study": a["arm_study"],
            "arm_contrast": [a["labels"][i] for i in a["arm"]],
            "reported_contrast": [a["labels"][i] for i in a["reported"]]}


def _mixed_likelihood(a: dict[str, Any], delta, baseline_sd: float) -> None:
    """Binomial terms for arm-level contrasts, normal terms for reported log ORs."""
    import pymc as pm

    alpha = pm.Normal("alpha", 0.0, baseline_sd, dims="study")
    arm_delta = delta[a["arm"]]
    offset = pm.math.dot(a["centring"], arm_delta)
    pm.Binomial("events_control", n=a["n_control"],
                logit_p=alpha[a["control_s_idx"]] - offset[a["control_s_idx"]],
                observed=a["y_control"], dims="arm_study")
    pm.Binomial("events_active", n=a["n_active"],
                logit_p=alpha[a["arm_s_idx"]] + arm_delta - offset[a["arm_s_idx"]],
                observed=a["y_active"], dims="arm_contrast")
    reported_normal_terms(delta[a["reported"]], a["rep_s_idx"], a["shared_sd"], a["own_sd"],
                          a["yi"])


def reported_normal_terms(mean, s_idx: np.ndarray, shared_sd: np.ndarray,
                          own_sd: np.ndarray, observed: np.ndarray) -> None:
    """Add reported estimates as normal terms to the current PyMC model.

    ``y_reported ~ Normal(mean + shared_sd z_control[study], own_sd)``, ``z_control ~
    Normal(0, 1)`` per study: the contrasts of one study that share a comparator share
    its variance (``shared_sd^2``), as in the contrast model's normal likelihood.
    """
    import pymc as pm

    z_c = pm.Normal("z_control", 0.0, 1.0, dims="study")
    pm.Normal("y_reported", mu=mean + shared_sd * z_c[s_idx], sigma=own_sd,
              observed=observed, dims="reported_contrast")


class Contrast(Model):
    """Random-effects contrast of active vs control (arm-based binomial or normal)."""

    name = "contrast"
    description = "active vs control within trials: OR/RR/RD (arm-based binomial) or MD/SMD"
    quantities = ("effect", "predictive_effect", "tau", "or", "rr", "rd", "control_rate")

    def __init__(self, priors: ContrastPriors | None = None, threshold: float = 0.0,
                 moderators: tuple[str, ...] = (), *, keep_uninformative: bool = False,
                 small_study: str | None = None, clusters: tuple[str, ...] = ()):
        if small_study not in SMALL_STUDY:
            raise SpecError(f"unknown small-study adjustment '{small_study}'; use "
                            f"{' or '.join(str(x) for x in SMALL_STUDY if x)}")
        self.priors = priors
        self.threshold = threshold
        self.moderators = tuple(moderators)
        self.keep_uninformative = keep_uninformative
        self.small_study = small_study
        self.clusters = tuple(clusters)

    @property
    def has_terms(self) -> bool:
        """Whether the mean of the contrasts has coefficients ``beta`` (moderators, PET)."""
        return bool(self.moderators or self.small_study)

    def terms(self, data: ContrastData) -> tuple[np.ndarray | None, list[str], np.ndarray]:
        """Return the covariates, their names and each coefficient's scale.

        The moderators' design, then the contrasts' standard errors for PET, stored
        divided by ``effect_sd / PET_SLOPE_SD`` so that the common ``beta`` prior is the
        slope's ``Normal(0, PET_SLOPE_SD^2)`` (the scale multiplies ``beta`` back).
        """
        cols, names, scales = [], [], []
        if self.moderators:
            design = self._design(data)
            if design.missing.any():
                raise SpecError("a moderator value is missing for some contrasts: "
                                "select them out or fill the column")
            cols.append(design.x)
            names += design.names
            scales += [1.0] * len(design.names)
        if self.small_study:
            scale = PET_SLOPE_SD / self._priors(data).effect_sd
            # the SE on the model's scale: log odds ratios for counts, whatever the measure
            on_scale = replace(data, measure="OR") if data.binary else data
            vi = np.asarray(contrast_effects(on_scale).vi, float)
            cols.append(np.sqrt(vi)[:, None] * scale)
            names.append("sei")
            scales.append(scale)
        x = np.column_stack(cols) if cols else None
        return x, names, np.asarray(scales, float)

    def cluster_index(self, data: ContrastData) -> list[tuple[str, list[str], np.ndarray]]:
        """Each cluster column's levels and every contrast's level (nested, outer first)."""
        return nested_levels(data.contrasts, self.clusters,
                             known=moderator_names(data.contrasts))

    def fit_data(self, data: ContrastData) -> ContrastData:
        """Leave out double-zero and double-all studies (no information on the odds ratio).

        ``keep_uninformative=True`` keeps them (simulation-based calibration, whose
        simulated data must all enter the fit); the symmetric arms leave ``d`` unmoved
        by them apart from a slight pull towards 0.
        """
        if self.keep_uninformative or not data.binary:
            return data
        out = informative_contrasts(data)
        if out.k_studies == 0 < data.k_studies:
            raise SpecError("no study carries information about the odds ratio: "
                            + "; ".join(f"{d['study']}: {d['reason']}" for d in out.dropped
                                        if "odds ratio" in str(d["reason"])))
        return out

    def _design(self, data: ContrastData):
        return design_matrix(data.contrasts, self.moderators,
                             known=moderator_names(data.contrasts))

    def _priors(self, data: ContrastData) -> ContrastPriors:
        return self.priors or default_priors(data.measure, unit=contrast_unit(data))

    @staticmethod
    def _multi_arm(contrasts: pd.DataFrame) -> np.ndarray:
        counts = contrasts.groupby("study", sort=False)["arm"].transform("count")
        return (counts > 1).to_numpy()

    def _arrays(self, data: ContrastData) -> dict[str, Any]:
        """Return the model's data as arrays, shared by the PyMC and the precompiled model."""
        if data.k_studies == 0:
            raise SpecError("no contrasts: no study has both an active and a control arm with "
                            "this outcome in the time window")
        c = data.contrasts
        reported = _reported(c)
        if data.binary and reported.any() and data.measure != "OR":
            raise SpecError(f"reported {data.measure} rows (contrast level) enter the "
                            "frequentist and exact engines (--engine exact); the arm-based "
                            "binomial model is on the log-odds scale and takes reported log "
                            "ORs only (--measure OR)")
        s_idx = c["study"].map({s: i for i, s in enumerate(data.studies)}).to_numpy()
        multi = self._multi_arm(c)
        out = {"s_idx": s_idx, "w_shared": np.where(multi, np.sqrt(0.5), 0.0),
               "w_own": np.where(multi, np.sqrt(0.5), 1.0),
               "labels": [f"{s} {a}" for s, a in zip(c["study"], c["arm"], strict=True)],
               "design": None}
        out["design"] = self.terms(data)[0]
        if data.binary and reported.any():
            out.update(_mixed_arrays(c, reported, s_idx, multi))
        elif data.binary:
            first = c.drop_duplicates("study")
            out.update(centring=centring_matrix(s_idx, data.k_studies, extra=1),
                       y_control=first["c"].to_numpy(dtype="int64"),
                       n_control=(first["c"] + first["d"]).to_numpy(dtype="int64"),
                       y_active=c["a"].to_numpy(dtype="int64"),
                       n_active=(c["a"] + c["b"]).to_numpy(dtype="int64"))
        else:
            shared = c.groupby("study", sort=False)["shared_var"].first()
            shared = np.where(pd.Series(multi).groupby(s_idx).any().to_numpy(),
                              shared.to_numpy(), 0.0)
            out.update(yi=c["yi"].to_numpy(dtype=float),
                       own_sd=np.sqrt(c["vi"].to_numpy() - np.where(multi, shared[s_idx], 0.0)),
                       shared_sd=np.sqrt(shared)[s_idx])
        return out

    def build(self, data: ContrastData) -> pm.Model:
        """Build the PyMC model (no sampling)."""
        import pymc as pm

        a = self._arrays(data)
        priors = self._priors(data)
        s_idx = a["s_idx"]
        coords = {"study": data.studies, "contrast": a["labels"]}
        if "reported" in a:
            coords |= _mixed_coords(a)
        with pm.Model(coords=coords) as model:
            d = pm.Normal("d", 0.0, priors.effect_sd)
            tau = priors.tau.build("tau")
            u = pm.Normal("u", 0.0, 1.0, dims="study")
            e = pm.Normal("e", 0.0, 1.0, dims="contrast")
            mean = d
            if a["design"] is not None:
                beta = pm.Normal("beta", 0.0, priors.effect_sd, shape=a["design"].shape[1])
                mean = d + pm.math.dot(a["design"], beta)
            for col, levels, idx in self.cluster_index(data):
                sigma = priors.tau.build(f"sigma:{col}")
                v = pm.Normal(f"v:{col}", 0.0, 1.0, shape=len(levels))
                mean = mean + sigma * v[idx]
            delta = pm.Deterministic(
                "delta", mean + tau * (a["w_shared"] * u[s_idx] + a["w_own"] * e),
                dims="contrast")
            if data.binary and "reported" in a:
                _mixed_likelihood(a, delta, priors.baseline_sd)
            elif data.binary:
                alpha = pm.Normal("alpha", 0.0, priors.baseline_sd, dims="study")
                # observed counts as pm.Data: a refit on new counts reuses the compiled model
                y_control = pm.Data("y_control", a["y_control"], dims="study")
                y_active = pm.Data("y_active", a["y_active"], dims="contrast")
                offset = pm.math.dot(a["centring"], delta)  # symmetric arms (models.arms)
                pm.Binomial("events_control", n=a["n_control"], logit_p=alpha - offset,
                            observed=y_control, dims="study")
                pm.Binomial("events_active", n=a["n_active"],
                            logit_p=alpha[s_idx] + delta - offset[s_idx],
                            observed=y_active, dims="contrast")
            else:
                z_c = pm.Normal("z_control", 0.0, 1.0, dims="study")
                yi = pm.Data("yi", a["yi"], dims="contrast")
                pm.Normal("y", mu=delta + a["shared_sd"] * z_c[s_idx], sigma=a["own_sd"],
                          observed=yi, dims="contrast")
        return model

    def precompiled(self, data: ContrastData) -> PrecompiledModel:
        """Return the same model for the precompiled (numba) sampler."""
        a = self._arrays(data)
        priors = self._priors(data)
        if data.binary:
            active = (a["y_active"], a["n_active"])
            control, shared_sd = (a["y_control"], a["n_control"]), None
        else:
            active, control, shared_sd = (a["yi"], a["own_sd"]), None, a["shared_sd"]
        return kernel_model(binary=data.binary, study_index=a["s_idx"], w_shared=a["w_shared"],
                        w_own=a["w_own"], studies=list(data.studies),
                        contrast_labels=a["labels"], active=active, control=control,
                        shared_sd=shared_sd, design=a["design"], effect_sd=priors.effect_sd,
                        baseline_sd=priors.baseline_sd, tau_kind=priors.tau.kind,
                        tau_scale=priors.tau.scale, tau_loc=priors.tau.location)

    def kernel(self, data: ContrastData) -> Callable[[], PrecompiledModel] | None:
        """Return the precompiled twin's builder; none when counts mix with reported contrasts."""
        mixed = data.binary and _reported(data.contrasts).any()
        return None if mixed or self.clusters else (lambda: self.precompiled(data))

    def cache_token(self, data: ContrastData) -> str:
        """Return the model, outcome, measure, priors, moderators and the contrasts."""
        return "|".join([self.name, data.outcome, data.measure,
                         repr(self._priors(data).as_dict()), repr(self.moderators),
                         repr((self.small_study, self.clusters)),
                         data.contrasts.to_csv(index=False)])

    def gate_names(self, data: ContrastData) -> list[str]:
        """Return d and tau (and the moderator coefficients)."""
        return (["d", "tau"] + (["beta"] if self.has_terms else [])
                + [f"sigma:{col}" for col in self.clusters])

    def record(self, data: ContrastData, settings: SamplerSettings, data_sha256: str,
               versions: dict[str, str]) -> dict[str, Any]:
        """Return the model, measure, outcome, data hash, priors, sampler, seed, versions."""
        return {"trialmeta_model": self.name, "measure": data.measure,
                "outcome": data.outcome, "data_sha256": data_sha256,
                "priors": repr(self._priors(data).as_dict()),
                "sampler": repr(settings.as_dict()), "seed": settings.seed,
                "versions": repr(versions)}

    def fit_result(self, data: ContrastData, idata: Any, settings: SamplerSettings,
                   diagnostics: Diagnostics, provenance: dict[str, Any],
                   built: Any) -> ContrastFit:
        """Return the contrast fit."""
        return ContrastFit(self.name, idata, data, self._priors(data), settings, diagnostics,
                           built, provenance)

    def prior_params(self, fit: ContrastFit, n: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw the parameters :meth:`draws` reads from their priors."""
        from ..stats.priors import sample_tau

        pr = fit.priors
        out = {"d": rng.normal(0.0, pr.effect_sd, n), "tau": sample_tau(pr.tau, n, rng)}
        if self.has_terms:
            out["beta"] = rng.normal(0.0, pr.effect_sd, (n, len(self.terms(fit.data)[1])))
        for col in self.clusters:
            out[f"sigma:{col}"] = sample_tau(pr.tau, n, rng)
        if fit.data.binary:
            a = self._arrays(fit.data)
            s_n, c_n = len(fit.data.studies), len(a["labels"])
            mean = out["d"][:, None] + (0.0 if a["design"] is None
                                        else out["beta"] @ np.asarray(a["design"], float).T)
            for col, levels, idx in self.cluster_index(fit.data):
                mean = mean + (out[f"sigma:{col}"][:, None]
                               * rng.standard_normal((n, len(levels)))[:, idx])
            noise = (a["w_shared"] * rng.standard_normal((n, s_n))[:, a["s_idx"]]
                     + a["w_own"] * rng.standard_normal((n, c_n)))
            out["delta"] = mean + out["tau"][:, None] * noise
            out["alpha"] = rng.normal(0.0, pr.baseline_sd, (n, s_n))
        return out

    def _control_rate_logit(self, fit: ContrastFit) -> np.ndarray:
        """Mean control logit over the studies with arm-level counts (the others have none)."""
        c = fit.data.contrasts
        counted = set(c.loc[~_reported(c), "study"])
        keep = [i for i, s in enumerate(fit.data.studies) if s in counted]
        return study_control_logits(fit)[:, keep].mean(axis=1)

    def _on_measure(self, fit: ContrastFit, delta: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Express log-OR draws on the fit's measure at control logits ``base``."""
        m = fit.data.measure
        if not fit.data.binary or m == "OR":
            return delta
        pc, pt = _expit(base), _expit(base + delta)
        return np.log(pt / pc) if m == "RR" else pt - pc

    def draws(self, fit: ContrastFit, quantity: str) -> np.ndarray:
        """Posterior draws of a named quantity (effects on the analysis scale)."""
        d, tau = flat(fit.idata, "d"), flat(fit.idata, "tau")
        rng = np.random.default_rng(fit.settings.seed)
        binary = fit.data.binary
        if quantity in ("or", "rr", "rd", "control_rate") and not binary:
            raise SpecError(f"'{quantity}' needs a binary outcome")
        base = self._control_rate_logit(fit) if binary else None
        if quantity == "effect":
            return self._on_measure(fit, d, base) if binary else d
        if quantity == "predictive_effect":
            spread = np.sqrt(tau ** 2 + sum(flat(fit.idata, f"sigma:{col}") ** 2
                                            for col in self.clusters))
            new = d + spread * rng.standard_normal(d.shape[0])
            return self._on_measure(fit, new, base) if binary else new
        if quantity == "tau":
            return tau
        if quantity == "or":
            return np.exp(d)
        if quantity == "rr":
            return _expit(base + d) / _expit(base)
        if quantity == "rd":
            return _expit(base + d) - _expit(base)
        if quantity == "control_rate":
            return _expit(base)
        if quantity.startswith("beta:") and self.has_terms:
            _, names, scales = self.terms(fit.data)
            if quantity.removeprefix("beta:") in names:
                j = names.index(quantity.removeprefix("beta:"))
                return flat(fit.idata, "beta")[:, j] * scales[j]
        if quantity.startswith("sigma:") and quantity.removeprefix("sigma:") in self.clusters:
            return flat(fit.idata, quantity)
        raise SpecError(f"model {self.name} has no quantity '{quantity}'; "
                        f"known: {', '.join(self.quantities)}")

    def summary(self, fit: ContrastFit) -> ContrastSummary:
        """Pooled and predictive effects, tau, per-study effects and a predictive check."""
        qs = ["effect", "predictive_effect", "tau"]
        if fit.data.binary:
            qs += ["or", "rr", "rd", "control_rate"]
        est = {q: summarize_draws(self.draws(fit, q)) for q in qs}
        eff = self.draws(fit, "effect")
        est["effect"]["p_exceeds"] = float(np.mean(eff > self.threshold))
        est["effect"]["threshold"] = self.threshold
        if self.has_terms:
            for name in self.terms(fit.data)[1]:
                b = self.draws(fit, f"beta:{name}")
                est[f"beta:{name}"] = dict(summarize_draws(b), p_positive=float(np.mean(b > 0)))
        for col in self.clusters:
            est[f"sigma:{col}"] = summarize_draws(self.draws(fit, f"sigma:{col}"))
        delta = flat(fit.idata, "delta")
        c = fit.data.contrasts
        rows = []
        if fit.data.binary:
            alpha = study_control_logits(fit)
            s_idx = c["study"].map({s: i for i, s in enumerate(fit.data.studies)}).to_numpy()
        reported = _reported(c)
        for j, rec in enumerate(c.to_dict("records")):
            dj = delta[:, j]
            if fit.data.binary and not reported[j]:
                dj = self._on_measure(fit, dj, alpha[:, s_idx[j]])
                observed = _observed_binary(rec, fit.data.measure)
            else:
                observed = (rec["yi"], rec["vi"])
            s = summarize_draws(dj)
            rows.append({"study": rec["study"], "arm": rec["arm"], "control": rec["control"],
                         "comparator": rec["comparator"], "time_h": rec["time_h"],
                         "design": rec["design"], "observed": observed[0],
                         "observed_se": float(np.sqrt(observed[1])) if observed[1] else None,
                         "shrunken_median": s["median"], "shrunken_ci_low": s["ci_low"],
                         "shrunken_ci_high": s["ci_high"]})
        e = est["effect"]
        sentence = (f"Pooled {fit.data.measure} ({fit.data.outcome}) {e['median']:.3f} "
                    f"(95% CrI {e['ci_low']:.3f} to {e['ci_high']:.3f}) from "
                    f"{len(c)} contrast(s) in {fit.data.k_studies} stud(ies).")
        return ContrastSummary(est, pd.DataFrame(rows), posterior_predictive_check(fit),
                               fit.diagnostics, sentence)


def study_control_logits(fit: ContrastFit) -> np.ndarray:
    """Draws x studies of each study's control-arm logit (``alpha_i - c_i``)."""
    c = fit.data.contrasts
    arm = ~_reported(c)
    s_idx = c["study"].map({s: i for i, s in enumerate(fit.data.studies)}).to_numpy()
    delta = flat(fit.idata, "delta")
    return control_logits(flat(fit.idata, "alpha"), delta[:, arm], s_idx[arm])


def _observed_binary(rec: dict, measure: str) -> tuple[float, float]:
    """Observed effect and variance of one 2x2 table (0.5 added only for zero cells)."""
    from ..stats.effects import log_odds_ratio, log_risk_ratio, risk_difference

    cells = ([rec["a"]], [rec["b"]], [rec["c"]], [rec["d"]])
    fn = {"OR": log_odds_ratio, "RR": log_risk_ratio, "RD": risk_difference}[measure]
    eff = fn(*cells)
    return float(eff.yi[0]), float(eff.vi[0])


def posterior_predictive_check(fit: ContrastFit) -> pd.DataFrame:
    """Replicate each observation from the posterior; two-sided predictive p-values.

    A p-value near 0 or 1 marks an arm or contrast the model does not reproduce.
    """
    rng = np.random.default_rng(fit.settings.seed + 1)
    c = fit.data.contrasts
    delta = flat(fit.idata, "delta")
    rows = []
    reported = _reported(c)
    if fit.data.binary:
        alpha = study_control_logits(fit)
        studies = fit.data.studies
        s_idx = c["study"].map({s: i for i, s in enumerate(studies)}).to_numpy()
        first = c[~reported].drop_duplicates("study")
        for rec in first.to_dict("records"):
            n = rec["c"] + rec["d"]
            rep = rng.binomial(n, _expit(alpha[:, studies.index(rec["study"])]))
            rows.append(_ppc_row(rec["study"], rec["control"], rec["c"], rep))
        for j, rec in enumerate(c.to_dict("records")):
            if reported[j]:
                continue
            rep = rng.binomial(rec["a"] + rec["b"], _expit(alpha[:, s_idx[j]] + delta[:, j]))
            rows.append(_ppc_row(rec["study"], rec["arm"], rec["a"], rep))
    for j, rec in enumerate(c.to_dict("records")):
        if fit.data.binary and not reported[j]:
            continue
        rep = delta[:, j] + rng.standard_normal(delta.shape[0]) * np.sqrt(rec["vi"])
        rows.append(_ppc_row(rec["study"], rec["arm"], rec["yi"], rep))
    return pd.DataFrame(rows)


def _ppc_row(study: str, arm: str, observed: float, replicated: np.ndarray) -> dict:
    p = float(np.mean(replicated > observed) + 0.5 * np.mean(replicated == observed))
    return {"study": study, "arm": arm, "observed": float(observed),
            "replicated_median": float(np.median(replicated)), "p_value": p,
            "flag": bool(p < 0.025 or p > 0.975)}


def kernel_model(*, binary: bool, study_index: np.ndarray, w_shared: np.ndarray,
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
    from ..sampling.precompiled import (
        TAU_KINDS,
        PrecompiledModel,
        Variable,
        kernel_buffer,
        kernel_header,
        log_choose,
    )

    s_n, c_n = len(studies), len(contrast_labels)
    x = np.zeros((c_n, 0)) if design is None else np.asarray(design, float).reshape(c_n, -1)
    p = x.shape[1]
    ya, na = (np.asarray(a, float) for a in active)
    if binary:
        yc, nc = (np.asarray(a, float) for a in control)
        third, control_cols = log_choose(na, ya), (yc, nc, log_choose(nc, yc))
    else:
        third, control_cols = np.asarray(shared_sd, float), (np.zeros(s_n),) * 3
    kind = TAU_KINDS[tau_kind]
    buf = kernel_buffer(kernel_header(1.0 if binary else 2.0, s=s_n, c=c_n, p=p, tau_kind=kind,
                          tau_scale=tau_scale, tau_loc=tau_loc, prior_sd=effect_sd,
                          base_sd=baseline_sd),
                  np.asarray(study_index, float), w_shared, w_own, ya, na, third,
                  *control_cols, x)
    coords: dict[str, list[Any]] = {"study": list(studies), "contrast": list(contrast_labels)}
    variables = [Variable("d", ()), Variable("tau", ())]
    if kind >= TAU_KINDS["turner2015"]:
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
    if kind >= TAU_KINDS["turner2015"]:
        init[1] = tau_loc
    return PrecompiledModel("contrast", buf, init.size, variables, coords, observed, init)
