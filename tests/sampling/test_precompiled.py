"""The precompiled (numba) pooled-rate and contrast models are the PyMC models.

Log density, gradient, stored quantities and pointwise log-likelihoods are compared with
PyMC's own at random points of the unconstrained space (the PyMC model is the reference:
it is the model the other samplers use); then posteriors from both samplers agree within
Monte Carlo error.
"""

from __future__ import annotations

import ctypes
from dataclasses import replace

import numpy as np
import pytest
from trialmeta.analysis.errors import SpecError
from trialmeta.analysis.io.posterior_store import as_arviz
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.models.contrast import Contrast, default_priors
from trialmeta.analysis.models.dose_response import DoseResponse
from trialmeta.analysis.models.pooled_rate import PooledRate
from trialmeta.analysis.models.time_course import TimeCourse
from trialmeta.analysis.sampling import kernels
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.contrasts import select_contrasts, select_time_course
from trialmeta.analysis.select.doses import select_dose_arms
from trialmeta.analysis.select.filters import Filters, TimeWindow, select_binary_arms
from trialmeta.analysis.stats.priors import heterogeneity_prior

from tests.models.test_pooled_rate import arms


def _pymc_point(model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Split a flat unconstrained vector into PyMC's value variables (same order)."""
    start = model.initial_point()
    out, i = {}, 0
    for rv in model.free_RVs:
        name = model.rvs_to_values[rv].name
        size = int(np.size(start[name]))
        out[name] = x[i:i + size].reshape(np.shape(start[name]))
        i += size
    assert i == x.size
    return out


def _kernel(family: str):
    from trialmeta.analysis.sampling.precompiled import _kernel as kernel

    return kernel(family, "logp"), kernel(family, "expand")


def _check_against_pymc(family, data, points: int = 5, seed: int = 1) -> None:
    model = family.build(data)
    pre = family.precompiled(data)
    logp_pm, dlogp_pm = model.compile_logp(), model.compile_dlogp()
    stored = [v.name for v in pre.variables if not v.loglik]
    by_name = {v.name: v for v in model.unobserved_value_vars}
    stored_fn = model.compile_fn([by_name[n] for n in stored], inputs=model.value_vars,
                                 point_fn=True)
    observed = [v.name for v in pre.variables if v.loglik]
    loglik_fn = model.compile_fn(
        model.logp(vars=[model[n] for n in observed], sum=False, jacobian=False),
        point_fn=True)
    logp_k, expand_k = _kernel(pre.family)
    sizes = [int(np.prod(pre.shape(v))) for v in pre.variables]
    rng = np.random.default_rng(seed)
    for _ in range(points):
        x = rng.normal(0.0, 1.0, pre.n_dim)
        point = _pymc_point(model, x)
        grad = np.zeros(pre.n_dim)
        value = logp_k(x, pre.buffer, grad)
        # PyTensor takes a prior scale such as 2.5 as a float32 constant and evaluates
        # log(2.5) in float32: up to ~6e-8 per prior term (the kernels use float64)
        np.testing.assert_allclose(value, logp_pm(point), rtol=1e-12, atol=1e-7 * pre.n_dim)
        np.testing.assert_allclose(grad, dlogp_pm(point), rtol=1e-9, atol=1e-9)
        out = np.full(sum(sizes), np.nan)
        expand_k(x, pre.buffer, out)
        parts = np.split(out, np.cumsum(sizes)[:-1])
        expected = stored_fn(point) + [np.ravel(v) for v in loglik_fn(point)]
        ordered = stored + observed
        # PyMC returns log-likelihood terms in the order of its observed variables
        assert [v.name for v in pre.variables if v.loglik] == observed
        for name, got, want in zip(ordered, parts, expected, strict=True):
            np.testing.assert_allclose(got, np.ravel(want), rtol=1e-9, atol=1e-12,
                                       err_msg=name)


@pytest.fixture(scope="module")
def records():
    return read_records(None)


def test_pooled_rate_kernel_is_the_pymc_model() -> None:
    data = arms([12, 30, 15, 2, 8, 0, 7], [20, 47, 42, 7, 29, 9, 7])
    _check_against_pymc(PooledRate(), data)


def test_pooled_rate_kernel_with_moderators(records) -> None:
    data = select_binary_arms(records, "response", TimeWindow.around(24.0), Filters())
    family = PooledRate(moderators=("population",))
    _check_against_pymc(family, family.prepare(data))


@pytest.mark.parametrize("prior", ["half-normal:0.5", "half-cauchy:0.3", "turner2015",
                                   "rhodes2015"])
def test_contrast_binary_kernel_is_the_pymc_model(records, prior: str) -> None:
    data = select_contrasts(records, "response", "OR", TimeWindow.around(24.0), Filters())
    assert data.contrasts.groupby("study").size().max() > 1  # multi-arm studies are in
    family = Contrast(default_priors("OR", heterogeneity_prior(prior)))
    _check_against_pymc(family, data)


@pytest.mark.parametrize("measure", ["MD", "SMD"])
def test_contrast_normal_kernel_is_the_pymc_model(records, measure: str) -> None:
    data = select_contrasts(records, "change", measure, TimeWindow.around(24.0),
                            Filters(scale=("MADRS",), mean_type=("change",)))
    assert data.contrasts.groupby("study").size().max() > 1  # shared controls are in
    _check_against_pymc(Contrast(), data)
    _check_against_pymc(Contrast(default_priors(measure, heterogeneity_prior("rhodes2015"))),
                        data, points=2)


def test_contrast_kernel_with_a_moderator(records) -> None:
    data = select_contrasts(records, "response", "RR", TimeWindow.around(24.0), Filters())
    _check_against_pymc(Contrast(moderators=("route",)), data, points=3)


DEPRESSION_SCALES = ("MADRS", "HDRS", "HDRS17", "HDRS21", "HDRS25", "HAMD6", "QIDS_SR16")


@pytest.mark.parametrize("form", ["linear", "loglinear", "emax", "piecewise"])
def test_dose_response_kernel_is_the_pymc_model(records, form: str) -> None:
    binary = select_dose_arms(records, "response", TimeWindow.around(24.0),
                              Filters(treatment=("esketamine",), route=("intranasal",),
                                      scale=DEPRESSION_SCALES))
    _check_against_pymc(DoseResponse(form), binary)
    change = select_dose_arms(records, "change", TimeWindow.around(24.0),
                              Filters(treatment=("esketamine",), route=("intranasal",),
                                      scale=("MADRS",)))
    assert set(change.contrasts["study"]) == {"Canuso2018", "Fu2020"}  # reported MDs
    with pytest.raises(SpecError, match="arm-level data only"):
        DoseResponse(form).precompiled(change)
    arm_level = replace(change, contrasts=change.contrasts.iloc[0:0])
    _check_against_pymc(DoseResponse(form), arm_level, points=3)


def test_dose_response_kernel_with_a_moderator(records) -> None:
    data = select_dose_arms(records, "response", TimeWindow.around(24.0),
                            Filters(treatment=("esketamine",), route=("intranasal",),
                                    scale=DEPRESSION_SCALES))
    family = DoseResponse("emax", moderators=("population",))
    assert family.study_design(data).x.shape[1] > 0
    _check_against_pymc(family, data, points=3)


@pytest.mark.parametrize("form", ["bateman", "piecewise"])
@pytest.mark.parametrize("outcome,measure", [("response", "OR"), ("change", "SMD")])
def test_time_course_kernel_is_the_pymc_model(records, form: str, outcome: str,
                                             measure: str) -> None:
    data = select_time_course(records, outcome, measure,
                              Filters(treatment=("ketamine", "esketamine"),
                                      scale=DEPRESSION_SCALES, mean_type=("endpoint",)))
    assert data.contrasts["time_h"].nunique() > 3
    _check_against_pymc(TimeCourse(form), data)


@pytest.mark.parametrize("form,timing", [("bateman", "shared"), ("piecewise", "shared"),
                                         ("bateman", "by-route")])
def test_binomial_time_course_kernel_is_the_pymc_model(records, form: str,
                                                      timing: str) -> None:
    data = select_time_course(records, "response", "OR",
                              Filters(treatment=("ketamine", "esketamine"),
                                      scale=DEPRESSION_SCALES))
    family = TimeCourse(form, likelihood="binomial", timing=timing)
    assert family.precompiled(data).n_dim > family.precompiled(data).buffer[kernels.H_BLOCKS]
    _check_against_pymc(family, data)


def test_c_entry_point_reads_the_buffer_and_flags_non_finite_values() -> None:
    """The C function nutpie calls: same value as the kernel; status 4 on overflow."""
    pre = PooledRate().precompiled(arms([3, 5], [10, 12]))
    fn = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.c_void_p, ctypes.c_void_p)(
        kernels.pooled_rate_logp_c.address)

    def call(x: np.ndarray) -> tuple[int, float, np.ndarray]:
        grad, out = np.zeros(pre.n_dim), np.zeros(1)
        status = fn(pre.n_dim, x.ctypes.data, grad.ctypes.data, out.ctypes.data,
                    pre.buffer.ctypes.data)
        return status, float(out[0]), grad

    x = np.array([0.2, -0.5, 0.3, -1.0])
    status, value, grad = call(x)
    want_grad = np.zeros(4)
    assert status == 0
    assert value == kernels.pooled_rate_logp(x, pre.buffer, want_grad)
    np.testing.assert_array_equal(grad, want_grad)
    status, _, _ = call(np.array([0.2, 800.0, 0.3, -1.0]))  # tau = e^800 overflows
    assert status != 0


