"""The time-course likelihood: no control split across time, the covariance a statistician
would write down by hand, and a positive amplitude multiplier (statistical review, defect 2).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats
from trialmeta.analysis import kernels_curves
from trialmeta.analysis.contrasts import ContrastData, select_time_course
from trialmeta.analysis.effects import log_odds_ratio
from trialmeta.analysis.models.time_course import (
    TimeCourse,
    bateman,
    contrast_effects_by_time,
)
from trialmeta.analysis.records import read_records
from trialmeta.analysis.selection import Filters


def test_a_single_arm_study_keeps_its_whole_variance_at_every_time() -> None:
    """Lii 2023 (one ketamine arm, six times): each variance is Woolf's from its own 2x2."""
    data = select_time_course(read_records(None), "response", "OR",
                              Filters(treatment=("ketamine",), scale=("MADRS",)))
    c = data.contrasts
    lii = (c["study"] == "Lii2023").to_numpy()
    assert lii.sum() == 6
    _, v = contrast_effects_by_time(data)
    woolf = log_odds_ratio(c["a"], c["b"], c["c"], c["d"]).vi
    np.testing.assert_allclose(v[lii], np.asarray(woolf)[lii], rtol=1e-12)


def _two_studies() -> ContrastData:
    """Study A: arms k1, k2 against one control at 24 h and 72 h; study B: one contrast."""
    rows = [("A", "k1", 24.0, 9, 11, 4, 16), ("A", "k2", 24.0, 12, 8, 4, 16),
            ("A", "k1", 72.0, 7, 13, 5, 15), ("A", "k2", 72.0, 10, 10, 5, 15),
            ("B", "k", 24.0, 6, 9, 3, 12)]
    t = pd.DataFrame(rows, columns=["study", "arm", "time_h", "a", "b", "c", "d"])
    t = t.assign(control="ctl", comparator="saline", design="parallel")
    return ContrastData("response", "OR", None, pd.DataFrame(), t)


def _hand_covariance(t: pd.DataFrame, rho: float) -> np.ndarray:
    """Σ written out entry by entry from Woolf's variance of each arm's log odds."""
    va = 1 / t["a"] + 1 / t["b"]
    vc = 1 / t["c"] + 1 / t["d"]
    n = len(t)
    cov = np.zeros((n, n))
    for i, j in itertools.product(range(n), range(n)):
        ri, rj = t.iloc[i], t.iloc[j]
        if ri.study != rj.study:
            continue
        same_time = ri.time_h == rj.time_h
        r = 1.0 if same_time else rho
        control = r * np.sqrt(vc[i] * vc[j])
        active = r * np.sqrt(va[i] * va[j]) if ri.arm == rj.arm else 0.0
        cov[i, j] = control + active
    return cov


def test_the_kernel_is_the_joint_normal_with_the_hand_written_covariance() -> None:
    """Sum of the stored pointwise log-likelihoods = MVN log density; amp = exp(τz − τ²/2)."""
    data = _two_studies()
    rho = 0.4
    model = TimeCourse("bateman", rho=rho)
    pre = model.precompiled(data)
    t = data.contrasts
    y = np.log(t["a"] * t["d"] / (t["b"] * t["c"])).to_numpy()
    cov = _hand_covariance(t, rho)
    sizes = [int(np.prod(pre.shape(v))) for v in pre.variables]
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.normal(0.0, 0.7, pre.n_dim)
        out = np.zeros(sum(sizes))
        kernels_curves.time_course_expand(x, pre.buffer, out)
        loglik = out[-len(t):]
        tau, z = np.exp(x[0]), x[1:3]
        peak, t_r = x[3], np.exp(x[4])
        t_d = t_r + np.exp(x[5])
        f = bateman(t["time_h"].to_numpy(), np.array([peak]), np.array([t_r]),
                    np.array([t_d]))[0]
        amp = np.exp(tau * z - tau**2 / 2)[(t["study"] == "B").to_numpy().astype(int)]
        want = stats.multivariate_normal(amp * f, cov).logpdf(y)
        np.testing.assert_allclose(loglik.sum(), want, rtol=1e-10)


def test_independent_contrasts_reduce_to_one_normal_term_each() -> None:
    """rho = 0 and one arm per study: each pointwise term is Normal(y | mean, sqrt(v))."""
    data = _two_studies()
    data.contrasts = data.contrasts[data.contrasts["arm"] != "k2"].reset_index(drop=True)
    pre = TimeCourse("piecewise", rho=0.0).precompiled(data)
    t = data.contrasts
    eff = log_odds_ratio(t["a"], t["b"], t["c"], t["d"])
    x = np.zeros(pre.n_dim)  # tau = 1, z = 0, every knot 0: mean 0
    out = np.zeros(sum(int(np.prod(pre.shape(v))) for v in pre.variables))
    kernels_curves.time_course_expand(x, pre.buffer, out)
    np.testing.assert_allclose(out[-len(t):], stats.norm(0, np.sqrt(eff.vi)).logpdf(eff.yi),
                               rtol=1e-12)


def test_timing_by_route_is_the_pymc_model_and_summarised_per_group() -> None:
    """--timing by-route: T_r and T_d per route, in the kernel and the PyMC model alike."""
    from tests.test_precompiled import DEPRESSION_SCALES, _check_against_pymc

    data = select_time_course(read_records(None), "response", "OR",
                              Filters(treatment=("ketamine", "esketamine"),
                                      scale=DEPRESSION_SCALES))
    model = TimeCourse("bateman", timing="by-route")
    groups, index = model.timing_groups(data)
    assert groups == ["intranasal", "iv"] and set(index) == {0, 1}
    _check_against_pymc(model, data, points=3)
    assert TimeCourse("bateman", timing="shared").timing_groups(data) is None


def test_timing_groups_need_the_bateman_form() -> None:
    import pytest
    from trialmeta.analysis.errors import SpecError

    with pytest.raises(SpecError, match="needs the bateman form"):
        TimeCourse("piecewise", timing="by-treatment")
    with pytest.raises(SpecError, match="unknown timing"):
        TimeCourse("bateman", timing="by-dose")


def test_fit_time_course_by_route_reports_each_route() -> None:
    import json

    from trialmeta.cli.app import app
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, [
        "fit", "time-course", "--timing", "by-route", "--treatment", "ketamine",
        "--treatment", "esketamine", "--route", "iv", "--route", "intranasal",
        "--draws", "200", "--tune", "200", "--chains", "2", "--allow-unconverged", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["timing"] == "by-route" and set(doc["by_group"]) == {"intranasal", "iv"}
    for g in doc["by_group"].values():
        assert "time_to_peak_h" in g["estimates"] or "time_to_peak_h_missing" in \
            g["probabilities"]
