"""PSIS-LOO without ArviZ equals ArviZ's ``loo`` (as trialmeta calls it) to 1e-12."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from trialmeta.analysis.stats.psis import psis_loo


def _arviz(loglik: np.ndarray) -> tuple[object, list[str]]:
    import arviz as az

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = az.loo(az.from_dict(posterior={"_": np.zeros(loglik.shape[:2])},
                                  log_likelihood={"obs": loglik}), pointwise=True)
    return res, [str(w.message).splitlines()[0] for w in caught
                 if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("case", ["normal", "heavy", "few-draws", "one-chain"])
def test_psis_loo_equals_arviz(case: str) -> None:
    rng = np.random.default_rng(7)
    shape = {"normal": (4, 500, 12), "heavy": (4, 500, 6), "few-draws": (2, 40, 5),
             "one-chain": (1, 300, 4)}[case]
    mu = rng.normal(size=shape[:2] + (1,))
    y = rng.normal(size=shape[2])
    if case == "heavy":  # an observation far out: large Pareto k
        y[0] = 9.0
    loglik = -0.5 * (y - mu) ** 2 - 0.5 * np.log(2 * np.pi)
    res, caught = _arviz(loglik)
    got = psis_loo(loglik)
    assert got["elpd_loo"] == pytest.approx(float(res.elpd_loo), rel=1e-12)
    assert got["se"] == pytest.approx(float(res.se), rel=1e-10)
    assert got["p_loo"] == pytest.approx(float(res.p_loo), rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(got["pareto_k"], np.asarray(res.pareto_k), rtol=1e-10)
    assert got["warnings"] == caught
    if case == "heavy":
        assert got["warnings"]
