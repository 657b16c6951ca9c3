"""Multi-agent dose-response network (MBNMAdose-style Emax per agent around one control)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import write_csv
from trialmeta.analysis.errors import SpecError
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.models.dose_agents import (
    AgentDose,
    AgentDosePriors,
    CurveDraws,
    select_agent_doses,
)
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.filters import Filters, TimeWindow

TRIPTANS = Path(__file__).parents[1] / "data" / "triptans_records.csv"


def _triptans(tmp_path: Path):
    with TRIPTANS.open() as fh:
        rows = [dict(r, time_h="24", doses_given="1") for r in csv.DictReader(fh)]
    return read_records(write_csv(tmp_path / "triptans.csv", rows, list(rows[0])))


def test_selection_puts_every_control_at_dose_zero_and_drops_undosed_arms(
        tmp_path: Path) -> None:
    rows = [dict(study=s, arm=a, treatment=t, control=str(t in ("placebo", "saline")).lower(),
                 design="parallel", time_h="24", doses_given="1", n="40", responders=str(r),
                 dose=d, dose_unit="mg" if d else "", source=f"doi:10.0/{s}",
                 evidence="primary")
            for s, a, t, d, r in [("S1", "p", "placebo", "0", 5), ("S1", "x1", "X", "10", 12),
                                  ("S1", "x2", "X", "20", 15), ("S2", "s", "saline", "0", 6),
                                  ("S2", "y", "Y", "5", 14), ("S3", "p", "placebo", "0", 4),
                                  ("S3", "yf", "Y", "", 11)]]
    header = ["study", "arm", "treatment", "control", "design", "time_h", "doses_given", "n",
              "responders", "dose", "dose_unit", "source", "evidence"]
    data = select_agent_doses(read_records(write_csv(tmp_path / "a.csv", rows, header)),
                              "response", "OR", TimeWindow.around(24.0), Filters())
    assert data.agents == ["X", "Y"] and data.network.reference == "placebo"
    assert list(data.agent_index) == [-1, 0, 0, -1, 1]  # S3 lost its only dosed arm
    assert list(data.dose) == [0.0, 10.0, 20.0, 0.0, 5.0]
    assert data.observed_doses("X") == [10.0, 20.0]
    reasons = {d["study"]: d["reason"] for d in data.dropped}
    assert "flexible dosing" in reasons["S3"] or "fewer than two" in reasons["S3"]
    with pytest.raises(SpecError, match="ed50"):
        AgentDose(ed50="shared")


def test_bad_agent_requests_exit_2_naming_the_problem(tmp_path: Path) -> None:
    from trialmeta.cli.app import app
    from typer.testing import CliRunner

    path = str(_triptans(tmp_path).path)
    for args, said in [(["--agents", "nosuch"], "no arm of nosuch in the records"),
                       (["--agents", "all", "--ed50", "shared"], "--ed50 takes"),
                       (["--agents", "all", "--inert", "water"], "no arm of an inert control")]:
        r = CliRunner().invoke(app, ["fit", "dose-response", path, *args])
        assert r.exit_code == 2 and said in r.output and "Traceback" not in r.output, r.output


def test_equivalent_dose_solves_the_other_curve() -> None:
    """The dose of B whose effect equals A's at x: f_B(y) = f_A(x), or infinite."""
    draws = CurveDraws(["A", "B"], emax=np.array([[2.0, 3.0], [2.0, 1.0]]),
                       ed50=np.array([[1.0, 4.0], [1.0, 4.0]]), tau=np.zeros(2))
    y = draws.equivalent("A", 1.0, "B")
    f_a = 2.0 * 1.0 / (1.0 + 1.0)  # 1.0
    assert y[0] == pytest.approx(4.0 * f_a / (3.0 - f_a))  # 3 y / (4 + y) = 1 -> y = 2
    assert 3.0 * y[0] / (4.0 + y[0]) == pytest.approx(f_a)
    assert np.isinf(y[1])  # B's Emax 1.0 never reaches 1.0
    assert np.array_equal(draws.quantity("equivalent:A:1:B"), y, equal_nan=False)
    common = CurveDraws(["A", "B"], emax=np.array([[2.0, 3.0]]), ed50=np.array([[0.5]]),
                        tau=np.zeros(1))
    assert common.ed50_of("A") == common.ed50_of("B") == 0.5


#: MBNMAdose's triptan example (vignettes/runmbnmadose-2.html, hugaped/MBNMAdose commit
#: cc415a218fc119db71e857fd11a525852af76a89): mbnma.run(tripnet, fun = demax(emax = "rel",
#: ed50 = "common"), method = "random"), its default priors: emax and mu ~ N(0, 100^2),
#: ed50 ~ N(0, 100^2) T(0,), sd ~ U(0, om$rel) (1.2 x the range of the arms' logits).
MBNMADOSE_TRIPTANS = {
    "ed50": (0.732, 0.4473, 1.215), "tau": (0.247, 0.16, 0.348),
    "emax": {"eletriptan": 2.8854, "sumatriptan": 1.9350, "frovatriptan": 2.1374,
             "almotriptan": 1.8183, "zolmitriptan": 2.1587, "naratriptan": 1.0559,
             "rizatriptan": 2.7816},
}


