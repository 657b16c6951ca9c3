"""The network family: every treatment against every other, across trials.

Class, runner and the quantities of a network claim (effects, SUCRA, tau).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..claims.spec import Claim
from ..errors import SpecError
from ..io.records import Records
from ..sampling.inference import flat
from ..sampling.settings import SamplerSettings
from .base import FamilyRun
from .common import (
    PRIOR_DRAWS,
    BuiltinFamily,
    _events_into_arms,
    _shown,
)


class NetworkFamily(BuiltinFamily):
    """Arm-based random-effects network meta-analysis (NICE TSD2)."""

    name = "network"
    description = "network meta-analysis: every treatment against every other"
    quantities = ("effect:A", "effect:A:B", "tau", "sucra:A")
    options = frozenset({"reference", "node", "inert"})
    prior_settings = ("effect_sd", "baseline_sd")
    prior_cells = (("effect_sd", 2.0), ("baseline_sd", 2.0))
    tau_prior = True



    def measure(self, claim: Claim) -> str:
        """Return the claim's measure: by default OR for counts, MD for a change in a scale."""
        return claim.option("measure", "MD" if claim.outcome == "change" else "OR")

    def describe_priors(self, model: str, priors: dict[str, Any], measure: str) -> str:
        """Describe the network priors as distributions."""
        g, tau = _shown(priors), priors.get("tau") or {}
        return (f"d (each treatment vs the reference) ~ N(0, {g['effect_sd']}); study "
                f"baselines ~ N(0, {g['baseline_sd']}); τ: {tau.get('label', tau)}; "
                "multi-arm random effects correlated 0.5")

    def run(self, records: Records, claim: Claim, settings: SamplerSettings, *,
            documents: bool = True) -> FamilyRun:
        """Select the claim's records and fit (:func:`run_network`)."""
        return run_network(records, claim, settings, documents=documents)

    def check_quantity(self, quantity: str, options: dict[str, Any]) -> str | None:
        """Accept ``effect:A`` (vs the reference), ``effect:A:B``, ``sucra:A`` and tau."""
        head, _, rest = quantity.partition(":")
        parts = rest.split(":") if rest else []
        if quantity == "tau" or (head == "sucra" and len(parts) == 1) or (
                head == "effect" and len(parts) in (1, 2) and len(set(parts)) == len(parts)):
            return None
        return super().check_quantity(quantity, options)

    def check_options(self, options: dict[str, Any], fail: Any) -> None:
        """Check the reference, the node kind and the inert controls."""
        from ..models.network import NODES

        for key in ("reference", "node"):
            if key in options and not isinstance(options[key], str):
                raise fail(key, f"must be text, got {options[key]!r}")
        if options.get("node", "treatment") not in NODES:
            raise fail("node", f"use one of {', '.join(NODES)}")
        if "inert" in options:
            v = options["inert"]
            names = v if isinstance(v, list) else [v]
            if len(names) < 2 or not all(isinstance(x, str) for x in names):
                raise fail("inert", "must be a list of two or more treatment names")
            options["inert"] = tuple(names)
        if options.get("measure", "OR") not in ("OR", "MD"):
            raise fail("measure", "network claims use OR (counts) or MD (change)")

    def default_prior(self, claim: Claim, setting: str) -> float:
        """Return the default of a network prior setting for the claim's measure."""
        from ..models.network import default_network_priors

        return float(getattr(default_network_priors(self.measure(claim)), setting))

    sbc_quantities = (("d[first treatment]", "d_free", 0), ("tau", "tau", None),
                      ("mu[first study]", "mu", 0))

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:
        """Select the depression network: treatments as nodes, inert controls pooled."""
        from ..models.network import Network, select_network
        from ..select.filters import Filters, TimeWindow

        data = select_network(records, spec.outcome, "OR", TimeWindow.around(spec.time_h),
                              Filters(domain=("depression",)), reference="placebo",
                              node="treatment", inert=("placebo", "saline"))
        return Network(), data, len(data.studies)

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:
        """Put the simulated events into the arms."""
        return _events_into_arms(data, simulated)

    def report_item(self, run: FamilyRun, fid: str, claim_ids: list[str]
                    ) -> tuple[str, dict[str, Any]]:
        """Graph, effects with SUCRA, league table and the inconsistency checks."""
        return "sections", {"renderer": "network", "doc": run.doc, "id": fid,
                            "claims": claim_ids}


def network_setup(records: Records, claim: Claim):
    """Return the network model a claim asks for and the arms it selects."""
    from ..models.network import Network, default_network_priors, select_network
    from ..stats.priors import heterogeneity_prior

    measure = NetworkFamily().measure(claim)
    data = select_network(records, claim.outcome, measure, claim.window, claim.filters,
                          reference=claim.option("reference", "placebo"),
                          node=claim.option("node", "treatment"),
                          inert=tuple(claim.option("inert", ())))
    tau = claim.option("tau_prior")
    priors = default_network_priors(measure, heterogeneity_prior(tau) if tau else None)
    return Network(replace(priors, **dict(claim.option("priors", ())))), data


