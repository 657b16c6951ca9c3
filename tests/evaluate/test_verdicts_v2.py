"""Verdicts v2 (statistical-review-2.md): evidence in the claim's direction, certainty,
inconsistent networks, time quantities informed at a region's bound.

Each test fails on the rule and models before this change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import base_rows, write_csv
from trialmeta.analysis.evaluate.certainty import assess
from trialmeta.analysis.evaluate.claims import load_claims
from trialmeta.analysis.evaluate.evaluation import evaluate
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.stats.decision import DecisionRule, Evidence, verdict

RATE_CLAIM = """
claims:
  - id: wide
    quote: the rate lies between 5 % and 95 %
    model: pooled-rate
    outcome: response
    time_h: 24
    quantity: pooled_rate
    region: [0.05, 0.95]
"""


def _evidence(p_post: float, p_prior: float, bf: float, below: float = 0.0,
              above: float = 0.0, ratio: float = 0.3) -> Evidence:
    return Evidence(p_post, below, above, p_prior, bf, ratio, 0.001, 0.001, 0.001)


def test_supported_needs_a_bayes_factor_in_its_direction() -> None:
    rule = DecisionRule()
    # P(region) 0.9 but the prior held 0.95: the data took evidence away (BF 0.47)
    assert verdict(_evidence(0.9, 0.95, 0.47), rule) == ("inconclusive", "weak-in")
    assert verdict(_evidence(0.9, 0.4, 13.5), rule) == ("supported", "in")


def test_contradicted_needs_a_bayes_factor_against() -> None:
    rule = DecisionRule()
    # the posterior lies above, but so did the prior: the data did not move it there
    assert verdict(_evidence(0.1, 0.12, 0.81, above=0.9), rule) == (
        "inconclusive", "weak-above")
    assert verdict(_evidence(0.1, 0.6, 0.074, above=0.9), rule) == ("contradicted", "above")


def test_two_tiny_studies_do_not_support_a_region_the_prior_held(tmp_path: Path) -> None:
    """The review's example: two 0/3 studies 'supported' [0.05, 0.95] with BF 0.24."""
    rows = [dict(base_rows()[0], study=f"S{i}", responders="0", remitters="0", n="3",
                 source=f"doi:10.0/S{i} Table 2") for i in range(2)]
    rec = read_records(write_csv(tmp_path / "r.csv", rows))
    claims = tmp_path / "c.yaml"
    claims.write_text(RATE_CLAIM)
    res = evaluate(rec, load_claims(claims), SamplerSettings(seed=11)).results[0]
    assert res.evidence.bayes_factor < 1
    assert res.verdict != "supported", res.reason
    assert res.qualifier == "weak Bayes factor" or res.verdict == "insufficient data"


def _series_rows(tmp_path: Path, design_of_repeated: str) -> Path:
    """Single-dose RCT arms at 40 %, repeated-dose arms at 80 % in studies of one design."""
    rows = []
    for i in range(4):
        rows.append(dict(base_rows()[0], study=f"R{i}", responders=str(16), n="40",
                         design="parallel", source=f"doi:10.0/R{i} Table 2"))
        rows.append(dict(base_rows()[1], study=f"R{i}", responders=str(8), n="40",
                         design="parallel", source=f"doi:10.0/R{i} Table 2"))
    for i in range(3):
        rows.append(dict(base_rows()[0], study=f"O{i}", responders=str(32), n="40",
                         doses_given="6", design=design_of_repeated,
                         source=f"doi:10.0/O{i} Table 3"))
    return write_csv(tmp_path / f"{design_of_repeated}.csv", rows)


SERIES_CLAIM = """
claims:
  - id: repeated
    quote: repeated infusions give higher response than one
    model: pooled-rate
    outcome: response
    time_h: 24
    untimed: true
    moderators: ["doses_given>1"]
    quantity: "beta:doses_given>1"
    region: [0, .inf]
    selection:
      treatment: [ketamine]
"""