@pytest.mark.slow
def test_triptans_common_ed50_matches_mbnmadose(tmp_path: Path) -> None:
    """Medians of the common ED50, tau and every agent's Emax.

    Tolerance: 4 combined Monte Carlo SEs of a median (1.25 sd / sqrt(ESS)) plus half the
    printed rounding. MBNMAdose prints no Monte Carlo error: its run is taken as 1,000
    effective draws (JAGS, 3 chains, its defaults), no better than ours.
    """
    import arviz as az
    from trialmeta.analysis.io.posterior_store import as_arviz

    records = _triptans(tmp_path)
    data = select_agent_doses(records, "response", "OR", TimeWindow.around(24.0), Filters(),
                              inert=("placebo",))
    assert len(data.studies) == 70 and len(data.agents) == 7
    arms = data.network.arms
    p = arms["events"] / arms["n"]
    p = np.where((p == 0) | (p == 1), (arms["events"] + 0.5) / (arms["n"] + 1), p)
    logit = np.log(p / (1 - p))
    om_rel = round(float((logit.max() - logit.min()) * 1.2), 3)  # MBNMAdose's calcom()
    priors = AgentDosePriors(emax_sd=100.0, baseline_sd=100.0, ed50_prior="half-normal",
                             ed50_scale=100.0, tau_upper=om_rel)
    fit = AgentDose(priors, ed50="common", emax="fixed").fit(
        data, SamplerSettings(draws=2000, tune=1000, chains=4, seed=20190101))
    assert fit.diagnostics.passed, fit.diagnostics.as_dict()
    post = as_arviz(fit.idata).posterior
    ess = az.ess(post[["emax", "ed50", "tau"]])

    def check(x: np.ndarray, n_eff: float, ref: float, digits: int) -> None:
        tol = 4 * 1.25 * x.std() * np.hypot(1 / np.sqrt(n_eff), 1 / np.sqrt(1000)) \
            + 0.5 * 10 ** -digits
        assert abs(np.median(x) - ref) < tol, (np.median(x), ref, tol)

    check(flat(fit.idata, "ed50")[:, 0], float(ess["ed50"].min()),
          MBNMADOSE_TRIPTANS["ed50"][0], 3)
    check(flat(fit.idata, "tau"), float(ess["tau"]), MBNMADOSE_TRIPTANS["tau"][0], 3)
    emax = flat(fit.idata, "emax")
    for j, agent in enumerate(data.agents):
        check(emax[:, j], float(ess["emax"][j]), MBNMADOSE_TRIPTANS["emax"][agent], 4)


CLAIMS = """version: 1
defaults: {{support: 0.8, contradict: 0.2, min_studies: 2}}
claims:
{claims}"""
CLAIM = """  - id: {id}
    quote: q
    model: dose-response
    outcome: response
    time_h: 24
    agents: all
    ed50: common
    inert: [placebo]
    quantity: "{quantity}"
    region: [0, .inf]
"""


def test_multi_agent_claims_are_judged_and_unobserved_doses_refused(tmp_path: Path) -> None:
    from trialmeta.analysis.evaluate.claims import load_claims
    from trialmeta.analysis.evaluate.evaluation import evaluate

    records = _triptans(tmp_path)
    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS.format(claims="".join(
        CLAIM.format(id=i, quantity=q) for i, q in [
            ("at-1", "effect_at:sumatriptan:1"), ("at-3", "effect_at:sumatriptan:3"),
            ("ed50", "ed50:eletriptan"), ("equiv", "equivalent:sumatriptan:1:eletriptan"),
            ("absent", "emax:ketamine")])))
    ev = evaluate(records, load_claims(path),
                  SamplerSettings(draws=400, tune=400, chains=2, seed=3))
    by = {r.claim.id: r for r in ev.results}
    assert len(ev.runs) == 1
    assert by["at-1"].verdict == "supported" and by["at-1"].basis == "evidence"
    assert by["at-3"].verdict == "insufficient data" and "no trial gave" in by["at-3"].reason
    assert by["ed50"].basis == "evidence" and by["ed50"].evidence.spread_ratio < 0.7
    assert by["equiv"].estimate["median"] < 1  # eletriptan is the more potent per unit
    assert by["absent"].verdict == "insufficient data" and "no dosed arm" in by["absent"].reason


