"""The time-course likelihood: no control split across time, the covariance a statistician
would write down by hand, and a positive amplitude multiplier (statistical review, defect 2).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.models.time_course import TimeCourse, bateman, contrast_effects_by_time
from trialmeta.analysis.sampling import kernels_curves
from trialmeta.analysis.select.contrasts import ContrastData, select_time_course
from trialmeta.analysis.select.filters import Filters
from trialmeta.analysis.stats.effects import log_odds_ratio


def test_a_single_arm_study_keeps_its_whole_variance_at_every_time() -> None:
    """Lii 2023 (one ketamine arm, six times): each variance is Woolf's from its own 2x2."""
    data = select_time_course(read_records(None), "response", "OR",
                              Filters(treatment=("ketamine",), scale=("MADRS",)))
    c = data.contrasts
    lii = (c["study"] == "Lii2023").to_numpy()
    assert lii.sum() == 6
    _, v = contrast_effects_by_time(data)
    woolf = log_odds_ratio(c["a"], c["b"], c["c"], c["d"]).vi
    np.testing.assert_allclose(v[lii], np.asarray(woolf)[lii], rtol=1e-12)


def _two_studies() -> ContrastData:
    """Study A: arms k1, k2 against one control at 24 h and 72 h; study B: one contrast."""
    rows = [("A", "k1", 24.0, 9, 11, 4, 16), ("A", "k2", 24.0, 12, 8, 4, 16),
            ("A", "k1", 72.0, 7, 13, 5, 15), ("A", "k2", 72.0, 10, 10, 5, 15),
            ("B", "k", 24.0, 6, 9, 3, 12)]
    t = pd.DataFrame(rows, columns=["study", "arm", "time_h", "a", "b", "c", "d"])
    t = t.assign(control="ctl", comparator="saline", design="parallel")
    return ContrastData("response", "OR", None, pd.DataFrame(), t)


def _hand_covariance(t: pd.DataFrame, rho: float) -> np.ndarray:
    """Σ written out entry by entry from Woolf's variance of each arm's log odds."""
    va = 1 / t["a"] + 1 / t["b"]
    vc = 1 / t["c"] + 1 / t["d"]
    n = len(t)
    cov = np.zeros((n, n))
    for i, j in itertools.product(range(n), range(n)):
        ri, rj = t.iloc[i], t.iloc[j]
        if ri.study != rj.study:
            continue
        same_time = ri.time_h == rj.time_h
        r = 1.0 if same_time else rho
        control = r * np.sqrt(vc[i] * vc[j])
        active = r * np.sqrt(va[i] * va[j]) if ri.arm == rj.arm else 0.0
        cov[i, j] = control + active
    return cov


def test_the_kernel_is_the_joint_normal_with_the_hand_written_covariance() -> None:
    """Sum of the stored pointwise log-likelihoods = MVN log density; amp = exp(τz − τ²/2)."""
    data = _two_studies()
    rho = 0.4
    model = TimeCourse("bateman", rho=rho)
    pre = model.precompiled(data)
    t = data.contrasts
    y = np.log(t["a"] * t["d"] / (t["b"] * t["c"])).to_numpy()
    cov = _hand_covariance(t, rho)
    sizes = [int(np.prod(pre.shape(v))) for v in pre.variables]
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.normal(0.0, 0.7, pre.n_dim)
        out = np.zeros(sum(sizes))
        kernels_curves.time_course_expand(x, pre.buffer, out)
        loglik = out[-len(t):]
        tau, z = np.exp(x[0]), x[1:3]
        peak, t_r = x[3], np.exp(x[4])
        t_d = t_r + np.exp(x[5])
        f = bateman(t["time_h"].to_numpy(), np.array([peak]), np.array([t_r]),
                    np.array([t_d]))[0]
        amp = np.exp(tau * z - tau**2 / 2)[(t["study"] == "B").to_numpy().astype(int)]
        want = stats.multivariate_normal(amp * f, cov).logpdf(y)
        np.testing.assert_allclose(loglik.sum(), want, rtol=1e-10)


