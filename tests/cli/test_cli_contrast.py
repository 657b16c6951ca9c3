"""`trialmeta frequentist` and `trialmeta fit contrast` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import base_rows, write_csv
from trialmeta.cli.app import app
from typer.testing import CliRunner

runner = CliRunner()
DATA = Path(__file__).parents[1] / "data" / "bcg_records.csv"
REF = json.loads((Path(__file__).parents[1] / "reference" / "metafor-reference.json").read_text())
SMALL = ["--draws", "300", "--tune", "300", "--chains", "2", "--seed", "3"]


@pytest.mark.parametrize("method,hksj", [("REML", False), ("DL", False), ("PM", False),
                                         ("FE", False), ("REML", True), ("DL", True)])
def test_frequentist_cli_matches_metafor_on_bcg_records(method: str, hksj: bool) -> None:
    """The bcg data in the record format (one row per arm, events in `responders`)."""
    args = ["frequentist", str(DATA), "--outcome", "response", "--measure", "RR",
            "--method", method, "--json"] + (["--hksj", "plain"] if hksj else [])
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    ref = REF["bcg_RR"]["fits"][method + ("_HKSJ" if hksj else "")]
    for ours, theirs in [("estimate", "estimate"), ("se", "se"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub"), ("tau2", "tau2"), ("I2", "I2"), ("Q", "QE"),
                         ("pi_low", "pi_lb"), ("pi_high", "pi_ub")]:
        assert doc[ours] == pytest.approx(ref[theirs], abs=1e-4), ours
    assert doc["k"] == 13
    assert doc["estimate_exp"] == pytest.approx(2.718281828459045 ** ref["estimate"], rel=1e-8)


def test_frequentist_text_and_mantel_haenszel() -> None:
    r = runner.invoke(app, ["frequentist", str(DATA), "--measure", "OR", "--method", "DL"])
    assert r.exit_code == 0, r.output
    assert "Mantel-Haenszel OR" in r.output and "Egger" in r.output


def test_contrast_needs_matching_measure(valid_csv: Path) -> None:
    r = runner.invoke(app, ["frequentist", str(valid_csv), "--outcome", "response",
                            "--measure", "SMD"])
    assert r.exit_code == 2 and "does not fit outcome" in r.output


def test_fit_contrast_json(valid_csv: Path) -> None:
    r = runner.invoke(app, ["fit", "contrast", str(valid_csv), "--outcome", "response",
                            "--measure", "OR", "--json", "--allow-unconverged", *SMALL])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["model"] == "contrast" and doc["k"] == 2 and doc["scale"] == "log"
    for q in ("effect", "predictive_effect", "tau", "or", "rr", "rd"):
        assert {"mean", "median", "sd", "ci_low", "ci_high"} <= set(doc["estimates"][q])
    assert 0 <= doc["estimates"]["effect"]["p_exceeds"] <= 1
    assert {p["arm"] for p in doc["posterior_predictive"]} == {"pbo", "ket"}
    assert doc["provenance"]["seed"] == 3


def test_multi_arm_and_zero_events(tmp_path: Path) -> None:
    """Two doses sharing one placebo with zero events: both contrasts fit, control counted once."""
    rows = base_rows()
    extra = dict(rows[0], arm="ket_hi", dose="1.0", responders="12", remitters="6")
    rows.insert(1, extra)
    rows[2]["responders"] = "0"
    rows[2]["remitters"] = "0"
    path = write_csv(tmp_path / "m.csv", rows)
    r = runner.invoke(app, ["fit", "contrast", str(path), "--json", "--allow-unconverged",
                            *SMALL])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["contrasts"] == 3 and doc["k"] == 2
    assert doc["n_total"] == 20 + 20 + 20 + 30 + 30
    f = runner.invoke(app, ["frequentist", str(path), "--json"])
    fdoc = json.loads(f.stdout)
    assert fdoc["k"] == 3
    # the shared zero-event control is split between the two contrasts (n 10 each) and
    # 0.5 is added to that study's cells only
    assert all(s["vi"] > 0 for s in fdoc["studies"])


def test_models_lists_both_families() -> None:
    r = runner.invoke(app, ["models"])
    assert "pooled-rate" in r.output and "contrast" in r.output


def test_frequentist_cli_hksj_variants_and_prediction_interval() -> None:
    base = ["frequentist", str(DATA), "--outcome", "response", "--measure", "RR", "--json"]
    plain = json.loads(runner.invoke(app, [*base, "--hksj", "plain"]).stdout)
    adhoc = json.loads(runner.invoke(app, [*base, "--hksj", "adhoc"]).stdout)
    assert (plain["test"], adhoc["test"]) == ("knha", "adhoc")
    assert adhoc["se"] >= plain["se"]
    pi = json.loads(runner.invoke(app, [*base, "--prediction-interval", "higgins2009"]).stdout)
    wald = json.loads(runner.invoke(app, base).stdout)
    assert pi["pi_type"] == "higgins2009"
    assert pi["pi_high"] - pi["pi_low"] > wald["pi_high"] - wald["pi_low"]
    bad = runner.invoke(app, [*base, "--hksj", "maybe"])
    assert bad.exit_code == 2 and "unknown HKSJ variant" in bad.output


def test_the_readme_hksj_command_runs_as_written() -> None:
    """README: `frequentist ... --hksj --json` failed ('unknown HKSJ variant --json') once
    --hksj took a value; --hksj alone means plain (metafor test="knha") again."""
    import subprocess
    import sys

    from trialmeta.cli.app import with_optional_values

    assert with_optional_values(["frequentist", "--hksj", "--json"]) == [
        "frequentist", "--hksj", "plain", "--json"]
    assert with_optional_values(["--hksj"]) == ["--hksj", "plain"]
    assert with_optional_values(["--hksj", "adhoc"]) == ["--hksj", "adhoc"]
    out = subprocess.run([sys.executable, "-c", "from trialmeta.cli.app import main; main()",
                          "frequentist", str(DATA), "--outcome", "response", "--measure",
                          "RR", "--method", "REML", "--hksj", "--json"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    ref = REF["bcg_RR"]["fits"]["REML_HKSJ"]
    assert doc["test"] == "knha"
    assert doc["ci_low"] == pytest.approx(ref["ci_lb"], abs=1e-4)


def test_defaults_pass_the_gate_on_bcg_at_seeds_1_to_5() -> None:
    """The user trial: BCG (13 trials, no time column) failed the 1.01 R-hat gate at some
    seeds with the default 4 x 1,000 draws. A narrow failure now redraws with twice the
    draws (up to 4x), says so and names the parameter; no window is applied to a file
    without time points."""
    extended = 0
    for seed in range(1, 6):
        r = runner.invoke(app, ["fit", "contrast", str(DATA), "--measure", "OR", "--seed",
                                str(seed), "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert doc["diagnostics"]["passed"], (seed, doc["diagnostics"])
        assert doc["time_h"] is None and doc["k"] == 13
        messages = " ".join(doc["diagnostics"]["messages"])
        if doc["sampler"]["draws"] > 1000:
            extended += 1
            assert "draws extended from 1000" in messages and "R-hat" in messages
        # metafor rma(measure="OR", data=dat.bcg) REML: -0.7474 (-1.1270, -0.3679); the
        # Bayesian posterior median sits within a few hundredths of it
        assert abs(doc["estimates"]["effect"]["median"] - (-0.7474)) < 0.05
    assert extended >= 1  # seeds 3 and 5 fail narrowly at 1,000 draws


def test_narrow_failures_are_the_ones_more_draws_can_cure() -> None:
    from trialmeta.analysis.models.base import narrowly_failed
    from trialmeta.analysis.sampling.inference import Diagnostics

    assert narrowly_failed(Diagnostics(1.011, 500.0, 0, False))
    assert narrowly_failed(Diagnostics(1.002, 300.0, 0, False))  # ESS short only
    assert not narrowly_failed(Diagnostics(1.011, 500.0, 2, False))  # divergences
    assert not narrowly_failed(Diagnostics(1.2, 50.0, 0, False))  # stuck chains
    assert not narrowly_failed(Diagnostics(1.001, 900.0, 0, True))
