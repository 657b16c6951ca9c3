"""The command line, through Typer's CliRunner: exit codes, messages, files written."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import base_rows, write_csv
from trialmeta.cli.app import app
from typer.testing import CliRunner

runner = CliRunner()
SMALL = ["--draws", "200", "--tune", "200", "--chains", "2", "--seed", "5"]


def test_help_lists_commands() -> None:
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("validate", "fit", "report", "models"):
        assert cmd in r.output


def test_validate_bundled() -> None:
    r = runner.invoke(app, ["validate"])
    assert r.exit_code == 0, r.output
    assert "valid" in r.output and "studies" in r.output


def test_validate_lists_every_problem_with_row_and_column(tmp_path: Path) -> None:
    rows = base_rows()
    rows[0]["n"] = "0"
    rows[1]["responders"] = "99"
    rows[3]["dose_unit"] = "grains"
    path = write_csv(tmp_path / "bad.csv", rows)
    r = runner.invoke(app, ["validate", str(path)])
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    for where in ("row 2, column 'n'", "row 3, column 'responders'", "row 5, column 'dose_unit'"):
        assert where in r.output, r.output
    rj = runner.invoke(app, ["validate", str(path), "--json"])
    doc = json.loads(rj.stdout)
    assert rj.exit_code == 2 and doc["valid"] is False and len(doc["problems"]) == 3


def test_validate_json_summary(valid_csv: Path) -> None:
    r = runner.invoke(app, ["validate", str(valid_csv), "--json"])
    doc = json.loads(r.stdout)
    assert doc["valid"] and doc["studies"] == 2 and doc["rows_per_outcome"]["remitters"] == 4


def test_fit_pooled_rate_json(valid_csv: Path) -> None:
    r = runner.invoke(app, ["fit", "pooled-rate", str(valid_csv), "--outcome", "response",
                            "--time", "24", "--json", "--allow-unconverged", *SMALL])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["model"] == "pooled-rate" and doc["outcome"] == "response"
    assert doc["k"] == 2 and doc["n_total"] == 50
    for q in ("pooled_rate", "predictive_rate", "tau"):
        assert set(doc["estimates"][q]) == {"mean", "median", "sd", "ci_low", "ci_high"}
    assert set(doc["diagnostics"]) >= {"r_hat_max", "ess_bulk_min", "divergences", "passed"}
    assert doc["provenance"]["seed"] == 5 and len(doc["provenance"]["data_sha256"]) == 64
    assert "pymc" in doc["provenance"]["versions"]


def test_unconverged_fit_exits_nonzero(valid_csv: Path) -> None:
    r = runner.invoke(app, ["fit", "pooled-rate", str(valid_csv), "--draws", "10", "--tune",
                            "10", "--chains", "1"])
    assert r.exit_code == 1
    assert "convergence" in r.output


def test_fit_bad_options_exit_2(valid_csv: Path) -> None:
    r = runner.invoke(app, ["fit", "pooled-rate", str(valid_csv), "--outcome", "relapse"])
    assert r.exit_code == 2 and "unknown outcome" in r.output
    r = runner.invoke(app, ["fit", "pooled-rate", str(valid_csv), "--treatment", "unicorn"])
    assert r.exit_code == 2 and "no arms" in r.output


def test_models_lists_pooled_rate() -> None:
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0 and "pooled-rate" in r.output