def network_quantity(d: np.ndarray, tau: np.ndarray, nodes: list[str], q: str,
                     higher_is_better: bool) -> np.ndarray:
    """Draws of ``effect:A`` (vs the reference), ``effect:A:B``, ``sucra:A`` or ``tau``.

    ``d`` holds draws x nodes of the effects against the reference (column 0 is zero).
    """
    head, _, rest = q.partition(":")
    if q == "tau":
        return tau
    names = rest.split(":")
    if head == "effect":
        a = d[:, nodes.index(names[0])]
        return a if len(names) == 1 else a - d[:, nodes.index(names[1])]
    score = d if higher_is_better else -d  # SUCRA of one draw: the share of others it beats
    beaten = (score[:, [nodes.index(names[0])]] > score).sum(axis=1)
    return beaten / (len(nodes) - 1)


def run_network(records: Records, claim: Claim, settings: SamplerSettings, *,
                documents: bool = True) -> FamilyRun:
    """Fit the network a claim asks for (effects between nodes, SUCRA, tau)."""
    from ..models.network import (
        PARETO_K_LIMIT,
        SPLIT_P_LIMIT,
        Network,
        checked_document,
        fragile_support,
        has_loops,
        inconsistency,
        informing_studies,
        node_split,
        prior_effects,
        split_data,
        splittable,
    )

    try:
        model, data = network_setup(records, claim)
    except SpecError as exc:
        return FamilyRun("network", None, [], reason=str(exc))
    studies = sorted(data.all_studies)
    if len(studies) < claim.rule.min_studies:
        return FamilyRun("network", None, studies)
    fit = model.fit(data, settings, data_sha256=records.sha256)
    better = claim.outcome != "change"
    doc = (checked_document(fit, settings, better, data_sha256=records.sha256)
           if documents else None)
    prior_d, prior_tau = prior_effects(data, model.priors, PRIOR_DRAWS,
                                       np.random.default_rng([settings.seed, 0x5EED]))
    post_d, post_tau = flat(fit.idata, "d"), flat(fit.idata, "tau")

    def missing(q: str) -> list[str]:
        return [n for n in q.partition(":")[2].split(":") if q != "tau" and
                n not in data.nodes]

    def unidentified(q: str, c: Claim) -> str | None:
        head, _, rest = q.partition(":")
        named = [] if q == "tau" else rest.split(":")
        if missing(q):
            return (f"{', '.join(missing(q))} is not a node of the network connected to "
                    f"{data.reference} (nodes: {', '.join(data.nodes)}); trials comparing it "
                    "with a connected treatment would settle it")
        if head != "effect":
            return None
        a, b = named if len(named) == 2 else (named[0], data.reference)
        alone = fragile_support(data, a, b, c.rule.min_studies)
        if alone:
            return (f"the comparison of {a} and {b} rests on {', '.join(alone)} alone: "
                    f"without {'it' if len(alone) == 1 else 'them'} the network does not "
                    f"connect the two (studies informing it: "
                    f"{', '.join(informing_studies(data, a, b))}); at least "
                    f"{c.rule.min_studies} independent trials should link them")
        return None

    checks: dict[Any, Any] = {}  # the consistency checks, fitted on first need

    def doubt(q: str, c: Claim) -> tuple[str, str] | None:
        """Direct and indirect evidence that disagree about a compared pair."""
        head, _, rest = q.partition(":")
        if head != "effect" or missing(q):
            return None
        named = rest.split(":")
        a, b = named if len(named) == 2 else (named[0], data.reference)
        pair = next((p for p in splittable(data) if set(p) == {a, b}), None)
        if pair is not None:
            if pair not in checks:
                checks[pair] = node_split(Network(model.priors, split=pair).fit(
                    split_data(data, pair), settings, data_sha256=records.sha256))
            ns = checks[pair]
            if ns["p_value"] < SPLIT_P_LIMIT:
                def est(s: dict[str, float]) -> str:
                    return f"{s['median']:.2f} ({s['ci_low']:.2f} to {s['ci_high']:.2f})"
                return ("inconsistent", f"direct and indirect evidence on {ns['comparison']} "
                        f"disagree: direct {est(ns['direct'])}, indirect "
                        f"{est(ns['indirect'])} (node-split p {ns['p_value']:.3g} < "
                        f"{SPLIT_P_LIMIT:g})")
        if has_loops(data):
            if "ume" not in checks:
                checks["ume"] = inconsistency(fit, Network(model.priors, ume=True).fit(
                    data, settings, data_sha256=records.sha256))
            inc = checks["ume"]
            if inc["inconsistency_flagged"] and inc["pareto_k_max"] <= PARETO_K_LIMIT:
                return ("inconsistent", "the unrelated-mean-effects model fits the network's "
                        "loops better than the consistency model (elpd difference "
                        f"{inc['elpd_difference_ume_minus_consistency']:.2f}, SE "
                        f"{inc['se_difference']:.2f})")
        return None

    return FamilyRun("network", doc, studies,
                     lambda q, c: None if missing(q) else
                     network_quantity(post_d, post_tau, data.nodes, q, better),
                     unidentified, fit.diagnostics.passed, doubt=doubt,
                     posterior=fit.idata,
                     prior_draws=lambda q, c: None if missing(q) else
                     network_quantity(prior_d, prior_tau, data.nodes, q, better))
