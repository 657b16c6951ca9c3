"""Claims on data nobody here wrote: metafor's dat.bcg in the record format, no time points."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def test_a_pooled_rate_claim_without_time_h_pools_every_arm(tmp_path: Path) -> None:
    """Before: 'time_h: required field is missing' for a pooled-rate claim on a file without
    time points. The BCG arms' TB rates are all below 10 %."""
    path = tmp_path / "c.yaml"
    path.write_text(CLAIMS.replace("model: contrast", "model: pooled-rate")
                    .replace("quantity: effect", "quantity: pooled_rate")
                    .replace("[-.inf, 0]", "[0, 0.1]"))
    claims = load_claims(path)
    assert claims.claims[0].window is None
    res = evaluate(read_records(BCG), claims, SamplerSettings(seed=7)).results[0]
    assert len(res.studies) == 13 and res.verdict == "supported", res.reason
    assert "24 h" not in res.reason


def _bcg_with_latitude(tmp_path: Path) -> Path:
    """dat.bcg's absolute latitude (tests/reference/bcg.csv, metafor) as a user column."""
    import csv

    ref = {r["trial"]: r for r in csv.DictReader(
        open(BCG.parents[1] / "reference" / "bcg.csv", encoding="utf-8"))}
    rows = list(csv.DictReader(open(BCG, encoding="utf-8")))
    studies = list(dict.fromkeys(r["study"] for r in rows))
    latitude = {s: ref[str(i + 1)]["ablat"] for i, s in enumerate(studies)}
    out = tmp_path / "bcg_ablat.csv"
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[*rows[0], "ablat"])
        w.writeheader()
        for r in rows:
            w.writerow({**r, "ablat": latitude[r["study"]]})
    return out


def test_a_users_own_column_is_a_moderator(tmp_path: Path) -> None:
    """BCG's ablat, the canonical meta-regression, was refused with internal names listed
    (a, b, control_lines); protection grows with latitude (slope below 0)."""
    import json

    from trialmeta.cli.app import app
    from typer.testing import CliRunner

    data = _bcg_with_latitude(tmp_path)
    r = CliRunner().invoke(app, ["fit", "contrast", str(data), "--measure", "OR",
                                 "--moderator", "ablat", "--seed", "2", "--json"])
    assert r.exit_code == 0, r.output
    slope = json.loads(r.stdout)["estimates"]["beta:ablat"]
    assert slope["ci_high"] < 0 and -0.06 < slope["median"] < -0.01
    r = CliRunner().invoke(app, ["fit", "contrast", str(data), "--moderator", "latitude"])
    assert r.exit_code == 2
    assert "known: ablat, design" in r.output
    for internal in ("control_lines", " a,", "level"):
        assert internal not in r.output
