"""dose-response: arm-level model of the effect of dose relative to control.

Binary outcomes::

    events_ij ~ Bin(n_ij, logit^-1(alpha_i + E_i(dose_ij) - mean_k E_i(dose_ik)))
    E_i(d) = (theta + tau * z_i) * g(d),   z_i ~ Normal(0, 1),   g(0) = 0

Continuous outcomes: ``y_ij ~ Normal(alpha_i + E_i(dose_ij) - mean_k E_i(dose_ik), se_ij)``.
Study means ``alpha_i`` absorb everything the arms of a study share (arms centred on the
study mean, so that no arm's prior is wider than another's: :mod:`..models.arms`);
``theta`` (the amplitude) is random across studies. Forms of ``g``:

- ``emax``:      g = d^h / (ED50^h + d^h)      (theta = Emax; h = 1 unless ``hill``)
- ``loglinear``: g = log(1 + d) / log(1 + d_max)   (MBNMAdose's log-linear form)
- ``linear``:    g = d / d_max
- ``piecewise``: monotone piecewise-linear through the observed doses, g(max dose) = 1,
  with Dirichlet(1) increments (theta = effect at the highest observed dose)

For the linear, log-linear and piecewise forms theta is the effect at the highest
observed dose d_max. Effects are on the log-odds scale (binary) or the outcome's scale (continuous).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SpecError
from ..sampling.inference import (
    Diagnostics,
    flat,
)
from ..sampling.settings import SamplerSettings
from ..select.doses import DoseData
from .arms import centring_matrix
from .base import Model

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

    from ..sampling.precompiled import PrecompiledModel

FORMS = ("emax", "loglinear", "linear", "piecewise")


def _reported_terms(c, s_idx: np.ndarray, amp, g) -> None:
    """Add reported contrasts: ``y ~ Normal(amp_i (g(d) - g(d_vs)) + shared_sd u_i, own_sd)``.

    Contrasts of one study sharing a comparator share its variance (``shared_var``) through
    ``u_i ~ Normal(0, 1)``, as in the contrast model.
    """
    from .contrast import reported_normal_terms

    shared = c["shared_var"].to_numpy(float)
    mean = amp[s_idx] * (g(c["dose"].to_numpy(float)) - g(c["vs_dose"].to_numpy(float)))
    reported_normal_terms(mean, s_idx, np.sqrt(shared),
                          np.sqrt(c["vi"].to_numpy(float) - shared), c["yi"].to_numpy(float))


@dataclass(frozen=True)
class DosePriors:
    """Default priors (scaled to the data where a scale is needed).

    ``amplitude_sd``: sd of the normal prior on the effect at the reference dose (2.5 on
    the log-odds or SMD scale, 10 for raw scale points); ``tau_scale``: half-normal scale
    of the between-study sd of the amplitude; ``ed50_sd``: sd of log ED50 around the
    median observed dose; ``hill_sd``: sd of log h; ``baseline_sd``: sd of alpha_i.
    """

    amplitude_sd: float = 2.5
    tau_scale: float = 0.5
    ed50_sd: float = 1.0
    hill_sd: float = 0.5
    baseline_sd: float = 2.5

    def as_dict(self) -> dict[str, float]:
        """Return the priors as a JSON-ready dict."""
        return asdict(self)


def default_dose_priors(data: DoseData) -> DosePriors:
    """Priors on the data's scale: raw-scale continuous outcomes get wider ones."""
    if data.binary or data.standardized:
        return DosePriors()
    return DosePriors(amplitude_sd=10.0, tau_scale=5.0, baseline_sd=50.0)


@dataclass
class DoseFit:
    """A fitted dose-response model."""

    model: str
    form: str
    hill: bool
    idata: az.InferenceData
    data: DoseData
    priors: DosePriors
    settings: SamplerSettings
    diagnostics: Diagnostics
    pymc_model: pm.Model | None = None
    reference: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


