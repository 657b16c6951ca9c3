"""Operating characteristics of the decision rule at the bundled designs.

How often does a claim get each verdict when the truth is known? For a claim, each
*world* plants the parameters the claim is about (the pooled rate in the middle of the
claim's region, or half a region's width below or above it; a pooled log odds ratio of 0.7
or of 0), simulates new counts for exactly the arms, patients and studies the claim's fit
uses (with the family's PyMC model; a contrast's control rates are planted at the observed
ones, every other parameter is drawn from its prior), writes
them into a copy of the records, and runs the whole claims engine on it (fit at the report's
settings, prior draws, identifiability checks, draw extension near a threshold). Over many
simulations this estimates P(supported | claim true), P(contradicted | claim true) and
P(supported | claim false), with Clopper-Pearson intervals.

Covered: pooled-rate claims on ``pooled_rate`` with a finite region, pooled-rate claims on a
moderator coefficient ``beta:TERM`` with the region [0, inf) or (-inf, 0] (a log odds ratio
of 0.7 or 0 planted for the term, the other coefficients at 0, the reference rate at 50 %),
and contrast claims on ``effect`` with the region [0, inf) and binary outcomes. Each
simulation is one engine task with its own seed, cached like the calibration's.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..claims.spec import Claim, ClaimsFile
from ..errors import SpecError
from ..families.registry import family_name
from ..io.provenance import package_versions
from ..io.records import Records
from ..sampling.settings import SamplerSettings
from ..select.filters import COUNT_COLUMN
from .calibration import clopper_pearson
from .engine import Task, task_key

#: the heterogeneity planted in every world (logit scale; log OR scale)
PLANTED_TAU = {"pooled-rate": 0.5, "contrast": 0.3}
#: the pooled log odds ratio of the "claim true" world of an effect > 0 claim
TRUE_LOG_OR = 0.7
VERDICTS = ("supported", "contradicted", "inconclusive", "insufficient data")


@dataclass(frozen=True)
class World:
    """A truth to simulate under: its name, whether the claim holds, the planted values."""

    name: str
    claim_true: bool
    planted: tuple[tuple[str, float], ...]


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def worlds(claim: Claim) -> list[World]:
    """Return the worlds a claim is simulated in (empty when the claim's type is not covered)."""
    family = family_name(claim.model)
    lo, hi = claim.region
    tau = ("tau", PLANTED_TAU.get(family, 0.0))
    if family == "pooled-rate" and claim.quantity == "pooled_rate" \
            and math.isfinite(lo) and math.isfinite(hi) and not claim.option("moderators"):
        width = hi - lo
        out = [World(f"rate {(lo + hi) / 2:.0%} (inside the region)", True,
                     (("mu", _logit((lo + hi) / 2)), tau))]
        if lo - width / 2 > 0.01:
            out.append(World(f"rate {lo - width / 2:.0%} (below)", False,
                             (("mu", _logit(lo - width / 2)), tau)))
        if hi + width / 2 < 0.99:
            out.append(World(f"rate {hi + width / 2:.0%} (above)", False,
                             (("mu", _logit(hi + width / 2)), tau)))
        return out
    if family == "contrast" and claim.quantity == "effect" and claim.region == (0.0, math.inf) \
            and claim.outcome != "change" and not claim.option("moderators"):
        return [World(f"log OR {TRUE_LOG_OR:g} (effect)", True, (("d", TRUE_LOG_OR), tau)),
                World("log OR 0 (no effect)", False, (("d", 0.0), tau))]
    if family == "pooled-rate" and claim.quantity.startswith("beta:") \
            and claim.region in ((0.0, math.inf), (-math.inf, 0.0)):
        # the claim's own moderator coefficient, the other coefficients 0, the reference
        # rate 50 %; nesting and arm spread as the claim's fit has them
        sign = 1.0 if claim.region[0] == 0.0 else -1.0
        term = claim.quantity.removeprefix("beta:")
        return [World(f"{term}: log OR {sign * TRUE_LOG_OR:g}", True,
                      (("mu", 0.0), tau, (f"beta={term}", sign * TRUE_LOG_OR))),
                World(f"{term}: log OR 0", False, (("mu", 0.0), tau, (f"beta={term}", 0.0)))]
    return []


def _selected(records: Records, claim: Claim) -> tuple[Any, Any]:
    """Return the claim's model and the data its fit uses (as the claims engine selects)."""
    from ..families.contrast import contrast_setup
    from ..families.pooled_rate import pooled_rate_setup

    if family_name(claim.model) == "pooled-rate":
        model, data = pooled_rate_setup(records, claim)
        return model, model.prepare(data)
    return contrast_setup(records, claim)


def simulated_records(records: Records, claim: Claim, world: World, seed: int) -> Records:
    """Return a copy of ``records`` whose counts in the claim's selected arms are simulated."""
    import pymc as pm

    model, data = _selected(records, claim)
    planted: dict[str, Any] = dict(world.planted)
    for key in [k for k in planted if k.startswith("beta=")]:  # one coefficient, others 0
        names = model._design(data).names
        beta = np.zeros(len(names))
        beta[names.index(key.removeprefix("beta="))] = planted.pop(key)
        planted["beta"] = beta
    if family_name(claim.model) == "contrast":  # control rates as observed, not from the prior
        # alpha is a study's mean arm logit (models.arms): the observed control logit plus
        # the planted effect's share J/(J+1) over its J active arms
        c = data.contrasts
        first = c.drop_duplicates("study")
        arms_per_study = c.groupby("study", sort=False)["arm"].count().to_numpy(float)
        shift = float(planted.get("d", 0.0)) * arms_per_study / (arms_per_study + 1.0)
        planted["alpha"] = np.log((first["c"] + 0.5) / (first["d"] + 0.5)).to_numpy(float) \
            + shift
    built = pm.do(model.build(data), planted)
    quiet = logging.getLogger("pymc")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # not "Sampling: [...]" once per simulation
    try:
        with built:
            draws = pm.sample_prior_predictive(draws=1, random_seed=seed, var_names=[
                rv.name for rv in built.observed_RVs], return_inferencedata=False)
    finally:
        quiet.setLevel(level)
    sim = {k: np.asarray(v).reshape(-1) for k, v in draws.items()}
    column = COUNT_COLUMN[claim.outcome]
    table = records.table.copy()
    row_of = {int(x): i for i, x in zip(table.index, table["line"], strict=True)}
    rng = np.random.default_rng([seed, 1])

    def put(line: int, events: int) -> None:
        table.loc[row_of[int(line)], column] = int(events)

    if family_name(claim.model) == "pooled-rate":
        for line, events in zip(data.table["line"], sim["events"], strict=True):
            put(line, events)
    else:
        c = data.contrasts
        for line, events in zip(c["line"], sim["events_active"], strict=True):
            put(line, events)
        first = c.drop_duplicates("study")
        for lines, events in zip(first["control_lines"], sim["events_control"], strict=True):
            lines = [int(x) for x in str(lines).split()]
            rows = table.loc[[row_of[x] for x in lines]]
            sizes = rows["n_binary"].fillna(rows["n"]).astype(int).to_numpy()
            for line, share in zip(lines, rng.multivariate_hypergeometric(sizes, int(events)),
                                   strict=True):
                put(line, share)
    digest = hashlib.sha256(table[column].astype(str).str.cat().encode()).hexdigest()
    return replace(records, table=table, sha256=f"{records.sha256}-oc-{digest[:16]}")


@dataclass(frozen=True)
class RuleSpec:
    """One claim in one world at the report's sampler settings."""

    claim_id: str
    world: World
    draws: int = SamplerSettings.draws
    tune: int = SamplerSettings.tune
    chains: int = SamplerSettings.chains
    seed: int = SamplerSettings.seed


def simulate_and_judge(spec: RuleSpec, records: Records, claims: ClaimsFile,
                       sim: int) -> dict[str, Any]:
    """One simulation: new counts in the claim's arms, the claims engine, the verdict."""
    from ..evaluate.evaluation import evaluate

    claim = next(c for c in claims.claims if c.id == spec.claim_id)
    seeds = np.random.SeedSequence([spec.seed, sim]).generate_state(2)
    sim_records = simulated_records(records, claim, spec.world, int(seeds[0]))
    settings = SamplerSettings(draws=spec.draws, tune=spec.tune, chains=spec.chains,
                               seed=int(seeds[1]))
    result = evaluate(sim_records, replace(claims, claims=[claim]), settings,
                      fragility=False).results[0]
    return {"sim": sim, "verdict": result.verdict, "basis": result.basis,
            "probability": result.probability}


def tasks(specs: list[RuleSpec], records: Records, claims: ClaimsFile,
          sims: int) -> list[Task]:
    """One engine task per claim, world and simulation."""
    base = task_key("operating", records.sha256, claims.sha256, package_versions())
    return [Task(task_key(base, asdict(spec), s), simulate_and_judge,
                 (spec, records, claims, s)) for spec in specs for s in range(sims)]


def specs_for(claims: ClaimsFile, records: Records, **settings: int) -> list[RuleSpec]:
    """Every covered claim of ``claims`` whose fit has enough studies, in every world."""
    out = []
    for claim in claims.claims:
        ws = worlds(claim)
        if not ws:
            continue
        try:
            _, data = _selected(records, claim)
        except SpecError:
            continue
        k = data.k_studies
        if k < claim.rule.min_studies:
            continue
        out += [RuleSpec(claim.id, w, **settings) for w in ws]
    return out


def summarize(specs: list[RuleSpec], results: list[dict[str, Any]],
              sims: int) -> list[dict[str, Any]]:
    """Verdict frequencies per claim and world, with 95 % Clopper-Pearson intervals."""
    rows = []
    for i, spec in enumerate(specs):
        chunk = results[i * sims:(i + 1) * sims]
        counts = {v: sum(r["verdict"] == v for r in chunk) for v in VERDICTS}
        row: dict[str, Any] = {"claim": spec.claim_id, "world": spec.world.name,
                               "claim_true": spec.world.claim_true, "sims": len(chunk),
                               "planted": dict(spec.world.planted), "counts": counts}
        for v in VERDICTS:
            lo, hi = clopper_pearson(counts[v], len(chunk))
            row[v] = {"p": counts[v] / len(chunk), "ci_low": lo, "ci_high": hi}
        # "supported (strong)": the deciding probability at least 0.95
        strong = sum(r["verdict"] == "supported" and (r.get("probability") or 0) >= 0.95
                     for r in chunk)
        lo, hi = clopper_pearson(strong, len(chunk))
        row["supported_strong"] = {"p": strong / len(chunk), "ci_low": lo, "ci_high": hi}
        rows.append(row)
    return rows

