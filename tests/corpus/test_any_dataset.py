"""A meta-analyst's own files through every command: wide formats, import, forest, priors.

The data are metafor's ``metadat`` datasets as ``tests/reference/make_metadat_corpus.R``
writes them (one row per study, escalc's column names); R's numbers are pinned in
``tests/reference/metadat-corpus.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trialmeta.analysis.errors import DataError
from trialmeta.analysis.io.records import import_records, read_records
from trialmeta.cli.app import app
from typer.testing import CliRunner

runner = CliRunner()
HERE = Path(__file__).parents[1]
DATA = HERE / "data" / "metadat"
REF = json.loads((HERE / "reference" / "metadat-corpus.json").read_text())
CORPUS = sorted(DATA.glob("*.csv"))


def test_the_corpus_has_six_public_datasets() -> None:
    assert len(CORPUS) >= 6
    assert {p.name for p in CORPUS} == {REF[k]["file"] for k in REF
                                         if isinstance(REF[k], dict) and "file" in REF[k]}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_every_corpus_file_validates(path: Path) -> None:
    res = runner.invoke(app, ["validate", str(path), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["valid"] and doc["notes"][0].startswith("read as a wide file")


def test_wide_rows_become_two_arms_with_provenance_and_moderators() -> None:
    r = read_records(DATA / "bcg.csv")
    t = r.table
    assert len(t) == 26 and t["study"].nunique() == 13
    first = t[t["study"] == "Aronson 1948"].set_index("arm")
    assert first.loc["treatment", "events"] == 4 and first.loc["treatment", "n"] == 123
    assert first.loc["control", "events"] == 11 and first.loc["control", "n"] == 139
    assert bool(first.loc["control", "control"]) and not bool(first.loc["treatment", "control"])
    assert first.loc["control", "source"].endswith("bcg.csv, line 2")
    assert first.loc["treatment", "ablat"] == "44" and first.loc["control", "alloc"] == "random"


def test_a_user_column_named_source_is_kept_not_mistaken_for_provenance() -> None:
    r = read_records(DATA / "normand1999.csv")
    assert set(r.table["source_column"]) >= {"Edinburgh", "Umea"}
    assert all("normand1999.csv, line" in s for s in r.table["source"])
    assert any("'source_column'" in n for n in r.notes)


def test_a_study_with_missing_counts_is_left_out_with_a_note() -> None:
    r = read_records(DATA / "yusuf1985_table6.csv")
    assert "Snow 1" not in set(r.table["study"])
    assert any("left out with a missing number: Snow 1" in n for n in r.notes)


def test_problems_name_the_wide_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("study,ai,n1i,ci,n2i\nA,5,10,3,10\nB,12,10,3,10\nC,-1,10,x,10\n")
    with pytest.raises(DataError) as err:
        read_records(path)
    where = {(p.row, p.column) for p in err.value.problems}
    assert where == {(3, "ai"), (4, "ai"), (4, "ci")}, err.value.problems
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_import_renames_columns_and_writes_a_long_file_that_reads_back(tmp_path: Path) -> None:
    """dat.bcg as R has it (tpos/tneg/cpos/cneg), named on the command line as in escalc."""
    raw = (DATA / "bcg.csv").read_text().replace('"ai","bi","ci","di"',
                                                 '"tpos","tneg","cpos","cneg"')
    src = tmp_path / "dat_bcg.csv"
    src.write_text(raw)
    out = tmp_path / "long.csv"
    res = runner.invoke(app, ["import", str(src), "--out", str(out), "--column", "ai=tpos",
                              "--column", "bi=tneg", "--column", "ci=cpos", "--column",
                              "di=cneg"])
    assert res.exit_code == 0, res.output
    back = read_records(out)
    direct = read_records(DATA / "bcg.csv")
    cols = ["study", "arm", "events", "n", "ablat"]
    assert back.table[cols].astype(str).values.tolist() == \
        direct.table[cols].astype(str).values.tolist()
    # the long file gives metafor's pooled RR too
    doc = json.loads(runner.invoke(app, ["frequentist", str(out), "--outcome", "events",
                                         "--measure", "RR", "--json"]).output)
    assert doc["estimate"] == pytest.approx(REF["bcg"]["RR"]["estimate"], abs=1e-6)
    bad = runner.invoke(app, ["import", str(src), "--out", str(out), "--column", "ai=nope"])
    assert bad.exit_code == 2 and "no column 'nope'" in bad.output


def test_import_of_a_yi_file_with_its_measure(tmp_path: Path) -> None:
    out = tmp_path / "bd.csv"
    res = runner.invoke(app, ["import", str(DATA / "bangertdrowns2004.csv"), "--out", str(out),
                              "--measure", "SMD"])
    assert res.exit_code == 0, res.output
    doc = json.loads(runner.invoke(app, ["frequentist", str(out), "--outcome", "change",
                                         "--measure", "SMD", "--json"]).output)
    assert doc["estimate"] == pytest.approx(REF["bangertdrowns2004"]["RE"]["estimate"],
                                            abs=1e-6)
    assert import_records(DATA / "pritz1997.csv").table["design"].eq("single_arm").all()


@pytest.mark.parametrize("suffix", [".svg", ".png", ".pdf"])
def test_forest_plot_for_any_data(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"f{suffix}"
    res = runner.invoke(app, ["forest", str(DATA / "bcg.csv"), "--outcome", "events",
                              "--measure", "RR", "--subgroup", "alloc", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = out.read_bytes()
    magic = {".svg": b"<svg", ".png": b"\x89PNG", ".pdf": b"%PDF"}[suffix]
    assert magic in data[:200]
    if suffix == ".svg":
        text = data.decode()
        assert "Aronson 1948" in text and "alloc = systematic" in text
        assert "0.49 [0.34, 0.70]" in text  # metafor's pooled RR, 0.4894 (0.3441, 0.6962)
        assert "mathdefault" not in text
        assert "test for subgroup differences: Q = 1.77, df = 2, p = 0.413" in text


def test_forest_refuses_an_unknown_format(tmp_path: Path) -> None:
    res = runner.invoke(app, ["forest", str(DATA / "bcg.csv"), "--outcome", "events",
                              "--out", str(tmp_path / "f.gif")])
    assert res.exit_code == 2 and ".svg, .png or .pdf" in res.output


def test_priors_are_printed_and_settable_from_the_command_line() -> None:
    args = ["fit", "contrast", str(DATA / "bcg.csv"), "--outcome", "events", "--draws", "200",
            "--tune", "200", "--allow-unconverged", "--json"]
    doc = json.loads(runner.invoke(app, args).output)
    assert doc["priors"]["effect_sd"] == 2.5 and doc["priors"]["tau"]["scale"] == 0.5
    doc = json.loads(runner.invoke(app, [*args, "--effect-sd", "4", "--baseline-sd", "7",
                                         "--tau-prior", "half-normal:2"]).output)
    assert doc["priors"]["effect_sd"] == 4 and doc["priors"]["baseline_sd"] == 7
    assert doc["priors"]["tau"]["scale"] == 2
    doc = json.loads(runner.invoke(app, [*args, "--priors", "vague"]).output)
    assert doc["priors"]["effect_sd"] == 100 and doc["priors"]["tau"]["scale"] == 5
    text = runner.invoke(app, args[:-1]).output
    assert "priors: effect ~ N(0, 2.5^2)" in text and "24 h" not in text


def test_mean_difference_priors_scale_with_the_outcome() -> None:
    """Normand's length of stay in days: the default MD priors come from its median SD (20),
    so the pooled MD is metafor's, not pulled to -10.7 by a depression-scale N(0, 10)."""
    args = ["fit", "contrast", str(DATA / "normand1999.csv"), "--outcome", "change",
            "--measure", "MD", "--seed", "3", "--json"]
    res = runner.invoke(app, args)
    doc = json.loads(res.output)
    assert doc["priors"]["effect_sd"] == pytest.approx(2.5 * 20) and \
        doc["priors"]["tau"]["scale"] == pytest.approx(20)
    e = doc["estimates"]["effect"]
    ref = REF["normand1999"]["MD"]
    assert e["median"] == pytest.approx(ref["estimate"], abs=1.5)
    assert e["ci_low"] < 0 < e["ci_high"]  # as metafor's CI, -32.6 to 2.4
    assert any("presses against its prior" in w for w in doc["warnings"])