def test_a_quantity_only_uncontrolled_series_identify_is_at_most_inconclusive(
        tmp_path: Path) -> None:
    claims = tmp_path / "c.yaml"
    claims.write_text(SERIES_CLAIM)
    settings = SamplerSettings(seed=3, draws=500)
    open_label = evaluate(read_records(_series_rows(tmp_path, "single_arm")),
                          load_claims(claims), settings).results[0]
    assert open_label.verdict == "inconclusive", open_label.reason
    assert open_label.qualifier == "uncontrolled designs only"
    assert open_label.certainty.grade in ("low", "very low")
    assert "O0, O1, O2" in open_label.reason
    assert open_label.as_dict()["certainty"]["identifying_studies"] == ["O0", "O1", "O2"]
    randomised = evaluate(read_records(_series_rows(tmp_path, "parallel")),
                          load_claims(claims), settings).results[0]
    assert randomised.verdict == "supported", randomised.reason
    assert randomised.certainty.cap is None


def test_certainty_names_derived_counts_and_a_single_study() -> None:
    import pandas as pd
    from trialmeta.analysis.claims.spec import Claim  # noqa: F401  (the type assess takes)

    table = pd.DataFrame({
        "study": ["A", "A", "B", "B"], "design": ["parallel"] * 4,
        "responders": [5, 2, 6, 3], "evidence": ["primary", "primary", "back_calculated",
                                                  "back_calculated"],
        "population": ["x"] * 4, "notes": [None, None, "counts from an OR", None]})
    claim = type("C", (), {"quantity": "effect", "outcome": "response"})()
    cert = assess(claim, "supported", ["A", "B"], table, fragile=["B (inconclusive)"])
    assert cert.grade == "low"
    assert any("back-calculated counts in B" in r for r in cert.reasons)
    assert any("fragile" in r for r in cert.reasons)
    one = assess(claim, "supported", ["A"], table)
    assert one.grade == "moderate" and "one study carries it: A (parallel, x)" in one.reasons


NETWORK_CLAIM = """
claims:
  - id: c-over-b
    quote: C beats B
    model: network
    outcome: response
    time_h: 24
    reference: A
    quantity: "effect:C:B"
    region: [0, .inf]
"""


def _loop(tmp_path: Path, bc: tuple[int, int]) -> Path:
    """A-B and A-C trials put C above B by log OR 0.81; the B-C trials agree or do not."""
    rows = []

    def arm(study: str, t: str, e: int, n: int) -> None:
        rows.append(dict(base_rows()[0], study=study, arm=t, treatment=t,
                         control="true" if t == "A" else "false", responders=str(e),
                         n=str(n), source=f"doi:10.0/{study}"))
    for i in range(4):
        arm(f"AB{i}", "A", 20, 100), arm(f"AB{i}", "B", 40, 100)
        arm(f"AC{i}", "A", 20, 100), arm(f"AC{i}", "C", 60, 100)
    for i in range(4):
        arm(f"BC{i}", "B", bc[0], 100), arm(f"BC{i}", "C", bc[1], 100)
    return write_csv(tmp_path / f"net{bc[1]}.csv", rows)


def test_inconsistent_direct_and_indirect_evidence_gives_inconclusive(tmp_path: Path) -> None:
    claims = tmp_path / "c.yaml"
    claims.write_text(NETWORK_CLAIM)
    settings = SamplerSettings(seed=2, draws=1000)
    res = evaluate(read_records(_loop(tmp_path, (60, 40))), load_claims(claims),
                   settings).results[0]
    assert res.verdict == "inconclusive" and res.qualifier == "inconsistent", res.reason
    assert "direct" in res.reason and "indirect" in res.reason and "node-split p" in res.reason
    consistent = evaluate(read_records(_loop(tmp_path, (40, 60))), load_claims(claims),
                          settings).results[0]
    assert consistent.verdict == "supported", consistent.reason


