"""Dependent effects against metafor 3.8.1 (issue 32, second part): three-level models
(rma.mv, REML) and cluster-robust errors (robust, CR1), pinned with the R calls in
tests/reference/metadat-corpus.json on metafor's own rma.mv examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trialmeta.cli.app import app
from typer.testing import CliRunner

runner = CliRunner()
HERE = Path(__file__).parents[1]
DATA = HERE / "data" / "metadat"
REF = json.loads((HERE / "reference" / "metadat-corpus.json").read_text())
CASES = [("konstantopoulos2011", ["district", "school"], "district"),
         ("assink2016", ["study_column", "esid"], "study_column")]


def freq(name: str, *args: str) -> dict:
    res = runner.invoke(app, ["frequentist", str(DATA / f"{name}.csv"), "--outcome", "change",
                              "--measure", "MD", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


@pytest.mark.parametrize(("name", "levels", "cluster"), CASES, ids=[c[0] for c in CASES])
def test_three_level_model_and_robust_errors_equal_metafor(name: str, levels: list[str],
                                                           cluster: str) -> None:
    """Multilevel: estimate, SE and each sigma2 to 1e-4 (the issue's digits; a bounded
    REML optimum agrees to about 1e-7); robust: estimate and SE to 1e-6."""
    args = [a for lv in levels for a in ("--cluster", lv)] + ["--robust", cluster]
    doc = freq(name, *args)
    ref = REF[name]
    m, r = doc["multilevel"], ref["multilevel"]
    assert m["levels"] == levels and m["k"] == r["k"]
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub")):
        assert m[ours] == pytest.approx(r[theirs], abs=1e-4), ours
    assert m["sigma2"] == pytest.approx(r["sigma2"], abs=1e-4)
    rb, rr = doc["robust"], ref["robust"]
    [c] = rb["coefficients"]
    assert rb["df"] == rr["df"] and rb["clusters"] == rr["n"]
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub"), ("p", "p")):
        assert c[ours] == pytest.approx(rr[theirs], abs=1e-6), ours
        assert rb[ours] == c[ours]  # the robust: {estimate, se, df, cluster}
    assert rb["cluster"] == cluster


def test_robust_errors_of_a_meta_regression() -> None:
    doc = freq("konstantopoulos2011", "--moderator", "year", "--robust", "district")
    rb, rr = doc["robust"], REF["konstantopoulos2011"]["robust_year"]
    assert [c["term"] for c in rb["coefficients"]] == ["intercept", "year"]
    for i, c in enumerate(rb["coefficients"]):
        assert c["estimate"] == pytest.approx(rr["estimate"][i], abs=1e-6)
        assert c["se"] == pytest.approx(rr["se"][i], abs=1e-6)
        assert c["p"] == pytest.approx(rr["p"][i], abs=1e-6)
    assert rb["QM"] == pytest.approx(rr["QM"], abs=1e-6) and rb["df"] == rr["df"]


def test_dependence_options_say_what_is_wrong() -> None:
    res = runner.invoke(app, ["frequentist", str(DATA / "assink2016.csv"), "--outcome",
                              "change", "--measure", "MD", "--robust", "nope"])
    assert res.exit_code == 2 and "robust cluster column 'nope' is not available" in res.output
    text = runner.invoke(app, ["frequentist", str(DATA / "konstantopoulos2011.csv"),
                               "--outcome", "change", "--measure", "MD", "--cluster",
                               "district", "--cluster", "school"]).output
    assert "multilevel (REML, district / school)" in text and "(11 units)" in text


@pytest.mark.slow
def test_a_report_of_nested_data_shows_the_multilevel_fit(tmp_path: Path) -> None:
    """report FILE --cluster district: the Bayesian comparison nests the schools in their
    districts, and the multilevel and robust rows equal metafor's numbers."""
    out = tmp_path / "r"
    res = runner.invoke(app, ["report", str(DATA / "konstantopoulos2011.csv"), "--cluster",
                              "district", "--out", str(out), "--draws", "300", "--tune",
                              "300", "--no-cache", "--allow-unconverged", "--quiet"])
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    ref = REF["konstantopoulos2011"]
    m, r = ref["multilevel"], ref["robust"]
    assert (f"| Multilevel \\(REML, district / study\\) | {m['estimate']:.3f} "
            f"({m['ci_lb']:.3f} to {m['ci_ub']:.3f}) |") in md
    assert f"| {r['estimate']:.3f} ({r['ci_lb']:.3f} to {r['ci_ub']:.3f}) | 11 clusters" in md
    assert "Studies nested in district" in md
    group = json.loads((out / "results.json").read_text())["contrasts"][0]["groups"][-1]
    assert "sigma:district" in group["bayesian"]["estimates"]


def test_report_cluster_is_for_the_data_alone(tmp_path: Path) -> None:
    res = runner.invoke(app, ["report", str(DATA / "konstantopoulos2011.csv"), "--cluster",
                              "district", "--claims", str(tmp_path / "c.yaml"), "--out",
                              str(tmp_path / "r")])
    assert res.exit_code == 2 and "give 'cluster:' in its contrasts" in res.output


def test_a_claims_files_contrasts_take_cluster(tmp_path: Path) -> None:
    from trialmeta.analysis.errors import SpecError
    from trialmeta.analysis.evaluate.claims import load_claims

    text = """
claims:
  - id: positive
    quote: the programme helps
    model: contrast
    outcome: change
    measure: MD
    quantity: effect
    region: [0, .inf]
    cluster: district
contrasts:
  - id: all
    outcome: change
    measure: MD
    time_h: 24
    cluster: [district]
"""
    f = tmp_path / "c.yaml"
    f.write_text(text)
    claims = load_claims(f)
    assert claims.contrasts[0].clusters == ("district",)
    assert claims.claims[0].option("cluster") == ("district",)
    f.write_text(text.replace("cluster: [district]", "cluster: [3]"))
    with pytest.raises(SpecError, match="contrast 'all', field 'cluster'"):
        load_claims(f)
