"""The report: files written, numbers equal to results.json, escaping, byte identity."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from conftest import base_rows, write_csv
from trialmeta.cli.app import app
from typer.testing import CliRunner

runner = CliRunner()
SMALL = ["--draws", "150", "--tune", "150", "--chains", "2", "--seed", "9", "--quiet",
         "--allow-unconverged"]
CLAIMS = """
claims:
  - id: T1
    quote: most respond
    model: pooled-rate
    outcome: response
    time_h: 24
    quantity: pooled_rate
    region: [0.4, 0.6]
  - id: T2
    quote: a new study would see most respond
    model: pooled-rate
    outcome: response
    time_h: 24
    quantity: predictive_rate
    region: [0.4, 0.6]
  - id: T3
    quote: remission at a week
    model: pooled-rate
    outcome: remission
    time_h: 168
    quantity: pooled_rate
    region: [0.2, 0.4]
"""


def make_inputs(tmp_path: Path, study_name: str = "A2001") -> tuple[Path, Path]:
    rows = base_rows()
    for r in rows:
        if r["study"] == "A2001":
            r["study"] = study_name
    data = write_csv(tmp_path / "records.csv", rows)
    claims = tmp_path / "claims.yaml"
    claims.write_text(CLAIMS)
    return data, claims


def run_report(data: Path, claims: Path, out: Path) -> None:
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(out),
                            *SMALL])
    assert r.exit_code == 0, r.output


def test_report_files_and_numbers(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    out = tmp_path / "rep"
    run_report(data, claims, out)
    assert {p.name for p in out.iterdir()} == {"index.html", "report.md", "results.json",
                                               "tables", "fits", ".trialmeta-report"}
    assert {p.name for p in (out / "tables").iterdir()} >= {"claims.csv", "studies.csv",
                                                            "estimates.csv"}
    import arviz as az

    nc = sorted((out / "fits").glob("*.nc"))
    assert nc and "posterior" in az.from_netcdf(nc[0]).groups()
    res = json.loads((out / "results.json").read_text())
    verdicts = {c["id"]: c for c in res["claims"]}
    assert verdicts["T3"]["verdict"] == "insufficient data"
    assert verdicts["T1"]["verdict"] in {"supported", "contradicted", "inconclusive"}
    assert len(res["fits"]) == 1  # T1 and T2 share one fit
    html = (out / "index.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")
    for c in res["claims"]:
        cell = re.search(rf'data-claim="{c["id"]}" data-field="verdict">([^<]*)<', html)
        assert cell and cell.group(1) == c["verdict"]
        if c["probability"] is not None:
            prob = re.search(rf'data-claim="{c["id"]}" data-field="probability">([^<]*)<', html)
            assert prob.group(1) == f"{c['probability']:.2f}"
        # every claim: its certainty grade and one plain sentence beside the verdict
        grade = re.search(rf'data-claim="{c["id"]}" data-field="certainty">([^<]*)<', html)
        assert grade and grade.group(1) == c["certainty"]["grade"]
        plain = re.search(rf'data-claim="{c["id"]}" data-field="plain">([^<]*)<', html)
        assert plain and c["verdict"] in plain.group(1) and "certainty" in plain.group(1)
    for fid, doc in res["fits"].items():
        for q in ("pooled_rate", "predictive_rate", "tau"):
            cell = re.search(rf'data-fit="{fid}" data-quantity="{q}">([^<]*)<', html)
            assert cell.group(1) == f"{doc['estimates'][q]['median']:.4f}"
    md = (out / "report.md").read_text()
    assert "## Claims" in md and "T1" in md and "## Provenance" in md
    assert res["provenance"]["claims_sha256"] and res["provenance"]["seed"] == 9


def test_rerun_is_byte_identical(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    run_report(data, claims, tmp_path / "a")
    run_report(data, claims, tmp_path / "b")
    for name in ("results.json", "report.md", "index.html", "tables/claims.csv",
                 "tables/estimates.csv", "tables/studies.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_markup_in_names_is_escaped(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>_x_"
    data, claims = make_inputs(tmp_path, study_name=evil)
    out = tmp_path / "rep"
    run_report(data, claims, out)
    html = (out / "index.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    md = (out / "report.md").read_text()
    assert "<script>" not in md and r"\<script\>" in md


def test_bad_claims_write_nothing_and_keep_previous(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    out = tmp_path / "rep"
    run_report(data, claims, out)
    before = (out / "results.json").read_bytes()
    claims.write_text(CLAIMS.replace("[0.4, 0.6]", "[0.9, 0.1]", 1))
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(out),
                            *SMALL])
    assert r.exit_code == 2 and "claim 'T1', field 'region'" in r.output
    assert (out / "results.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".rep")) == []


CONTRASTS = """
contrasts:
  - id: resp
    title: Response vs control
    outcome: response
    measure: OR
    time_h: 24
    comparators:
      saline: [saline]
      midazolam: [midazolam]
