"""Operating characteristics of the decision rule: worlds, simulated records, one run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from trialmeta.analysis.evaluate.claims import load_claims
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.pipelines.operating import (
    RuleSpec,
    _selected,
    simulate_and_judge,
    simulated_records,
    specs_for,
    summarize,
    worlds,
)

CLAIMS = load_claims()
BY_ID = {c.id: c for c in CLAIMS.claims}
RECORDS = read_records()


def test_worlds_put_the_truth_inside_and_outside_the_region() -> None:
    c2 = BY_ID["C2-all"]  # response 50-75 %
    [inside, below, above] = worlds(c2)
    assert inside.claim_true and not below.claim_true and not above.claim_true
    expit = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert expit(dict(inside.planted)["mu"]) == pytest.approx(0.625)
    assert expit(dict(below.planted)["mu"]) == pytest.approx(0.375)
    assert expit(dict(above.planted)["mu"]) == pytest.approx(0.875)
    effect, null = worlds(BY_ID["C9"])
    assert dict(effect.planted)["d"] > 0 and dict(null.planted)["d"] == 0
    assert worlds(BY_ID["C5"]) == []  # not covered
    # a moderator coefficient: the claim's term planted at a log OR of 0.7, or at 0
    c3 = worlds(BY_ID["C3"])
    assert [w.claim_true for w in c3] == [True, False]
    assert dict(c3[0].planted)["beta=doses_given>1"] == 0.7
    assert dict(c3[1].planted)["beta=doses_given>1"] == 0.0


def test_only_the_claims_arms_get_new_counts_within_their_denominators() -> None:
    for cid in ("C2-all", "C9"):
        claim = BY_ID[cid]
        sim = simulated_records(RECORDS, claim, worlds(claim)[0], seed=7)
        col = "responders" if claim.outcome == "response" else "remitters"
        old, new = RECORDS.table[col], sim.table[col]
        changed = ~((old == new) | (old.isna() & new.isna()))
        _, data = _selected(RECORDS, claim)
        lines = set(data.table["line"]) if cid == "C2-all" else \
            set(data.contrasts["line"]) | {int(x) for ls in data.contrasts["control_lines"]
                                           for x in str(ls).split()}
        assert set(RECORDS.table.loc[changed.to_numpy(), "line"]) <= lines
        denom = sim.table["n_binary"].fillna(sim.table["n"])
        ok = new.isna() | ((new >= 0) & (new <= denom))
        assert bool(ok.all())
        assert sim.sha256 != RECORDS.sha256
        again = simulated_records(RECORDS, claim, worlds(claim)[0], seed=7)
        assert again.table[col].equals(sim.table[col])  # seeded


def test_one_simulation_runs_the_whole_claims_engine() -> None:
    specs = specs_for(CLAIMS, RECORDS, draws=200, tune=200, chains=2, seed=3)
    assert {s.claim_id for s in specs} >= {"C2-all", "C9"}
    spec = next(s for s in specs if s.claim_id == "C9")
    out = simulate_and_judge(spec, RECORDS, CLAIMS, 0)
    assert out["verdict"] in ("supported", "contradicted", "inconclusive", "insufficient data")
    rows = summarize([spec], [out], 1)
    assert rows[0]["counts"][out["verdict"]] == 1 and rows[0]["sims"] == 1
    assert isinstance(spec, RuleSpec) and np.isfinite(rows[0][out["verdict"]]["ci_low"])


def test_a_planted_moderator_coefficient_moves_the_simulated_repeated_dose_arms() -> None:
    """C3's world plants beta for doses_given>1 alone: with a large planted log OR (3) the
    repeated-dose arms respond far more often than the single-dose arms of the same run."""
    from trialmeta.analysis.pipelines.operating import World

    claim = BY_ID["C3"]
    model, data = _selected(RECORDS, claim)
    repeated = model._design(data).x[:, model._design(data).names.index("doses_given>1")] > 0
    gaps = []
    for seed in range(5):
        for beta in (3.0, 0.0):
            world = World("test", beta > 0, (("mu", 0.0), ("tau", 0.3),
                                              ("beta=doses_given>1", beta)))
            sim = simulated_records(RECORDS, claim, world, seed)
            _, simulated = _selected(sim, claim)
            rate = (simulated.table["events"] / simulated.table["n"]).to_numpy(float)
            gaps.append((beta, rate[repeated].mean() - rate[~repeated].mean()))
    big = np.mean([g for b, g in gaps if b == 3.0])
    none = np.mean([g for b, g in gaps if b == 0.0])
    # expit(3) - expit(0) = 0.45 on the logit scale's centre; the other coefficients are 0
    assert big > 0.25 and abs(none) < 0.15
