"""A model family for trialmeta: common-effect (fixed-effect) pooling with a normal prior.

Every contrast estimates one true effect ``d``; with ``y_i ~ Normal(d, v_i)`` and the prior
``d ~ Normal(0, effect_sd)`` the posterior is normal in closed form (no sampler)::

    precision = 1 / effect_sd**2 + sum(1 / v_i)
    mean      = sum(y_i / v_i) / precision

Contrasts are log odds ratios from 2x2 counts (0.5 added to every cell of a table with a
zero) or reported mean differences. Load it with ``trialmeta --plugin
docs/examples/common_effect_family.py ...``; claims name it as ``model: common-effect``.
See docs/extending.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from trialmeta.analysis.families.base import Family, FamilyRun
from trialmeta.analysis.sampling.inference import summarize_draws

#: draws of d from its posterior and from its prior (exact: no Monte Carlo chains)
DRAWS = 8000


def pooled(y: np.ndarray, v: np.ndarray, prior_sd: float) -> tuple[float, float]:
    """Return the posterior mean and SD of the common effect."""
    precision = 1.0 / prior_sd**2 + np.sum(1.0 / v)
    return float(np.sum(y / v) / precision), float(precision ** -0.5)


class CommonEffect(Family):
    """Common-effect meta-analysis of active-vs-control contrasts."""

    name = "common-effect"
    description = "common-effect pooling of contrasts, normal prior, closed form"
    quantities = ("effect",)
    prior_settings = ("effect_sd",)
    prior_cells = (("effect_sd", 2.0),)
    effect_sd = 2.5
    #: a claim may omit time_h: on a file without time points every row is used, unwindowed
    time_optional = True

    def run(self, records: Any, claim: Any, settings: Any, *,
            documents: bool = True) -> FamilyRun:
        """Select the claim's contrasts and draw the common effect exactly."""
        from trialmeta.analysis.select.contrasts import select_contrasts
        from trialmeta.analysis.stats.effects import log_odds_ratio

        measure = claim.option("measure", "MD" if claim.outcome == "change" else "OR")
        data = select_contrasts(records, claim.outcome, measure, claim.window, claim.filters)
        c = data.contrasts
        if data.binary:
            e = log_odds_ratio(c["a"], c["b"], c["c"], c["d"])
            y, v = np.asarray(e.yi, float), np.asarray(e.vi, float)
        else:
            y, v = c["yi"].to_numpy(float), c["vi"].to_numpy(float)
        keep = np.isfinite(y) & np.isfinite(v)
        studies = sorted(set(c.loc[keep, "study"]))
        if len(studies) < claim.rule.min_studies:
            return FamilyRun(self.name, None, studies)
        prior_sd = dict(claim.option("priors", ())).get("effect_sd", self.effect_sd)
        mean, sd = pooled(y[keep], v[keep], prior_sd)
        rng = np.random.default_rng(settings.seed)
        post = rng.normal(mean, sd, DRAWS)
        prior = rng.normal(0.0, prior_sd, DRAWS)
        doc = {"model": self.name, "measure": measure, "k": len(studies),
               "estimates": {"effect": summarize_draws(post)},
               "exact": {"mean": mean, "sd": sd},
               "priors": {"effect_sd": prior_sd},
               "diagnostics": {"passed": True, "note": "closed form: no sampler"}}
        return FamilyRun(self.name, doc if documents else None, studies,
                         draws=lambda q, c: post, diagnostics_passed=True,
                         prior_draws=lambda q, c: prior)

    def default_prior(self, claim: Any, setting: str) -> float:
        """Return the prior SD of the effect."""
        return self.effect_sd


TRIALMETA_FAMILIES = {"common-effect": CommonEffect}