def _summary(fit, names: list[str]) -> dict[str, tuple[float, float]]:
    import arviz as az

    mcse = az.mcse(as_arviz(fit.idata).posterior[names], method="mean")
    return {n: (float(flat(fit.idata, n).mean()), float(mcse[n])) for n in names}


def _data(records, case: str):
    if case in ("OR", "MD"):
        return select_contrasts(records, "response" if case == "OR" else "change", case,
                                TimeWindow.around(24.0),
                                Filters(scale=("MADRS",) if case == "MD" else (),
                                        mean_type=("change",) if case == "MD" else ()))
    return select_time_course(records, "response", "OR",
                              Filters(treatment=("ketamine", "esketamine"),
                                      scale=DEPRESSION_SCALES))


@pytest.mark.parametrize("case,names", [("OR", ["d", "tau"]), ("MD", ["d", "tau"]),
                                        ("bateman", ["peak", "t_rise", "t_decay", "tau"])])
def test_precompiled_and_pytensor_posteriors_agree(records, case: str,
                                                   names: list[str]) -> None:
    """Posterior means within 4 combined Monte Carlo standard errors; same layout."""
    data = _data(records, case)
    family = TimeCourse("bateman") if case == "bateman" else Contrast()
    fits = [family.fit(data, SamplerSettings(draws=500, tune=400, chains=2, seed=5,
                                             sampler=s))
            for s in ("nutpie", "nutpie-pytensor")]
    fast, slow = (_summary(f, names) for f in fits)
    for name in names:
        (m1, e1), (m2, e2) = fast[name], slow[name]
        assert abs(m1 - m2) < 4 * np.hypot(e1, e2), (name, fast, slow)
    # the same variables, dimensions and coordinates as the PyMC model stores
    a, b = (as_arviz(f.idata) for f in fits)  # the precompiled one, converted
    for group in ("posterior", "log_likelihood", "observed_data"):
        assert set(a[group].data_vars) == set(b[group].data_vars), group
        for v in a[group].data_vars:
            assert a[group][v].dims == b[group][v].dims, (group, v)
            for d in a[group][v].dims:
                if d not in ("chain", "draw"):
                    assert list(a[group][v][d].values) == list(b[group][v][d].values)
        for v in b.observed_data.data_vars:
            np.testing.assert_array_equal(a.observed_data[v], b.observed_data[v])