"""


def test_contrast_section(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    claims.write_text(CLAIMS + CONTRASTS)
    out = tmp_path / "rep"
    run_report(data, claims, out)
    res = json.loads((out / "results.json").read_text())
    groups = {g["group"]: g for g in res["contrasts"][0]["groups"]}
    assert groups["saline"]["k"] == 2 and groups["saline"]["status"] == "fitted"
    assert groups["midazolam"]["k"] == 0 and "no study" in groups["midazolam"]["status"]
    assert groups["all controls"]["frequentist"]["method"] == "REML"
    assert "forest_svg" not in groups["saline"]
    html = (out / "index.html").read_text()
    cell = re.search(r'data-contrast="resp" data-group="saline">([^<]*)<', html).group(1)
    eff = groups["saline"]["bayesian"]["estimates"]["effect"]
    assert cell.startswith(f"{eff['median']:.3f} ({eff['ci_low']:.3f}")
    assert "Contrasts with control" in (out / "report.md").read_text()


def test_claims_fail_on_contradicted(tmp_path: Path) -> None:
    """A constructed claims file whose region the data rule out exits 1 with --fail-on."""
    data, _ = make_inputs(tmp_path)
    bad = tmp_path / "contradicted.yaml"
    bad.write_text(CLAIMS.replace("[0.4, 0.6]", "[0.95, 0.99]", 1))
    args = ["claims", str(data), "--claims", str(bad), "--draws", "200", "--tune", "200",
            "--chains", "2", "--seed", "1", "--allow-unconverged"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {c["id"]: c["verdict"] for c in doc["claims"]}["T1"] == "contradicted"
    assert set(doc["claims"][0]) >= {"id", "quote", "quantity", "median", "ci_low", "ci_high",
                                     "probability", "verdict", "studies",
                                     "diagnostics_passed", "reason"}
    r = runner.invoke(app, [*args, "--fail-on", "contradicted"])
    assert r.exit_code == 1
    assert "contradicted" in r.output


def test_names_cannot_escape_the_output_folder(tmp_path: Path) -> None:
    data, claims = make_inputs(tmp_path)
    claims.write_text(CLAIMS.replace("id: T1", "id: ../../escaped"))
    out = tmp_path / "deep" / "rep"
    run_report(data, claims, out)
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file()}
    inside = {p for p in written if out.resolve() in p.parents}
    assert written - inside == {data.resolve(), claims.resolve()}
    assert any("escaped" in p.name for p in (out / "fits").iterdir())


def test_worker_processes_give_the_same_report(tmp_path: Path) -> None:
    """--jobs 2 (fits in two spawned workers, read back from the cache) changes no byte."""
    data, claims = make_inputs(tmp_path)
    for name, jobs in (("one", "1"), ("two", "2")):
        r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out",
                                str(tmp_path / name), "--cache", str(tmp_path / f"c-{name}"),
                                "--jobs", jobs, *[a for a in SMALL if a != "--no-cache"]])
        assert r.exit_code == 0, r.output
    for name in ("results.json", "report.md", "index.html", "tables/claims.csv"):
        assert ((tmp_path / "one" / name).read_bytes()
                == (tmp_path / "two" / name).read_bytes()), name


def test_warm_report_reuses_every_figure(tmp_path: Path) -> None:
    """Figures are cached by their inputs: a rerun into another folder draws none anew."""
    data, claims = make_inputs(tmp_path)
    cache = tmp_path / "cache"
    args = ["--claims", str(claims), "--cache", str(cache),
            *[a for a in SMALL if a != "--no-cache"]]
    for out in ("a", "b"):
        r = runner.invoke(app, ["report", str(data), "--out", str(tmp_path / out), *args])
        assert r.exit_code == 0, r.output
        if out == "a":
            first = sorted(p.name for p in (cache / "svg").iterdir())
            assert first
    assert sorted(p.name for p in (cache / "svg").iterdir()) == first
    svg = re.compile(r"<svg.*?</svg>", re.S)
    a, b = ((tmp_path / o / "index.html").read_text() for o in ("a", "b"))
    assert svg.findall(a) == svg.findall(b) and len(svg.findall(a)) >= 1


TIME_CLAIMS = """
claims:
  - id: fades
    quote: the effect fades within two weeks
    model: time-course
    outcome: response
    form: bateman
    threshold: 0.405
    fraction: 0.5
    quantity: duration_h
    region: [0, 336]
    selection:
      treatment: [ketamine, esketamine]
