"""Arm-based binary models are symmetric: mirrored data, mirrored posterior; no events, no verdict.

The statistical review's cases (statistical-review-2.md, item 1): with control logit
``alpha`` and active ``alpha + delta`` the active arm's prior was wider, so five trials of
0/20 vs 0/20 were "contradicted" (P(log OR < 0) = 0.98) and 2 x (2/3 vs 0/3) gave +2.38
against -3.28 for its mirror. Each test here fails on that parametrisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import base_rows, write_csv
from trialmeta.analysis.evaluate.claims import load_claims
from trialmeta.analysis.evaluate.evaluation import evaluate
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.models.arms import centring_matrix, control_logits
from trialmeta.analysis.models.contrast import Contrast
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.contrasts import select_contrasts, uninformative_studies
from trialmeta.analysis.select.filters import Filters, TimeWindow

CLAIM = """
claims:
  - id: benefit
    quote: ketamine raises the response rate
    model: contrast
    outcome: response
    time_h: 24
    quantity: effect
    region: [0, .inf]
"""


def _records(tmp_path: Path, tables: list[tuple[int, int, int, int]], name: str = "r.csv"):
    """Two-arm trials from (active events, active n, control events, control n)."""
    rows = []
    template = base_rows()
    for i, (ka, na, kc, nc) in enumerate(tables):
        for row, (k, n) in zip(template[:2], [(ka, na), (kc, nc)], strict=True):
            rows.append(dict(row, study=f"S{i}", responders=str(k), remitters=str(k // 2),
                             n=str(n), source=f"doi:10.0/S{i} Table 2"))
    return read_records(write_csv(tmp_path / name, rows))


def _effect_draws(records, seed: int = 3, draws: int = 1500) -> np.ndarray:
    data = select_contrasts(records, "response", "OR", TimeWindow.around(24), Filters())
    fit = Contrast().fit(data, SamplerSettings(seed=seed, draws=draws))
    return flat(fit.idata, "d")


def test_mirrored_tables_give_a_mirrored_posterior(tmp_path: Path) -> None:
    """2 x (2/3 vs 0/3) against 2 x (0/3 vs 2/3): medians +2.38 vs -3.28 before the fix."""
    d = _effect_draws(_records(tmp_path, [(2, 3, 0, 3)] * 2, "a.csv"))
    m = _effect_draws(_records(tmp_path, [(0, 3, 2, 3)] * 2, "b.csv"))
    # tolerance: 4 Monte Carlo standard errors of the difference of two medians (ESS >= 400
    # each, sd of d about 2.2: MCSE of a median about 1.25 sd / sqrt(ESS))
    mcse = 1.25 * np.hypot(d.std(), m.std()) / np.sqrt(400)
    assert np.median(d) == pytest.approx(-np.median(m), abs=4 * mcse)
    for q in (0.1, 0.9):
        assert np.quantile(d, q) == pytest.approx(-np.quantile(m, 1 - q), abs=6 * mcse)


def test_centring_matrix_and_control_logits() -> None:
    """Two studies: one with two active arms (K = 3), one with one (K = 2)."""
    m = centring_matrix(np.array([0, 0, 1]), 2, extra=1)
    np.testing.assert_allclose(m, [[1 / 3, 1 / 3, 0], [0, 0, 1 / 2]])
    alpha = np.array([[1.0, -1.0]])
    delta = np.array([[0.6, 0.3, 2.0]])
    np.testing.assert_allclose(control_logits(alpha, delta, np.array([0, 0, 1])),
                               [[1.0 - 0.3, -1.0 - 1.0]])


def test_double_zero_trials_are_named_and_left_out(tmp_path: Path) -> None:
    rec = _records(tmp_path, [(0, 20, 0, 20), (5, 20, 1, 20), (20, 20, 20, 20)])
    data = select_contrasts(rec, "response", "OR", TimeWindow.around(24), Filters())
    gone = uninformative_studies(data)
    assert set(gone) == {"S0", "S2"}
    assert "double-zero" in gone["S0"] and "double-all" in gone["S2"]
    fit = Contrast().fit(data, SamplerSettings(seed=1, draws=300))
    assert fit.data.studies == ["S1"]
    assert any("S0, S2" in n for n in fit.data.notes)


@pytest.mark.parametrize("table", [(0, 20, 0, 20), (20, 20, 20, 20)])
def test_double_zero_or_double_all_data_give_no_directional_verdict(
        tmp_path: Path, table: tuple[int, int, int, int]) -> None:
    """Five 0/20 vs 0/20 trials were "contradicted" (P 0.98); all-event trials "supported"."""
    rec = _records(tmp_path, [table] * 5)
    claims = tmp_path / "c.yaml"
    claims.write_text(CLAIM)
    res = evaluate(rec, load_claims(claims), SamplerSettings(seed=5, draws=500)).results[0]
    assert res.verdict == "insufficient data", (res.verdict, res.reason)
    assert "no information about the odds ratio" in res.reason


def test_kept_double_zero_trials_leave_the_effect_centred(tmp_path: Path) -> None:
    """Kept in the model (as SBC keeps them), they pull d towards 0, in neither direction."""
    rec = _records(tmp_path, [(0, 20, 0, 20)] * 5)
    data = select_contrasts(rec, "response", "OR", TimeWindow.around(24), Filters())
    fit = Contrast(keep_uninformative=True).fit(data, SamplerSettings(seed=2, draws=1500))
    d = flat(fit.idata, "d")
    p_below = float(np.mean(d < 0))
    # P(d < 0) is 0.5 by symmetry; 4 Monte Carlo SEs at an ESS of at least 400
    assert p_below == pytest.approx(0.5, abs=4 * np.sqrt(0.25 / 400))


def test_network_result_does_not_depend_on_the_reference(tmp_path: Path) -> None:
    """B vs A with A as the reference (A the baseline arm) and with B (B the baseline).

    Sparse arms (0/10, 1/10) are where the old baseline-arm prior moved the effect.
    """
    from trialmeta.analysis.models.network import Network, select_network

    rows = []
    for s, arms in {"S1": [("A", 0, 10), ("B", 3, 10)], "S2": [("A", 1, 10), ("B", 4, 10)],
                    "S3": [("A", 0, 12), ("B", 2, 12)]}.items():
        for t, e, n in arms:
            rows.append(dict(base_rows()[0], study=s, arm=t, treatment=t,
                             control="true" if t == "A" else "false", responders=str(e),
                             n=str(n), source=f"doi:10.0/{s}"))
    rec = read_records(write_csv(tmp_path / "net.csv", rows))
    out = []
    for ref in ("A", "B"):
        data = select_network(rec, "response", "OR", TimeWindow.around(24.0), Filters(),
                              reference=ref)
        fit = Network().fit(data, SamplerSettings(seed=4, draws=2000))
        d = flat(fit.idata, "d")
        out.append(d[:, 1] if ref == "A" else -d[:, 1])  # log OR of B vs A either way
    mcse = 1.25 * np.hypot(out[0].std(), out[1].std()) / np.sqrt(400)
    assert np.median(out[0]) == pytest.approx(np.median(out[1]), abs=4 * mcse)
