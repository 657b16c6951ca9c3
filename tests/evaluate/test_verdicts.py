"""The decision layer on real fits: evidence, not width; no verdict from the prior or the seed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import base_rows, write_csv
from scipy.stats import norm
from trialmeta.analysis.evaluate.claims import load_claims
from trialmeta.analysis.evaluate.evaluation import PRIOR_DRAWS, evaluate
from trialmeta.analysis.io.posterior_store import draws_as_posterior
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.models.time_course import (
    DEFAULT_KNOTS,
    bateman,
    time_quantity,
    time_to_peak,
)
from trialmeta.analysis.report.build import cfmt
from trialmeta.analysis.sampling.inference import summarize_censored
from trialmeta.analysis.sampling.settings import SamplerSettings

C1_LIKE = """
claims:
  - id: third
    quote: about one third remit
    model: pooled-rate
    outcome: remission
    time_h: 24
    quantity: pooled_rate
    region: [0.28, 0.38]
"""


def _two_small_studies(tmp_path: Path, counts: list[tuple[int, int]]) -> Path:
    rows = []
    for i, (r, n) in enumerate(counts):
        row = dict(base_rows()[0], study=f"S{i}", responders=str(r), remitters=str(r), n=str(n))
        rows.append(row)
    return write_csv(tmp_path / "r.csv", rows)


def test_two_tiny_studies_do_not_contradict_about_one_third(tmp_path: Path) -> None:
    """The review's example: 0/3 and 2/3 remitters; the old rule said "contradicted"."""
    rec = read_records(_two_small_studies(tmp_path, [(0, 3), (2, 3)]))
    claims = tmp_path / "c.yaml"
    claims.write_text(C1_LIKE)
    ev = evaluate(rec, load_claims(claims), SamplerSettings(seed=11))
    res = ev.results[0]
    # P(region) is about 0.2 (the old rule's "contradicted"), but the posterior straddles
    # the region (P below 0.33, above 0.47): no evidence against the claim
    assert res.verdict == "inconclusive", res.reason
    assert res.evidence.p_below < 0.8 and res.evidence.p_above < 0.8
    assert res.evidence.bayes_factor > 1  # the data moved towards the region, if anything
    # the prior probability of the region, against its closed form under mu ~ N(0, 1.5)
    logit = np.log(np.array([0.28, 0.38]) / (1 - np.array([0.28, 0.38])))
    exact = float(np.diff(norm.cdf(logit, 0.0, 1.5))[0])
    se = np.sqrt(exact * (1 - exact) / PRIOR_DRAWS)
    assert res.evidence.p_prior == pytest.approx(exact, abs=4 * se)
    assert res.as_dict()["bayes_factor"] == pytest.approx(
        (res.probability / (1 - res.probability)) / (res.evidence.p_prior
                                                    / (1 - res.evidence.p_prior)))


def test_large_studies_on_one_side_contradict_with_the_side_named(tmp_path: Path) -> None:
    rec = read_records(_two_small_studies(tmp_path, [(60, 300), (62, 300), (58, 300),
                                                     (61, 300), (63, 300)]))
    claims = tmp_path / "c.yaml"
    claims.write_text(C1_LIKE)
    res = evaluate(rec, load_claims(claims), SamplerSettings(seed=11)).results[0]
    assert res.verdict == "contradicted" and "lies below" in res.reason
    assert res.evidence.p_below >= 0.8 and res.evidence.bayes_factor <= 1 / 3


def test_two_large_studies_below_are_not_yet_evidence_against(tmp_path: Path) -> None:
    """60/300 and 62/300: P(below) 0.91, but with two studies the median study's rate is
    uncertain (tau), and the region's odds fell only from 0.12 to 0.08 (Bayes factor
    about 0.6): the old rule's "contradicted" had no evidence behind it."""
    rec = read_records(_two_small_studies(tmp_path, [(60, 300), (62, 300)]))
    claims = tmp_path / "c.yaml"
    claims.write_text(C1_LIKE)
    res = evaluate(rec, load_claims(claims), SamplerSettings(seed=11)).results[0]
    assert res.evidence.p_below >= 0.8 and res.evidence.bayes_factor > 1 / 3
    assert res.verdict == "inconclusive" and res.qualifier == "weak Bayes factor"


def test_verdict_near_a_threshold_is_the_same_at_every_seed(tmp_path: Path) -> None:
    """A region cut at the posterior's 20th percentile puts P(region) on the 0.8 line."""
    rec = read_records(_two_small_studies(tmp_path, [(20, 60), (25, 60), (18, 60)]))
    claims = tmp_path / "c.yaml"
    claims.write_text(C1_LIKE)
    first = evaluate(rec, load_claims(claims), SamplerSettings(seed=1, draws=500))
    draws = first.runs[next(iter(first.runs))].draws("pooled_rate", first.results[0].claim)
    cut = float(np.quantile(draws, 0.2))
    claims.write_text(C1_LIKE.replace("[0.28, 0.38]", f"[{cut:.4f}, 1]"))
    spec = load_claims(claims)
    results = [evaluate(rec, spec, SamplerSettings(seed=s, draws=500)).results[0]
               for s in (1, 2, 3, 20190101)]
    assert len({r.verdict for r in results}) == 1, [(r.verdict, r.probability) for r in results]
    assert max(r.draws for r in results) > 500  # at least one run had to extend its draws
    capped = [r for r in results if r.draws == 500 * spec.claims[0].rule.max_draws_factor]
    assert all(r.verdict in ("inconclusive", results[0].verdict) for r in capped)