"""


def test_censored_time_quantities_render_in_every_format(tmp_path: Path) -> None:
    """Durations some draws never reach read "> 672" in the claims and the curve tables."""
    claims = tmp_path / "claims.yaml"
    claims.write_text(TIME_CLAIMS)
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", "--claims", str(claims), "--out", str(out), *SMALL])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    [claim] = res["claims"]
    assert claim["censored_above"] == ["ci_high"] and claim["ci_high"] is None
    for name in ("index.html", "report.md"):
        text = (out / name).read_text()
        assert "> 672" in text or "&gt; 672" in text
        assert "None" not in text.replace("Nonetheless", "")


def test_report_prints_priors_scales_and_the_decision_rule(tmp_path: Path) -> None:
    """Issue 13 point 7: every fit's priors, log-OR headings, Egger's power, the rule's OC."""
    data, claims = make_inputs(tmp_path)
    claims.write_text(CLAIMS + CONTRASTS)
    cal = tmp_path / "cal"
    cal.mkdir()
    from trialmeta.analysis.evaluate.claims import load_claims
    from trialmeta.analysis.io.records import read_records

    rows = [{"claim": "T1", "world": "rate 50% (inside the region)", "claim_true": True,
             "sims": 10, "planted": {"mu": 0.0}, "counts": {},
             **{v: {"p": p, "ci_low": 0.0, "ci_high": 1.0} for v, p in
                (("supported", 0.7), ("contradicted", 0.0), ("inconclusive", 0.3),
                 ("insufficient data", 0.0))}}]
    prov = {"data_sha256": read_records(data).sha256,
            "claims_sha256": load_claims(claims).sha256}
    (cal / "operating-characteristics.json").write_text(json.dumps(
        {"rows": rows, "sims": 10, "provenance": prov}))
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(data), "--claims", str(claims), "--out", str(out),
                            "--calibration", str(cal), *SMALL])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    html = (out / "index.html").read_text()
    for text in (md, html):
        assert "Bayesian median, log OR" in text
        assert "Priors" in text and "μ ~ N(0, 1.5) on the logit scale" in text.replace(
            "\\(", "(").replace("\\)", ")").replace("\\~", "~")
        assert "Operating characteristics of the decision rule" in text
        assert "rate 50% " in text.replace("\\(", "(")
    res = json.loads((out / "results.json").read_text())
    assert res["robustness"]["operating"]["rows"][0]["claim"] == "T1"


def test_plain_sentence_uses_natural_units_and_the_main_reason() -> None:
    from trialmeta.analysis.report.build import plain_sentence

    log_or = {"id": "X", "quantity": "effect", "model": "contrast", "outcome": "response",
              "median": np.log(2.0), "ci_low": np.log(1.25), "ci_high": np.log(3.5),
              "censored_above": [], "verdict": "supported", "strength": "probable",
              "qualifier": None, "reason": "P(effect in [0, inf]) = 0.91",
              "certainty": {"grade": "low", "reasons": ["fragile: leaving out A (inconclusive)"]}}
    text = plain_sentence(log_or)
    assert "odds ratio 2.00 (95% CrI 1.25 to 3.50)" in text
    assert "supported (probable), low certainty, mainly because fragile" in text
    rate = dict(log_or, quantity="pooled_rate", model="pooled-rate", median=0.3, ci_low=0.2,
                ci_high=0.4, verdict="insufficient data", strength=None,
                reason="1 stud(ies) inform this claim; at least 2 needed. More trials",
                certainty={"grade": "very low", "reasons": ["the records as extracted ..."]})
    text = plain_sentence(rate)
    assert "30.0%" in text and "odds ratio" not in text
    assert text.endswith("mainly because 1 stud(ies) inform this claim.")


#: what a reader should never see in a report: Python's None, float NaN, "nan h" labels,
#: p-values rounded to zero, raw mathtext of matplotlib's log ticks
DEBRIS = re.compile(r"\bNone\b|\bnan\b|\bNaN\b|p = 0\.000\b|mathdefault|\\\$")


