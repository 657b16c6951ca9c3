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
    assert worlds(BY_ID["C3"]) == [] and worlds(BY_ID["C5"]) == []  # not covered


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
