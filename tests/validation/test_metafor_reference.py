"""Every estimator against R metafor 3.8.1, pinned in tests/reference/metafor-reference.json.

The JSON was written by tests/reference/make_metafor_reference.R (each entry names the R
call). Agreement required: 1e-4 absolute (the issue's contract); in practice ~1e-9.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from trialmeta.analysis.stats.effects import (
    log_odds_ratio,
    log_risk_ratio,
    mean_difference,
    risk_difference,
    standardized_mean_difference,
)
from trialmeta.analysis.stats.frequentist import (
    egger_test,
    leave_one_out,
    mantel_haenszel,
    meta_analysis,
)

REF = json.loads((Path(__file__).parents[1] / "reference" / "metafor-reference.json").read_text())
TOL = 1e-4
BCG = pd.read_csv(Path(__file__).parents[1] / "reference" / "bcg.csv")
NORMAND = pd.DataFrame({  # metafor's dat.normand1999, as printed by R
    "n1i": [155, 31, 75, 18, 8, 57, 34, 110, 60], "m1i": [55, 27, 64, 66, 14, 19, 52, 21, 30],
    "sd1i": [47, 7, 17, 20, 8, 7, 45, 16, 27], "n2i": [156, 32, 71, 18, 13, 52, 33, 183, 52],
    "m2i": [75, 29, 119, 137, 18, 18, 41, 31, 23], "sd2i": [64, 4, 29, 48, 11, 4, 34, 27, 20],
})
BINARY = {"RR": log_risk_ratio, "OR": log_odds_ratio, "RD": risk_difference}
CASES = [(f"bcg_{m}", m) for m in BINARY] + [("normand_MD", "MD"), ("normand_SMD", "SMD"),
                                             ("zero_cells", "OR")]
FIT_KEYS = ["FE", "DL", "REML", "ML", "PM", "DL_HKSJ", "REML_HKSJ", "ML_HKSJ", "PM_HKSJ"]


def effects_for(case: str, measure: str):
    if case.startswith("bcg"):
        return BINARY[measure](BCG.tpos, BCG.tneg, BCG.cpos, BCG.cneg)
    if case.startswith("normand"):
        fn = mean_difference if measure == "MD" else standardized_mean_difference
        d = NORMAND
        return fn(d.m1i, d.sd1i, d.n1i, d.m2i, d.sd2i, d.n2i)
    z = pd.DataFrame(REF["zero_cells"]["data"])
    return log_odds_ratio(z.ai, z.bi, z.ci, z.di)


@pytest.mark.parametrize("case,measure", CASES)
def test_escalc(case: str, measure: str) -> None:
    eff = effects_for(case, measure)
    np.testing.assert_allclose(eff.yi, REF[case]["yi"], atol=1e-10)
    np.testing.assert_allclose(eff.vi, REF[case]["vi"], atol=1e-10)


@pytest.mark.parametrize("case,measure", CASES)
@pytest.mark.parametrize("key", FIT_KEYS)
def test_rma(case: str, measure: str, key: str) -> None:
    ref = REF[case]["fits"][key]
    method, _, knha = key.partition("_")
    eff = effects_for(case, measure)
    res = meta_analysis(eff.yi, eff.vi, method, hksj=bool(knha))
    pairs = {"estimate": res.estimate, "se": res.se, "ci_lb": res.ci_low, "ci_ub": res.ci_high,
             "tau2": res.tau2, "I2": res.I2, "H2": res.H2, "QE": res.Q, "QEp": res.Q_p,
             "pi_lb": res.pi_low, "pi_ub": res.pi_high}
    for name, ours in pairs.items():
        assert ours == pytest.approx(ref[name], abs=TOL), f"{key} {name}"
    assert res.k == ref["k"]


@pytest.mark.parametrize("measure", ["RR", "OR"])
def test_mantel_haenszel(measure: str) -> None:
    ref = REF[f"bcg_{measure}"]["MH"]
    mh = mantel_haenszel(BCG.tpos, BCG.tneg, BCG.cpos, BCG.cneg, measure)
    for name, ours in {"estimate": mh.estimate, "se": mh.se, "ci_lb": mh.ci_low,
                       "ci_ub": mh.ci_high}.items():
        assert ours == pytest.approx(ref[name], abs=TOL), name
    z = pd.DataFrame(REF["zero_cells"]["data"])
    zref = REF["zero_cells"][f"MH_{measure}"]
    zmh = mantel_haenszel(z.ai, z.bi, z.ci, z.di, measure)
    assert zmh.estimate == pytest.approx(zref["estimate"], abs=TOL)
    assert zmh.se == pytest.approx(zref["se"], abs=TOL)


def test_leave_one_out() -> None:
    ref = REF["bcg_RR"]["leave1out_REML"]
    eff = effects_for("bcg_RR", "RR")
    loo = leave_one_out(eff.yi, eff.vi, "REML")
    np.testing.assert_allclose([r.estimate for r in loo], ref["estimate"], atol=TOL)
    np.testing.assert_allclose([r.se for r in loo], ref["se"], atol=TOL)
    np.testing.assert_allclose([r.tau2 for r in loo], ref["tau2"], atol=TOL)


def test_egger() -> None:
    ref = REF["bcg_RR"]["egger_lm"]
    eff = effects_for("bcg_RR", "RR")
    e = egger_test(eff.yi, eff.vi)
    assert e.t == pytest.approx(ref["zval"], abs=TOL)
    assert e.p_value == pytest.approx(ref["pval"], abs=TOL)
    assert e.df == ref["dfs"]
    assert e.limit_estimate == pytest.approx(ref["limit_est"], abs=TOL)
