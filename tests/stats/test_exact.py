"""Exact normal-normal engine: bayesmeta's eight-schools figures, and agreement with MCMC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from trialmeta.analysis.io.posterior_store import as_arviz
from trialmeta.analysis.models.contrast import Contrast
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.contrasts import ContrastData
from trialmeta.analysis.stats.exact import exact_normal_normal
from trialmeta.analysis.stats.priors import heterogeneity_prior

# Rubin (1981) eight schools, as in bayesmeta's Rubin1981 data set.
Y = np.array([28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16])
SE = np.array([14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6])
# bayesmeta vignette ("An introduction to meta-analysis using the bayesmeta package"),
# print(schools.example.1) with mu ~ N(0, 50), tau ~ half-Cauchy(25):
BAYESMETA = {"tau": {"median": 4.758539, "mean": 5.884511, "sd": 4.869904},
             "mu": {"median": 7.962961, "mean": 7.985729, "sd": 4.995762}}


def test_reproduces_bayesmeta_eight_schools() -> None:
    post = exact_normal_normal(Y, SE**2, tau_prior=heterogeneity_prior("half-cauchy:25"),
                               mu_prior=(0.0, 50.0), mixture="direct")
    for par in ("tau", "mu"):
        got = getattr(post, par)
        for stat, ref in BAYESMETA[par].items():
            assert got[stat] == pytest.approx(ref, abs=1e-4), f"{par} {stat}"


def test_quadrature_mixture_is_exact_for_mu() -> None:
    """With the fine quadrature, mu's mean equals E[E(mu | tau)] computed independently."""
    from scipy import integrate, stats

    prior = heterogeneity_prior("half-cauchy:25")
    post = exact_normal_normal(Y, SE**2, tau_prior=prior, mu_prior=(0.0, 50.0))

    def joint_tau(t: float) -> float:
        v = SE**2 + t**2
        w = 1 / v
        prec = w.sum() + 1 / 2500
        num = (w * Y).sum()
        quad = (w * Y**2).sum()
        ll = -0.5 * np.log(v).sum() - 0.5 * np.log(prec) - 0.5 * (quad - num**2 / prec)
        return float(np.exp(ll) * stats.halfcauchy.pdf(t, scale=25))

    def mean_given(t: float) -> float:
        w = 1 / (SE**2 + t**2)
        return float((w * Y).sum() / (w.sum() + 1 / 2500))

    z = integrate.quad(joint_tau, 0, np.inf, limit=500, epsabs=0, epsrel=1e-12)[0]
    mu_mean = integrate.quad(lambda t: joint_tau(t) * mean_given(t), 0, np.inf, limit=500,
                             epsabs=0, epsrel=1e-12)[0] / z
    tau_mean = integrate.quad(lambda t: joint_tau(t) * t, 0, np.inf, limit=500, epsabs=0,
                              epsrel=1e-12)[0] / z
    assert post.mu["mean"] == pytest.approx(mu_mean, abs=1e-6)
    assert post.tau["mean"] == pytest.approx(tau_mean, abs=1e-6)


def smd_contrasts(y: np.ndarray, v: np.ndarray) -> ContrastData:
    k = len(y)
    t = pd.DataFrame({"study": [f"S{i}" for i in range(k)], "arm": ["a"] * k,
                      "control": ["c"] * k, "comparator": ["placebo"] * k,
                      "time_h": [24.0] * k, "design": ["parallel"] * k, "scale": ["X"] * k,
                      "mean_type": ["change"] * k, "yi": y, "vi": v, "shared_var": [0.0] * k})
    return ContrastData("change", "SMD", None, pd.DataFrame(), t)


def test_contrast_mcmc_agrees_with_exact_posterior() -> None:
    """Bayesian contrast model (MCMC) vs the exact engine, same priors, within 4 MCSE."""
    import arviz as az

    y = np.array([-0.41, -0.89, -0.43, -1.05, -0.2, -0.7])
    v = np.array([0.105, 0.13, 0.0165, 0.126, 0.05, 0.08])
    data = smd_contrasts(y, v)
    model = Contrast()
    fit = model.fit(data, SamplerSettings(draws=1000, tune=1000, chains=4, seed=4))
    priors = fit.priors
    exact = exact_normal_normal(y, v, tau_prior=priors.tau, mu_prior=(0.0, priors.effect_sd))
    mcse = az.mcse(as_arviz(fit.idata).posterior[["d", "tau"]], method="mean")
    assert abs(flat(fit.idata, "d").mean() - exact.mu["mean"]) < 4 * float(mcse["d"])
    assert abs(flat(fit.idata, "tau").mean() - exact.tau["mean"]) < 4 * float(mcse["tau"])