def test_independent_contrasts_reduce_to_one_normal_term_each() -> None:
    """rho = 0 and one arm per study: each pointwise term is Normal(y | mean, sqrt(v))."""
    data = _two_studies()
    data.contrasts = data.contrasts[data.contrasts["arm"] != "k2"].reset_index(drop=True)
    pre = TimeCourse("piecewise", rho=0.0).precompiled(data)
    t = data.contrasts
    eff = log_odds_ratio(t["a"], t["b"], t["c"], t["d"])
    x = np.zeros(pre.n_dim)  # tau = 1, z = 0, every knot 0: mean 0
    out = np.zeros(sum(int(np.prod(pre.shape(v))) for v in pre.variables))
    kernels_curves.time_course_expand(x, pre.buffer, out)
    np.testing.assert_allclose(out[-len(t):], stats.norm(0, np.sqrt(eff.vi)).logpdf(eff.yi),
                               rtol=1e-12)


def test_timing_by_route_is_the_pymc_model_and_summarised_per_group() -> None:
    """--timing by-route: T_r and T_d per route, in the kernel and the PyMC model alike."""
    from tests.sampling.test_precompiled import DEPRESSION_SCALES, _check_against_pymc

    data = select_time_course(read_records(None), "response", "OR",
                              Filters(treatment=("ketamine", "esketamine"),
                                      scale=DEPRESSION_SCALES))
    model = TimeCourse("bateman", timing="by-route")
    groups, index = model.timing_groups(data)
    assert groups == ["intranasal", "iv"] and set(index) == {0, 1}
    _check_against_pymc(model, data, points=3)
    assert TimeCourse("bateman", timing="shared").timing_groups(data) is None


def test_timing_groups_need_the_bateman_form() -> None:
    import pytest
    from trialmeta.analysis.errors import SpecError

    with pytest.raises(SpecError, match="needs the bateman form"):
        TimeCourse("piecewise", timing="by-treatment")
    with pytest.raises(SpecError, match="unknown timing"):
        TimeCourse("bateman", timing="by-dose")


