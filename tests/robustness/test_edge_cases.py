"""Numerical edge cases: zero and all-event arms, one or two studies, tau at the boundary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from trialmeta.analysis.models.contrast import Contrast
from trialmeta.analysis.models.pooled_rate import PooledRate
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.contrasts import ContrastData
from trialmeta.analysis.select.filters import BinaryArms
from trialmeta.analysis.stats.effects import log_odds_ratio
from trialmeta.analysis.stats.exact import exact_normal_normal
from trialmeta.analysis.stats.frequentist import mantel_haenszel, meta_analysis
from trialmeta.analysis.stats.priors import heterogeneity_prior

FAST = SamplerSettings(draws=400, tune=400, chains=2, seed=7)


def table(a, b, c, d) -> ContrastData:
    k = len(a)
    t = pd.DataFrame({"study": [f"S{i}" for i in range(k)], "arm": "x", "control": "c",
                      "comparator": "placebo", "time_h": 24.0, "design": "parallel",
                      "a": a, "b": b, "c": c, "d": d, "evidence": "primary"})
    return ContrastData("response", "OR", None, pd.DataFrame(), t)


def test_zero_and_all_event_arms_fit_without_correction() -> None:
    """The binomial model needs no continuity correction: 0/20 and 20/20 arms are data."""
    data = table([0, 20, 5], [20, 0, 15], [0, 10, 2], [20, 10, 18])
    fit = Contrast().fit(data, FAST)
    d = flat(fit.idata, "d")
    assert np.isfinite(d).all() and fit.diagnostics.divergences == 0


def test_one_study_is_prior_driven_for_tau() -> None:
    data = table([12], [8], [4], [16])
    fit = Contrast().fit(data, FAST)
    tau = flat(fit.idata, "tau")
    # with one study, tau's posterior is close to its half-normal(0.5) prior: mean 0.4
    assert 0.25 < tau.mean() < 0.55
    with pytest.raises(Exception, match="at least 2 studies"):
        eff = log_odds_ratio([12], [8], [4], [16])
        meta_analysis(eff.yi, eff.vi, "REML")
    eff = log_odds_ratio([12], [8], [4], [16])
    fe = meta_analysis(eff.yi, eff.vi, "FE")
    assert fe.estimate == pytest.approx(float(eff.yi[0]))


def test_exact_engine_with_one_and_two_studies() -> None:
    prior = heterogeneity_prior("half-normal:0.5")
    one = exact_normal_normal([0.5], [0.04], tau_prior=prior, mu_prior=(0.0, 2.5))
    two = exact_normal_normal([0.5, 0.6], [0.04, 0.05], tau_prior=prior, mu_prior=(0.0, 2.5))
    for post in (one, two):
        assert post.mu["ci_low"] < post.mu["median"] < post.mu["ci_high"]
        assert post.tau["median"] > 0


def test_tau_at_the_boundary() -> None:
    y = np.array([0.2, 0.2, 0.2, 0.2])
    v = np.array([0.05, 0.05, 0.05, 0.05])
    for method in ("DL", "REML", "ML", "PM"):
        res = meta_analysis(y, v, method)
        assert res.tau2 == 0.0 and res.I2 == 0.0
        assert res.estimate == pytest.approx(0.2)


def test_extreme_imbalance_and_double_zero_tables() -> None:
    eff = log_odds_ratio([1, 0, 3], [4, 500, 2], [30, 0, 1], [470, 8, 4])
    assert np.isfinite(eff.yi).all()
    res = meta_analysis(eff.yi, eff.vi, "REML")
    assert np.isfinite(res.estimate)
    mh = mantel_haenszel([1, 0, 3], [4, 500, 2], [30, 0, 1], [470, 8, 4], "OR")
    assert np.isfinite(mh.estimate)


def test_pooled_rate_with_all_zero_and_all_event_arms() -> None:
    t = pd.DataFrame({"study": ["A", "B", "C"], "arm": "a", "label": ["A a", "B a", "C a"],
                      "time_h": 24.0, "n": [10, 12, 30], "events": [0, 12, 9],
                      "evidence": "primary", "design": "parallel", "scale": "X"})
    fit = PooledRate().fit(BinaryArms("response", t), FAST)
    rate = PooledRate().summary(fit).estimates["pooled_rate"]
    assert 0 < rate["ci_low"] < rate["median"] < rate["ci_high"] < 1
