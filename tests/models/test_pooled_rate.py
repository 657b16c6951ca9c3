"""pooled-rate against an exact quadrature posterior and against planted parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from trialmeta.analysis.io.posterior_store import as_arviz
from trialmeta.analysis.models.pooled_rate import PooledRate, PooledRatePriors
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.filters import BinaryArms


def arms(events: list[int], n: list[int]) -> BinaryArms:
    k = len(n)
    t = pd.DataFrame({"study": [f"S{i}" for i in range(k)], "arm": ["a"] * k,
                      "label": [f"S{i} a" for i in range(k)], "time_h": [24.0] * k,
                      "n": n, "events": events, "evidence": ["primary"] * k,
                      "design": ["parallel"] * k, "scale": ["MADRS"] * k})
    return BinaryArms("response", t)


def quadrature_posterior(y, n, priors: PooledRatePriors, grid: int = 161):
    """Exact posterior of (mu, tau) on a grid; theta_i integrated by Gauss-Hermite."""
    mu = np.linspace(-4, 4, grid)
    tau = np.linspace(1e-4, 4, grid)
    x, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()
    mu_g, tau_g = np.meshgrid(mu, tau, indexing="ij")
    loglik = np.zeros_like(mu_g)
    for yi, ni in zip(y, n, strict=True):
        theta = mu_g[..., None] + tau_g[..., None] * x
        lp = stats.binom.logpmf(yi, ni, special.expit(theta))
        loglik += np.log(np.exp(lp) @ w)
    logpost = (loglik + stats.norm.logpdf(mu_g, priors.mu_mean, priors.mu_sd)
               + stats.halfnorm.logpdf(tau_g, scale=priors.tau_scale))
    post = np.exp(logpost - logpost.max())
    post /= post.sum()
    p_mu = post.sum(axis=1)
    mean = float((p_mu * mu).sum())
    sd = float(np.sqrt((p_mu * (mu - mean) ** 2).sum()))
    p_tau = post.sum(axis=0)
    tau_mean = float((p_tau * tau).sum())
    return mean, sd, tau_mean


@pytest.mark.parametrize("sampler", ["nutpie", "nutpie-pytensor", "pymc"])
def test_matches_exact_quadrature_posterior(sampler: str) -> None:
    """Posterior means of mu and tau agree with quadrature within 4 Monte Carlo SEs."""
    import arviz as az

    y, n = [12, 30, 15, 2, 8], [20, 47, 42, 7, 29]
    model = PooledRate()
    fit = model.fit(arms(y, n), SamplerSettings(draws=600, tune=600, chains=4, seed=11,
                                                sampler=sampler))
    mu_ref, mu_sd_ref, tau_ref = quadrature_posterior(y, n, model.priors)
    mcse = az.mcse(as_arviz(fit.idata).posterior[["mu", "tau"]], method="mean")
    mu_draws, tau_draws = flat(fit.idata, "mu"), flat(fit.idata, "tau")
    assert abs(mu_draws.mean() - mu_ref) < 4 * float(mcse["mu"]) + 1e-3
    assert abs(tau_draws.mean() - tau_ref) < 4 * float(mcse["tau"]) + 2e-3
    # the posterior sd is itself estimated: allow 10 % (about 4 SE of an sd from ~1,000 ESS)
    assert abs(mu_draws.std() - mu_sd_ref) < 0.1 * mu_sd_ref
    s = model.summary(fit)
    assert s.estimates["pooled_rate"]["median"] == pytest.approx(
        np.median(special.expit(mu_draws)), abs=1e-12)
    assert s.arms["study"].tolist() == [f"S{i}" for i in range(5)]
    assert fit.idata.attrs["trialmeta_model"] == "pooled-rate"


def test_fit_is_reproducible_with_a_seed() -> None:
    data = arms([3, 5, 9], [10, 12, 15])
    settings = SamplerSettings(draws=100, tune=100, chains=2, seed=3)
    a = PooledRate().fit(data, settings)
    b = PooledRate().fit(data, settings)
    np.testing.assert_array_equal(flat(a.idata, "mu"), flat(b.idata, "mu"))


@pytest.mark.slow
@pytest.mark.parametrize("mu_true,tau_true,seed", [(-0.5, 0.4, 1), (0.8, 0.2, 2)])
def test_recovers_planted_parameters(mu_true: float, tau_true: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = 40
    n = rng.integers(40, 200, k)
    theta = mu_true + tau_true * rng.standard_normal(k)
    y = rng.binomial(n, special.expit(theta))
    fit = PooledRate().fit(arms(list(y), list(n)), SamplerSettings(draws=2000, seed=seed))
    assert fit.diagnostics.passed
    for name, truth in [("mu", mu_true), ("tau", tau_true)]:
        d = flat(fit.idata, name)
        assert abs(d.mean() - truth) < 3 * d.std(), name
