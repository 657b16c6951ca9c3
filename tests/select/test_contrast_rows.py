"""Contrast-level rows: validation, and the same trial as arm-level or contrast-level numbers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import HEADER
from conftest import write_csv as _write
from scipy import stats
from trialmeta.analysis.errors import DataError
from trialmeta.analysis.families.contrast import exact_document, run_frequentist
from trialmeta.analysis.io.posterior_store import as_arviz
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.models.contrast import Contrast, default_priors
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.contrasts import contrast_effects, select_contrasts
from trialmeta.analysis.select.filters import Filters, TimeWindow
from trialmeta.cli.app import app
from typer.testing import CliRunner

COLUMNS = [*HEADER, "vs", "effect_outcome", "effect_measure", "effect", "effect_se",
           "effect_ci_low", "effect_ci_high"]
#: study -> (ketamine mean, sd, n, saline mean, sd, n), MADRS change at 24 h
MEANS = {"A2001": (-14.0, 8.0, 20, -6.0, 9.0, 21), "B2002": (-11.5, 7.5, 30, -7.0, 8.0, 28),
         "C2003": (-16.0, 10.0, 15, -5.5, 9.5, 16)}


def _row(study: str, arm: str, **fields: str) -> dict[str, str]:
    ctl = arm == "pbo"
    base = dict(study=study, arm=arm, treatment="saline" if ctl else "ketamine",
                control="true" if ctl else "false", dose="0" if ctl else "0.5",
                dose_unit="mg/kg", route="iv", doses_given="1", population="unipolar_trd",
                design="parallel", time_h="24", scale="MADRS", source=f"doi:10.0/{study}",
                evidence="primary")
    return base | fields


def arm_level(study: str) -> list[dict[str, str]]:
    m1, s1, n1, m2, s2, n2 = MEANS[study]
    return [_row(study, "ket", n=str(n1), mean=str(m1), sd=str(s1), mean_type="change"),
            _row(study, "pbo", n=str(n2), mean=str(m2), sd=str(s2), mean_type="change")]


def contrast_level(study: str, ci: bool = False) -> list[dict[str, str]]:
    m1, s1, n1, m2, s2, n2 = MEANS[study]
    md, se = m1 - m2, np.sqrt(s1**2 / n1 + s2**2 / n2)
    effect = dict(vs="pbo", effect_outcome="change", effect_measure="MD", effect=repr(md),
                  mean_type="change")
    effect |= (dict(effect_ci_low=repr(float(md - 1.959963984540054 * se)),
                    effect_ci_high=repr(float(md + 1.959963984540054 * se))) if ci
               else dict(effect_se=repr(float(se))))
    return [_row(study, "ket", n=str(n1), **effect), _row(study, "pbo", n=str(n2))]


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    return _write(path, rows, COLUMNS)


def _data(path: Path):
    return select_contrasts(read_records(path), "change", "MD", TimeWindow.around(24.0),
                            Filters())


@pytest.mark.parametrize("ci", [False, True])
def test_md_with_its_se_equals_the_arm_level_trial(tmp_path: Path, ci: bool) -> None:
    """Issue 15: exact engine to 1e-6, frequentist to 1e-9, MCMC the same model."""
    arms = write(tmp_path / "arms.csv", [r for s in MEANS for r in arm_level(s)])
    mixed = write(tmp_path / "mixed.csv", arm_level("A2001") + arm_level("B2002")
                  + contrast_level("C2003", ci=ci))
    a, b = _data(arms), _data(mixed)
    assert list(b.contrasts["level"]) == ["arm", "arm", "contrast"]
    assert b.k_studies == 3 and not any("C2003" in str(d) for d in b.dropped)
    ea, eb = contrast_effects(a), contrast_effects(b)
    np.testing.assert_allclose(eb.yi, ea.yi, rtol=1e-12)
    np.testing.assert_allclose(eb.vi, ea.vi, rtol=1e-9)
    ra, rb = (run_frequentist(d, "REML").result for d in (a, b))
    assert rb.estimate == pytest.approx(ra.estimate, rel=1e-9)
    assert rb.ci_low == pytest.approx(ra.ci_low, rel=1e-9)
    priors = default_priors("MD")
    xa, xb = (exact_document(d, priors, read_records(p))["estimates"]["effect"]
              for d, p in ((a, arms), (b, mixed)))
    for key in ("mean", "median", "ci_low", "ci_high"):
        assert xb[key] == pytest.approx(xa[key], abs=1e-6)
    if ci:
        assert any("SE derived from the 95% CI" in n for n in b.notes)
        return
    settings = SamplerSettings(draws=300, tune=300, chains=2, seed=4)
    # the same priors (the default MD priors scale with the arm SDs a file shows, and the
    # contrast-level study shows none): the same likelihood gives the same draws
    da, db = (flat(Contrast(priors).fit(d, settings).idata, "d") for d in (a, b))
    np.testing.assert_allclose(db, da, rtol=1e-9)


def test_reported_log_or_equals_the_two_by_two_table(tmp_path: Path) -> None:
    """A log OR with Woolf's SE, in the frequentist engine, is the 2x2 table's."""
    rows = []
    for study, (e1, n1, e2, n2) in {"A2001": (10, 20, 3, 20), "B2002": (15, 30, 6, 29),
                                    "C2003": (9, 16, 2, 15)}.items():
        rows += [_row(study, "ket", n=str(n1), responders=str(e1)),
                 _row(study, "pbo", n=str(n2), responders=str(e2))]
    arms = write(tmp_path / "arms.csv", rows)
    lor = np.log(9 * 13 / (7 * 2))
    se = np.sqrt(1 / 9 + 1 / 7 + 1 / 2 + 1 / 13)
    rows[-2:] = [_row("C2003", "ket", n="16", vs="pbo", effect_outcome="response",
                      effect_measure="logOR", effect=repr(float(lor)), effect_se=repr(float(se))),
                 _row("C2003", "pbo", n="15")]
    mixed = write(tmp_path / "mixed.csv", rows)
    window = TimeWindow.around(24.0)
    a, b = (select_contrasts(read_records(p), "response", "OR", window, Filters())
            for p in (arms, mixed))
    ra, rb = (run_frequentist(d, "REML").result for d in (a, b))
    assert rb.estimate == pytest.approx(ra.estimate, rel=1e-9)
    assert rb.tau2 == pytest.approx(ra.tau2, rel=1e-7, abs=1e-12)
    model = Contrast().build(b)  # shared-parameter model: binomial arms, normal log OR
    assert {v.name for v in model.observed_RVs} == {"events_control", "events_active",
                                                    "y_reported"}
    point = model.initial_point()
    point = {k: v + 0.3 for k, v in point.items()}
    terms = model.compile_fn(model.logp(vars=model.observed_RVs, sum=False),
                             inputs=model.value_vars, point_fn=True,
                             on_unused_input="ignore")(point)
    delta = point["d"] + np.exp(point["tau_log__"]) * point["e"]  # no multi-arm study
    assert terms[2] == pytest.approx(stats.norm(delta[2], se).logpdf(lor), rel=1e-12)
    alpha = point["alpha"]  # each study's mean arm logit: the control sits at alpha - delta/2
    want_control = stats.binom.logpmf([3, 6], [20, 29],
                                      1 / (1 + np.exp(-(alpha[:2] - delta[:2] / 2))))
    np.testing.assert_allclose(terms[0], want_control, rtol=1e-10)
    with pytest.raises(Exception, match="takes reported log ORs only"):
        Contrast().build(replace(b, measure="RR"))


@pytest.mark.slow
def test_reported_log_or_in_mcmc_is_the_arm_level_trial_when_counts_are_large(
        tmp_path: Path) -> None:
    """With 1,000 patients per arm, Woolf's normal log OR is the binomial likelihood's
    (error O(1/n)); the pooled effect agrees within four combined Monte Carlo SEs."""
    import arviz as az

    counts = {"A2001": (300, 1000, 200, 1000), "B2002": (450, 1000, 250, 1000),
              "C2003": (400, 1000, 260, 1000), "E2005": (330, 1000, 300, 1000),
              "F2006": (500, 1000, 250, 1000), "D2004": (320, 1000, 280, 1000)}
    rows = []
    for study, (e1, n1, e2, n2) in counts.items():
        rows += [_row(study, "ket", n=str(n1), responders=str(e1)),
                 _row(study, "pbo", n=str(n2), responders=str(e2))]
    arms = write(tmp_path / "arms.csv", rows)
    e1, n1, e2, n2 = counts["D2004"]
    lor = np.log(e1 * (n2 - e2) / ((n1 - e1) * e2))
    se = np.sqrt(1 / e1 + 1 / (n1 - e1) + 1 / e2 + 1 / (n2 - e2))
    rows[-2:] = [_row("D2004", "ket", n=str(n1), vs="pbo", effect_outcome="response",
                      effect_measure="logOR", effect=repr(float(lor)), effect_se=repr(float(se))),
                 _row("D2004", "pbo", n=str(n2))]
    mixed = write(tmp_path / "mixed.csv", rows)
    window = TimeWindow.around(24.0)
    settings = SamplerSettings(draws=2000, tune=1000, chains=4, seed=8)
    fits = [Contrast().fit(select_contrasts(read_records(p), "response", "OR", window,
                                            Filters()), settings) for p in (arms, mixed)]
    means = [float(flat(f.idata, "d").mean()) for f in fits]
    mcse = [float(az.mcse(as_arviz(f.idata).posterior["d"], method="mean").to_array().item())
            for f in fits]
    assert all(f.diagnostics.passed for f in fits), [f.diagnostics.messages for f in fits]
    assert abs(means[0] - means[1]) < 4 * np.hypot(*mcse)


def test_multi_arm_contrast_rows_share_their_comparator(tmp_path: Path) -> None:
    rows = arm_level("A2001") + arm_level("B2002")
    for arm, md in (("k1", -8.0), ("k2", -10.0)):
        rows.append(_row("C2003", arm, n="15", vs="pbo", effect_outcome="change",
                         effect_measure="MD", effect=str(md), effect_se="3.0",
                         mean_type="change"))
    rows.append(_row("C2003", "pbo", n="16", mean="-6", sd="9.5", mean_type="change"))
    path = write(tmp_path / "multi.csv", rows)
    c = _data(path).contrasts
    shared = c.loc[c["study"] == "C2003", "shared_var"].to_numpy()
    np.testing.assert_allclose(shared, 9.5**2 / 16)  # the comparator's own variance
    rows[-1] = _row("C2003", "pbo", n="16")  # no SD: the stated approximation
    data = _data(write(tmp_path / "multi2.csv", rows))
    c = data.contrasts
    np.testing.assert_allclose(c.loc[c["study"] == "C2003", "shared_var"], 9.0 / 2)
    assert any("half the smallest contrast variance" in n for n in data.notes)


def test_bad_contrast_rows_are_all_named(tmp_path: Path) -> None:
    rows = arm_level("A2001")
    rows += [_row("B2002", "ket", n="30", vs="pbo", effect_outcome="change",
                  effect_measure="logOR", effect="-4", effect_se="2"),          # line 4
             _row("B2002", "pbo", n="28"),
             _row("C2003", "ket", n="15", vs="placebo", effect_outcome="change",
                  effect_measure="MD", effect="-4", effect_se="0"),             # line 6
             _row("C2003", "pbo", n="16"),
             _row("D2004", "ket", n="15", vs="pbo", effect_outcome="change",
                  effect_measure="MD", effect="-4", effect_ci_low="-3",
                  effect_ci_high="2"),                                           # line 8
             _row("D2004", "pbo", n="16"),
             _row("E2005", "ket", n="20", mean="-9", sd="8", mean_type="change", vs="pbo",
                  effect_outcome="change", effect_measure="MD", effect="-3",
                  effect_se="2"),                                                # line 10
             _row("E2005", "pbo", n="20", mean="-6", sd="8", mean_type="change"),
             _row("F2006", "ket", n="20", effect="-3", effect_se="2")]            # line 12
    path = write(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError) as exc:
        read_records(path)
    found = {(p.row, p.column) for p in exc.value.problems}
    assert {(4, "effect_measure"), (6, "effect_se"), (6, "vs"), (8, "effect_ci_low"),
            (10, "effect"), (12, "vs"), (12, "effect_outcome"),
            (12, "effect_measure")} <= found
    r = CliRunner().invoke(app, ["validate", str(path)])
    assert r.exit_code == 2 and "Traceback" not in r.output and "bad.csv" in r.output


def test_cli_frequentist_takes_contrast_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "mixed.csv", arm_level("A2001") + arm_level("B2002")
                 + contrast_level("C2003"))
    r = CliRunner().invoke(app, ["frequentist", str(path), "--outcome", "change",
                                 "--measure", "MD", "--time", "24", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["k"] == 3
    assert any("contrast level" in n for n in doc["notes"])


def test_the_second_extraction_enters_the_madrs_comparison() -> None:
    """Canuso 2018, Fu 2020 and Singh 2016b (IV esketamine) reported differences, bundled."""
    records = read_records()
    t = records.table
    reported = t[t["effect"].notna()]
    assert set(reported["study"]) == {"Canuso2018", "Fu2020", "Singh2016b"}
    assert reported["source"].str.contains("extractions-").all()
    assert set(reported.loc[reported["study"] == "Singh2016b", "evidence"]) == {"derived"}
    data = select_contrasts(records, "change", "MD", TimeWindow.around(24.0),
                            Filters(treatment=("ketamine", "esketamine"), scale=("MADRS",),
                                    mean_type=("change",)))
    c = data.contrasts
    got = c[c["level"] == "contrast"]
    assert set(got["study"]) == {"Canuso2018", "Fu2020", "Singh2016b"}
    singh = got[got["study"] == "Singh2016b"]
    np.testing.assert_allclose(singh["shared_var"], 2.97**2)  # saline's LS-mean SE
    np.testing.assert_allclose(singh["yi"], [-13.0, -13.1])
    assert {"Daly2018", "Chen2023"} <= set(c.loc[c["level"] == "arm", "study"])


def test_time_course_takes_reported_mds_at_each_time(tmp_path: Path) -> None:
    """A trial's MD with its SE at 2, 24 and 72 h gives the time-course likelihood of its
    arm-level means (same estimates, variances and covariance over time)."""
    from trialmeta.analysis.models.time_course import sampling_covariance
    from trialmeta.analysis.select.contrasts import select_time_course

    times = {"2": (-9.0, -3.0), "24": (-14.0, -6.0), "72": (-10.0, -6.5)}
    arm_rows, mixed_rows = [], []
    for time_h, (m1, m2) in times.items():
        ket = dict(n="20", mean=str(m1), sd="8.0", mean_type="change", time_h=time_h)
        pbo = dict(n="21", mean=str(m2), sd="9.0", mean_type="change", time_h=time_h)
        arm_rows += [_row("A2001", "ket", **ket), _row("A2001", "pbo", **pbo)]
        md, se = m1 - m2, np.sqrt(8.0**2 / 20 + 9.0**2 / 21)
        mixed_rows += [_row("A2001", "ket", n="20", time_h=time_h, vs="pbo",
                            effect_outcome="change", effect_measure="MD", effect=repr(md),
                            effect_se=repr(float(se)), mean_type="change"),
                       _row("A2001", "pbo", n="21", time_h=time_h)]
    other = arm_level("B2002")
    arms = write(tmp_path / "arms.csv", other + arm_rows)
    mixed = write(tmp_path / "mixed.csv", other + mixed_rows)
    a, b = (select_time_course(read_records(p), "change", "MD", Filters())
            for p in (arms, mixed))
    assert list(b.contrasts["level"]) == ["arm"] + ["contrast"] * 3
    assert b.contrasts["time_h"].tolist() == [24.0, 2.0, 24.0, 72.0]
    for rho in (0.0, 0.5):
        for got, want in zip(sampling_covariance(b, rho), sampling_covariance(a, rho),
                             strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12)


#: study -> (saline mean, sd, n), then (dose, mean, sd, n) per ketamine arm: change at 24 h
DOSES = {"A2001": ((-5.0, 9.0, 20), [(0.1, -8.0, 8.5, 20), (0.5, -13.0, 8.0, 21)]),
         "B2002": ((-6.0, 8.0, 25), [(0.2, -10.5, 9.0, 24), (0.5, -12.0, 8.5, 25)]),
         "C2003": ((-4.5, 9.5, 18), [(0.5, -14.0, 10.0, 17), (1.0, -15.0, 9.0, 18)]),
         "D2004": ((-5.5, 8.5, 30), [(0.2, -9.0, 9.0, 29), (0.5, -12.5, 8.0, 30)])}


def _dose_rows(study: str, reported: bool) -> list[dict[str, str]]:
    (m0, s0, n0), active = DOSES[study]
    rows = [_row(study, "pbo", n=str(n0), mean=str(m0), sd=str(s0), mean_type="change")]
    for dose, m, s, n in active:
        arm = f"ket_{dose:g}"
        if not reported:
            rows.append(_row(study, arm, dose=str(dose), n=str(n), mean=str(m), sd=str(s),
                             mean_type="change"))
            continue
        se = np.sqrt(s**2 / n + s0**2 / n0)
        rows.append(_row(study, arm, dose=str(dose), n=str(n), vs="pbo",
                         effect_outcome="change", effect_measure="MD", effect=repr(m - m0),
                         effect_se=repr(float(se)), mean_type="change"))
    return rows  # the comparator's row gives its variance, shared by both MDs


def _dose_data(tmp_path: Path, reported_study: str | None):
    from trialmeta.analysis.select.doses import select_dose_arms

    rows = [r for s in DOSES for r in _dose_rows(s, s == reported_study)]
    path = write(tmp_path / f"dose-{reported_study}.csv", rows)
    return select_dose_arms(read_records(path), "change", TimeWindow.around(24.0), Filters())


def test_dose_response_takes_reported_mds_as_dose_pairs(tmp_path: Path) -> None:
    """D2004's two MDs vs saline enter as contrasts 0.2 vs 0 and 0.5 vs 0, sharing saline's
    variance; its arms are gone; the PyMC model gains their normal terms."""
    from trialmeta.analysis.models.dose_response import DoseResponse

    data = _dose_data(tmp_path, "D2004")
    c = data.contrasts
    assert "D2004" not in set(data.arms["study"]) and data.studies[-1] == "D2004"
    assert c[["dose", "vs_dose"]].to_numpy().tolist() == [[0.2, 0.0], [0.5, 0.0]]
    np.testing.assert_allclose(c["shared_var"], 8.5**2 / 30, rtol=1e-12)
    np.testing.assert_allclose(c["yi"], [-3.5, -7.0], rtol=1e-12)
    model = DoseResponse("emax").build(data)
    assert {v.name for v in model.observed_RVs} == {"y", "y_reported"}
    assert not DoseResponse("emax")._precompilable(data)


@pytest.mark.slow
def test_dose_response_reported_mds_equal_the_arm_level_trial(tmp_path: Path) -> None:
    """With a flat baseline (sd 1000), arm means and the MDs with their shared comparator
    variance are the same likelihood: theta and ED50 agree within four combined MCSEs."""
    import arviz as az
    from trialmeta.analysis.models.dose_response import DoseResponse

    model = DoseResponse("emax", prior_overrides=(("baseline_sd", 1000.0),))
    settings = SamplerSettings(draws=2000, tune=1000, chains=4, seed=6)
    fits = [model.fit(_dose_data(tmp_path, s), settings) for s in (None, "D2004")]
    assert all(f.diagnostics.passed for f in fits), [f.diagnostics.messages for f in fits]
    for name in ("theta", "ed50"):
        means = [float(flat(f.idata, name).mean()) for f in fits]
        mcse = [float(az.mcse(as_arviz(f.idata).posterior[name], method="mean").to_array().item())
                for f in fits]
        assert abs(means[0] - means[1]) < 4 * np.hypot(*mcse), (name, means, mcse)


def test_dose_response_on_reported_smds_alone(tmp_path: Path) -> None:
    """--standardize with only contrast-level SMD rows: no arm means to standardize."""
    from trialmeta.analysis.select.doses import select_dose_arms

    rows = [_row("E2005", "pbo", n="20")]
    for dose, g in ((0.2, -0.4), (0.5, -0.8)):
        rows.append(_row("E2005", f"ket_{dose:g}", dose=str(dose), n="20", vs="pbo",
                         effect_outcome="change", effect_measure="SMD", effect=repr(g),
                         effect_se="0.33", mean_type="change"))
    data = select_dose_arms(read_records(write(tmp_path / "smd.csv", rows)), "change",
                            TimeWindow.around(24.0), Filters(), standardize=True)
    assert data.arms.empty and list(data.contrasts["dose"]) == [0.2, 0.5]
