"""A sampled model family for trialmeta: the normal-normal random-effects model in PyMC.

Each contrast's effect ``y_i`` (log odds ratio from 2x2 counts, or a mean difference) is
observed with its sampling variance ``v_i``::

    y_i     ~ Normal(theta_i, sqrt(v_i))
    theta_i = mu + tau * z_i,      z_i ~ Normal(0, 1)          (non-centred)
    mu      ~ Normal(0, effect_sd)                              (effect_sd = 2.5)
    tau     ~ HalfNormal(tau_scale)                             (tau_scale = 0.5)

It shows what a *sampled* family needs beyond the closed-form example
(``common_effect_family.py``): a :class:`~trialmeta.analysis.models.base.Model` whose
``build`` returns the PyMC model without sampling, a ``cache_token`` that names everything
the posterior depends on besides the sampler settings (so a cached posterior is reused only
for the same data and priors), the parameters the convergence gate checks
(``gate_names``), and a family whose ``run`` passes the gate's verdict to the claim. The
built-in ``--engine exact`` fits the same model by quadrature, which the tests use to check
this one. Load it with ``trialmeta --plugin docs/examples/random_effects_family.py ...``;
claims name it as ``model: normal-re``. See docs/extending.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from trialmeta.analysis.families.base import Family, FamilyRun
from trialmeta.analysis.models.base import Model
from trialmeta.analysis.sampling.inference import flat, summarize_draws

#: prior draws behind the verdict's "did the data move it" check
PRIOR_DRAWS = 8000


@dataclass(frozen=True)
class Effects:
    """What the model sees: one effect and its variance per contrast."""

    y: np.ndarray
    v: np.ndarray
    studies: tuple[str, ...]


@dataclass
class Fit:
    """A fitted model: the posterior and the gate's verdict."""

    idata: Any
    diagnostics: Any
    data: Effects


class NormalRandomEffects(Model):
    """The normal-normal random-effects model (see the module docstring)."""

    name = "normal-re"

    def __init__(self, effect_sd: float = 2.5, tau_scale: float = 0.5):
        self.effect_sd = effect_sd
        self.tau_scale = tau_scale

    def build(self, data: Effects):
        """Return the PyMC model (no sampling)."""
        import pymc as pm

        with pm.Model() as model:
            mu = pm.Normal("mu", 0.0, self.effect_sd)
            tau = pm.HalfNormal("tau", self.tau_scale)
            z = pm.Normal("z", 0.0, 1.0, shape=len(data.y))
            pm.Normal("y", mu + tau * z, np.sqrt(data.v), observed=data.y)
        return model

    def cache_token(self, data: Effects) -> str:
        """Return everything the posterior depends on besides the sampler settings."""
        digest = hashlib.sha256(np.concatenate([data.y, data.v]).tobytes()).hexdigest()
        return f"{self.name}|{self.effect_sd}|{self.tau_scale}|{digest}"

    def gate_names(self, data: Effects) -> list[str]:
        """Return the parameters the convergence gate checks (R-hat, bulk ESS)."""
        return ["mu", "tau"]

    def fit_result(self, data, idata, settings, diagnostics, provenance, built) -> Fit:
        """Return the fit object the family reads."""
        return Fit(idata, diagnostics, data)


class NormalRandomEffectsFamily(Family):
    """Random-effects pooling of active-vs-control contrasts, sampled with NUTS."""

    name = "normal-re"
    description = "normal-normal random effects on contrasts (PyMC, NUTS)"
    quantities = ("effect", "tau")
    prior_settings = ("effect_sd", "tau_scale")
    prior_cells = (("tau_scale", 2.0),)
    #: a claim may omit time_h: on a file without time points every row is used
    time_optional = True

    def run(self, records: Any, claim: Any, settings: Any, *,
            documents: bool = True) -> FamilyRun:
        """Select the claim's contrasts, fit, and give draws of ``effect`` and ``tau``."""
        from trialmeta.analysis.select.contrasts import contrast_effects, select_contrasts

        measure = claim.option("measure", "MD" if claim.outcome == "change" else "OR")
        data = select_contrasts(records, claim.outcome, measure, claim.window, claim.filters)
        # an empty selection has every column and no row: nothing to fit
        studies = sorted(set(data.contrasts["study"]))
        if len(studies) < max(claim.rule.min_studies, 1):
            return FamilyRun(self.name, None, studies)
        eff = contrast_effects(data)
        effects = Effects(np.asarray(eff.yi, float), np.asarray(eff.vi, float),
                          tuple(data.contrasts["study"]))
        priors = dict(claim.option("priors", ()))
        model = NormalRandomEffects(priors.get("effect_sd", 2.5), priors.get("tau_scale", 0.5))
        fit = model.fit(effects, settings, data_sha256=records.sha256)
        post = {"effect": flat(fit.idata, "mu"), "tau": flat(fit.idata, "tau")}
        rng = np.random.default_rng([settings.seed, 1])
        prior = {"effect": rng.normal(0.0, model.effect_sd, PRIOR_DRAWS),
                 "tau": np.abs(rng.normal(0.0, model.tau_scale, PRIOR_DRAWS))}
        doc = {"model": self.name, "measure": measure, "k": len(studies),
               "estimates": {q: summarize_draws(x) for q, x in post.items()},
               "priors": {"effect_sd": model.effect_sd, "tau_scale": model.tau_scale},
               "diagnostics": fit.diagnostics.as_dict()}
        return FamilyRun(self.name, doc if documents else None, studies,
                         draws=lambda q, c: post[q], prior_draws=lambda q, c: prior[q],
                         diagnostics_passed=fit.diagnostics.passed, posterior=fit.idata)

    def default_prior(self, claim: Any, setting: str) -> float:
        """Return a prior setting's default."""
        return {"effect_sd": 2.5, "tau_scale": 0.5}[setting]


TRIALMETA_FAMILIES = {"normal-re": NormalRandomEffectsFamily}
