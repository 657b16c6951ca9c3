"""The report's sensitivity table for each descriptive comparison.

The comparison pooled over all controls under other priors on tau, crossover handling and
evidence tiers (exact normal-normal posteriors, no Monte Carlo error).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..claims.spec import ClaimsFile
from ..io.records import Records
from ..select.filters import data_variants


def sensitivity(records: Records, claims: ClaimsFile) -> list[dict[str, Any]]:
    """How the first contrast moves with the prior on tau, crossover handling and evidence tier.

    Uses the exact normal-normal engine (no Monte Carlo error), pooled over all controls.
    """
    from dataclasses import replace

    from ..models.contrast import contrast_unit, default_priors
    from ..select.contrasts import contrast_effects, select_contrasts
    from ..stats.exact import exact_normal_normal
    from ..stats.priors import heterogeneity_prior

    if not claims.contrasts:
        return []
    out = []
    for spec in claims.contrasts:
        union = tuple(dict.fromkeys(t for _, ts in spec.comparators for t in ts))
        unit = contrast_unit(select_contrasts(records, spec.outcome, spec.measure, spec.window,
                                              spec.filters, comparator=union))
        main_tau = default_priors(spec.measure, unit=unit).tau
        scale_prior = {"OR": ("Turner 2015 (mental health, log OR)", "turner2015"),
                       "RR": ("Turner 2015 (mental health, log OR)", "turner2015"),
                       "SMD": ("Rhodes 2015 (mental health, SMD)", "rhodes2015")}
        variants = [(f"main analysis ({main_tau.label or main_tau.kind})", spec.filters,
                     "keep", None)]
        t = records.table
        # an informative prior only on the scale it was made, and for rating-scale outcomes
        # (Turner's and Rhodes's priors are for mental-health outcomes)
        if spec.measure in scale_prior and t["scale"].notna().any():
            name, key = scale_prior[spec.measure]
            variants.append((f"prior on tau: {name}", spec.filters, "keep", key))
        wide = 2 * main_tau.scale
        variants.append((f"prior on tau: half-normal {wide:g} (twice the main scale)",
                         spec.filters, "keep", f"half-normal:{wide:g}"))
        can = data_variants(t)  # a variant that changes nothing is noise
        if "crossover" in can:
            variants.append(("crossover trials excluded", spec.filters, "exclude", None))
        if "evidence" in can:
            variants.append(("primary evidence only",
                             replace(spec.filters, evidence=("primary",)), "keep", None))
        rows = []
        for label, filters, crossover, prior in variants:
            data = select_contrasts(records, spec.outcome, spec.measure, spec.window, filters,
                                    comparator=union, crossover=crossover)
            if data.k_studies == 0:
                rows.append({"variant": label, "k": 0, "status": "no studies"})
                continue
            priors = default_priors(data.measure,
                                    heterogeneity_prior(prior) if prior else None, unit=unit)
            eff = contrast_effects(data)
            post = exact_normal_normal(eff.yi, eff.vi, tau_prior=priors.tau,
                                       mu_prior=(0.0, priors.effect_sd))
            row = {"variant": label, "k": data.k_studies, "status": "fitted",
                   "median": post.mu["median"], "ci_low": post.mu["ci_low"],
                   "ci_high": post.mu["ci_high"], "tau_median": post.tau["median"]}
            if spec.measure in ("OR", "RR"):
                row.update(ratio_median=float(np.exp(post.mu["median"])),
                           ratio_ci_low=float(np.exp(post.mu["ci_low"])),
                           ratio_ci_high=float(np.exp(post.mu["ci_high"])))
            rows.append(row)
        out.append({"id": spec.id, "title": spec.title, "measure": spec.measure,
                    "engine": "exact normal-normal (quadrature), shared controls split",
                    "rows": rows})
    return out
