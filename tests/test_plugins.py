"""The registry: the worked plug-in example of docs/extending.md runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

from trialmeta.cli.app import app
from typer.testing import CliRunner

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "exponential_decay.py"
runner = CliRunner()


def test_plugin_is_listed_and_fits() -> None:
    r = runner.invoke(app, ["--plugin", str(EXAMPLE), "models"])
    assert r.exit_code == 0 and "exp-decay" in r.output
    r = runner.invoke(app, ["--plugin", str(EXAMPLE), "fit", "time-course", "--model",
                            "exp-decay", "--draws", "150", "--tune", "150", "--chains", "2",
                            "--allow-unconverged", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["model"] == "exp-decay" and doc["form"] == "exp-decay"
    assert {"onset_h", "duration_h", "time_to_peak_h"} <= set(doc["estimates"])


def test_bad_plugins_are_refused(tmp_path: Path) -> None:
    r = runner.invoke(app, ["--plugin", str(tmp_path / "missing.py"), "models"])
    assert r.exit_code == 2 and "not found" in r.output
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    r = runner.invoke(app, ["--plugin", str(bad), "models"])
    assert r.exit_code == 2 and "TRIALMETA_MODELS" in r.output
    clash = tmp_path / "clash.py"
    clash.write_text("TRIALMETA_MODELS = {'contrast': object}\n")
    r = runner.invoke(app, ["--plugin", str(clash), "models"])
    assert r.exit_code == 2 and "built-in" in r.output
