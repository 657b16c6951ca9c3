"""Arms nest in studies: a study effect shared by a study's arms, patients counted once."""

from __future__ import annotations

import numpy as np
import pandas as pd
from trialmeta.analysis.models.pooled_rate import PooledRate
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.filters import BinaryArms

from tests.sampling.test_precompiled import _check_against_pymc


def paired_series() -> BinaryArms:
    """Two series report the same patients after one and after six infusions; two RCT arms."""
    t = pd.DataFrame({
        "study": ["A", "A", "B", "B", "C", "D"],
        "arm": ["x1", "x6", "x1", "x6", "k", "k"],
        "n": [12, 12, 40, 40, 30, 25], "events": [3, 9, 10, 26, 12, 8],
        "design": ["single_arm"] * 4 + ["parallel"] * 2,
        "doses_given": [1, 6, 1, 6, 1, 1]})
    t = t.assign(label=t["study"] + " " + t["arm"], time_h=24.0, evidence="primary",
                 scale="MADRS")
    return BinaryArms("response", t)


def test_arms_of_one_study_share_a_study_effect_in_both_samplers() -> None:
    data = paired_series()
    model = PooledRate()
    studies, index = model.nesting(data)
    assert studies == ["A", "B", "C", "D"] and index.tolist() == [0, 0, 1, 1, 2, 3]
    assert "sigma_study" in model.gate_names(data)
    _check_against_pymc(model, data)
    _check_against_pymc(PooledRate(moderators=("doses_given>1",)), data, points=3)


def test_one_arm_per_study_keeps_the_simple_model() -> None:
    data = paired_series()
    data = BinaryArms("response", data.table.drop_duplicates("study").reset_index(drop=True))
    assert PooledRate().nesting(data) is None
    assert "sigma_study" not in PooledRate().gate_names(data)


def test_patients_of_a_series_are_counted_once() -> None:
    assert paired_series().n_total == 12 + 40 + 30 + 25


def test_the_study_effect_is_sampled_and_enters_the_predictive_rate() -> None:
    data = paired_series()
    model = PooledRate()
    fit = model.fit(data, SamplerSettings(draws=300, tune=300, chains=2, seed=4))
    sigma = flat(fit.idata, "sigma_study")
    assert sigma.shape[0] == 600 and np.all(sigma > 0)
    theta = flat(fit.idata, "theta")
    mu, tau = flat(fit.idata, "mu"), flat(fit.idata, "tau")
    v, z = flat(fit.idata, "v"), flat(fit.idata, "z")
    np.testing.assert_allclose(theta[:, 1], mu + sigma * v[:, 0] + tau * z[:, 1], rtol=1e-9)
    wide = model.draws(fit, "predictive_rate")
    assert np.std(wide) > np.std(model.draws(fit, "pooled_rate"))
