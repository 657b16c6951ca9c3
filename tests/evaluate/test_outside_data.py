"""Claims on data nobody here wrote: metafor's dat.bcg in the record format, no time points."""

from __future__ import annotations

from pathlib import Path

import pytest
from trialmeta.analysis.errors import SpecError
from trialmeta.analysis.evaluate.claims import load_claims
from trialmeta.analysis.evaluate.evaluation import evaluate
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.sampling.settings import SamplerSettings

BCG = Path(__file__).parents[1] / "data" / "bcg_records.csv"

CLAIMS = """
claims:
  - id: bcg-protects
    quote: BCG vaccination lowers the risk of tuberculosis
    model: contrast
    outcome: response
    quantity: effect
    region: [-.inf, 0]
"""


def test_a_contrast_claim_without_time_h_uses_every_row(tmp_path: Path) -> None:
    """Before: 'time_h: required field is missing', and with a time_h the 24 h window
    selected none of the 13 untimed trials."""
    path = tmp_path / "c.yaml"
    path.write_text(CLAIMS)
    claims = load_claims(path)
    assert claims.claims[0].window is None
    res = evaluate(read_records(BCG), claims, SamplerSettings(seed=7)).results[0]
    assert len(res.studies) == 13 and res.verdict == "supported", res.reason
    d = res.as_dict()
    assert d["time_h"] is None and "24 h" not in res.reason
    # metafor rma(measure="OR", data=dat.bcg) REML: -0.7474 (-1.1270, -0.3679)
    assert d["median"] == pytest.approx(-0.7474, abs=0.05)
    assert d["certainty"]["grade"] == "high" and d["certainty"]["fragile_to"] == []


def test_a_pooled_rate_claim_still_needs_its_time(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CLAIMS.replace("model: contrast", "model: pooled-rate")
                    .replace("quantity: effect", "quantity: pooled_rate")
                    .replace("[-.inf, 0]", "[0.1, 0.5]"))
    with pytest.raises(SpecError, match="time_h"):
        load_claims(path)
