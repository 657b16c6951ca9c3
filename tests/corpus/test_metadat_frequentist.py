"""metafor's own datasets, as a metafor user saves them, through ``trialmeta frequentist``.

Every number is pinned in ``tests/reference/metadat-corpus.json`` with the R call that made
it (``tests/reference/make_metadat_corpus.R``, metafor 3.8.1). The files in
``tests/data/metadat/`` are the metadat data frames written by that script with
``write.csv``: one row per study, escalc's column names.
"""

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
#: the pinned R numbers carry 15 digits; both sides iterate the same Fisher scoring steps
TOL = 1e-6


def freq(*args: str) -> dict:
    res = runner.invoke(app, ["frequentist", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def same_pooled(doc: dict, ref: dict) -> None:
    assert doc["k"] == ref["k"]
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub"), ("tau2", "tau2"), ("Q", "QE"),
                         ("pi_low", "pi_lb"), ("pi_high", "pi_ub")):
        assert doc[ours] == pytest.approx(ref[theirs], abs=TOL, rel=TOL), ours


def same_regression(doc: dict, ref: dict, terms: list[str]) -> None:
    assert [c["term"] for c in doc["coefficients"]] == terms
    assert doc["k"] == ref["k"]
    for i, c in enumerate(doc["coefficients"]):
        for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("ci_low", "ci_lb"),
                             ("ci_high", "ci_ub"), ("p", "p")):
            assert c[ours] == pytest.approx(ref[theirs][i], abs=TOL, rel=TOL), (c["term"], ours)
    assert doc["QM"] == pytest.approx(ref["QM"], abs=TOL, rel=TOL)
    assert doc["QM_p"] == pytest.approx(ref["QMp"], abs=TOL, rel=TOL)
    assert doc["QM_df"] == ref["QMdf"][0]
    assert doc["tau2"] == pytest.approx(ref["tau2"], abs=TOL, rel=TOL)


BCG = str(DATA / "bcg.csv")


@pytest.mark.parametrize("measure", ["RR", "OR"])
def test_bcg_pooled(measure: str) -> None:
    same_pooled(freq(BCG, "--outcome", "events", "--measure", measure), REF["bcg"][measure])


@pytest.mark.parametrize(("key", "args", "terms"), [
    ("RR_ablat", ["--moderator", "ablat"], ["intercept", "ablat"]),
    ("RR_ablat_knha", ["--moderator", "ablat", "--hksj", "plain"], ["intercept", "ablat"]),
    ("RR_ablat_year", ["--moderator", "ablat", "--moderator", "year"],
     ["intercept", "ablat", "year"]),
    ("RR_alloc", ["--moderator", "alloc"], ["intercept", "alloc=random", "alloc=systematic"]),
    ("RR_alloc_DL", ["--moderator", "alloc", "--method", "DL"],
     ["intercept", "alloc=random", "alloc=systematic"]),
])
def test_bcg_meta_regression_equals_metafor(key: str, args: list[str], terms: list[str]) -> None:
    """BCG's latitude, the canonical meta-regression (before: --moderator refused 'ablat')."""
    doc = freq(BCG, "--outcome", "events", "--measure", "RR", *args)
    same_regression(doc["meta_regression"], REF["bcg"][key], terms)
    if "knha" in key:
        assert doc["meta_regression"]["QM_df_residual"] == REF["bcg"][key]["QMdf"][1]


def test_bcg_subgroups_equal_metafor() -> None:
    doc = freq(BCG, "--outcome", "events", "--measure", "RR", "--subgroup", "alloc")
    sub = doc["subgroups"]
    ref = {g["level"]: g for g in REF["bcg"]["RR_subgroups_alloc"]}
    assert [g["level"] for g in sub["groups"]] == sorted(ref)
    for g in sub["groups"]:
        r = ref[g["level"]]
        assert g["k"] == r["k"]
        for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("ci_low", "ci_lb"),
                             ("ci_high", "ci_ub"), ("tau2", "tau2")):
            assert g[ours] == pytest.approx(r[theirs], abs=TOL, rel=TOL), (g["level"], ours)
    between = REF["bcg"]["RR_alloc"]
    assert sub["Q_between"] == pytest.approx(between["QM"], abs=TOL, rel=TOL)
    assert sub["Q_between_p"] == pytest.approx(between["QMp"], abs=TOL, rel=TOL)
    assert sub["Q_between_df"] == 2