def _fake_fit(**params: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(idata=draws_as_posterior(params), knots=DEFAULT_KNOTS,
                           form="piecewise" if "knot_effect" in params else "bateman")


def test_piecewise_peak_sits_exactly_on_a_knot() -> None:
    """A grid put the 24 h and 72 h knots at 23.93 / 24.24 h and 71.46 / 72.41 h."""
    knots = np.array([[0.1, 0.9, 0.5, 0.2, 0.1, 0.0],    # peak at the 24 h knot
                      [0.1, 0.5, 0.9, 0.2, 0.1, 0.0],    # at 72 h
                      [-0.1, -0.5, -0.2, -0.2, -0.1, -0.3]])  # no benefit at all
    fit = _fake_fit(knot_effect=knots)
    t = time_quantity(None, fit, "time_to_peak_h", 1, 0.405, 0.5)
    assert t[0] == 24.0 and t[1] == 72.0 and np.isinf(t[2])
    t_lower_better = time_quantity(None, fit, "time_to_peak_h", -1, 0.405, 0.5)
    assert t_lower_better[2] == 24.0


def test_bateman_peak_is_analytic() -> None:
    t_r, t_d = np.array([3.0, 10.0]), np.array([40.0, 300.0])
    fit = _fake_fit(peak=np.array([1.0, -1.0]), t_rise=t_r, t_decay=t_d)
    t = time_quantity(None, fit, "time_to_peak_h", 1, 0.405, 0.5)
    assert t[0] == pytest.approx(np.log(40 / 3) * 40 * 3 / 37) and np.isinf(t[1])
    fine = np.linspace(1, 100, 200_001)
    assert t[0] == pytest.approx(fine[np.argmax(bateman(fine, np.ones(1), t_r[:1], t_d[:1]))],
                                 abs=1e-3)
    assert time_to_peak(t_r, t_d)[0] == pytest.approx(t[0])


def test_censored_durations_stay_in_the_quantiles() -> None:
    draws = np.r_[np.linspace(50, 300, 40), np.full(60, np.inf)]
    s = summarize_censored(draws)
    assert np.isinf(s["median"]) and np.isinf(s["ci_high"]) and 50 < s["ci_low"] < 70
    assert "mean" not in s  # a mean of censored times would be wrong
    row = {"model": "time-course", "quantity": "duration_h", "median": None,
           "ci_low": s["ci_low"], "ci_high": None, "censored_above": ["median", "ci_high"]}
    assert cfmt(row, "median") == "> 672 h" and cfmt(row, "ci_low").endswith(" h")
    row.pop("model")  # a claim as "what changed" keeps it: the families' one bound
    assert cfmt(row, "median") == "> 672 h"
    finite = summarize_censored(np.linspace(50, 300, 100))
    assert finite["median"] == pytest.approx(175.0)


TIME_CLAIM = """
claims:
  - id: late-peak
    quote: the effect peaks after a month
    model: time-course
    outcome: response
    form: bateman
    threshold: 0.405
    quantity: time_to_peak_h
    region: [700, 2000]
    selection:
      treatment: [ketamine, esketamine]
"""


def test_time_region_beyond_the_observations_is_insufficient_data(tmp_path: Path) -> None:
    claims = tmp_path / "c.yaml"
    claims.write_text(TIME_CLAIM)
    rec = read_records()
    res = evaluate(rec, load_claims(claims), SamplerSettings(seed=5, draws=300)).results[0]
    assert res.verdict == "insufficient data" and res.basis == "unidentified"
    assert "lies outside the observed times" in res.reason


@pytest.mark.slow
def test_bundled_claims_give_the_same_labels_at_every_seed() -> None:
    """Issue 13: the shipped claims at the default seed and at seeds 1, 2 and 3."""
    rec, claims = read_records(), load_claims()
    labels = [{r.claim.id: r.verdict for r in evaluate(rec, claims,
                                                       SamplerSettings(seed=s)).results}
              for s in (20190101, 1, 2, 3)]
    assert all(lab == labels[0] for lab in labels[1:]), labels


def test_fit_document_and_claims_report_the_same_time_quantities(tmp_path: Path) -> None:
    """`fit time-course --json` and the claims engine share one definition of each time."""
    from trialmeta.analysis.families.curves import TimeOptions, fit_time
    from trialmeta.analysis.models.time_course import time_summary

    rec = read_records()
    settings = SamplerSettings(seed=5, draws=300)
    for form in ("bateman", "piecewise"):
        data, model, fit = fit_time(rec, TimeOptions(form=form), settings)
        s = time_summary(model, fit, threshold=0.405, direction=1)["estimates"]
        for q in ("time_to_peak_h", "duration_h", "onset_h"):
            draws = time_quantity(model, fit, q, 1, 0.405, 0.5)
            expect = summarize_censored(draws)
            got = s[q]
            for k in ("median", "ci_low", "ci_high"):
                assert got[k] == (expect[k] if np.isfinite(expect[k]) else None), (form, q, k)
        if form == "piecewise":  # the peak sits on a knot, never between two grid points
            assert s["time_to_peak_h"]["median"] in DEFAULT_KNOTS


def test_a_plugin_curve_without_its_own_prior_is_not_compared_with_the_wrong_one() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "docs" / "examples" / "exponential_decay.py"
    spec = importlib.util.spec_from_file_location("exp_decay_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.ExponentialDecay()
    fit = SimpleNamespace(form="exp-decay", knots=DEFAULT_KNOTS)
    assert model.prior_params(fit, 10, np.random.default_rng(0)) is None
    bateman_fit = SimpleNamespace(form="bateman", knots=DEFAULT_KNOTS)
    from trialmeta.analysis.models.time_course import TimeCourse

    assert set(TimeCourse().prior_params(bateman_fit, 10, np.random.default_rng(0))) >= {
        "peak", "t_rise", "t_decay"}