class DoseResponse(Model):
    """Hierarchical dose-response (Emax, log-linear, linear or monotone piecewise)."""

    name = "dose-response"
    description = "effect vs dose relative to control: Emax, log-linear, linear, piecewise"
    quantities = ("effect_at", "ed50", "theta", "tau")

    def __init__(self, form: str = "emax", *, hill: bool = False,
                 priors: DosePriors | None = None, moderators: tuple[str, ...] = (),
                 prior_overrides: tuple[tuple[str, float], ...] = ()):
        if form not in FORMS:
            raise SpecError(f"unknown dose-response form '{form}'; use one of {', '.join(FORMS)}")
        self.form, self.hill, self.priors = form, hill, priors
        self.moderators = tuple(moderators)
        self.prior_overrides = tuple(prior_overrides)

    def priors_for(self, data: DoseData) -> DosePriors:
        """Return the priors used on ``data``: given, or the data's defaults, with any overrides."""
        from dataclasses import replace

        return replace(self.priors or default_dose_priors(data), **dict(self.prior_overrides))

    def study_design(self, data: DoseData):
        """Moderators of the amplitude, one row per study (taken from its active arms)."""
        from ..select.moderators import design_matrix

        active = data.arms[data.arms["role"] == "active"]
        first = active.drop_duplicates("study").set_index("study").reindex(data.studies)
        design = design_matrix(first.reset_index(), self.moderators)
        if design.missing.any():
            raise SpecError("a moderator value is missing for some studies")
        return design

    def _reference(self, data: DoseData) -> dict[str, float]:
        doses = data.doses
        if len(doses) == 0:
            raise SpecError("no positive dose among the selected arms")
        return {"d_max": float(doses.max()), "d_mid": float(np.median(doses)),
                "knots": [0.0, *map(float, doses)]}

    def shape(self, d: np.ndarray, params: dict[str, np.ndarray], ref: dict) -> np.ndarray:
        """g(d) for parameter draws (broadcast over the leading draw axis)."""
        d = np.asarray(d, dtype=float)
        if self.form == "linear":
            return np.broadcast_to(d / ref["d_max"], np.broadcast(params["theta"][..., None],
                                                                  d).shape)
        if self.form == "loglinear":
            return np.broadcast_to(np.log1p(d) / np.log1p(ref["d_max"]),
                                   np.broadcast(params["theta"][..., None], d).shape)
        if self.form == "emax":
            h = params.get("hill", np.ones_like(params["ed50"]))[..., None]
            dh = np.power(d, h)
            return dh / (np.power(params["ed50"][..., None], h) + dh)
        knots = np.asarray(ref["knots"])
        cum = np.concatenate([np.zeros(params["w"].shape[:-1] + (1,)),
                              np.cumsum(params["w"], axis=-1)], axis=-1)
        return np.stack([np.interp(d, knots, c) for c in cum.reshape(-1, cum.shape[-1])]
                        ).reshape(cum.shape[:-1] + d.shape)

    def build(self, data: DoseData) -> pm.Model:
        """Build the PyMC model (no sampling)."""
        import pymc as pm

        priors = self.priors_for(data)
        ref = self._reference(data)
        arms = data.arms
        studies = data.studies
        index = {s: i for i, s in enumerate(studies)}
        coords = {"study": studies}
        if len(arms):
            coords["arm"] = [f"{s} {a}" for s, a in zip(arms["study"], arms["arm"], strict=True)]
        c = data.contrasts
        if len(c):
            coords["reported_contrast"] = [f"{s} {a} vs {v}" for s, a, v in
                                           zip(c["study"], c["arm"], c["vs"], strict=True)]
        with pm.Model(coords=coords) as model:
            theta = pm.Normal("theta", 0.0, priors.amplitude_sd)
            tau = pm.HalfNormal("tau", priors.tau_scale)
            z = pm.Normal("z", 0.0, 1.0, dims="study")
            amp = theta + tau * z
            if self.moderators:
                design = self.study_design(data)
                beta = pm.Normal("beta", 0.0, priors.amplitude_sd, shape=len(design.names))
                amp = amp + pm.math.dot(design.x, beta)
            g = self._curve_tensor(ref, priors)
            alpha = pm.Normal("alpha", 0.0, priors.baseline_sd, dims="study")
            if len(arms):
                s_idx = arms["study"].map(index).to_numpy()
                g_arm = g(arms["dose"].to_numpy(float))
                # arms centred on their study's mean (models.arms): symmetric baselines
                g_centred = g_arm - pm.math.dot(centring_matrix(s_idx, len(studies)),
                                                g_arm)[s_idx]
                eta = alpha[s_idx] + amp[s_idx] * g_centred
                if data.binary:
                    pm.Binomial("events", n=arms["n"].to_numpy(), logit_p=eta,
                                observed=arms["events"].to_numpy(), dims="arm")
                else:
                    pm.Normal("y", mu=eta, sigma=arms["se"].to_numpy(float),
                              observed=arms["y"].to_numpy(float), dims="arm")
            if len(c):
                _reported_terms(c, c["study"].map(index).to_numpy(), amp, g)
        return model

    def _curve_tensor(self, ref: dict, priors: DosePriors):
        """Create the curve's parameters in the current model; return g as a function of dose."""
        import pymc as pm
        import pytensor.tensor as pt

        if self.form == "linear":
            return lambda dose: dose / ref["d_max"]
        if self.form == "loglinear":
            return lambda dose: np.log1p(dose) / np.log1p(ref["d_max"])
        if self.form == "emax":
            log_ed50 = pm.Normal("log_ed50", np.log(ref["d_mid"]), priors.ed50_sd)
            ed50 = pm.Deterministic("ed50", pt.exp(log_ed50))
            h = pm.Deterministic("hill", pt.exp(pm.Normal("log_hill", 0.0, priors.hill_sd))
                                 ) if self.hill else 1.0

            def emax(dose: np.ndarray):
                dh = pt.power(dose, h)
                return dh / (pt.power(ed50, h) + dh)
            return emax
        knots = np.asarray(ref["knots"])
        w = pm.Dirichlet("w", a=np.ones(len(knots) - 1))
        return lambda dose: pt.dot(segment_weights(dose, knots), w)

    def _precompilable(self, data: DoseData) -> bool:
        """Arm-level data; forms linear, loglinear, piecewise, emax without Hill, of this class."""
        return (self.form in FORMS and not self.hill
                and type(self).build is DoseResponse.build and data.contrasts.empty)

    def precompiled(self, data: DoseData) -> PrecompiledModel:
        """Return the same model for the precompiled (numba) sampler."""
        if not data.contrasts.empty:
            raise SpecError("internal: the precompiled dose-response model takes arm-level "
                            "data only (reported contrasts go through the PyMC model)")
        priors = self.priors_for(data)
        ref = self._reference(data)
        arms = data.arms
        dose = arms["dose"].to_numpy(float)
        g = {"linear": dose / ref["d_max"],
             "loglinear": np.log1p(dose) / np.log1p(ref["d_max"])}.get(self.form)
        binary = data.binary
        return kernel_model(
            binary=binary, form=self.form,
            study_index=arms["study"].map({s: i for i, s in enumerate(data.studies)}).to_numpy(),
            studies=list(data.studies),
            arm_labels=[f"{s} {a}" for s, a in zip(arms["study"], arms["arm"], strict=True)],
            y=arms["events" if binary else "y"].to_numpy(float),
            n_or_se=arms["n" if binary else "se"].to_numpy(float), dose=dose, g=g,
            design=self.study_design(data).x if self.moderators else None,
            amplitude_sd=priors.amplitude_sd, tau_scale=priors.tau_scale,
            baseline_sd=priors.baseline_sd, log_ed50_mean=float(np.log(ref["d_mid"])),
            ed50_sd=priors.ed50_sd,
            segments=segment_weights(dose, ref["knots"]) if self.form == "piecewise" else None)

    def kernel(self, data: DoseData) -> Callable[[], PrecompiledModel] | None:
        """Return the precompiled twin's builder for the forms that have a kernel."""
        return (lambda: self.precompiled(data)) if self._precompilable(data) else None

    def cache_token(self, data: DoseData) -> str:
        """Return the model, form, moderators, outcome, priors, arms and contrasts."""
        return "|".join([self.name, self.form, str(self.hill), repr(self.moderators),
                         data.outcome,
                         str(data.standardized),
                         repr(self.priors_for(data).as_dict()),
                         data.arms.to_csv(index=False), data.contrasts.to_csv(index=False)])

    def gate_names(self, data: DoseData) -> list[str]:
        """Return theta and tau, ED50 (and Hill) of an Emax curve, moderator coefficients."""
        return ["theta", "tau"] + (["ed50"] if self.form == "emax" else []) + (
            ["hill"] if self.form == "emax" and self.hill else []) + (
            ["beta"] if self.moderators else [])

    def record(self, data: DoseData, settings: SamplerSettings, data_sha256: str,
               versions: dict[str, str]) -> dict[str, Any]:
        """Return the model, form, data hash, priors, sampler, seed and versions."""
        return {"trialmeta_model": self.name, "form": self.form,
                "data_sha256": data_sha256, "priors": repr(self.priors_for(data).as_dict()),
                "sampler": repr(settings.as_dict()), "seed": settings.seed,
                "versions": repr(versions)}

    def fit_result(self, data: DoseData, idata: Any, settings: SamplerSettings,
                   diagnostics: Diagnostics, provenance: dict[str, Any],
                   built: Any) -> DoseFit:
        """Return the dose-response fit."""
        return DoseFit(self.name, self.form, self.hill, idata, data, self.priors_for(data),
                       settings, diagnostics, built, self._reference(data), provenance)

    def params(self, fit: DoseFit) -> dict[str, np.ndarray]:
        """Posterior draws of the parameters that define the mean curve."""
        out = {"theta": flat(fit.idata, "theta"), "tau": flat(fit.idata, "tau")}
        for name in ("ed50", "hill", "w"):
            if name in fit.idata.posterior:
                out[name] = flat(fit.idata, name)
        return out

    def effect(self, fit: DoseFit, doses: np.ndarray) -> np.ndarray:
        """Draws of the mean effect relative to control at each dose (draws x doses)."""
        p = self.params(fit)
        return p["theta"][:, None] * self.shape(np.asarray(doses, float), p, fit.reference)

    def prior_params(self, fit: DoseFit, n: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw the curve parameters (and moderator coefficients) from their priors."""
        out = self._prior_curve(fit, n, rng)
        if self.moderators:
            out["beta"] = rng.normal(0.0, fit.priors.amplitude_sd,
                                     (n, len(self.study_design(fit.data).names)))
        return out

    def prior_draws(self, fit: DoseFit, n: int = 4000) -> dict[str, np.ndarray]:
        """Draws from the priors of the curve parameters (for prior-vs-posterior checks)."""
        return self._prior_curve(fit, n, np.random.default_rng(fit.settings.seed + 7))

    def _prior_curve(self, fit: DoseFit, n: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
        pr, ref = fit.priors, fit.reference
        out = {"theta": rng.normal(0, pr.amplitude_sd, n),
               "tau": np.abs(rng.normal(0, pr.tau_scale, n))}
        if self.form == "emax":
            out["ed50"] = np.exp(rng.normal(np.log(ref["d_mid"]), pr.ed50_sd, n))
            if self.hill:
                out["hill"] = np.exp(rng.normal(0, pr.hill_sd, n))
        if self.form == "piecewise":
            out["w"] = rng.dirichlet(np.ones(len(ref["knots"]) - 1), n)
        return out


def segment_weights(dose: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Doses x segments: how much of each segment between knots lies below each dose.

    The piecewise curve at a dose is these weights times the segments' increments ``w``
    (the PyMC model and the precompiled kernel both use them); doses lie within the knots.
    """
    knots = np.asarray(knots, float)
    k_n = knots.size - 1
    dose = np.asarray(dose, float)
    pos = np.clip(np.searchsorted(knots, dose, side="right") - 1, 0, k_n - 1)
    frac = (dose - knots[pos]) / (knots[pos + 1] - knots[pos])
    m = np.arange(k_n)[None, :]
    return np.where(m < pos[:, None], 1.0, np.where(m == pos[:, None], frac[:, None], 0.0))


def _summ(x: np.ndarray) -> dict[str, float]:
    from ..sampling.inference import summarize_draws

    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return summarize_draws(x) if len(x) > 1 else {}


def _dose_key(d: float) -> str:
    return f"effect_at_{d:g}"


def dose_summary(model: DoseResponse, fit: DoseFit, *, doses: tuple[float, ...] = (),
                 compare: tuple[float, float] | None = None, delta: float = 0.0,
                 threshold: float | None = None, direction: int = 1) -> dict[str, Any]:
    """Compute derived quantities, the curve, prior-vs-posterior contraction, warnings.

    ``direction`` is +1 when larger effects are better (log OR of response) and -1 when
    smaller are better (change on a depression scale); thresholds and comparisons are
    read in the direction of benefit.
    """
    ref = fit.reference
    d_max = ref["d_max"]
    doses = tuple(doses) or tuple(float(x) for x in fit.data.doses)
    est: dict[str, dict[str, float]] = {}
    eff = model.effect(fit, np.array(doses))
    for j, d in enumerate(doses):
        est[_dose_key(d)] = _summ(eff[:, j])
    p = model.params(fit)
    est["theta"] = _summ(p["theta"])
    est["tau"] = _summ(p["tau"])
    grid = np.linspace(0.0, 2 * d_max, 801)[1:]
    curve = model.effect(fit, grid)
    if "ed50" in p:
        est["ed50"] = _summ(p["ed50"])
    else:  # dose reaching half of the effect at d_max, from the shape
        g = model.shape(grid, p, ref)
        idx = np.argmax(g >= 0.5, axis=1)
        est["ed50"] = _summ(np.where(g.max(axis=1) >= 0.5, grid[idx], np.nan))
    if "hill" in p:
        est["hill"] = _summ(p["hill"])
    if model.moderators and "beta" in fit.idata.posterior:
        betas = flat(fit.idata, "beta")
        for j, name in enumerate(model.study_design(fit.data).names):
            est[f"beta:{name}"] = dict(_summ(betas[:, j]),
                                       p_positive=float(np.mean(betas[:, j] > 0)))
    extra: dict[str, Any] = {}
    if compare is not None:
        lo, hi = compare
        e = model.effect(fit, np.array([lo, hi]))
        diff = direction * (e[:, 1] - e[:, 0])
        key = f"p_effect_{hi:g}_minus_{lo:g}_gt_{delta:g}"
        extra[key] = float(np.mean(diff > delta))
        est[f"difference_{hi:g}_vs_{lo:g}"] = _summ(e[:, 1] - e[:, 0])
    if threshold is not None:
        reached = direction * curve >= threshold
        first = np.where(reached.any(axis=1), grid[np.argmax(reached, axis=1)], np.nan)
        est["dose_for_threshold"] = _summ(first)
        extra["p_threshold_reached_by_2x_max_dose"] = float(np.mean(np.isfinite(first)))
        for d in doses:
            e = model.effect(fit, np.array([d]))[:, 0]
            extra[f"p_effect_at_{d:g}_below_threshold"] = float(np.mean(direction * e < threshold))
    prior = model.prior_draws(fit)
    contraction = {}
    for name in ("theta", "tau", "ed50", "hill"):
        if name in p and name in prior:
            tr = np.log if name in ("ed50", "hill") else (lambda x: x)
            vp, vq = np.var(tr(p[name])), np.var(tr(prior[name]))
            contraction[name] = float(1 - vp / vq) if vq > 0 else None
    warnings = []
    for name, c in contraction.items():
        if c is not None and c < 0.5:
            warnings.append(f"{name} is weakly identified (posterior variance is "
                            f"{100 * (1 - c):.0f}% of the prior's): it mostly restates the prior")
    n_doses = len(fit.data.doses)
    need = {"emax": 3 if fit.hill else 2, "loglinear": 1, "linear": 1,
            "piecewise": 1}[fit.form]
    if n_doses < need:
        warnings.append(f"only {n_doses} distinct non-zero dose(s): the {fit.form} shape "
                        "cannot be identified from the data; its shape comes from the prior")
    outside = [d for d in doses if d > d_max or (d < min(fit.data.doses) and d > 0)]
    if outside:
        warnings.append("effects at " + ", ".join(f"{d:g}" for d in outside)
                        + f" {fit.data.unit} lie outside the observed doses "
                        f"({min(fit.data.doses):g}-{d_max:g}): extrapolated from the form")
    band = np.quantile(curve, [0.025, 0.5, 0.975], axis=0)
    return {"estimates": est, "probabilities": extra, "contraction": contraction,
            "warnings": warnings,
            "curve": {"dose": grid.tolist(), "median": band[1].tolist(),
                      "ci_low": band[0].tolist(), "ci_high": band[2].tolist()}}


def kernel_model(*, binary: bool, form: str, study_index: np.ndarray, studies: list[str],
                  arm_labels: list[str], y: np.ndarray, n_or_se: np.ndarray, dose: np.ndarray,
                  g: np.ndarray | None, design: np.ndarray | None, amplitude_sd: float,
                  tau_scale: float, baseline_sd: float, log_ed50_mean: float,
                  ed50_sd: float, segments: np.ndarray | None = None) -> PrecompiledModel:
    """Dose-response (forms linear, loglinear with ``g`` given; emax without Hill; piecewise).

    The piecewise form takes each arm's ``segments`` (arms x segments, from
    :func:`~trialmeta.analysis.models.dose_response.segment_weights`): its g is those
    weights times the increments ``w``.
    """
    from ..sampling.kernels_curves import DOSE_PIECEWISE, EMAX, LINEAR, LOGLINEAR
    from ..sampling.precompiled import (
        PrecompiledModel,
        Variable,
        kernel_buffer,
        kernel_header,
        log_choose,
    )

    s_n, a_n = len(studies), len(arm_labels)
    x = np.zeros((s_n, 0)) if design is None else np.asarray(design, float).reshape(s_n, -1)
    p = x.shape[1]
    y, n_or_se = np.asarray(y, float), np.asarray(n_or_se, float)
    lc = log_choose(n_or_se, y) if binary else np.zeros(a_n)
    code = {"linear": LINEAR, "loglinear": LOGLINEAR, "emax": EMAX,
            "piecewise": DOSE_PIECEWISE}[form]
    coef = np.zeros((a_n, 0)) if segments is None else np.asarray(segments, float)
    k_n = coef.shape[1]
    buf = kernel_buffer(kernel_header(3.0 if binary else 4.0, s=s_n, c=a_n, p=p, k=k_n, form=code,
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
