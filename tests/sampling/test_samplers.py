"""The NUTS back ends: compiled-model reuse, seeds, and clear errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
from trialmeta.analysis.errors import SpecError
from trialmeta.analysis.models.pooled_rate import PooledRate
from trialmeta.analysis.sampling.inference import flat, sample
from trialmeta.analysis.sampling.samplers import compiled
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.filters import BinaryArms


def _arms(y: list[int], n: list[int]) -> BinaryArms:
    k = len(y)
    t = pd.DataFrame({"study": [f"S{i}" for i in range(k)], "arm": "a",
                      "label": [f"S{i} a" for i in range(k)], "time_h": 24.0, "n": n,
                      "events": y, "evidence": "primary", "design": "parallel", "scale": "X"})
    return BinaryArms("response", t)


SMALL = SamplerSettings(draws=300, tune=300, chains=2, seed=5)


def test_new_data_reuses_the_compiled_model_and_moves_the_posterior() -> None:
    import pymc as pm

    model = PooledRate().build(_arms([2, 3, 4, 2], [40, 40, 40, 40]))
    first = sample(model, SMALL)
    functions = compiled(model)
    with model:
        pm.set_data({"y": np.array([30, 33, 35, 31])})
    second = sample(model, SMALL)
    assert compiled(model) is functions
    # about 8 % then about 80 % of patients respond: the pooled logit moves by > 3
    assert flat(second, "mu").mean() - flat(first, "mu").mean() > 3
    np.testing.assert_array_equal(second.observed_data["events"].values, [30, 33, 35, 31])


def test_log_likelihood_matches_pymc() -> None:
    import pymc as pm

    model = PooledRate().build(_arms([5, 9, 3], [20, 25, 18]))
    idata = sample(model, SMALL)
    ours = idata.log_likelihood["events"].values
    theirs = pm.compute_log_likelihood(idata, model=model, extend_inferencedata=False,
                                       progressbar=False)["events"].values
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_same_seed_same_draws_different_seed_different_draws() -> None:
    data = _arms([5, 9, 3], [20, 25, 18])
    a = sample(PooledRate().build(data), SMALL)
    b = sample(PooledRate().build(data), SMALL)
    c = sample(PooledRate().build(data), SamplerSettings(draws=300, tune=300, chains=2, seed=6))
    np.testing.assert_array_equal(flat(a, "mu"), flat(b, "mu"))
    assert not np.array_equal(flat(a, "mu"), flat(c, "mu"))


def test_unknown_sampler_is_a_spec_error() -> None:
    model = PooledRate().build(_arms([5, 9], [20, 25]))
    with pytest.raises(SpecError, match="unknown sampler 'stan'"):
        sample(model, SamplerSettings(draws=10, tune=10, chains=1, sampler="stan"))


@pytest.mark.skipif(importlib.util.find_spec("numpyro") is not None,
                    reason="numpyro is installed here")
def test_numpyro_without_jax_says_how_to_get_it() -> None:
    model = PooledRate().build(_arms([5, 9], [20, 25]))
    with pytest.raises(SpecError, match="pip install numpyro"):
        sample(model, SamplerSettings(draws=10, tune=10, chains=1, sampler="numpyro"))