def test_piecewise_dose_response_posteriors_agree(records) -> None:
    """Dirichlet weights through the simplex transform: both samplers, same posterior."""
    import arviz as az

    data = select_dose_arms(records, "response", TimeWindow.around(24.0),
                            Filters(treatment=("esketamine",), route=("intranasal",),
                                    scale=DEPRESSION_SCALES))
    assert DoseResponse("piecewise")._precompilable(data)
    fits = [DoseResponse("piecewise").fit(data, SamplerSettings(draws=500, tune=400, chains=2,
                                                                seed=5, sampler=s))
            for s in ("nutpie", "nutpie-pytensor")]
    fast, slow = fits
    assert fast.pymc_model is None and slow.pymc_model is not None  # numba vs PyTensor
    for name in ("theta", "tau", "w"):
        a, b = flat(fast.idata, name), flat(slow.idata, name)
        e1, e2 = (np.ravel(az.mcse(as_arviz(f.idata).posterior[[name]], method="mean")[name])
                  for f in fits)
        gap = np.abs(np.ravel(a.mean(axis=0)) - np.ravel(b.mean(axis=0)))
        assert np.all(gap < 4 * np.hypot(e1, e2)), (name, gap, e1, e2)
    assert flat(fast.idata, "w").shape[1] == len(data.doses)
    np.testing.assert_allclose(flat(fast.idata, "w").sum(axis=1), 1.0, rtol=1e-12)