def test_the_bundled_report_has_no_debris(bundled_report: Path) -> None:
    """The user trial found "nan h" on 22 forest labels, "onset_h_p95 = None", "p = 0.000"
    and literal $\\mathdefault{10^{0}}$ ticks on the time-course figure."""
    for name in ("index.html", "report.md"):
        text = (bundled_report / name).read_text()
        found = sorted({m.group(0) for m in DEBRIS.finditer(text)})
        context = [text[max(0, m.start() - 60):m.end() + 20] for m in DEBRIS.finditer(text)]
        assert not found, (name, found, context[:5])


def test_a_dollar_in_a_study_name_stays_literal_and_log_ticks_are_clean(tmp_path: Path
                                                                        ) -> None:
    """Mathtext is no longer switched off for the whole process: user text is drawn with
    parse_math=False, so '$' stays a '$' while matplotlib's own log ticks render."""
    from trialmeta.analysis.report.plots import svg, time_plot

    data, claims = make_inputs(tmp_path, study_name="A$x$2001")
    out = tmp_path / "rep"
    run_report(data, claims, out)
    html = (out / "index.html").read_text()
    assert "A$x$2001" in html
    doc = {"curve": {"time_h": [1, 10, 100], "median": [0.1, 0.5, 0.2],
                     "ci_low": [0, 0.2, 0], "ci_high": [0.2, 0.8, 0.4]},
           "data": [{"time_h": 24.0, "yi": 0.5, "vi": 0.04}], "form": "bateman",
           "measure": "OR"}
    figure = svg(time_plot, doc=doc, title="A$x$ figure")
    assert "mathdefault" not in figure and "A$x$ figure" in figure
    assert "log OR vs control" in figure


def test_league_table_is_the_usual_triangle() -> None:
    """Before: a 20-row list of (treatment, vs) pairs with raw field names as headers."""
    from trialmeta.analysis.report.network_section import league_table

    nodes = ["placebo", "a", "b"]
    league = [{"treatment": t, "vs": v, "median": float(i), "ci_low": i - 1.0,
               "ci_high": i + 1.0} for i, (t, v) in enumerate(
                   [(t, v) for t in nodes for v in nodes if t != v])]
    doc = {"nodes": nodes, "league": league, "scale": "log odds ratio"}
    t = league_table(doc)
    assert t["columns"] == ["", *nodes]
    rows = {r[""]: r for r in t["rows"]}
    assert [rows[n][n] for n in nodes] == nodes  # the diagonal names the treatments
    # below the diagonal: the row treatment against the column treatment
    a_vs_placebo = next(r for r in league if r["treatment"] == "a" and r["vs"] == "placebo")
    assert rows["a"]["placebo"] == (f"{a_vs_placebo['median']:.2f} "
                                    f"({a_vs_placebo['ci_low']:.2f} to "
                                    f"{a_vs_placebo['ci_high']:.2f})")
    assert rows["placebo"]["a"] == ""  # the upper triangle would repeat it


def test_history_plot_gives_every_claim_its_own_style() -> None:
    """Before: 10 colours for 18 claims, so claims 1 and 11 looked the same."""
    from trialmeta.analysis.report.history import claim_style

    styles = [claim_style(i) for i in range(60)]
    assert len(set(styles)) == 60


def test_cells_and_p_values_never_print_none_or_zero() -> None:
    from trialmeta.analysis.report.build import cell, header, pfmt, ptext

    assert pfmt(0.0000001) == "< 0.001" and ptext(0.0002) == "p < 0.001"
    assert ptext(0.0412) == "p = 0.041"
    assert cell(None, "onset_h_p95") == "–" and cell(float("nan"), "x") == "–"
    assert cell(0.00001, "p_value") == "< 0.001"
    assert header("ci_low") == "95% lower" and header("sucra") == "SUCRA"


def test_the_markdown_report_opens_with_its_contents(bundled_report: Path) -> None:
    from trialmeta.analysis.report.build import md_anchor

    md = (bundled_report / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    contents = re.findall(r"^- \[(.+)\]\(#([^)]+)\)$", md.split("## ", 1)[0], flags=re.M)
    assert [t for t, _ in contents] == headings and len(headings) >= 8
    assert all(anchor == md_anchor(t) for t, anchor in contents)
    assert md.index("## Claims") < md.index("## Data overview")
