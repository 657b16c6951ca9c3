"""Shared fixtures: small valid record tables written to temporary files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

HEADER = ["study", "arm", "treatment", "control", "dose", "dose_unit", "route", "doses_given",
          "population", "design", "time_h", "n", "scale", "mean", "sd", "mean_type",
          "responders", "remitters", "source", "evidence"]


def base_rows() -> list[dict[str, str]]:
    """Two parallel trials, ketamine vs saline, with counts at 24 h."""
    rows = []
    for study, (kr, kn, pr, pn) in {"A2001": (10, 20, 2, 20), "B2002": (15, 30, 4, 30)}.items():
        for arm, treat, ctl, dose, r, n in [("ket", "ketamine", "false", "0.5", kr, kn),
                                           ("pbo", "saline", "true", "0", pr, pn)]:
            rows.append(dict(study=study, arm=arm, treatment=treat, control=ctl, dose=dose,
                             dose_unit="mg/kg", route="iv", doses_given="1",
                             population="unipolar_trd", design="parallel", time_h="24",
                             n=str(n), scale="MADRS", mean="", sd="", mean_type="",
                             responders=str(r), remitters=str(r // 2),
                             source=f"doi:10.0/{study} Table 2", evidence="primary"))
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    """Write rows as CSV with the given header."""
    header = header or HEADER
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def valid_csv(tmp_path: Path) -> Path:
    """A small valid records file."""
    return write_csv(tmp_path / "records.csv", base_rows())


@pytest.fixture(scope="session")
def bundled_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled data and claims through ``trialmeta report`` (300 draws per chain),
    built once per session for the report's layout and debris checks."""
    from trialmeta.cli.app import app
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("bundled") / "rep"
    r = CliRunner().invoke(app, ["report", "--out", str(out), "--draws", "300", "--tune",
                                 "300", "--allow-unconverged", "--quiet", "--cache",
                                 str(out.parent / "cache")])
    assert r.exit_code == 0, r.output
    return out