def test_normand_means_and_its_source_column() -> None:
    """Length of stay in days; the file's own 'source' column no longer collides."""
    path = str(DATA / "normand1999.csv")
    same_pooled(freq(path, "--outcome", "change", "--measure", "MD"),
                REF["normand1999"]["MD"])
    same_pooled(freq(path, "--outcome", "change", "--measure", "SMD"),
                REF["normand1999"]["SMD"])
    knha = freq(path, "--outcome", "change", "--measure", "MD", "--hksj", "plain")
    assert knha["se"] == pytest.approx(REF["normand1999"]["MD_knha"]["se"], rel=TOL)
    # nine sites, nine studies: a saturated model is refused with the reason, not a crash
    res = runner.invoke(app, ["frequentist", path, "--outcome", "change", "--measure", "MD",
                              "--moderator", "source_column"])
    assert res.exit_code == 2
    assert "9 studies cannot estimate 9 coefficients" in res.output


def test_yusuf_leaves_out_the_study_with_missing_counts_as_metafor_does() -> None:
    doc = freq(str(DATA / "yusuf1985_table6.csv"), "--outcome", "events", "--measure", "OR")
    same_pooled(doc, REF["yusuf1985_table6"]["OR"])
    assert doc["mantel_haenszel"]["estimate"] == pytest.approx(
        REF["yusuf1985_table6"]["MH"]["estimate"], rel=TOL)


def test_li2007_rare_events_and_a_year_moderator() -> None:
    path = str(DATA / "li2007.csv")
    same_pooled(freq(path, "--outcome", "events", "--measure", "OR"), REF["li2007"]["OR"])
    doc = freq(path, "--outcome", "events", "--measure", "OR", "--moderator", "year")
    same_regression(doc["meta_regression"], REF["li2007"]["OR_year"], ["intercept", "year"])


BD = str(DATA / "bangertdrowns2004.csv")


def test_bangert_drowns_yi_vi_with_missing_moderators() -> None:
    """yi/vi rows; 'length' is missing for some studies, which metafor leaves out."""
    ref = REF["bangertdrowns2004"]
    same_pooled(freq(BD, "--outcome", "change", "--measure", "MD"), ref["RE"])
    for key, args in (("length", []), ("length_knha", ["--hksj", "plain"])):
        doc = freq(BD, "--outcome", "change", "--measure", "MD", "--moderator", "length", *args)
        same_regression(doc["meta_regression"], ref[key], ["intercept", "length"])
        assert len(doc["meta_regression"]["left_out"]) == 48 - ref[key]["k"]
    doc = freq(BD, "--outcome", "change", "--measure", "MD", "--moderator", "grade:categorical")
    same_regression(doc["meta_regression"], ref["grade_factor"],
                    ["intercept", "grade=2", "grade=3", "grade=4"])


def test_bangert_drowns_subgroups_with_a_numeric_column() -> None:
    ref = REF["bangertdrowns2004"]
    sub = freq(BD, "--outcome", "change", "--measure", "MD", "--subgroup", "meta")["subgroups"]
    for g, r in zip(sub["groups"], ref["subgroups_meta"], strict=True):
        assert g["level"] == r["level"] and g["k"] == r["k"]
        assert g["estimate"] == pytest.approx(r["estimate"], abs=TOL, rel=TOL)
        assert g["tau2"] == pytest.approx(r["tau2"], abs=TOL, rel=TOL)
    assert sub["Q_between"] == pytest.approx(ref["meta_factor"]["QM"], rel=TOL)


def test_text_output_of_a_regression_and_subgroups() -> None:
    res = runner.invoke(app, ["frequentist", BCG, "--outcome", "events", "--measure", "RR",
                              "--moderator", "ablat", "--subgroup", "alloc"])
    assert res.exit_code == 0, res.output
    assert "meta-regression (REML, k = 13): QM chi2(1)" in res.output
    assert "subgroups by alloc" in res.output and "systematic" in res.output
    assert "p = 0.000" not in res.output
