"""Network meta-analysis (consistency model): against the contrast model, closed-form GLS,
and the ranking arithmetic."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import HEADER, write_csv
from trialmeta.analysis.errors import SpecError
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.models.network import (
    Network,
    NetworkPriors,
    default_network_priors,
    has_loops,
    rank_summary,
    select_network,
)
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.filters import Filters, TimeWindow
from trialmeta.analysis.stats.priors import HeterogeneityPrior


def _row(study: str, treatment: str, events: int, n: int, ctl: bool = False) -> dict:
    return dict(study=study, arm=treatment, treatment=treatment,
                control="true" if ctl else "false", design="parallel", time_h="24",
                doses_given="1", n=str(n), responders=str(events), scale="MADRS",
                source=f"doi:10.0/{study}", evidence="primary")


def _network(tmp_path: Path, trials: dict[str, list[tuple[str, int, int]]]):
    rows = [_row(s, t, e, n, ctl=t == "A") for s, arms in trials.items() for t, e, n in arms]
    path = write_csv(tmp_path / "net.csv", rows, HEADER)
    return select_network(read_records(path), "response", "OR", TimeWindow.around(24.0),
                          Filters(), reference="A")


def test_ranks_and_sucra_by_hand() -> None:
    d = np.array([[0.0, 1.0, 2.0], [0.0, 2.0, 1.0], [0.0, 3.0, 2.5], [0.0, -1.0, 1.0]])
    probs, sucra = rank_summary(d, higher_is_better=True)
    # node C is best in draws 1 and 4, B in draws 2 and 3; A is last in 3 of 4
    np.testing.assert_allclose(probs[2], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(probs[0], [0.0, 0.25, 0.75])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(sucra, [(0 + 0.25) / 2, (0.5 + 0.75) / 2, (0.5 + 1.0) / 2])
    _, low = rank_summary(d, higher_is_better=False)
    np.testing.assert_allclose(low, 1 - sucra)


def test_selection_keeps_the_reference_component_and_orders_arms(tmp_path: Path) -> None:
    data = _network(tmp_path, {"S1": [("B", 10, 40), ("A", 5, 40)],
                               "S2": [("A", 6, 40), ("C", 12, 40), ("B", 11, 40)],
                               "S3": [("D", 9, 30), ("E", 7, 30)]})
    assert data.nodes == ["A", "B", "C"] and data.studies == ["S1", "S2"]
    assert list(data.arms["node"]) == ["A", "B", "A", "B", "C"]  # baseline first
    assert data.dropped == [{"study": "S3", "reason": "not connected to A"}]
    edges = {(e["from"], e["to"]): e["trials"] for e in data.edges()}
    assert edges == {("A", "B"): 2, ("A", "C"): 1, ("B", "C"): 1}
    assert not has_loops(data)  # B-C only inside the three-arm trial: nothing to check
    loop = _network(tmp_path, {"S1": [("A", 5, 40), ("B", 10, 40)],
                               "S2": [("A", 6, 40), ("C", 12, 40)],
                               "S3": [("B", 11, 40), ("C", 13, 40)]})
    assert has_loops(loop)
    with pytest.raises(SpecError, match="not a node"):
        select_network(data_records(tmp_path), "response", "OR", TimeWindow.around(24.0),
                       Filters(), reference="Z")


def data_records(tmp_path: Path):
    return read_records(tmp_path / "net.csv")


def _gls(trials: dict[str, list[tuple[str, int, int]]], nodes: list[str]) -> np.ndarray:
    """Fixed-effect NMA by generalised least squares on each study's log ORs vs its first
    arm (Woolf variances, the first arm's variance shared): the closed-form reference."""
    rows, ys, blocks = [], [], []
    for arms in trials.values():
        (t0, e0, n0), rest = arms[0], arms[1:]
        v0 = 1 / e0 + 1 / (n0 - e0)
        block = np.full((len(rest), len(rest)), v0)
        for j, (t, e, n) in enumerate(rest):
            ys.append(np.log(e / (n - e)) - np.log(e0 / (n0 - e0)))
            x = np.zeros(len(nodes) - 1)
            if nodes.index(t):
                x[nodes.index(t) - 1] += 1
            if nodes.index(t0):
                x[nodes.index(t0) - 1] -= 1
            rows.append(x)
            block[j, j] += 1 / e + 1 / (n - e)
        blocks.append(block)
    x, y = np.array(rows), np.array(ys)
    cov = np.zeros((len(y), len(y)))
    i = 0
    for b in blocks:
        cov[i:i + len(b), i:i + len(b)] = b
        i += len(b)
    w = np.linalg.inv(cov)
    return np.linalg.solve(x.T @ w @ x, x.T @ w @ y)


@pytest.mark.slow
def test_large_trials_with_no_heterogeneity_give_the_gls_estimates(tmp_path: Path) -> None:
    """A loop A-B-C with a three-arm trial and 1,000 patients per arm, tau held near 0:
    posterior means equal the fixed-effect GLS estimates within Monte Carlo error plus the
    normal approximation's O(1/events) (events >= 250 per arm: 0.01 is ample)."""
    import arviz as az
    from trialmeta.analysis.io.posterior_store import as_arviz

    trials = {"S1": [("A", 250, 1000), ("B", 400, 1000)],
              "S2": [("A", 300, 1000), ("C", 520, 1000)],
              "S3": [("B", 380, 1000), ("C", 450, 1000)],
              "S4": [("A", 270, 1000), ("B", 420, 1000), ("C", 500, 1000)]}
    data = _network(tmp_path, trials)
    priors = NetworkPriors(10.0, 10.0, HeterogeneityPrior("half-normal", 0.001, 0.0, "tiny"))
    fit = Network(priors).fit(data, SamplerSettings(draws=2000, tune=1000, chains=4, seed=2))
    assert fit.diagnostics.passed, fit.diagnostics.messages
    want = _gls(trials, data.nodes)
    post = flat(fit.idata, "d_free")
    mcse = az.mcse(as_arviz(fit.idata).posterior["d_free"], method="mean").to_array().values
    for j in range(2):
        assert abs(post[:, j].mean() - want[j]) < 4 * float(np.ravel(mcse)[j]) + 0.01, j


@pytest.mark.slow
def test_two_nodes_are_the_contrast_model(tmp_path: Path) -> None:
    """With two nodes the network model is fit contrast's model: d within 4 MCSEs."""
    import arviz as az
    from trialmeta.analysis.io.posterior_store import as_arviz
    from trialmeta.analysis.models.contrast import Contrast
    from trialmeta.analysis.select.contrasts import select_contrasts

    trials = {f"S{i}": [("A", e0, 40), ("B", e1, 40)]
              for i, (e0, e1) in enumerate([(8, 15), (5, 14), (10, 12), (7, 20), (9, 16)])}
    data = _network(tmp_path, trials)
    settings = SamplerSettings(draws=2000, tune=1000, chains=4, seed=3)
    net = Network(default_network_priors("OR")).fit(data, settings)
    contrast_data = select_contrasts(data_records(tmp_path), "response", "OR",
                                     TimeWindow.around(24.0), Filters())
    con = Contrast().fit(contrast_data, settings)
    a, b = flat(net.idata, "d_free")[:, 0], flat(con.idata, "d")
    ea = float(az.mcse(as_arviz(net.idata).posterior["d_free"], method="mean")
               .to_array().values.ravel()[0])
    eb = float(az.mcse(as_arviz(con.idata).posterior["d"], method="mean").to_array().item())
    assert abs(a.mean() - b.mean()) < 4 * np.hypot(ea, eb)


def test_fit_network_command_on_the_bundled_data() -> None:
    import json

    from trialmeta.cli.app import app
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, ["fit", "network", "--reference", "saline", "--draws", "300",
                                 "--tune", "300", "--chains", "2", "--allow-unconverged",
                                 "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["reference"] == "saline" and "ketamine" in doc["effects"]
    n = len(doc["nodes"])
    assert len(doc["league"]) == n * (n - 1)
    assert abs(sum(x["sucra"] for x in doc["ranks"].values()) - n / 2) < 1e-9
    assert all(e["trials"] >= 1 for e in doc["edges"])
    from trialmeta.analysis.models.network import NO_LOOP

    assert doc["inconsistency"] == {"skipped": NO_LOOP} and doc["node_splits"] == []
    r = CliRunner().invoke(app, ["fit", "network", "--reference", "saline", "--draws", "300",
                                 "--tune", "300", "--chains", "2", "--allow-unconverged",
                                 "--no-check-inconsistency", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["inconsistency"] is None  # not asked


@pytest.mark.slow
def test_ume_flags_an_inconsistent_loop_and_not_a_consistent_one(tmp_path: Path) -> None:
    """A-B and A-C trials say B and C differ by 1.2 on the log-odds scale; in the
    inconsistent network the B-C trials say C is 1.2 *below* B. UME fits those much better
    (difference in elpd > 2 SE); with B-C trials that agree, it does not."""
    from trialmeta.analysis.models.network import inconsistency

    def trials(bc_sign: int) -> dict[str, list[tuple[str, int, int]]]:
        out = {}
        for i in range(3):
            out[f"AB{i}"] = [("A", 100, 400), ("B", 175, 400)]   # log OR about +0.5
            out[f"AC{i}"] = [("A", 100, 400), ("C", 295, 400)]   # about +1.7
            c = 295 if bc_sign > 0 else 60
            out[f"BC{i}"] = [("B", 175, 400), ("C", c, 400)]
        return out

    settings = SamplerSettings(draws=1000, tune=1000, chains=4, seed=5)
    priors = default_network_priors("OR")
    results = {}
    for sign in (+1, -1):
        folder = tmp_path / f"s{sign}"
        folder.mkdir()
        data = _network(folder, trials(sign))
        fits = [Network(priors, ume=u).fit(data, settings) for u in (False, True)]
        results[sign] = inconsistency(*fits)
    assert results[-1]["inconsistency_flagged"]
    assert not results[+1]["inconsistency_flagged"]


def test_splittable_pairs_need_indirect_evidence(tmp_path: Path) -> None:
    from trialmeta.analysis.models.network import split_data, splittable

    star = _network(tmp_path, {"S1": [("A", 5, 40), ("B", 10, 40)],
                               "S2": [("A", 6, 40), ("C", 12, 40)]})
    assert splittable(star) == []
    (tmp_path / "loop").mkdir()
    loop = _network(tmp_path / "loop", {"S1": [("A", 5, 40), ("B", 10, 40)],
                                        "S2": [("A", 6, 40), ("C", 12, 40)],
                                        "S3": [("B", 11, 40), ("C", 13, 40)],
                                        "S4": [("A", 6, 40), ("B", 9, 40), ("C", 12, 40)]})
    assert splittable(loop) == [("A", "B"), ("A", "C"), ("B", "C")]
    moved = split_data(loop, ("B", "C")).arms
    assert list(moved.loc[moved["study"] == "S4", "node"]) == ["B", "A", "C"]
    assert list(moved.loc[moved["study"] == "S1", "node"]) == ["A", "B"]


@pytest.mark.slow
def test_node_split_finds_the_inconsistent_comparison(tmp_path: Path) -> None:
    """The loop of the UME test: splitting B-C gives direct and indirect estimates that
    disagree (p < 0.01) when the B-C trials contradict the rest, and agree when they don't."""
    from trialmeta.analysis.models.network import node_split, split_data

    settings = SamplerSettings(draws=1000, tune=1000, chains=4, seed=6)
    priors = default_network_priors("OR")
    p = {}
    for sign, c in ((+1, 295), (-1, 60)):
        folder = tmp_path / f"s{sign}"
        folder.mkdir()
        trials = {}
        for i in range(3):
            trials[f"AB{i}"] = [("A", 100, 400), ("B", 175, 400)]
            trials[f"AC{i}"] = [("A", 100, 400), ("C", 295, 400)]
            trials[f"BC{i}"] = [("B", 175, 400), ("C", c, 400)]
        data = _network(folder, trials)
        fit = Network(priors, split=("B", "C")).fit(split_data(data, ("B", "C")), settings)
        result = node_split(fit)
        assert result["comparison"] == "C vs B"
        p[sign] = result["p_value"]
    assert p[-1] < 0.01 < p[+1]


#: multinma's vignette "Example: BCG vaccine for tuberculosis", RE model without covariate,
#: priors d, mu ~ N(0, 100^2), tau ~ half-N(0, 5^2); rstan, 4 x 1,000 draws; printed output
#: in github.com/dmphillippo/multinma vignettes/example_bcg_vaccine.html (commit
#: 02009c29f2ca391191f9df18d05b101a80b7d49b): d[Vaccinated] mean -0.76 (se_mean 0.01),
#: sd 0.22; tau mean 0.68 (se_mean 0.01), median 0.64, 95% 0.39-1.16.
MULTINMA_BCG = {"d_mean": -0.76, "d_sd": 0.22, "d_mcse": 0.01, "tau_mean": 0.68,
                "tau_median": 0.64, "tau_mcse": 0.01}


@pytest.mark.slow
def test_bcg_network_matches_multinma(tmp_path: Path) -> None:
    """The same arm-based RE model and priors as multinma's BCG example.

    Tolerance: 4 combined Monte Carlo standard errors (multinma's printed se_mean and
    ours) plus half a unit of the printed rounding (0.005).
    """
    import csv

    import arviz as az
    from trialmeta.analysis.io.posterior_store import as_arviz

    source = Path(__file__).parents[1] / "data" / "bcg_records.csv"
    with source.open() as fh:
        rows = [dict(r, time_h="24", doses_given="1") for r in csv.DictReader(fh)]
    # the trials' whole follow-up stands at one nominal time: the model has no time
    path = write_csv(tmp_path / "bcg.csv", rows, list(rows[0]))
    data = select_network(read_records(path), "response", "OR", TimeWindow.around(24.0),
                          Filters(), reference="none")
    assert data.nodes == ["none", "BCG"] and len(data.studies) == 13
    priors = NetworkPriors(100.0, 100.0, HeterogeneityPrior("half-normal", 5.0, 0.0,
                                                            "half-normal(5) on tau"))
    fit = Network(priors).fit(data, SamplerSettings(draws=1000, tune=1000, chains=4,
                                                    seed=20190101))
    d, tau = flat(fit.idata, "d")[:, data.nodes.index("BCG")], flat(fit.idata, "tau")
    post = as_arviz(fit.idata).posterior
    mcse_d = float(az.mcse(post[["d"]], method="mean")["d"][data.nodes.index("BCG")])
    mcse_tau = float(az.mcse(post[["tau"]], method="mean")["tau"])
    ref = MULTINMA_BCG
    tol_d = 4 * np.hypot(ref["d_mcse"], mcse_d) + 0.005
    tol_tau = 4 * np.hypot(ref["tau_mcse"], mcse_tau) + 0.005
    assert abs(d.mean() - ref["d_mean"]) < tol_d, (d.mean(), tol_d)
    assert abs(d.std() - ref["d_sd"]) < tol_d, (d.std(), tol_d)
    assert abs(tau.mean() - ref["tau_mean"]) < tol_tau, (tau.mean(), tol_tau)
    assert abs(np.median(tau) - ref["tau_median"]) < tol_tau, (np.median(tau), tol_tau)
    print(f"BCG: d {d.mean():.3f} sd {d.std():.3f} (tol {tol_d:.3f}); tau mean "
          f"{tau.mean():.3f} median {np.median(tau):.3f} (tol {tol_tau:.3f})")


LOOP = {"S1": [("A", 5, 40), ("B", 10, 40)],
        "S2": [("A", 6, 40), ("C", 12, 40), ("B", 9, 38)],
        "S3": [("B", 11, 40), ("C", 13, 40)],
        "S4": [("C", 8, 30), ("D", 14, 31)]}


@pytest.mark.parametrize("prior", ["half-normal:0.5", "turner2015"])
@pytest.mark.parametrize("variant", ["consistency", "ume", "split"])
def test_network_kernel_is_the_pymc_model(tmp_path: Path, variant: str, prior: str) -> None:
    from trialmeta.analysis.models.network import split_data
    from trialmeta.analysis.stats.priors import heterogeneity_prior

    from tests.sampling.test_precompiled import _check_against_pymc

    data = _network(tmp_path, LOOP)
    priors = default_network_priors("OR", heterogeneity_prior(prior))
    if variant == "split":
        data = split_data(data, ("B", "C"))
    model = Network(priors, ume=variant == "ume",
                    split=("B", "C") if variant == "split" else None)
    _check_against_pymc(model, data, points=4)


def test_network_kernel_is_the_pymc_model_on_means(tmp_path: Path) -> None:
    from tests.sampling.test_precompiled import _check_against_pymc

    rows = [dict(study=s, arm=t, treatment=t, control="false", design="parallel",
                 time_h="24", doses_given="1", n="30", mean=str(m), sd="8", scale="MADRS",
                 mean_type="change", source=f"doi:10.0/{s}", evidence="primary")
            for s, t, m in [("S1", "A", -5), ("S1", "B", -9), ("S2", "A", -6),
                            ("S2", "C", -11), ("S2", "B", -8), ("S3", "B", -10),
                            ("S3", "C", -12)]]
    path = write_csv(tmp_path / "md.csv", rows, HEADER)
    data = select_network(read_records(path), "change", "MD", TimeWindow.around(24.0),
                          Filters(), reference="A")
    _check_against_pymc(Network(default_network_priors("MD")), data, points=4)


@pytest.mark.slow
def test_precompiled_and_pymc_network_posteriors_agree(tmp_path: Path) -> None:
    """Same model, two samplers: d and tau agree within 4 combined Monte Carlo SEs."""
    import arviz as az

    data = _network(tmp_path, LOOP)
    settings = SamplerSettings(draws=1000, tune=1000, chains=2, seed=11)
    fits = [Network().fit(data, settings),
            Network().fit(data, replace(settings, sampler="nutpie-pytensor"))]
    for name in ("d_free", "tau"):
        means, ses = [], []
        for f in fits:
            idata = f.idata.to_arviz() if hasattr(f.idata, "to_arviz") else f.idata
            means.append(flat(idata, name).mean(axis=0))
            ses.append(np.asarray(az.mcse(idata, var_names=[name])[name]))
        assert np.all(np.abs(means[0] - means[1]) < 4 * np.hypot(ses[0], ses[1])), name


#: NICE TSD4's random-effects results for the smoking-cessation network (Hasselblad 1998;
#: 24 trials, 4 treatments), as multinma pins them in vignettes/example_smoking.Rmd
#: (dmphillippo/multinma, commit 5b78401acbcd9c43da40b6098791cd8f3fcd704d, chunk
#: smoking_tests: tsd_re and the tau checks); priors N(0, 100^2) on d and mu, half-N(5^2)
#: on tau. Pairs are (first, second): the log OR of the second vs the first.
TSD4_SMOKING = {
    ("no_intervention", "self_help"): (0.49, 0.40),
    ("no_intervention", "individual_counselling"): (0.84, 0.24),
    ("no_intervention", "group_counselling"): (1.10, 0.44),
    ("self_help", "individual_counselling"): (0.35, 0.41),
    ("self_help", "group_counselling"): (0.61, 0.49),
    ("individual_counselling", "group_counselling"): (0.26, 0.41),
}
TSD4_TAU = {"median": 0.82, "sd": 0.19}


@pytest.mark.slow
def test_smoking_network_matches_tsd4_and_multinma(tmp_path: Path) -> None:
    """Every pairwise log OR (mean, sd) and tau (median, sd) of the RE model.

    Tolerance: 4 combined Monte Carlo SEs plus half a unit of the printed rounding
    (0.005). The reference's own Monte Carlo error is not printed: it is taken as that of
    2,000 effective draws (mean: sd/sqrt(2000); sd: sd/sqrt(4000)), no better than
    multinma's own default run, which its test holds to these numbers.
    """
    import csv

    import arviz as az
    from trialmeta.analysis.io.posterior_store import as_arviz

    source = Path(__file__).parents[1] / "data" / "smoking_records.csv"
    with source.open() as fh:
        rows = [dict(r, time_h="24", doses_given="1") for r in csv.DictReader(fh)]
    path = write_csv(tmp_path / "smoking.csv", rows, list(rows[0]))
    data = select_network(read_records(path), "response", "OR", TimeWindow.around(24.0),
                          Filters(), reference="no_intervention")
    assert len(data.studies) == 24 and len(data.nodes) == 4 and len(data.arms) == 50
    priors = NetworkPriors(100.0, 100.0, HeterogeneityPrior("half-normal", 5.0, 0.0,
                                                            "half-normal(5) on tau"))
    fit = Network(priors).fit(data, SamplerSettings(draws=2000, tune=1000, chains=4,
                                                    seed=20190101))
    assert fit.diagnostics.passed, fit.diagnostics.as_dict()
    d = flat(fit.idata, "d")
    post = as_arviz(fit.idata).posterior
    ess = az.ess(post[["d", "tau"]])
    for (a, b), (ref_mean, ref_sd) in TSD4_SMOKING.items():
        i, j = data.nodes.index(a), data.nodes.index(b)
        x = d[:, j] - d[:, i]
        n_eff = float(min(ess["d"][i], ess["d"][j])) if i else float(ess["d"][j])
        tol_mean = 4 * np.hypot(x.std() / np.sqrt(n_eff), ref_sd / np.sqrt(2000)) + 0.005
        tol_sd = 4 * np.hypot(x.std() / np.sqrt(2 * n_eff), ref_sd / np.sqrt(4000)) + 0.005
        assert abs(x.mean() - ref_mean) < tol_mean, (a, b, x.mean(), tol_mean)
        assert abs(x.std() - ref_sd) < tol_sd, (a, b, x.std(), tol_sd)
    tau = flat(fit.idata, "tau")
    mcse_median = float(az.mcse(post[["tau"]], method="median")["tau"])
    tol_med = 4 * np.hypot(mcse_median, 1.25 * TSD4_TAU["sd"] / np.sqrt(2000)) + 0.005
    tol_sd = 4 * np.hypot(tau.std() / np.sqrt(2 * float(ess["tau"])),
                          TSD4_TAU["sd"] / np.sqrt(4000)) + 0.005
    assert abs(np.median(tau) - TSD4_TAU["median"]) < tol_med, (np.median(tau), tol_med)
    assert abs(tau.std() - TSD4_TAU["sd"]) < tol_sd, (tau.std(), tol_sd)


def test_informing_studies_skip_dead_ends_and_fragile_support_finds_the_cut(
        tmp_path: Path) -> None:
    from trialmeta.analysis.models.network import fragile_support, informing_studies

    data = _network(tmp_path, {"S1": [("A", 5, 40), ("B", 10, 40)],
                               "S2": [("B", 6, 40), ("C", 12, 40)],
                               "S3": [("B", 11, 40), ("C", 13, 40)],
                               "S4": [("C", 8, 30), ("D", 14, 31)],
                               "S5": [("C", 8, 30), ("E", 14, 31)]})
    assert informing_studies(data, "A", "D") == ["S1", "S2", "S3", "S4"]  # not S5 (E)
    assert informing_studies(data, "B", "C") == ["S2", "S3"]
    assert fragile_support(data, "A", "D", 2) == ["S1"]  # S1 alone links A
    assert fragile_support(data, "B", "C", 2) is None  # two trials
    assert fragile_support(data, "B", "C", 3) == ["S2", "S3"]


def test_network_sucra_draws_average_to_the_rank_summary() -> None:
    from trialmeta.analysis.families.network import network_quantity

    rng = np.random.default_rng(3)
    d = np.column_stack([np.zeros(4000), rng.normal([0.5, 0.2, -0.1], 0.4, (4000, 3))])
    nodes = ["A", "B", "C", "D"]
    _, sucra = rank_summary(d, higher_is_better=True)
    for j, n in enumerate(nodes):
        draws = network_quantity(d, np.ones(4000), nodes, f"sucra:{n}", True)
        assert abs(draws.mean() - sucra[j]) < 1e-12
    x = network_quantity(d, np.ones(4000), nodes, "effect:B:C", True)
    np.testing.assert_allclose(x, d[:, 1] - d[:, 2])
    np.testing.assert_allclose(network_quantity(d, np.ones(4000), nodes, "effect:C", True),
                               d[:, 2])


NETWORK_CLAIMS = """version: 1
defaults: {{support: 0.8, contradict: 0.2, min_studies: 2}}
claims:
  - id: N-robust
    quote: B beats A
    model: network
    outcome: response
    time_h: 24
    reference: A
    quantity: "effect:B:A"
    region: [0, .inf]
  - id: N-fragile
    quote: D beats A
    model: network
    outcome: response
    time_h: 24
    reference: A
    quantity: "effect:D"
    region: [0, .inf]
  - id: N-missing
    quote: Z beats A
    model: network
    outcome: response
    time_h: 24
    reference: A
    quantity: "effect:Z:A"
    region: [0, .inf]
{extra}"""


def test_network_claims_are_judged_from_evidence_and_refused_on_one_trial(
        tmp_path: Path) -> None:
    """Three claims on one network fit: a comparison with several trials is judged; one
    resting on a single trial, or naming a node the network lacks, is insufficient data."""
    from trialmeta.analysis.evaluate.claims import load_claims
    from trialmeta.analysis.evaluate.evaluation import evaluate

    trials = {f"S{i}": [("A", 10, 80), ("B", 30 + i, 80)] for i in range(1, 5)}
    trials["S5"] = [("B", 30, 80), ("D", 45, 80)]
    _network(tmp_path, trials)
    path = tmp_path / "claims.yaml"
    path.write_text(NETWORK_CLAIMS.format(extra=""))
    ev = evaluate(read_records(tmp_path / "net.csv"), load_claims(path),
                  SamplerSettings(draws=500, tune=500, chains=2, seed=5), documents=True)
    by = {r.claim.id: r for r in ev.results}
    assert len(ev.runs) == 1  # one fit behind the three claims
    assert by["N-robust"].verdict == "supported" and by["N-robust"].basis == "evidence"
    assert by["N-robust"].evidence.p_prior == pytest.approx(0.5, abs=0.03)
    assert by["N-fragile"].verdict == "insufficient data"
    assert by["N-fragile"].basis == "unidentified" and "S5 alone" in by["N-fragile"].reason
    assert by["N-fragile"].estimate is not None  # the estimate is still shown
    assert by["N-missing"].verdict == "insufficient data"
    assert "not a node" in by["N-missing"].reason
    doc = next(iter(ev.runs.values())).doc
    assert doc["model"] == "network" and doc["reference"] == "A"


@pytest.mark.parametrize(("extra", "message"), [
    ("    node: dose\n", "field 'node': use one of"),
    ("    inert: placebo\n", "field 'inert': must be a list of two or more"),
    ("    quantity: 'effect:A:A'\n", "field 'quantity'"),
])
def test_network_claim_fields_are_checked(tmp_path: Path, extra: str, message: str) -> None:
    from trialmeta.analysis.evaluate.claims import load_claims

    text = NETWORK_CLAIMS.format(extra="").replace(
        '    quantity: "effect:B:A"\n', extra if "quantity" in extra else
        '    quantity: "effect:B:A"\n' + extra)
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_claims(path)


def test_other_families_refuse_network_fields(tmp_path: Path) -> None:
    from trialmeta.analysis.evaluate.claims import load_claims

    path = tmp_path / "claims.yaml"
    path.write_text("""version: 1
claims:
  - id: X
    quote: q
    model: pooled-rate
    outcome: response
    time_h: 24
    quantity: pooled_rate
    region: [0, 1]
    reference: placebo
""")
    with pytest.raises(SpecError, match="only network claims take a reference"):
        load_claims(path)


def _with_contrast_rows(tmp_path: Path) -> Path:
    """Four arm-level A-B trials and two that report only log OR (SE) of B vs A; one of
    them (S5) three-armed with a C arm, so its contrasts share A's variance."""
    header = [*HEADER, "vs", "effect_outcome", "effect_measure", "effect", "effect_se"]
    rows = [_row(s, t, e, n, ctl=t == "A") for s, arms in {
        f"S{i}": [("A", e0, 40), ("B", e1, 40)]
        for i, (e0, e1) in enumerate([(8, 15), (5, 14), (10, 12), (7, 20)])}.items()
        for t, e, n in arms]
    for study, arms in {"S4": [("B", 0.9, 0.45)], "S5": [("B", 0.6, 0.4), ("C", 1.1, 0.42)]
                        }.items():
        rows.append(dict(study=study, arm="A", treatment="A", control="true",
                         design="parallel", time_h="24", doses_given="1", n="40",
                         scale="MADRS", source=f"doi:10.0/{study}", evidence="primary"))
        for t, y, se in arms:
            rows.append(dict(study=study, arm=t, treatment=t, control="false",
                             design="parallel", time_h="24", doses_given="1", n="40",
                             scale="MADRS", vs="A", effect_outcome="response",
                             effect_measure="logOR", effect=str(y), effect_se=str(se),
                             source=f"doi:10.0/{study}", evidence="primary"))
    return write_csv(tmp_path / "mixed.csv", rows, header)


def test_contrast_level_studies_join_the_network(tmp_path: Path) -> None:
    from trialmeta.analysis.models.network import splittable

    data = select_network(read_records(_with_contrast_rows(tmp_path)), "response", "OR",
                          TimeWindow.around(24.0), Filters(), reference="A")
    assert data.studies == ["S0", "S1", "S2", "S3"] and data.contrast_studies == ["S4", "S5"]
    assert data.nodes == ["A", "B", "C"]
    c = data.contrasts
    assert list(c["node"]) == ["B", "B", "C"] and set(c["base"]) == {"A"}
    s5 = c[c["study"] == "S5"]
    assert (s5["shared_var"] > 0).all() and (s5["shared_var"] <= s5["vi"]).all()
    assert c.loc[c["study"] == "S4", "shared_var"].item() == 0.0
    edges = {(e["from"], e["to"]): e["trials"] for e in data.edges()}
    assert edges == {("A", "B"): 6, ("A", "C"): 1, ("B", "C"): 1}
    # S5's B and C contrasts against A, and S0-S3's A-B: the loop A-B-C exists only
    # through S5, so no pair has indirect evidence and UME is the consistency model
    assert not has_loops(data) and splittable(data) == []
    model = Network().build(data)  # the reported contrasts enter as normal terms
    assert model["y_reported"].eval().shape == (3,)
    for variant in (Network(ume=True), Network(split=("A", "B"))):
        assert variant.build(data)["y_reported"].eval().shape == (3,)


@pytest.mark.slow
def test_node_split_and_ume_take_contrast_level_studies(tmp_path: Path) -> None:
    """The inconsistent loop of the UME test, with the B-C trials reporting only their
    log OR (SE): node-splitting B-C and UME both find the inconsistency."""
    from trialmeta.analysis.models.network import inconsistency, node_split, split_data, splittable

    header = [*HEADER, "vs", "effect_outcome", "effect_measure", "effect", "effect_se"]
    rows = []
    for i in range(3):
        rows += [_row(f"AB{i}", "A", 100, 400, True), _row(f"AB{i}", "B", 175, 400),
                 _row(f"AC{i}", "A", 100, 400, True), _row(f"AC{i}", "C", 295, 400)]
        # B 175/400 vs C 60/400: log OR of C vs B, Woolf SE
        y = np.log(60 / 340) - np.log(175 / 225)
        se = np.sqrt(1 / 60 + 1 / 340 + 1 / 175 + 1 / 225)
        rows.append(dict(_row(f"BC{i}", "B", 175, 400), responders=""))
        rows.append(dict(_row(f"BC{i}", "C", 60, 400), responders="", vs="B",
                         effect_outcome="response", effect_measure="logOR",
                         effect=f"{y:.6f}", effect_se=f"{se:.6f}"))
    data = select_network(read_records(write_csv(tmp_path / "bc.csv", rows, header)),
                          "response", "OR", TimeWindow.around(24.0), Filters(),
                          reference="A")
    assert data.contrast_studies == ["BC0", "BC1", "BC2"]
    assert has_loops(data) and ("B", "C") in splittable(data)
    settings = SamplerSettings(draws=1000, tune=1000, chains=4, seed=6)
    priors = default_network_priors("OR")
    fit = Network(priors, split=("B", "C")).fit(split_data(data, ("B", "C")), settings)
    assert node_split(fit)["p_value"] < 0.01
    fits = [Network(priors, ume=u).fit(data, settings) for u in (False, True)]
    assert inconsistency(*fits)["inconsistency_flagged"]


@pytest.mark.slow
def test_contrast_rows_enter_the_network_as_in_fit_contrast(tmp_path: Path) -> None:
    """With nodes A and B only, the network with contrast-level studies is fit contrast's
    shared-parameter model: d within 4 combined Monte Carlo SEs."""
    import arviz as az
    from trialmeta.analysis.io.posterior_store import as_arviz
    from trialmeta.analysis.models.contrast import Contrast
    from trialmeta.analysis.select.contrasts import select_contrasts

    records = read_records(_with_contrast_rows(tmp_path))
    only_ab = Filters(treatment=("A", "B"))
    data = select_network(records, "response", "OR", TimeWindow.around(24.0), only_ab,
                          reference="A")
    assert data.contrast_studies == ["S4", "S5"]
    settings = SamplerSettings(draws=2000, tune=1000, chains=4, seed=3)
    net = Network(default_network_priors("OR")).fit(data, settings)
    con = Contrast().fit(select_contrasts(records, "response", "OR", TimeWindow.around(24.0),
                                          only_ab), settings)
    a, b = flat(net.idata, "d_free")[:, 0], flat(con.idata, "d")
    ea = float(az.mcse(as_arviz(net.idata).posterior["d_free"], method="mean")
               .to_array().values.ravel()[0])
    eb = float(az.mcse(as_arviz(con.idata).posterior["d"], method="mean").to_array().item())
    assert abs(a.mean() - b.mean()) < 4 * np.hypot(ea, eb), (a.mean(), b.mean())
    # Monte Carlo SE of an SD: about sd / sqrt(2 ESS)
    na = float(az.ess(as_arviz(net.idata).posterior["d_free"]).to_array().values.ravel()[0])
    nb = float(az.ess(as_arviz(con.idata).posterior["d"]).to_array().item())
    tol = 4 * np.hypot(a.std() / np.sqrt(2 * na), b.std() / np.sqrt(2 * nb))
    assert abs(a.std() - b.std()) < tol, (a.std(), b.std(), tol)