@pytest.mark.parametrize(("change", "message"), [
    ('quantity: "effect_at:sumatriptan"', "has no quantity"),
    ('quantity: "effect_at:sumatriptan:-1"', "must be positive"),
    ("ed50: shared", "field 'ed50': use per-agent or common"),
])
def test_multi_agent_claim_fields_are_checked(tmp_path: Path, change: str, message: str) -> None:
    from trialmeta.analysis.evaluate.claims import load_claims

    text = CLAIM.format(id="x", quantity="effect_at:sumatriptan:1")
    key = change.split(":")[0]
    text = "\n".join(change if line.strip().startswith(f"{key}:") else line
                     for line in text.splitlines()).replace(f"\n{change}", f"\n    {change}")
    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS.format(claims=text + "\n"))
    with pytest.raises(SpecError, match=message):
        load_claims(path)


def test_sweep_scales_the_multi_agent_priors_and_skips_forms(tmp_path: Path) -> None:
    from trialmeta.analysis.evaluate.claims import load_claims
    from trialmeta.analysis.models.dose_agents import claim_priors
    from trialmeta.analysis.pipelines.sweep import Variation, vary

    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS.format(claims=CLAIM.format(id="x", quantity="ed50:sumatriptan")))
    claim = load_claims(path).claims[0]
    records = _triptans(tmp_path)
    wider = vary(claim, Variation("priors", "dose-response:amplitude_sd*2"), records)
    assert dict(wider.option("priors")) == {"amplitude_sd": 5.0}
    assert claim_priors("OR", wider.option("priors")).emax_sd == 5.0
    tau = vary(claim, Variation("priors", "dose-response:tau_scale/2"), records)
    assert claim_priors("OR", tau.option("priors")).tau.scale == 0.25
    assert vary(claim, Variation("form", "loglinear"), records) is None  # Emax only
    with pytest.raises(SpecError, match="no prior setting 'hill_sd'"):
        claim_priors("OR", (("hill_sd", 1.0),))


def test_agents_recover_planted_curves_with_exchangeable_emax(tmp_path: Path) -> None:
    """Simulated from the model with known Emax, ED50 and tau (large trials): the
    posterior medians lie within 4 posterior SDs of the truth (--emax random)."""
    rng = np.random.default_rng(11)
    truth = {"X": (2.0, 1.0, (0.5, 1.0, 2.0)), "Y": (1.5, 2.0, (1.0, 2.0, 4.0))}
    rows = []
    for i in range(30):
        agent = "X" if i % 2 else "Y"
        emax, ed50, doses = truth[agent]
        base = rng.normal(-1.0, 0.3)
        arms = [("placebo", 0.0)] + [(agent, x) for x in rng.choice(doses, 2, replace=False)]
        for t, x in arms:
            eta = base + (0.0 if t == "placebo" else emax * x / (ed50 + x)
                          + rng.normal(0.0, 0.1))
            n = 300
            rows.append(dict(study=f"T{i}", arm=f"{t}{x:g}", treatment=t,
                             control=str(t == "placebo").lower(), design="parallel",
                             time_h="24", doses_given="1", n=str(n),
                             responders=str(rng.binomial(n, 1 / (1 + np.exp(-eta)))),
                             dose=f"{x:g}", dose_unit="mg" if x else "",
                             source=f"simulated:{i}", evidence="primary"))
    path = write_csv(tmp_path / "sim.csv", rows, list(rows[0]))
    data = select_agent_doses(read_records(path), "response", "OR", TimeWindow.around(24.0),
                              Filters())
    fit = AgentDose(ed50="per-agent", emax="random").fit(
        data, SamplerSettings(draws=600, tune=600, chains=2, seed=4))
    emax, ed50 = flat(fit.idata, "emax"), flat(fit.idata, "ed50")
    for j, agent in enumerate(data.agents):
        for draws, true in ((emax[:, j], truth[agent][0]), (ed50[:, j], truth[agent][1])):
            assert abs(np.median(draws) - true) < 4 * draws.std(), (agent, np.median(draws))


def test_a_memoised_network_selection_does_not_leak_undosed_arms_into_the_agents() -> None:
    """The same records and arguments but ``dosed``: the memo must not return the network
    selection (flexible-dose arms included) for the agents' (left out)."""
    from trialmeta.analysis.models.network import select_network

    records = read_records()
    args = ("response", "OR", TimeWindow.around(72.0), Filters())  # TRANSFORM-2/3: flexible
    full = select_network(records, *args, reference="placebo", node="treatment+dose",
                          inert=("placebo", "saline"))
    data = select_agent_doses(records, *args)
    assert full.arms["dose"].isna().any()  # the network keeps flexible-dose arms
    assert not data.network.arms.loc[data.agent_index >= 0, "dose"].isna().any()
    assert any("flexible dosing" in d["reason"] for d in data.dropped)
