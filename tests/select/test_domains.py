"""Outcome domains: suicidal ideation is never pooled with depression unless asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import HEADER, base_rows, write_csv
from trialmeta.analysis.errors import DataError
from trialmeta.analysis.evaluate.claims import load_claims
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.select.contrasts import select_contrasts
from trialmeta.analysis.select.filters import Filters, TimeWindow, select_binary_arms
from trialmeta.cli.app import app
from typer.testing import CliRunner

SI_SCALES = {"SSI", "BSS", "CSSRS_ISS"}


def test_bundled_remission_pools_depression_only_unless_asked() -> None:
    """`fit pooled-rate --outcome remission` used to mix MADRS with BSS/C-SSRS remission."""
    records = read_records()
    window = TimeWindow.around(24.0)
    depression = select_binary_arms(records, "remission", window, Filters())
    assert not set(depression.table["scale"]) & SI_SCALES
    ideation = select_binary_arms(records, "remission", window,
                                  Filters(domain=("suicidal_ideation",)))
    assert set(ideation.table["scale"]) <= SI_SCALES and len(ideation.table)
    assert Filters().as_dict()["domain"] == ["depression"]


def test_the_cli_says_which_domain_it_pooled() -> None:
    args = ["fit", "pooled-rate", "--outcome", "remission", "--draws", "200", "--tune", "200",
            "--chains", "2", "--allow-unconverged", "--json"]
    import json

    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["selection"]["domain"] == ["depression"]
    assert not set(doc["scales"]) & SI_SCALES
    r = CliRunner().invoke(app, [*args, "--domain", "suicidal_ideation"])
    doc = json.loads(r.stdout)
    assert set(doc["scales"]) <= SI_SCALES


def test_c9_names_its_domain_and_its_contrasts_are_suicidal_ideation() -> None:
    c9 = next(c for c in load_claims().claims if c.id == "C9")
    assert c9.filters.domain == ("suicidal_ideation",)
    data = select_contrasts(read_records(), c9.outcome, "OR", c9.window, c9.filters)
    rows = read_records().table
    used = rows[rows["study"].isin(data.studies) & rows["remitters"].notna()
                & (rows["time_h"] == 24)]
    assert data.k_studies >= 2 and set(used["domain"]) >= {"suicidal_ideation"}


def test_domain_is_read_from_the_scale_and_contradictions_are_named(tmp_path: Path) -> None:
    rows = base_rows()
    rows[0]["scale"] = rows[1]["scale"] = "BSS"
    path = write_csv(tmp_path / "si.csv", rows)
    table = read_records(path).table
    assert table["domain"].tolist()[:2] == ["suicidal_ideation"] * 2
    assert set(table["domain"].tolist()[2:]) == {"depression"}
    rows[0]["domain"] = "depression"
    with pytest.raises(DataError) as exc:
        read_records(write_csv(tmp_path / "bad.csv", rows, [*HEADER, "domain"]))
    [problem] = exc.value.problems
    assert problem.column == "domain" and problem.row == 2
    assert "BSS measures suicidal_ideation" in str(problem)


def test_the_convergence_gate_checks_moderator_coefficients() -> None:
    """C3 is judged on a meta-regression coefficient: the gate must look at it too."""
    from trialmeta.analysis.models.pooled_rate import PooledRate
    from trialmeta.analysis.sampling.settings import SamplerSettings

    records = read_records()
    data = select_binary_arms(records, "response", TimeWindow.around(24.0), Filters(),
                              untimed=True)
    model = PooledRate(moderators=("doses_given>1",))
    fit = model.fit(model.prepare(data), SamplerSettings(draws=200, tune=200, chains=2,
                                                         seed=3))
    assert "beta" in fit.diagnostics.checked
    assert fit.diagnostics.as_dict()["checked"] == ["mu", "tau", "beta", "sigma_study"]


def test_cumulative_endpoints_are_left_out_of_fixed_time_selections() -> None:
    """Su 2023 counts response 'at least once on day 2 or 3': not a rate at a fixed time."""
    records = read_records()
    su = records.table[(records.table["study"] == "Su2023")
                       & records.table["responders"].notna()]
    assert set(su["endpoint"]) == {"cumulative"} and set(su["time_h"]) == {48.0}
    window = TimeWindow.around(48.0)
    kept = select_binary_arms(records, "response", window, Filters(treatment=("ketamine",)))
    assert "Su2023" not in set(kept.table["study"])
    asked = select_binary_arms(records, "response", window,
                               Filters(treatment=("ketamine",),
                                       endpoint=("fixed", "cumulative")))
    assert "Su2023" in set(asked.table["study"])
    series = records.table[records.table["endpoint"] == "series_end"]
    assert series["time_h"].isna().all() and (series["doses_given"] > 1).all()


def test_endpoint_defaults_and_bad_values_are_named(tmp_path: Path) -> None:
    rows = base_rows()
    rows[0]["time_h"] = ""
    rows[0]["doses_given"] = "6"
    table = read_records(write_csv(tmp_path / "ok.csv", rows)).table
    assert table["endpoint"].tolist() == ["series_end", "fixed", "fixed", "fixed"]
    rows[1]["endpoint"] = "sometimes"
    rows[0]["endpoint"] = "cumulative"
    with pytest.raises(DataError) as exc:
        read_records(write_csv(tmp_path / "bad.csv", rows, [*HEADER, "endpoint"]))
    found = {(p.row, p.column) for p in exc.value.problems}
    assert found == {(2, "time_h"), (3, "endpoint")}