@pytest.mark.slow
@pytest.mark.parametrize("d_true,tau_true,seed", [(0.8, 0.3, 1), (-0.4, 0.1, 2)])
def test_binary_contrast_recovers_planted_parameters(d_true: float, tau_true: float,
                                                     seed: int) -> None:
    """Arm-based binomial contrast model on 30 simulated two-arm trials."""
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    k = 30
    n = rng.integers(40, 120, size=(k, 2))
    alpha = rng.normal(-1.0, 0.5, k)
    delta = d_true + tau_true * rng.standard_normal(k)
    ev_c = rng.binomial(n[:, 0], expit(alpha))
    ev_a = rng.binomial(n[:, 1], expit(alpha + delta))
    t = pd.DataFrame({"study": [f"S{i}" for i in range(k)], "arm": ["a"] * k,
                      "control": ["c"] * k, "comparator": ["placebo"] * k,
                      "time_h": [24.0] * k, "design": ["parallel"] * k,
                      "a": ev_a, "b": n[:, 1] - ev_a, "c": ev_c, "d": n[:, 0] - ev_c,
                      "evidence": ["primary"] * k})
    data = ContrastData("response", "OR", None, pd.DataFrame(), t)
    # informative binomial data make the non-centred tau mix slowly: draw more
    fit = Contrast().fit(data, SamplerSettings(draws=2000, tune=1500, seed=seed))
    assert fit.diagnostics.passed, fit.diagnostics.messages
    for name, truth in [("d", d_true), ("tau", tau_true)]:
        draws = flat(fit.idata, name)
        assert abs(draws.mean() - truth) < 3 * draws.std(), name


@pytest.mark.parametrize("spec", ["half-normal:0.5", "half-cauchy:0.3", "turner2015",
                                  "rhodes2015", "turner2015:active"])
def test_closed_form_tau_priors_equal_scipy(spec: str) -> None:
    from scipy import stats
    from trialmeta.analysis.stats.exact import log_tau_prior

    prior = heterogeneity_prior(spec)
    tau = np.array([1e-3, 0.05, 0.3, 1.0, 4.0])
    log_t2, jac = 2 * np.log(tau), np.log(2.0) - np.log(tau)
    expected = {
        "half-normal": lambda: stats.halfnorm.logpdf(tau, scale=prior.scale),
        "half-cauchy": lambda: stats.halfcauchy.logpdf(tau, scale=prior.scale),
        "turner2015": lambda: stats.norm.logpdf(log_t2, prior.location, prior.scale) + jac,
        "rhodes2015": lambda: stats.t.logpdf(log_t2, 5, prior.location, prior.scale) + jac,
    }[prior.kind]()
    np.testing.assert_allclose(log_tau_prior(tau, prior), expected, rtol=1e-12, atol=1e-12)


def test_shrinkage_quantiles_solve_the_mixture_cdf() -> None:
    """Newton's quantiles of each theta_i's mixture equal a bracketing root-finder's."""
    from scipy import optimize, special
    from trialmeta.analysis.stats.exact import _Grid, _mixture_quantile

    rng = np.random.default_rng(3)
    y, v = rng.normal(0.3, 0.4, 30), rng.uniform(0.01, 0.3, 30)
    g = _Grid(y, v, heterogeneity_prior("half-cauchy:0.5"), None)
    tau2 = g.tau[:, None] ** 2
    b = v[None, :] / (v[None, :] + tau2)
    mean_i = b * g.m[:, None] + (1 - b) * y[None, :]
    sd_i = np.sqrt((1 - b) * v[None, :] + b**2 * g.v[:, None])
    w = g.weight[:, None] / g.weight.sum()
    mean = (w * mean_i).sum(axis=0)
    sd = np.sqrt((w * (sd_i**2 + mean_i**2)).sum(axis=0) - mean**2)
    for p in (0.001, 0.025, 0.5, 0.975):
        got = _mixture_quantile(w, mean_i, sd_i, mean, sd, p)
        for i in (0, 7, 29):
            def cdf(x, i=i, p=p):
                return float((w[:, 0] * special.ndtr((x - mean_i[:, i]) / sd_i[:, i])).sum()) - p
            ref = optimize.brentq(cdf, mean[i] - 20 * sd[i], mean[i] + 20 * sd[i], xtol=1e-14)
            assert got[i] == pytest.approx(ref, abs=1e-8 * sd[i])
