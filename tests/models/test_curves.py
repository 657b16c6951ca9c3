"""Dose-response and time-course: closed forms, a JAGS cross-check, recovery, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from trialmeta.analysis.io.posterior_store import as_arviz
from trialmeta.analysis.models.dose_response import DoseResponse, dose_summary
from trialmeta.analysis.models.time_course import TimeCourse, bateman, time_summary, time_to_peak
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.contrasts import ContrastData
from trialmeta.analysis.select.doses import DoseData
from trialmeta.analysis.select.filters import TimeWindow
from trialmeta.cli.app import app
from typer.testing import CliRunner

REF = Path(__file__).parents[1] / "reference"
runner = CliRunner()
SMALL = ["--draws", "150", "--tune", "150", "--chains", "2", "--seed", "2",
         "--allow-unconverged", "--json"]


def test_bateman_peak_and_time_to_peak_closed_form() -> None:
    a, t_r, t_d = np.array([1.3]), np.array([3.0]), np.array([120.0])
    grid = np.linspace(0.01, 600, 600001)
    curve = bateman(grid, a, t_r, t_d)[0]
    assert curve.max() == pytest.approx(1.3, rel=1e-9)
    assert grid[curve.argmax()] == pytest.approx(time_to_peak(t_r, t_d)[0], abs=2e-3)


@pytest.mark.parametrize("form,ed50", [("linear", 1.0), ("loglinear", np.sqrt(3.0) - 1)])
def test_fixed_shapes_have_closed_form_ed50(form: str, ed50: float) -> None:
    """With d_max = 2: linear reaches half at 1, log-linear at sqrt(1 + 2) - 1."""
    m = DoseResponse(form)
    ref = {"d_max": 2.0, "d_mid": 1.0, "knots": [0.0, 1.0, 2.0]}
    g = m.shape(np.array([ed50, 2.0]), {"theta": np.ones(1)}, ref)[0]
    assert g == pytest.approx([0.5, 1.0])


def test_emax_and_piecewise_shapes() -> None:
    emax = DoseResponse("emax")
    ref = {"d_max": 2.0, "d_mid": 1.0, "knots": [0.0, 0.5, 2.0]}
    g = emax.shape(np.array([0.3, 0.0]), {"theta": np.ones(1), "ed50": np.array([0.3])}, ref)[0]
    assert g == pytest.approx([0.5, 0.0])
    pw = DoseResponse("piecewise")
    w = np.array([[0.8, 0.2]])
    g = pw.shape(np.array([0.0, 0.25, 0.5, 1.25, 2.0, 3.0]), {"theta": np.ones(1), "w": w},
                 ref)[0]
    assert g == pytest.approx([0.0, 0.4, 0.8, 0.9, 1.0, 1.0])
    assert np.all(np.diff(g) >= 0)


def dose_data(df: pd.DataFrame) -> DoseData:
    arms = df.assign(study=df["study"].astype(str), arm=df["dose"].astype(str),
                     role=np.where(df["dose"] == 0, "control", "active"), time_h=24.0)
    return DoseData("response", "mg/kg", "drug", TimeWindow.around(24), arms)


def test_emax_agrees_with_jags() -> None:
    """Same model and priors as tests/reference/make_jags_dose_reference.R (rjags 4.13).

    Tolerance: 4 standard errors of the difference of two Monte Carlo means.
    """
    import arviz as az

    ref = json.loads((REF / "jags-dose-emax.json").read_text())
    data = dose_data(pd.read_csv(REF / "dose_sim.csv"))
    model = DoseResponse("emax")
    fit = model.fit(data, SamplerSettings(draws=1000, tune=1000, chains=4, seed=5))
    assert fit.reference["d_mid"] == ref["d_mid"]
    mcse = az.mcse(as_arviz(fit.idata).posterior[["theta", "tau", "ed50"]], method="mean")
    for name in ("theta", "tau", "ed50"):
        ours = flat(fit.idata, name).mean()
        se = np.hypot(float(mcse[name]), ref[name]["mcse"])
        assert abs(ours - ref[name]["mean"]) < 4 * se, name
    s = dose_summary(model, fit, doses=(0.4, 5.0), compare=(0.5, 1.0), threshold=0.5)
    assert s["estimates"]["effect_at_0.4"]["median"] > 0
    assert any("outside the observed doses" in w for w in s["warnings"])


@pytest.mark.slow
@pytest.mark.parametrize("form", ["loglinear", "linear", "piecewise"])
def test_dose_forms_recover_planted_effect(form: str) -> None:
    """Data simulated from each form; the effect at the top dose is recovered."""
    rng = np.random.default_rng(11)
    doses = [0.0, 0.5, 1.0, 2.0]
    truth_top = 1.2
    g = {"loglinear": lambda d: np.log1p(d) / np.log1p(2.0), "linear": lambda d: d / 2.0,
         "piecewise": lambda d: np.interp(d, [0, 0.5, 1, 2], [0, 0.7, 0.9, 1.0])}[form]
    rows = []
    for s in range(25):
        a = rng.normal(-1, 0.3)
        amp = truth_top + 0.15 * rng.standard_normal()
        for d in doses:
            n = 80
            rows.append({"study": s, "dose": d, "n": n,
                         "events": rng.binomial(n, expit(a + amp * g(d)))})
    model = DoseResponse(form)
    # informative data make the non-centred amplitude mix slowly: draw more
    fit = model.fit(dose_data(pd.DataFrame(rows)), SamplerSettings(draws=2000, tune=1500, seed=3))
    top = model.effect(fit, np.array([2.0]))[:, 0]
    assert fit.diagnostics.passed, fit.diagnostics.messages
    assert abs(top.mean() - truth_top) < 3 * top.std()


def time_data(rows: list[dict]) -> ContrastData:
    t = pd.DataFrame(rows)
    t = t.assign(arm="a", control="c", comparator="placebo", design="parallel", scale="X",
                 mean_type="change", shared_var=0.0, m1=0.0, sd1=1.0, n1=50, m2=0.0, sd2=1.0,
                 n2=50)
    return ContrastData("change", "MD", None, pd.DataFrame(), t)


@pytest.mark.slow
def test_bateman_recovers_planted_curve() -> None:
    rng = np.random.default_rng(5)
    times = [2, 6, 24, 48, 72, 168, 336]
    a, t_r, t_d = 1.0, 4.0, 150.0
    rows = []
    for s in range(20):
        amp = 1 + 0.1 * rng.standard_normal()
        true = amp * bateman(np.array(times, float), np.array([a]), np.array([t_r]),
                             np.array([t_d]))[0]
        u = rng.standard_normal()
        for t, mu in zip(times, true, strict=True):
            v = 0.04
            rows.append({"study": f"S{s}", "time_h": float(t), "yi": mu + np.sqrt(0.5 * v) * u
                         + np.sqrt(0.5 * v) * rng.standard_normal(), "vi": v})
    model = TimeCourse("bateman")
    fit = model.fit(time_data(rows), SamplerSettings(seed=8))
    assert fit.diagnostics.passed, fit.diagnostics.messages
    tp = time_to_peak(flat(fit.idata, "t_rise"), flat(fit.idata, "t_decay"))
    truth_tp = time_to_peak(np.array([t_r]), np.array([t_d]))[0]
    assert abs(np.log(tp).mean() - np.log(truth_tp)) < 3 * np.log(tp).std()
    peak = flat(fit.idata, "peak")
    assert abs(peak.mean() - a) < 3 * peak.std()
    s = time_summary(model, fit, threshold=0.3, direction=1)
    assert s["estimates"]["onset_h"]["median"] < s["estimates"]["time_to_peak_h"]["median"]


def test_cli_dose_response_json_on_bundled_defaults() -> None:
    r = runner.invoke(app, ["fit", "dose-response", *SMALL])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    for key in ("ed50", "effect_at_0.1", "effect_at_0.2", "effect_at_0.5", "effect_at_1"):
        assert {"mean", "median", "sd", "ci_low", "ci_high"} <= set(doc["estimates"][key])
    assert "p_effect_1_minus_0.5_gt_0" in doc["probabilities"]
    assert any("cannot be identified" in w for w in doc["warnings"])


def test_cli_time_course_json_on_bundled_defaults() -> None:
    r = runner.invoke(app, ["fit", "time-course", *SMALL])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    for key in ("onset_h", "time_to_peak_h", "duration_h", "effect_at_24h"):
        e = doc["estimates"][key]
        assert {"median", "ci_low", "ci_high"} <= set(e)
        # a mean of times some draws never reach would be wrong: censored summaries say so
        assert {"mean", "sd"} <= set(e) or e["censored_above_h"] == 672
    assert all(t > 0 for t in doc["observed_times_h"])  # baselines never count


def test_mixed_dose_units_are_refused() -> None:
    r = runner.invoke(app, ["fit", "dose-response", "--treatment", "ketamine",
                            "--route", "iv", "--route", "intranasal", *SMALL])
    assert r.exit_code == 2 and "one drug, route and dose unit" in r.output


def test_cli_dose_response_with_a_moderator() -> None:
    r = runner.invoke(app, ["fit", "dose-response", "--treatment", "esketamine", "--route",
                            "intranasal", "--form", "loglinear", "--moderator", "population",
                            *SMALL])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    betas = [k for k in doc["estimates"] if k.startswith("beta:population=")]
    assert betas and "p_positive" in doc["estimates"][betas[0]]


def test_segment_weights_give_the_piecewise_curve_of_np_interp() -> None:
    from trialmeta.analysis.models.dose_response import segment_weights

    knots = np.array([0.0, 0.2, 0.5, 1.0])
    w = np.random.default_rng(4).dirichlet(np.ones(3), 5)
    doses = np.array([0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0])
    weights = segment_weights(doses, knots)
    assert weights.shape == (7, 3)
    for row in w:
        np.testing.assert_allclose(weights @ row, np.interp(doses, knots, np.r_[0, row.cumsum()]),
                                   rtol=0, atol=1e-15)