def test_fit_time_course_by_route_reports_each_route() -> None:
    import json

    from trialmeta.cli.app import app
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, [
        "fit", "time-course", "--timing", "by-route", "--treatment", "ketamine",
        "--treatment", "esketamine", "--route", "iv", "--route", "intranasal",
        "--draws", "200", "--tune", "200", "--chains", "2", "--allow-unconverged", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["timing"] == "by-route" and set(doc["by_group"]) == {"intranasal", "iv"}
    for g in doc["by_group"].values():
        assert "time_to_peak_h" in g["estimates"] or "time_to_peak_h_missing" in \
            g["probabilities"]


def _repeated(times: int, rho: float) -> ContrastData:
    """One active arm and one control, the same counts at ``times`` times; study B once."""
    rows = [("A", "k", 24.0 * (j + 1), 9, 11, 4, 16) for j in range(times)]
    rows.append(("B", "k", 24.0, 6, 9, 3, 12))
    t = pd.DataFrame(rows, columns=["study", "arm", "time_h", "a", "b", "c", "d"])
    t = t.assign(control="ctl", comparator="saline", design="parallel")
    return ContrastData("response", "OR", None, pd.DataFrame(), t)


def test_binomial_weights_are_the_equicorrelation_design_effect() -> None:
    """m equal measurements correlated rho carry 1 / (1 + (m - 1) rho) of m independent ones."""
    from trialmeta.analysis.models.time_course import composite_weights

    for m, rho in ((3, 0.5), (4, 0.3), (1, 0.8)):
        w = composite_weights(_repeated(m, rho), rho)
        np.testing.assert_allclose(w[:m], 1 / (1 + (m - 1) * rho), rtol=1e-12)
        assert w[m] == 1.0  # study B: one time point
    np.testing.assert_allclose(composite_weights(_two_studies(), 0.0), 1.0, rtol=1e-12)


def test_binomial_terms_count_each_control_once_per_time_with_its_weight() -> None:
    """Stored terms: w * Binomial(y | n, expit(eta)), 5 active arms and 3 controls (not 5).

    eta is the symmetric form: each (study, time) block's arms centred on their mean.
    """
    from trialmeta.analysis.models.time_course import binomial_structure, composite_weights

    data = _two_studies()
    rho = 0.4
    pre = TimeCourse("bateman", rho=rho, likelihood="binomial").precompiled(data)
    lik = binomial_structure(data, rho)
    assert lik.blocks == ["A|24 h|ctl", "A|72 h|ctl", "B|24 h|ctl"] and lik.terms == 8
    t = data.contrasts
    w = composite_weights(data, rho)
    assert w[0] < 1.0 and w[4] == 1.0
    sizes = [int(np.prod(pre.shape(v))) for v in pre.variables]
    x = np.random.default_rng(5).normal(0.0, 0.7, pre.n_dim)
    out = np.zeros(sum(sizes))
    kernels_curves.time_course_expand(x, pre.buffer, out)
    tau, z, alpha = np.exp(x[0]), x[1:3], x[-3:]
    t_r = np.exp(x[4])
    f = bateman(t["time_h"].to_numpy(), np.array([x[3]]), np.array([t_r]),
                np.array([t_r + np.exp(x[5])]))[0]
    amp = np.exp(tau * z - tau**2 / 2)[(t["study"] == "B").to_numpy().astype(int)]
    block = np.array([0, 0, 1, 1, 2])
    effect = amp * f
    # symmetric arms: each block's logits centred on its mean (two active arms and a control
    # in blocks 0 and 1, one active arm and a control in block 2)
    offset = np.array([effect[:2].sum() / 3, effect[2:4].sum() / 3, effect[4] / 2])
    active = stats.binom.logpmf(t["a"], t["a"] + t["b"],
                                1 / (1 + np.exp(-(alpha[block] + effect - offset[block]))))
    first = [0, 2, 4]
    control = stats.binom.logpmf(t["c"].to_numpy()[first], (t["c"] + t["d"]).to_numpy()[first],
                                 1 / (1 + np.exp(-(alpha - offset))))
    want = np.r_[w * active, w[first] * control]
    np.testing.assert_allclose(out[-8:], want, rtol=1e-10)
    np.testing.assert_allclose(out[-11:-8], alpha)


def test_binomial_needs_counts_on_the_log_odds_scale() -> None:
    from trialmeta.analysis.errors import SpecError

    data = _two_studies()
    with pytest.raises(SpecError, match="log-odds"):
        TimeCourse("bateman", likelihood="binomial").precompiled(
            ContrastData("response", "RR", None, pd.DataFrame(), data.contrasts))
    with pytest.raises(SpecError, match="unknown time-course likelihood"):
        TimeCourse("bateman", likelihood="poisson")


def _simulated_binomial(seed: int) -> tuple[ContrastData, dict[str, float]]:
    """12 studies, one arm and a control of 80 patients each at 2, 24, 72 and 168 h.

    Counts are drawn independently at each time (so rho = 0 is the true weight) from a
    Bateman curve with peak log OR 1.2, T_r 3 h, T_d 120 h, tau 0.2.
    """
    rng = np.random.default_rng(seed)
    truth = {"peak": 1.2, "t_rise": 3.0, "t_decay": 120.0, "tau": 0.2}
    times = np.array([2.0, 24.0, 72.0, 168.0])
    f = bateman(times, np.array([truth["peak"]]), np.array([truth["t_rise"]]),
                np.array([truth["t_decay"]]))[0]
    rows = []
    for s in range(12):
        amp = np.exp(truth["tau"] * rng.normal() - truth["tau"] ** 2 / 2)
        base = rng.normal(-1.0, 0.5)
        for t, ft in zip(times, f, strict=True):
            a = rng.binomial(80, 1 / (1 + np.exp(-(base + amp * ft))))
            c = rng.binomial(80, 1 / (1 + np.exp(-base)))
            rows.append((f"S{s}", "k", t, a, 80 - a, c, 80 - c))
    t = pd.DataFrame(rows, columns=["study", "arm", "time_h", "a", "b", "c", "d"])
    t = t.assign(control="ctl", comparator="saline", design="parallel")
    return ContrastData("response", "OR", None, pd.DataFrame(), t), truth


@pytest.mark.slow
def test_binomial_time_course_recovers_a_known_curve() -> None:
    """Simulated counts with known parameters: the truth lies inside the 99 % intervals."""
    from trialmeta.analysis.sampling.inference import flat
    from trialmeta.analysis.sampling.settings import SamplerSettings

    data, truth = _simulated_binomial(11)
    fit = TimeCourse("bateman", rho=0.0, likelihood="binomial").fit(
        data, SamplerSettings(draws=2000, tune=1000, chains=4, seed=3))
    assert fit.diagnostics.passed
    for name in ("peak", "t_rise", "t_decay"):
        lo, hi = np.quantile(flat(fit.idata, name), [0.005, 0.995])
        assert lo < truth[name] < hi, (name, lo, hi)
    eff = TimeCourse("bateman").effect(fit, np.array([24.0]))[:, 0]
    want = bateman(np.array([24.0]), np.array([truth["peak"]]), np.array([truth["t_rise"]]),
                   np.array([truth["t_decay"]]))[0, 0]
    assert abs(np.median(eff) - want) < 3 * np.std(eff)
