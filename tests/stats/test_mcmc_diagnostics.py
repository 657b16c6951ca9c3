"""R-hat and bulk ESS without ArviZ equal ArviZ's to 1e-12 (the convergence gate uses them)."""

from __future__ import annotations

import numpy as np
import pytest
from trialmeta.analysis.stats.mcmc_diagnostics import _next_fast_len, rank_diagnostics


def _chains(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "iid":
        return rng.normal(size=(4, 1000))
    if kind == "ar1":  # autocorrelated chains, one shifted: R-hat well above 1
        x = np.zeros((4, 500))
        for t in range(1, 500):
            x[:, t] = 0.9 * x[:, t - 1] + rng.normal(size=4)
        return x + np.array([0.0, 0.0, 0.0, 2.0])[:, None]
    if kind == "ties":  # a discrete quantity: many tied ranks
        return rng.integers(0, 5, size=(4, 300)).astype(float)
    if kind == "odd":  # an odd number of draws: the split drops the middle one
        return rng.standard_t(3, size=(2, 201))
    return np.full((4, 100), 1.5)  # constant


@pytest.mark.parametrize("kind", ["iid", "ar1", "ties", "odd", "constant"])
@pytest.mark.parametrize("seed", [1, 2])
def test_rhat_and_ess_equal_arviz(kind: str, seed: int) -> None:
    import arviz as az

    x = _chains(kind, seed)
    want_r = float(az.rhat(x, method="rank"))
    want_e = float(az.ess(x, method="bulk"))
    got_r, got_e = rank_diagnostics(x)
    if np.isnan(want_r):
        assert np.isnan(got_r)
    else:
        assert got_r == pytest.approx(want_r, rel=1e-12, abs=1e-12)
    assert got_e == pytest.approx(want_e, rel=1e-12)


def test_one_chain_has_no_rhat_and_nan_draws_have_neither() -> None:
    x = np.random.default_rng(3).normal(size=(1, 400))
    r_hat, ess = rank_diagnostics(x)
    assert np.isnan(r_hat) and np.isfinite(ess)
    x = np.random.default_rng(3).normal(size=(2, 400))
    x[0, 5] = np.nan
    r_hat, ess = rank_diagnostics(x)
    assert np.isnan(r_hat) and np.isnan(ess)


def test_next_fast_len_is_scipy_fftpacks() -> None:
    from scipy.fftpack import next_fast_len

    for n in [1, 2, 7, 97, 200, 1000, 1999, 2000, 4001, 16385]:
        assert _next_fast_len(n) == next_fast_len(n), n
