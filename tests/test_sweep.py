"""The sweep grid: which change applies to which claim, and the verdict table."""

from __future__ import annotations

from trialmeta.analysis.claims import load_claims
from trialmeta.analysis.records import read_records
from trialmeta.analysis.sweep import Variation, grid, table, vary

CLAIMS = load_claims()
RECORDS = read_records()
BY_ID = {c.id: c for c in CLAIMS.claims}


def test_prior_changes_apply_to_pooled_rate_and_contrast_claims_only() -> None:
    v = Variation("prior", "half-normal:1.0")
    for claim in CLAIMS.claims:
        changed = vary(claim, v, RECORDS)
        if claim.model in ("pooled-rate", "contrast"):
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
