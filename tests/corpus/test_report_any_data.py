"""``trialmeta report`` on a user's own file: the data alone, or the user's own claims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trialmeta.cli.app import app
from typer.testing import CliRunner

runner = CliRunner()
DATA = Path(__file__).parents[1] / "data" / "metadat"
QUICK = ["--draws", "300", "--tune", "300", "--no-cache", "--allow-unconverged", "--quiet"]

CLAIMS = """
claims:
  - id: bcg-protects
    quote: BCG vaccination lowers the risk of tuberculosis
    model: contrast
    outcome: events
    quantity: effect
    region: [-.inf, 0]
  - id: latitude
    quote: the vaccine works better further from the equator
    model: contrast
    outcome: events
    quantity: beta:ablat
    region: [-.inf, 0]
    moderators: [ablat]
  - id: not-here
    quote: a level this file does not have
    model: contrast
    outcome: events
    quantity: beta:alloc=quasi
    region: [-.inf, 0]
    moderators: [alloc]
"""


@pytest.mark.parametrize("name", ["bcg.csv", "normand1999.csv", "bangertdrowns2004.csv"])
def test_report_without_claims_describes_the_data_alone(tmp_path: Path, name: str) -> None:
    """Before: the ketamine claims and published comparisons were applied to a BCG file (18
    'insufficient data' verdicts about ketamine, no figures)."""
    out = tmp_path / "r"
    res = runner.invoke(app, ["report", str(DATA / name), "--out", str(out), *QUICK])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["claims"] == []
    text = (out / "report.md").read_text()
    html = (out / "index.html").read_text()
    assert "ketamine" not in text.lower() and "ketamine" not in html.lower()
    assert "No claims: this report describes the data alone" in text
    assert "each treatment against control" in text
    assert "<svg" in html  # the forest (and funnel) plots
    assert "Turner 2015" not in text  # mental-health priors are not offered for BCG's TB
    assert "primary evidence only" not in text  # no evidence column: a variant of nothing
    for bad in ("None", "nan h"):
        assert bad not in text


def test_report_with_the_users_claims_keeps_going_past_one_it_cannot_evaluate(
        tmp_path: Path) -> None:
    claims = tmp_path / "bcg.yaml"
    claims.write_text(CLAIMS)
    out = tmp_path / "r"
    res = runner.invoke(app, ["report", str(DATA / "bcg.csv"), "--claims", str(claims),
                              "--out", str(out), *QUICK])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "results.json").read_text())
    verdicts = {c["id"]: c for c in doc["claims"]}
    assert verdicts["bcg-protects"]["verdict"] == "supported"
    assert verdicts["latitude"]["verdict"] == "supported"
    assert verdicts["not-here"]["verdict"] == "not evaluated"
    assert "alloc=quasi" in verdicts["not-here"]["reason"]


def test_claims_command_reports_a_claim_it_cannot_evaluate(tmp_path: Path) -> None:
    claims = tmp_path / "bcg.yaml"
    claims.write_text(CLAIMS)
    res = runner.invoke(app, ["claims", str(DATA / "bcg.csv"), "--claims", str(claims),
                              "--json"])
    assert res.exit_code == 0, res.output
    rows = {c["id"]: c for c in json.loads(res.output)["claims"]}
    assert rows["not-here"]["verdict"] == "not evaluated"


def test_single_arm_rates_get_a_pooled_rate_section(tmp_path: Path) -> None:
    """Pritz 1997 (xi/ni): no comparison, so the report of the data alone is the pooled
    rate with its forest plot, described and not judged."""
    out = tmp_path / "r"
    res = runner.invoke(app, ["report", str(DATA / "pritz1997.csv"), "--out", str(out),
                              *QUICK])
    assert res.exit_code == 0, res.output
    text = (out / "report.md").read_text()
    assert "## Pooled rates" in text and "described, not judged" in text
    assert "## Contrasts with control" in text  # the heading stays; it has no comparison
    doc = json.loads((out / "results.json").read_text())
    assert doc["claims"] == [] and len(doc["fits"]) == 1


def test_a_file_with_nothing_to_describe_says_so(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("study,xi,ni\nA,3,10\n")
    res = runner.invoke(app, ["report", str(path), "--out", str(tmp_path / "r"), *QUICK])
    assert res.exit_code == 2 and "nothing to describe" in res.output
    assert not (tmp_path / "r").exists()