def test_pareto_k_above_0_7_is_unreliable_not_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The review saw "passed" beside Pareto k 0.96-0.99; now the check says unreliable."""
    from types import SimpleNamespace

    from trialmeta.analysis.models import network
    from trialmeta.analysis.report.network_section import network_section
    from trialmeta.analysis.sampling import inference
    from trialmeta.analysis.stats import psis

    loo = iter([{"loo_i": np.zeros(4), "elpd_loo": -10.0, "p_loo": 2.0,
                 "pareto_k": np.array([0.1, 0.2, 0.96, 0.3])},
                {"loo_i": np.array([0.0, 0.0, 3.0, 0.0]), "elpd_loo": -7.0, "p_loo": 3.0,
                 "pareto_k": np.array([0.1, 0.99, 0.2, 0.3])}])
    monkeypatch.setattr(psis, "psis_loo", lambda _: next(loo))
    monkeypatch.setattr(inference, "stacked_loglik", lambda x: x)
    fake = SimpleNamespace(idata=SimpleNamespace(log_likelihood=None),
                           diagnostics=SimpleNamespace(as_dict=lambda: {}))
    inc = network.inconsistency(fake, fake)
    assert inc["reliable"] is False and inc["status"].startswith("unreliable")
    estimate = {"median": 0.1, "ci_low": 0.0, "ci_high": 0.2}
    doc = {"effects": {"B": estimate}, "ranks": {"A": {"sucra": 0.4}, "B": {"sucra": 0.6}},
           "nodes": ["A", "B"], "league": [], "reference": "A", "scale": "log odds ratio",
           "direction": "higher is better", "edges": [], "inconsistency": inc,
           "estimates": {"tau": estimate}, "outcome": "response", "measure": "OR",
           "k": 3, "arms": 6}
    text = network_section(doc, "net", ["N"])["text"]
    assert "UNRELIABLE" in text and "0.99" in text and "not flagged" not in text


def test_claims_json_carries_the_certainty_of_every_claim(tmp_path: Path) -> None:
    import json

    from trialmeta.analysis.evaluate.certainty import GRADES
    from trialmeta.cli.app import app
    from typer.testing import CliRunner

    data = write_csv(tmp_path / "records.csv", base_rows())
    claims = tmp_path / "claims.yaml"
    claims.write_text(RATE_CLAIM + """
  - id: rare
    quote: most remit
    model: pooled-rate
    outcome: remission
    time_h: 72
    quantity: pooled_rate
    region: [0.5, 1]
""")
    r = CliRunner().invoke(app, ["claims", str(data), "--claims", str(claims), "--json",
                                 "--draws", "300", "--seed", "4", "--allow-unconverged"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert [c["id"] for c in doc["claims"]] == ["wide", "rare"]
    for c in doc["claims"]:
        cert = c["certainty"]
        assert cert["grade"] in GRADES and isinstance(cert["reasons"], list)
        assert "qualifier" in c and "strength" in c
    assert doc["claims"][1]["verdict"] == "insufficient data"
    assert doc["claims"][1]["certainty"]["grade"] == "very low"


def test_time_quantities_count_the_studies_that_inform_them() -> None:
    """A peak needs two time points in a study; a decay, data clearly after the peak."""
    from trialmeta.analysis.families.time_course import studies_informing

    times = {"A": [24.0], "B": [24.0], "L": [24.0, 48.0, 72.0, 168.0, 336.0]}
    assert studies_informing("onset_h", (0.0, 24.0), times, None) == ["A", "B", "L"]
    assert studies_informing("onset_h", (0.0, 12.0), times, None) == []
    assert studies_informing("time_to_peak_h", (24.0, 72.0), times, None) == ["L"]
    assert studies_informing("duration_h", (0.0, 336.0), times, 30.0) == ["L"]
    assert studies_informing("duration_h", (0.0, 336.0), times, 12.0) == ["A", "B", "L"]


def test_an_observation_at_a_region_bound_informs_onset() -> None:
    """C4 (onset within 24 h, first observation at 24 h) was refused as 'no observations
    on both sides'; P(effect at 24 h above the threshold) is 0.9. C5 (peak at 24-72 h) is
    informed by one study with more than one time point, so it stays insufficient."""
    from dataclasses import replace

    from trialmeta.analysis.evaluate.claims import load_claims

    bundled = load_claims()
    claims = replace(bundled, claims=[c for c in bundled.claims if c.id in ("C4", "C5")])
    res = {r.claim.id: r for r in evaluate(read_records(None), claims,
                                           SamplerSettings(seed=20190101),
                                           fragility=False).results}
    assert res["C4"].basis == "evidence", res["C4"].reason
    assert res["C4"].verdict != "insufficient data"
    assert res["C5"].verdict == "insufficient data" and res["C5"].basis == "studies"
    assert "inform time_to_peak_h (Lii2023)" in res["C5"].reason
    assert res["C5"].studies == ["Lii2023"]
