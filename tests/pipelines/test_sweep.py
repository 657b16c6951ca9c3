"""The sweep grid: which change applies to which claim, and the verdict table."""

from __future__ import annotations

import pytest
from trialmeta.analysis.evaluate.claims import load_claims
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.pipelines.sweep import Variation, grid, table, vary

CLAIMS = load_claims()
RECORDS = read_records()
BY_ID = {c.id: c for c in CLAIMS.claims}


def test_tau_prior_changes_apply_to_the_families_with_a_random_effects_tau_only() -> None:
    v = Variation("prior", "half-normal:1.0")
    assert {c.model for c in CLAIMS.claims} >= {"pooled-rate", "contrast", "network",
                                                 "dose-response", "time-course"}
    for claim in CLAIMS.claims:
        changed = vary(claim, v, RECORDS)
        if claim.model in ("pooled-rate", "contrast", "network"):
            assert changed is not None and changed.option("tau_prior") == "half-normal:1.0"
        else:
            assert changed is None


def test_form_change_skips_the_current_form_and_other_families() -> None:
    time_claims = [c for c in CLAIMS.claims if c.model == "time-course"]
    assert time_claims
    assert all(vary(c, Variation("form", "piecewise"), RECORDS).option("form") == "piecewise"
               for c in time_claims)
    assert all(vary(c, Variation("form", "bateman"), RECORDS) is None for c in time_claims)
    assert vary(time_claims[0], Variation("form", "emax"), RECORDS) is None


def test_data_changes() -> None:
    claim = BY_ID["C2"]
    no_x = vary(claim, Variation("crossover", "exclude"), RECORDS)
    assert "crossover" not in no_x.filters.design and "parallel" in no_x.filters.design
    assert vary(claim, Variation("evidence", "primary"), RECORDS).filters.evidence == (
        "primary",)
    loo = vary(claim, Variation("loo", "Murrough2013"), RECORDS)
    assert loo.filters.exclude_studies[-1] == "Murrough2013"
    narrow = vary(claim, Variation("window", "narrow"), RECORDS).window
    wide = vary(claim, Variation("window", "wide"), RECORDS).window
    assert narrow.target_h == wide.target_h == claim.window.target_h
    assert wide.low_h <= claim.window.low_h <= narrow.low_h


def test_table_reports_the_changes_that_move_a_verdict() -> None:
    base = {"claims": {"C2": {"verdict": "inconclusive", "median": 0.5, "studies": ["A"]}}}
    cells = [{"variation": "loo:A", "claims": {"C2": {"verdict": "insufficient data",
                                                      "median": None}}},
             {"variation": "evidence:primary", "claims": {"C2": {"verdict": "inconclusive",
                                                                  "median": 0.42}}}]
    [row] = table(CLAIMS, base, cells)
    assert row["cells"] == 2 and row["same_verdict"] == 1 and not row["robust"]
    assert row["changes"][0]["change"] == "without A"
    assert (row["median_min"], row["median_max"]) == (0.42, 0.5)
    assert [v.id for v in grid(CLAIMS, base) if v.kind == "loo"] == ["loo:A"]


def test_cells_identical_to_the_baseline_are_no_ops_not_agreement() -> None:
    same = {"verdict": "inconclusive", "basis": "evidence", "median": 0.5, "ci_low": 0.3,
            "ci_high": 0.7, "probability": 0.6, "studies": ["A", "B"]}
    base = {"claims": {"C2": same}}
    cells = [{"variation": "evidence:primary", "claims": {"C2": dict(same)}},
             {"variation": "threshold:0.75", "claims": {"C2": dict(same)}},
             {"variation": "loo:A", "claims": {"C2": dict(same, probability=0.7, median=0.55,
                                                          studies=["B"])}}]
    [row] = table(CLAIMS, base, cells)
    assert row["no_op_cells"] == ["evidence:primary"]
    assert row["cells"] == 2 and row["same_verdict"] == 2
    assert row["max_abs_delta_p"] == pytest.approx(0.1)
    loo = next(d for d in row["cells_detail"] if d["variation"] == "loo:A")
    assert loo["delta_median"] == pytest.approx(0.05) and not loo["basis_changed"]


def test_region_and_threshold_cells() -> None:
    claim = next(c for c in CLAIMS.claims if c.id == "C2")
    lo, hi = claim.region
    narrow = vary(claim, Variation("region", "narrow"), RECORDS).region
    wide = vary(claim, Variation("region", "wide"), RECORDS).region
    assert narrow[1] - narrow[0] == pytest.approx(0.75 * (hi - lo))
    assert wide[1] - wide[0] == pytest.approx(1.25 * (hi - lo))
    strict = vary(claim, Variation("threshold", "0.9"), RECORDS).rule
    assert (strict.support, strict.contradict) == (0.9, 0.1)
    half_open = next(c for c in CLAIMS.claims if c.region[1] == float("inf"))
    moved = vary(half_open, Variation("region", "wide"), RECORDS)
    assert moved is None or moved.region != half_open.region


def test_each_family_prior_and_rho_are_varied() -> None:
    """Every family's priors move one setting at a time; rho only for time-course claims."""
    ids = {v.id for v in grid(CLAIMS, {"claims": {}}, loo=False)}
    for want in ("priors:time-course:t_rise*3", "priors:time-course:t_rise/3",
                 "priors:time-course:t_decay*3", "priors:time-course:peak_sd/2",
                 "priors:time-course:tau_scale*2", "priors:dose-response:ed50_sd*2",
                 "priors:pooled-rate:mu_sd/2", "priors:contrast:baseline_sd*2",
                 "rho:0.2", "rho:0.8"):
        assert want in ids, want
    c5, c2 = BY_ID["C5"], BY_ID["C2"]
    slow = vary(c5, Variation("priors", "time-course:t_rise*3"), RECORDS)
    assert dict(slow.option("priors")) == {"t_rise": 12.0}  # default median 4 h, x3
    assert slow.fit_key() != c5.fit_key()
    assert vary(c2, Variation("priors", "time-course:t_rise*3"), RECORDS) is None
    assert dict(vary(c2, Variation("priors", "pooled-rate:mu_sd/2"), RECORDS)
                .option("priors")) == {"mu_sd": 0.75}
    assert vary(c5, Variation("rho", "0.8"), RECORDS).option("rho") == 0.8
    assert vary(c2, Variation("rho", "0.8"), RECORDS) is None
    assert "likelihood:binomial" in ids
    binomial = vary(c5, Variation("likelihood", "binomial"), RECORDS)
    assert binomial.option("likelihood") == "binomial" and binomial.fit_key() != c5.fit_key()
    assert vary(c5, Variation("likelihood", "normal"), RECORDS) is None  # already normal
    assert vary(c2, Variation("likelihood", "binomial"), RECORDS) is None


def test_claim_priors_reach_the_model() -> None:
    """A claim's priors mapping sets the prior the fit (and its prior draws) use."""
    from dataclasses import replace

    from trialmeta.analysis.families.curves import TimeOptions
    from trialmeta.analysis.models.time_course import TimeCourse, TimePriors

    claim = vary(BY_ID["C5"], Variation("priors", "time-course:t_decay/3"), RECORDS)
    opts = TimeOptions(priors=claim.option("priors"))
    priors = replace(TimePriors(), **dict(opts.priors))
    assert priors.t_decay == pytest.approx(50.0)
    model = TimeCourse(priors=priors)
    assert model.priors.t_decay == pytest.approx(50.0)
