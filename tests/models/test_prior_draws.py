"""Prior draws behind P_prior: each model's ``prior_params`` against PyMC's own prior.

The independent reference is the PyMC model each family builds (``build``), sampled with
``pm.draw``. Every marginal is compared by a two-sample Kolmogorov-Smirnov test on 8,000
draws each; with fixed seeds the test is deterministic, and p < 0.001 is the failure line
(the critical distance is then about 0.031: a location shift of 0.08 SD or an error of
about 15 % in a prior's scale fails; a 20 % error in the rise-time prior was checked to).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import ks_2samp
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.models.contrast import Contrast, default_priors
from trialmeta.analysis.models.dose_response import DoseResponse, default_dose_priors
from trialmeta.analysis.models.pooled_rate import PooledRate
from trialmeta.analysis.models.time_course import TimeCourse
from trialmeta.analysis.select.contrasts import select_contrasts, select_time_course
from trialmeta.analysis.select.doses import select_dose_arms
from trialmeta.analysis.select.filters import Filters, TimeWindow, select_binary_arms
from trialmeta.analysis.stats.priors import HeterogeneityPrior, heterogeneity_prior, sample_tau

N = 8000
RECORDS = read_records()


def _same(built, ours: dict[str, np.ndarray], names: list[str]) -> None:
    import pymc as pm

    theirs = pm.draw([built[n] for n in names], draws=N, random_seed=7)
    for name, values in zip(names, theirs, strict=True):
        a = np.asarray(ours[name]).reshape(N, -1)
        b = np.asarray(values).reshape(N, -1)
        assert a.shape == b.shape, name
        for j in range(a.shape[1]):
            p = ks_2samp(a[:, j], b[:, j]).pvalue
            assert p > 1e-3, f"{name}[{j}]: KS p = {p:.2g}"


def test_pooled_rate_prior_matches_pymc() -> None:
    data = select_binary_arms(RECORDS, "response", TimeWindow.around(24), Filters())
    model = PooledRate(moderators=("doses_given>1",))
    data = model.prepare(data)
    ours = model.prior_params(SimpleNamespace(data=data), N, np.random.default_rng(1))
    _same(model.build(data), ours, ["mu", "tau", "beta"])


@pytest.mark.parametrize("tau", ["half-normal:0.5", "turner2015", "rhodes2015"])
def test_contrast_prior_matches_pymc(tau: str) -> None:
    data = select_contrasts(RECORDS, "response", "OR", TimeWindow.around(24), Filters())
    priors = default_priors("OR", heterogeneity_prior(tau))
    model = Contrast(priors)
    fit = SimpleNamespace(data=data, priors=priors)
    ours = model.prior_params(fit, N, np.random.default_rng(2))
    _same(model.build(data), ours, ["d", "tau", "alpha"])


@pytest.mark.parametrize("form,hill", [("emax", True), ("piecewise", False)])
def test_dose_response_prior_matches_pymc(form: str, hill: bool) -> None:
    data = select_dose_arms(RECORDS, "response", TimeWindow.around(24),
                            Filters(treatment=("ketamine",), route=("iv",)))
    model = DoseResponse(form, hill=hill)
    fit = SimpleNamespace(data=data, priors=default_dose_priors(data),
                          reference=model._reference(data))
    ours = model.prior_params(fit, N, np.random.default_rng(3))
    names = ["theta", "tau"] + (["ed50", "hill"] if form == "emax" else ["w"])
    _same(model.build(data), ours, names)


@pytest.mark.parametrize("form", ["bateman", "piecewise"])
def test_time_course_prior_matches_pymc(form: str) -> None:
    data = select_time_course(RECORDS, "response", "OR", Filters())
    model = TimeCourse(form)
    fit = SimpleNamespace(form=form, knots=model.knots)
    ours = model.prior_params(fit, N, np.random.default_rng(4))
    names = (["peak", "t_rise", "t_decay", "time_to_peak", "tau"] if form == "bateman"
             else ["knot_effect", "tau"])
    _same(model.build(data), ours, names)


def test_half_cauchy_tau_matches_pymc() -> None:
    import pymc as pm

    prior = HeterogeneityPrior("half-cauchy", 0.5, 0.0, "half-Cauchy(0.5) on tau")
    with pm.Model():
        built = prior.build()
    ours = sample_tau(prior, N, np.random.default_rng(5))
    theirs = pm.draw(built, draws=N, random_seed=7)
    assert ks_2samp(ours, theirs).pvalue > 1e-3