def _rates_file(tmp_path: Path) -> Path:
    """Ten single-arm studies, five of an old era (17/104 events) and five new (64/104)."""
    path = tmp_path / "rates.csv"
    path.write_text("study,xi,ni,era\n" + "".join(
        f"S{i},{x},{n},{'old' if i < 5 else 'new'}\n"
        for i, (x, n) in enumerate([(3, 20), (4, 22), (2, 18), (5, 25), (3, 19), (12, 20),
                                    (14, 22), (11, 18), (15, 25), (12, 19)])))
    return path


def test_single_arm_proportions_pool_without_a_time_point() -> None:
    """Pritz 1997 (xi/ni): before, 'fit pooled-rate' windowed at 24 h and found no arm.

    With weak priors the posterior median of the logit rate lies within a quarter of a
    standard error of metafor's binomial-normal ML estimate (``rma.glmm``, the same
    likelihood), and the 95 % intervals agree to 0.15 on the logit scale.
    """
    import math

    res = runner.invoke(app, ["fit", "pooled-rate", str(DATA / "pritz1997.csv"),
                              "--outcome", "events", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    ref = REF["pritz1997"]["PLO_glmm"]
    assert doc["time_h"] is None and doc["arms"] == ref["k"]
    mu = doc["estimates"]["mu_logit"] if "mu_logit" in doc["estimates"] else None
    rate = doc["estimates"]["pooled_rate"]
    logit = math.log(rate["median"] / (1 - rate["median"]))
    assert abs(logit - ref["estimate"]) < 0.25 * ref["se"], (logit, mu)
    lo = math.log(rate["ci_low"] / (1 - rate["ci_low"]))
    hi = math.log(rate["ci_high"] / (1 - rate["ci_high"]))
    assert abs(lo - ref["ci_lb"]) < 0.15 and abs(hi - ref["ci_ub"]) < 0.15


def test_pooled_rate_takes_a_users_column_as_moderator(tmp_path: Path) -> None:
    path = _rates_file(tmp_path)
    res = runner.invoke(app, ["fit", "pooled-rate", str(path), "--outcome", "events",
                              "--moderator", "era", "--json"])
    assert res.exit_code == 0, res.output
    beta = json.loads(res.output)["estimates"]["beta:era=old"]
    assert beta["ci_high"] < 0  # the old era's rate is clearly lower: 17/104 vs 64/104


def test_network_without_time_points_reproduces_tsd4_with_vague_priors() -> None:
    """NICE TSD4's smoking-cessation network (Hasselblad 1998) from the command line:
    multinma's and TSD4's vague priors (--priors vague) give TSD4's log ORs 0.49, 0.84,
    1.10 (mean; sd 0.40, 0.24, 0.44). Before, the file (no time_h) selected no study, and
    the priors could be set only through the Python API. Tolerance: 4 posterior SDs over
    sqrt(ESS) plus the printed rounding (0.005), ESS taken as 1,000."""
    path = HERE / "data" / "smoking_records.csv"
    res = runner.invoke(app, ["fit", "network", str(path), "--reference", "no_intervention",
                              "--priors", "vague", "--no-check-inconsistency", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["priors"]["effect_sd"] == 100 and doc["priors"]["tau"]["scale"] == 5
    for node, (mean, sd) in {"self_help": (0.49, 0.40), "individual_counselling": (0.84, 0.24),
                             "group_counselling": (1.10, 0.44)}.items():
        e = doc["effects"][node]
        assert abs(e["median"] - mean) < 4 * sd / 1000**0.5 + 0.005 + 0.02, (node, e)


TWO_GROUP = [("bcg.csv", "events", "RR"), ("normand1999.csv", "change", "MD"),
             ("yusuf1985_table6.csv", "events", "OR"), ("li2007.csv", "events", "OR"),
             ("bangertdrowns2004.csv", "change", "MD")]


@pytest.mark.parametrize(("name", "outcome", "measure"), TWO_GROUP,
                         ids=[t[0] for t in TWO_GROUP])
def test_every_two_group_dataset_through_fit_and_forest(tmp_path: Path, name: str,
                                                        outcome: str, measure: str) -> None:
    """fit contrast (default draws) converges and agrees with metafor's REML estimate to
    within a quarter of metafor's SE plus the shrinkage of a weakly informative prior (the
    Bayesian median is not the REML point, so the check is loose but not vacuous: a sign
    error or a wrong scale fails it); forest writes the figure."""
    path = str(DATA / name)
    res = runner.invoke(app, ["fit", "contrast", path, "--outcome", outcome, "--measure",
                              measure, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    freq = json.loads(runner.invoke(app, ["frequentist", path, "--outcome", outcome,
                                          "--measure", measure, "--json"]).output)
    e = doc["estimates"]["effect"]
    assert e["ci_low"] < freq["estimate"] < e["ci_high"]
    assert abs(e["median"] - freq["estimate"]) < 0.5 * freq["se"] + 0.1 * abs(freq["estimate"])
    assert doc["time_h"] is None and doc["diagnostics"]["passed"]
    out = tmp_path / "f.svg"
    res = runner.invoke(app, ["forest", path, "--outcome", outcome, "--measure", measure,
                              "--out", str(out)])
    assert res.exit_code == 0 and out.read_text().count("%") >= freq["k"]


def test_bayesian_subgroups_in_fit_contrast_and_pooled_rate(tmp_path: Path) -> None:
    res = runner.invoke(app, ["fit", "contrast", str(DATA / "bcg.csv"), "--outcome", "events",
                              "--subgroup", "alloc", "--json"])
    assert res.exit_code == 0, res.output
    sub = json.loads(res.output)["subgroups"]
    assert [g["level"] for g in sub["groups"]] == ["alternate", "random", "systematic"]
    assert sub["reference"] == "random"  # the most common level: 7 of 13 trials
    random = next(g for g in sub["groups"] if g["level"] == "random")
    freq = next(g for g in REF["bcg"]["RR_subgroups_alloc"] if g["level"] == "random")
    assert random["effect"]["median"] < 0 and freq["estimate"] < 0
    assert {d["term"] for d in sub["differences"]} == {"alloc=alternate", "alloc=systematic"}
    path = _rates_file(tmp_path)
    res = runner.invoke(app, ["fit", "pooled-rate", str(path), "--outcome", "events",
                              "--subgroup", "era", "--json"])
    assert res.exit_code == 0, res.output
    sub = json.loads(res.output)["subgroups"]
    rates = {g["level"]: g["pooled_rate"]["median"] for g in sub["groups"]}
    assert rates["old"] == pytest.approx(17 / 104, abs=0.05)
    assert rates["new"] == pytest.approx(64 / 104, abs=0.05)
    [diff] = sub["differences"]
    assert diff["term"] == "era=old" and diff["p_positive"] < 0.01
    bad = runner.invoke(app, ["fit", "pooled-rate", str(path), "--outcome", "events",
                              "--subgroup", "nope"])
    assert bad.exit_code == 2 and "not available" in bad.output
