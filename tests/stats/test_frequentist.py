"""Frequentist engine against R metafor 3.8 (pinned JSON) and against defining equations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from trialmeta.analysis.errors import SpecError
from trialmeta.analysis.stats.effects import (
    hedges_correction,
    log_odds_ratio,
    log_risk_ratio,
    risk_difference,
    standardized_mean_difference,
)
from trialmeta.analysis.stats.frequentist import _neg_loglik, meta_analysis

REF = Path(__file__).parents[1] / "reference"
TOL = 1e-4  # the contract: metafor to four decimals


@pytest.fixture(scope="module")
def bcg():
    d = pd.read_csv(REF / "bcg.csv")
    eff = log_risk_ratio(d["tpos"], d["tneg"], d["cpos"], d["cneg"])
    return eff, json.loads((REF / "metafor-bcg-RR.json").read_text())


@pytest.mark.parametrize("method", ["DL", "REML"])
def test_matches_metafor(bcg, method: str) -> None:
    eff, ref = bcg
    res = meta_analysis(eff.yi, eff.vi, method)
    r = ref[method]
    for ours, theirs in [(res.estimate, "estimate"), (res.se, "se"), (res.ci_low, "ci_lb"),
                         (res.ci_high, "ci_ub"), (res.tau2, "tau2"), (res.I2, "I2"),
                         (res.Q, "Q")]:
        assert ours == pytest.approx(r[theirs], abs=TOL), theirs
    assert res.k == r["k"]


def test_hksj_and_prediction_interval_match_metafor(bcg) -> None:
    eff, ref = bcg
    res = meta_analysis(eff.yi, eff.vi, "REML", hksj=True)
    r = ref["REML_HKSJ"]
    for ours, theirs in [(res.se, "se"), (res.ci_low, "ci_lb"), (res.ci_high, "ci_ub")]:
        assert ours == pytest.approx(r[theirs], abs=TOL), theirs
    z = meta_analysis(eff.yi, eff.vi, "REML")
    assert z.pi_low == pytest.approx(ref["REML_prediction_interval"]["pi_lb"], abs=TOL)
    assert z.pi_high == pytest.approx(ref["REML_prediction_interval"]["pi_ub"], abs=TOL)


def test_fixed_effect_closed_form(bcg) -> None:
    eff, _ = bcg
    w = 1 / eff.vi
    res = meta_analysis(eff.yi, eff.vi, "FE")
    assert res.estimate == pytest.approx(np.sum(w * eff.yi) / np.sum(w), abs=1e-12)
    assert res.se == pytest.approx(np.sqrt(1 / np.sum(w)), abs=1e-12)
    assert res.tau2 == 0.0
    assert res.I2 == pytest.approx(100 * (res.Q - 12) / res.Q, abs=1e-10)


def test_paule_mandel_solves_its_equation(bcg) -> None:
    """The root lies within the search tolerance: Q(tau2 - tol) > k - 1 > Q(tau2 + tol)."""
    from trialmeta.analysis.stats.frequentist import PM_TOL

    eff, _ = bcg
    res = meta_analysis(eff.yi, eff.vi, "PM")

    def q(t2: float) -> float:
        w = 1 / (eff.vi + t2)
        mu = np.sum(w * eff.yi) / np.sum(w)
        return float(np.sum(w * (eff.yi - mu) ** 2))

    k = len(eff.yi)
    assert q(res.tau2 - PM_TOL) > k - 1 > q(res.tau2 + PM_TOL)


@pytest.mark.parametrize("method,reml", [("ML", False), ("REML", True)])
def test_likelihood_estimators_are_maxima(bcg, method: str, reml: bool) -> None:
    eff, _ = bcg
    t = meta_analysis(eff.yi, eff.vi, method).tau2
    f = _neg_loglik
    h = 1e-5
    assert f(t, eff.yi, eff.vi, reml) <= f(t + h, eff.yi, eff.vi, reml)
    assert f(t, eff.yi, eff.vi, reml) <= f(t - h, eff.yi, eff.vi, reml)
    # derivative ~ 0 at an interior maximum
    grad = (f(t + h, eff.yi, eff.vi, reml) - f(t - h, eff.yi, eff.vi, reml)) / (2 * h)
    assert abs(grad) < 1e-4


def test_homogeneous_data_give_zero_tau2() -> None:
    y = np.array([0.10, 0.11, 0.09, 0.10])
    v = np.array([0.04, 0.05, 0.03, 0.04])
    for m in ("DL", "REML", "ML", "PM"):
        assert meta_analysis(y, v, m).tau2 == 0.0


def test_errors() -> None:
    with pytest.raises(SpecError):
        meta_analysis([0.1], [0.1], "REML")
    with pytest.raises(SpecError):
        meta_analysis([0.1, 0.2], [0.1, -0.1])
    with pytest.raises(SpecError):
        meta_analysis([0.1, 0.2], [0.1, 0.1], "XX")


def test_effect_sizes_against_hand_computation() -> None:
    # one 2x2 table: 10/20 treated vs 4/20 control events
    rr = log_risk_ratio([10], [10], [4], [16])
    assert rr.yi[0] == pytest.approx(np.log(0.5 / 0.2))
    assert rr.vi[0] == pytest.approx(1 / 10 - 1 / 20 + 1 / 4 - 1 / 20)
    orr = log_odds_ratio([10], [10], [4], [16])
    assert orr.yi[0] == pytest.approx(np.log(10 * 16 / (10 * 4)))
    rd = risk_difference([10], [10], [4], [16])
    assert rd.yi[0] == pytest.approx(0.3)
    # zero cell: 0.5 added to that study only
    z = log_odds_ratio([0, 10], [20, 10], [4, 4], [16, 16])
    assert z.yi[0] == pytest.approx(np.log(0.5 * 16.5 / (20.5 * 4.5)))
    assert z.yi[1] == pytest.approx(np.log(4.0))


def test_hedges_g() -> None:
    # J(df) against its gamma-function definition and the usual approximation
    df = np.array([10.0, 38.0, 200.0])
    approx = 1 - 3 / (4 * df - 1)
    assert np.allclose(hedges_correction(df), approx, atol=5e-4)
    # closed form: J(2) = Γ(1) / (1 · Γ(1/2)) = 1/√π
    assert hedges_correction(np.array([2.0]))[0] == pytest.approx(1 / np.sqrt(np.pi))
    g = standardized_mean_difference([12.7], [7.6], [20], [16.4], [10.0], [19])
    sp = np.sqrt((19 * 7.6**2 + 18 * 10.0**2) / 37)
    assert g.yi[0] == pytest.approx(hedges_correction(37.0) * (12.7 - 16.4) / sp)
    assert g.vi[0] == pytest.approx(1 / 20 + 1 / 19 + g.yi[0] ** 2 / (2 * 39))
    # scaling the outcome leaves g unchanged
    g10 = standardized_mean_difference([127], [76], [20], [164], [100], [19])
    assert g10.yi[0] == pytest.approx(g.yi[0])


def test_q_p_value(bcg) -> None:
    eff, _ = bcg
    res = meta_analysis(eff.yi, eff.vi, "DL")
    assert res.Q_p == pytest.approx(stats.chi2.sf(res.Q, 12))


ADHOC = json.loads((Path(__file__).parents[1] / "reference" / "metafor-adhoc.json").read_text())


@pytest.mark.parametrize("dataset", ["hine1989_RD", "bcg_RR"])
@pytest.mark.parametrize("variant,test", [(False, "z"), ("plain", "knha"), ("adhoc", "adhoc")])
def test_hksj_variants_match_metafor(dataset: str, variant: bool | str, test: str) -> None:
    """metafor's test = 'z', 'knha' and 'adhoc' (max(1, q)) to 1e-9."""
    ref = ADHOC[dataset]
    res = meta_analysis(ref["yi"], ref["vi"], "REML", hksj=variant)
    want = ref["fits"][test]
    for ours, theirs in [("estimate", "estimate"), ("se", "se"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub"), ("tau2", "tau2")]:
        assert getattr(res, ours) == pytest.approx(want[theirs], rel=1e-9, abs=1e-11), ours
    assert res.test == test


def test_plain_hksj_narrower_than_wald_warns_and_adhoc_does_not() -> None:
    ref = ADHOC["hine1989_RD"]
    plain = meta_analysis(ref["yi"], ref["vi"], "REML", hksj="plain")
    adhoc = meta_analysis(ref["yi"], ref["vi"], "REML", hksj="adhoc")
    assert any("narrower than the Wald" in w for w in plain.warnings)
    assert not adhoc.warnings
    bcg = ADHOC["bcg_RR"]
    assert not meta_analysis(bcg["yi"], bcg["vi"], "REML", hksj="plain").warnings


@pytest.mark.parametrize("dataset", ["hine1989_RD", "bcg_RR"])
def test_higgins_prediction_interval(dataset: str) -> None:
    ref = ADHOC[dataset]
    res = meta_analysis(ref["yi"], ref["vi"], "REML", pi_type="higgins2009")
    want = ref["fits"]["higgins2009"]
    assert res.pi_low == pytest.approx(want["pi_lb"], rel=1e-9)
    assert res.pi_high == pytest.approx(want["pi_ub"], rel=1e-9)
