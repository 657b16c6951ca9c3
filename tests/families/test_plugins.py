"""The registry: the worked plug-in example of docs/extending.md runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats
from trialmeta.cli.app import app
from typer.testing import CliRunner

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "exponential_decay.py"
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


FAMILY = Path(__file__).parents[2] / "docs" / "examples" / "common_effect_family.py"
CLAIM = """version: 1
defaults: {support: 0.8, contradict: 0.2, min_studies: 2}
claims:
  - id: CE1
    quote: ketamine beats control at 24 h
    model: common-effect
    outcome: response
    measure: OR
    time_h: 24
    quantity: effect
    region: [0, .inf]
    selection: {treatment: [ketamine], domain: [depression]}
    priors: {effect_sd: 1000}
"""


def _claims(tmp_path: Path, text: str = CLAIM) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    return path


def test_plugin_family_is_claimed_with_its_closed_form(tmp_path: Path) -> None:
    """The documented plug-in family: claimed from a claims file, judged on its own draws;
    with a flat prior its posterior is the inverse-variance common effect (independent:
    the frequentist engine's fixed-effect estimate on the same contrasts)."""
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.select.contrasts import select_contrasts
    from trialmeta.analysis.select.filters import Filters, TimeWindow
    from trialmeta.analysis.stats.effects import log_odds_ratio
    from trialmeta.analysis.stats.frequentist import meta_analysis

    r = runner.invoke(app, ["--plugin", str(FAMILY), "claims", "--claims",
                            str(_claims(tmp_path)), "--json"])
    assert r.exit_code == 0, r.output
    (claim,) = json.loads(r.stdout)["claims"]
    assert claim["model"] == "common-effect" and claim["basis"] == "evidence"
    c = select_contrasts(read_records(), "response", "OR", TimeWindow.around(24.0),
                         Filters(treatment=("ketamine",), domain=("depression",))).contrasts
    e = log_odds_ratio(c["a"], c["b"], c["c"], c["d"])
    fe = meta_analysis(e.yi, e.vi, method="FE")
    se = float(np.sqrt(1 / np.sum(1 / np.asarray(e.vi))))
    assert claim["studies"] == sorted(set(c["study"]))
    # 8000 exact draws: the median's Monte Carlo SE is about 1.25 sd / sqrt(8000)
    assert abs(claim["median"] - fe.estimate) < 4 * 1.25 * se / np.sqrt(8000)
    p = float(stats.norm.cdf(fe.estimate / se))  # P(effect > 0), exact
    assert abs(claim["probability"] - p) < 4 * np.sqrt(p * (1 - p) / 8000) + 1e-3
    assert claim["verdict"] == "supported" and p > 0.99  # the data are clear here


def test_plugin_family_is_swept_and_reported(tmp_path: Path) -> None:
    """The sweep offers the family's prior cells (run in worker processes that load the
    plug-in too), and the report shows its generic section."""
    claims = _claims(tmp_path, CLAIM.replace("    priors: {effect_sd: 1000}\n", ""))
    r = runner.invoke(app, ["--plugin", str(FAMILY), "sweep", "--claims", str(claims),
                            "--workers", "1", "--no-loo", "--cache", str(tmp_path / "c"),
                            "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    cells = {c["variation"] for c in doc["cells"]}
    assert {"priors:common-effect:effect_sd/2", "priors:common-effect:effect_sd*2"} <= cells
    assert not any(v.startswith(("rho:", "likelihood:", "form:")) for v in cells)
    (row,) = doc["table"]
    assert row["id"] == "CE1" and row["cells"] >= 2
    out = tmp_path / "report"
    r = runner.invoke(app, ["--plugin", str(FAMILY), "report", "--claims", str(claims),
                            "--out", str(out), "--cache", str(tmp_path / "c2")])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert "## Other model families" in md and "common-effect" in md
    assert json.loads((out / "results.json").read_text())["fits"]


def test_a_family_must_subclass_family(tmp_path: Path) -> None:
    bad = tmp_path / "fam.py"
    bad.write_text("TRIALMETA_FAMILIES = {'mine': object}\n")
    r = runner.invoke(app, ["--plugin", str(bad), "models"])
    assert r.exit_code == 2 and "subclass" in r.output
    clash = tmp_path / "clash_family.py"
    clash.write_text("from trialmeta.analysis.families.base import Family\n"
                     "TRIALMETA_FAMILIES = {'network': Family}\n")
    r = runner.invoke(app, ["--plugin", str(clash), "models"])
    assert r.exit_code == 2 and "built-in" in r.output


SAMPLED = Path(__file__).parents[2] / "docs" / "examples" / "random_effects_family.py"
BCG = Path(__file__).parents[1] / "data" / "metadat" / "bcg.csv"
OUTSIDE_CLAIMS = """claims:
  - id: RE1
    quote: BCG vaccination lowers the risk of tuberculosis
    model: {model}
    outcome: events
    quantity: effect
    region: [-.inf, 0]
"""


def test_sampled_plugin_family_equals_the_exact_engine(tmp_path: Path) -> None:
    """docs/examples/random_effects_family.py: PyMC's NUTS posterior of mu against the same
    model by quadrature (``fit contrast --engine exact``) on metafor's dat.bcg. Tolerance:
    4 Monte Carlo SEs of a median (1.25 sd / sqrt(ESS), ESS >= 400 by the gate)."""
    path = tmp_path / "c.yaml"
    path.write_text(OUTSIDE_CLAIMS.format(model="normal-re"))
    r = runner.invoke(app, ["--plugin", str(SAMPLED), "claims", str(BCG), "--claims",
                            str(path), "--json"])
    assert r.exit_code == 0, r.output
    claim = json.loads(r.stdout)["claims"][0]
    assert claim["verdict"] == "supported" and claim["diagnostics_passed"]
    exact = json.loads(runner.invoke(app, ["fit", "contrast", str(BCG), "--outcome", "events",
                                           "--engine", "exact", "--json"]).stdout)
    e = exact["estimates"]["effect"]
    sd = (e["ci_high"] - e["ci_low"]) / 3.92
    assert abs(claim["median"] - e["median"]) < 4 * 1.25 * sd / np.sqrt(400)


def test_shipped_example_families_survive_sweep_on_outside_data(tmp_path: Path) -> None:
    """Before: the common-effect example crashed `sweep` on data without an evidence column
    (KeyError: 'a', from the empty selection of 'primary evidence only')."""
    for plugin, model in ((FAMILY, "common-effect"), (SAMPLED, "normal-re")):
        path = tmp_path / f"{model}.yaml"
        path.write_text(OUTSIDE_CLAIMS.format(model=model))
        r = runner.invoke(app, ["--plugin", str(plugin), "sweep", str(BCG), "--claims",
                                str(path), "--no-loo", "--json", "--quiet", "--cache",
                                str(tmp_path / "cache")])
        assert r.exit_code == 0, (model, r.output)
        doc = json.loads(r.stdout)
        cells = {c["variation"] for c in doc["cells"]}
        assert "prior:half-normal:1" in cells or len(cells) > 5
        assert "evidence:primary" not in cells  # no evidence tier in the file: no such cell
        assert all(c["claims"]["RE1"]["verdict"] for c in doc["cells"] if c["claims"])


def test_an_empty_selection_has_the_columns_of_a_full_one() -> None:
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.select.contrasts import (
        BINARY_CONTRAST_COLUMNS,
        CONTINUOUS_CONTRAST_COLUMNS,
        select_contrasts,
    )
    from trialmeta.analysis.select.filters import Filters

    records = read_records(BCG)
    empty = select_contrasts(records, "events", "OR", None, Filters(evidence=("primary",)))
    assert empty.contrasts.empty and set(BINARY_CONTRAST_COLUMNS) <= set(empty.contrasts)
    empty = select_contrasts(records, "change", "MD", None, Filters())
    assert empty.contrasts.empty and set(CONTINUOUS_CONTRAST_COLUMNS) <= set(empty.contrasts)
