"""Record selection, claims-file validation and verdict logic (no sampling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import base_rows, write_csv
from trialmeta.analysis.errors import SpecError
from trialmeta.analysis.evaluate.claims import judge, load_claims
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.select.filters import Filters, TimeWindow, select_binary_arms
from trialmeta.analysis.stats.decision import (
    DecisionRule,
    Evidence,
    bayes_factor,
    monte_carlo_se,
    spread,
    verdict,
    weigh,
)


def test_nearest_time_in_window_and_reasons(tmp_path: Path) -> None:
    rows = base_rows()
    extra = dict(rows[0], time_h="48", responders="12")
    far = dict(rows[2], time_h="168")
    rows[2]["time_h"] = "72"
    rows += [extra, far]
    rec = read_records(write_csv(tmp_path / "r.csv", rows))
    sel = select_binary_arms(rec, "response", TimeWindow.around(24), Filters())
    assert sel.table["study"].tolist() == ["A2001"]
    assert sel.table["time_h"].tolist() == [24.0]
    assert any("B2002" == d["study"] and "within 12-36 h" in d["reason"] for d in sel.dropped)
    wide = select_binary_arms(rec, "response", TimeWindow.around(60, 15), Filters())
    assert sorted(zip(wide.table["study"], wide.table["time_h"], strict=True)) == [
        ("A2001", 48.0), ("B2002", 72.0)]


def test_controls_and_baselines_are_not_outcomes(tmp_path: Path) -> None:
    rows = base_rows()
    rows.append(dict(rows[0], time_h="0", doses_given="0", responders="0"))
    rec = read_records(write_csv(tmp_path / "r.csv", rows))
    sel = select_binary_arms(rec, "response", TimeWindow.around(1, 30), Filters())
    assert set(sel.table["arm"]) == {"ket"} and (sel.table["time_h"] > 0).all()


def test_filters(tmp_path: Path) -> None:
    rows = base_rows()
    rows[0]["route"] = "intranasal"
    rec = read_records(write_csv(tmp_path / "r.csv", rows))
    sel = select_binary_arms(rec, "remission", TimeWindow.around(24),
                             Filters(route=("iv",), dose=0.5, scale=("MADRS",)))
    assert sel.table["study"].tolist() == ["B2002"]
    assert sel.table["events"].tolist() == [7]
    with pytest.raises(SpecError):
        select_binary_arms(rec, "relapse", TimeWindow.around(24), Filters())
    with pytest.raises(SpecError):
        TimeWindow.around(0)
    with pytest.raises(SpecError, match="unknown selection"):
        Filters.from_mapping({"colour": "red"})


def test_bundled_claims_are_valid() -> None:
    cf = load_claims()
    assert {"C1", "C2"} <= {c.id for c in cf.claims}
    c1 = next(c for c in cf.claims if c.id == "C1")
    assert c1.region == (0.28, 0.38) and c1.outcome == "remission"


CLAIM = """
claims:
  - id: X1
    quote: q
    model: pooled-rate
    outcome: response
    time_h: 24
    quantity: pooled_rate
    region: {region}
