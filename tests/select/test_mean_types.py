"""Change-score and endpoint means are never mixed silently (statistical review, Lii 2023)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_csv
from trialmeta.analysis.errors import SpecError
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.select.contrasts import select_contrasts
from trialmeta.analysis.select.filters import Filters, TimeWindow
from trialmeta.cli.app import app
from typer.testing import CliRunner

KETAMINE = dict(treatment=("ketamine", "esketamine"), scale=("MADRS",))


def test_mixed_mean_types_are_refused_with_the_studies_named() -> None:
    with pytest.raises(SpecError, match=r"endpoint: .*Lii2023.*--mean-type"):
        select_contrasts(read_records(), "change", "SMD", TimeWindow.around(24.0),
                         Filters(**KETAMINE))


def test_change_scores_only_keeps_change_contrasts() -> None:
    data = select_contrasts(read_records(), "change", "SMD", TimeWindow.around(24.0),
                            Filters(**KETAMINE, mean_type=("change",)))
    assert set(data.contrasts["mean_type"]) == {"change"}
    assert "Lii2023" not in data.studies and "Daly2018" in data.studies


def test_a_study_with_both_types_uses_its_change_scores(tmp_path: Path) -> None:
    """Control and one arm report change, another arm endpoint: the change contrast is used."""
    rows = []
    for arm, ctl, mean, mtype in [("pbo", "true", "-5", "change"), ("k1", "false", "-12", "change"),
                                  ("k2", "false", "14", "endpoint")]:
        rows.append(dict(study="A2001", arm=arm, treatment="saline" if ctl == "true" else
                         "ketamine", control=ctl, dose="0" if ctl == "true" else "0.5",
                         dose_unit="mg/kg", route="iv", doses_given="1", population="x",
                         design="parallel", time_h="24", n="20", scale="MADRS", mean=mean,
                         sd="6", mean_type=mtype, responders="", remitters="",
                         source="constructed", evidence="primary"))
    records = read_records(write_csv(tmp_path / "both.csv", rows))
    data = select_contrasts(records, "change", "MD", TimeWindow.around(24.0), Filters())
    assert data.contrasts["arm"].tolist() == ["k1"]
    assert any("A2001: change scores used" in n for n in data.notes)


def test_the_mean_type_as_a_moderator_is_allowed_and_said() -> None:
    args = ["fit", "contrast", "--outcome", "change", "--measure", "SMD", "--scale", "MADRS",
            "--treatment", "ketamine", "--treatment", "esketamine", "--draws", "200",
            "--tune", "200", "--chains", "2", "--allow-unconverged", "--json"]
    runner = CliRunner()
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--mean-type" in refused.output
    r = runner.invoke(app, [*args, "--moderator", "mean_type:categorical"])
    assert r.exit_code == 0, r.output
    assert any("mean type as a moderator" in n for n in json.loads(r.stdout)["notes"])


def test_an_unknown_mean_type_in_a_selection_is_named() -> None:
    with pytest.raises(SpecError, match="unknown mean_type average"):
        Filters.from_mapping({"mean_type": ["average"]})