"""


@pytest.mark.parametrize("region,field", [("[0.5]", "region"), ("[0.7, 0.2]", "region"),
                                          ("[a, b]", "region")])
def test_bad_claims_name_claim_and_field(tmp_path: Path, region: str, field: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(CLAIM.format(region=region))
    with pytest.raises(SpecError, match=f"claim 'X1', field '{field}'"):
        load_claims(p)


@pytest.mark.parametrize("extra,field", [
    ("insufficient_bf: [2, 3]", "insufficient_bf"),        # must bracket 1
    ("insufficient_bf: 3", "insufficient_bf"),             # not a pair
    ("insufficient_bf: [0.3, high]", "insufficient_bf"),
    ("insufficient_sd_ratio: 1.5", "insufficient_sd_ratio"),
    ("max_draws_factor: many", "max_draws_factor"),
    ("max_draws_factor: 0", "max_draws_factor"),
    ("support: 0.3", "support"),                            # below one half: no direction
    ("support: true", "support"),
])
def test_bad_decision_rule_fields_name_claim_and_field(tmp_path: Path, extra: str,
                                                       field: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(CLAIM.format(region="[0, 1]") + f"    {extra}\n")
    with pytest.raises(SpecError, match=f"claim 'X1', field '{field}'"):
        load_claims(p)
    p.write_text("defaults:\n  " + extra + "\n" + CLAIM.format(region="[0, 1]"))
    with pytest.raises(SpecError, match=f"defaults, field '{field}'"):
        load_claims(p)


@pytest.mark.parametrize("extra,problem", [
    ("priors: {t_rise: 3}", "unknown setting 't_rise' for pooled-rate"),
    ("priors: {mu_sd: -1}", "mu_sd"),
    ("priors: {mu_sd: wide}", "must be a number"),
    ("priors: [mu_sd, 1]", "must be a mapping"),
    ("rho: 0.5", "only time-course claims"),
    ("timing: by-route", "only time-course claims take a timing"),
    ("likelihood: binomial", "only time-course claims take a likelihood"),
])
def test_bad_priors_and_rho_name_claim_and_field(tmp_path: Path, extra: str,
                                                 problem: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(CLAIM.format(region="[0, 1]") + f"    {extra}\n")
    field = extra.partition(":")[0]
    with pytest.raises(SpecError, match=f"claim 'X1', field '{field}'.*{problem}"):
        load_claims(p)


def test_priors_option_is_parsed_per_family(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(CLAIM.format(region="[0, 1]") + "    priors: {mu_sd: 3, mu_mean: -0.5}\n")
    [claim] = load_claims(p).claims
    assert claim.option("priors") == (("mu_mean", -0.5), ("mu_sd", 3.0))


def test_unknown_default_is_named_and_the_cli_exits_2(tmp_path: Path) -> None:
    from trialmeta.cli.app import app
    from typer.testing import CliRunner

    p = tmp_path / "c.yaml"
    p.write_text("defaults:\n  suport: 0.9\n" + CLAIM.format(region="[0, 1]"))
    with pytest.raises(SpecError, match="defaults: unknown field 'suport'"):
        load_claims(p)
    r = CliRunner().invoke(app, ["claims", "--claims", str(p)])
    assert r.exit_code == 2 and "suport" in r.output and "Traceback" not in r.output


def test_unknown_model_or_quantity(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(CLAIM.format(region="[0, 1]").replace("pooled-rate", "crystal-ball"))
    with pytest.raises(SpecError, match="field 'model'.*unknown model"):
        load_claims(p)
    p.write_text(CLAIM.format(region="[0, 1]").replace("pooled_rate", "vibes"))
    with pytest.raises(SpecError, match="field 'quantity'"):
        load_claims(p)


def _ev(p_post: float, p_below: float = 0.0, p_prior: float | None = None,
        bf: float | None = None, ratio: float | None = None) -> Evidence:
    return Evidence(p_post, p_below, 1 - p_post - p_below, p_prior, bf, ratio, 0.01, 0.01, 0.01)


def test_verdict_is_evidential_and_directional() -> None:
    rule = DecisionRule()
    assert verdict(_ev(0.8), rule)[0] == "supported"
    assert verdict(_ev(0.79), rule)[0] == "inconclusive"
    # P(in region) small but the posterior straddles the region: not evidence against it
    assert verdict(_ev(0.19, p_below=0.4), rule)[0] == "inconclusive"
    assert verdict(_ev(0.1, p_below=0.85), rule) == ("contradicted", "below")
    assert verdict(_ev(0.1, p_below=0.05), rule) == ("contradicted", "above")
    # the data barely moved the prior: neither supported nor contradicted
    assert verdict(_ev(0.85, p_prior=0.8, bf=1.4, ratio=0.9), rule)[0] == "insufficient data"
    assert verdict(_ev(0.05, 0.9, p_prior=0.1, bf=0.5, ratio=0.95), rule)[0] == \
        "insufficient data"
    # moved enough in spread, or in odds: the probabilities decide
    # the spread contracted, but the data did not move the region's odds by 3: no verdict
    assert verdict(_ev(0.85, p_prior=0.8, bf=1.4, ratio=0.5), rule) == ("inconclusive",
                                                                         "weak-in")
    assert verdict(_ev(0.85, p_prior=0.4, bf=8.5, ratio=0.5), rule)[0] == "supported"
    assert verdict(_ev(0.97, p_prior=0.5, bf=32, ratio=0.9), rule)[0] == "supported"


def test_bayes_factor_and_spread() -> None:
    assert bayes_factor(0.5, 0.5, 1000, 1000) == pytest.approx(1.0)
    assert bayes_factor(0.75, 0.5, 1000, 1000) == pytest.approx(3.0)
    assert np.isfinite(bayes_factor(1.0, 0.1, 1000, 1000))  # kept off 0 and 1
    rng = np.random.default_rng(0)
    assert spread(rng.normal(0, 2, 100_000)) == pytest.approx(2.0, rel=0.02)
    assert spread(np.r_[np.ones(50), np.full(50, np.inf)]) == np.inf
    ev = weigh(rng.normal(0, 1, 4000), rng.normal(0, 1, 4000), (-0.5, 0.5))
    assert ev.bayes_factor == pytest.approx(1.0, abs=0.15) and ev.spread_ratio == \
        pytest.approx(1.0, abs=0.1)


def test_judge_on_constructed_posteriors(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(CLAIM.format(region="[0.4, 0.6]"))
    claim = load_claims(p).claims[0]
    inside = np.full(1000, 0.5)
    assert judge(claim, inside, ["a", "b"], True, None).verdict == "supported"
    outside = np.full(1000, 0.9)
    assert judge(claim, outside, ["a", "b"], True, None).verdict == "contradicted"
    half = np.r_[np.full(500, 0.5), np.full(500, 0.9)]
    res = judge(claim, half, ["a", "b"], False, None)
    assert res.verdict == "inconclusive" and res.probability == 0.5
    assert "FAILED" in res.reason
    assert judge(claim, None, ["a"], None, None).verdict == "insufficient data"


def test_monte_carlo_se_matches_the_true_error_of_correlated_draws() -> None:
    """AR(1) chains with rho = 0.8: var(mean) = (1 + rho) / (1 - rho) / n (4 chains)."""
    rho, n_chain, chains, reps = 0.8, 1000, 4, 400
    rng = np.random.default_rng(3)
    est, means = [], []
    for _ in range(reps):
        x = np.empty((chains, n_chain))
        x[:, 0] = rng.standard_normal(chains)
        noise = rng.standard_normal((chains, n_chain)) * np.sqrt(1 - rho**2)
        for t in range(1, n_chain):
            x[:, t] = rho * x[:, t - 1] + noise[:, t]
        est.append(monte_carlo_se(x.ravel()) ** 2)
        means.append(x.mean())
    true = (1 + rho) / (1 - rho) / (chains * n_chain)
    # the average estimate within 10 %: its own sampling sd over 400 runs is about 1.2 %,
    # and batch means of 100 draws at rho = 0.8 are biased low by about 1 - 2 %
    assert abs(np.mean(est) / true - 1) < 0.10
    assert abs(np.var(means) / true - 1) < 0.25  # the simulation itself is right
    iid = rng.random(4000) < 0.3
    assert abs(monte_carlo_se(iid) / np.sqrt(0.3 * 0.7 / 4000) - 1) < 0.35


def test_verdict_within_monte_carlo_error_of_a_threshold_says_so(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(CLAIM.format(region="[0.4, 0.6]"))
    claim = load_claims(p).claims[0]
    rng = np.random.default_rng(1)
    support = claim.rule.support
    near = np.where(rng.random(4000) < support + 0.004, 0.5, 0.9)
    res = judge(claim, near, ["a", "b"], True, None)
    assert res.probability_mcse and abs(res.probability - support) < 2 * res.probability_mcse
    assert "Monte Carlo standard errors" in res.reason and f"vs {support:g}" in res.reason
    capped = judge(claim, near, ["a", "b"], True, None, at_cap=True)
    assert capped.verdict == "inconclusive" and "no verdict is given" in capped.reason
    far = np.where(rng.random(4000) < 0.5, 0.5, 0.9)
    assert "Monte Carlo" not in judge(claim, far, ["a", "b"], True, None).reason
    assert judge(claim, far, ["a", "b"], True, None).as_dict()["probability_mcse"] > 0
