"""Property-based tests (Hypothesis, bounded examples): loader, effect sizes, estimators."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trialmeta.analysis.io.records import validate
from trialmeta.analysis.stats.effects import (
    log_odds_ratio,
    log_risk_ratio,
    mean_difference,
    risk_difference,
    standardized_mean_difference,
)
from trialmeta.analysis.stats.frequentist import meta_analysis

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

arm_counts = st.tuples(st.integers(1, 200), st.floats(0, 1)).map(
    lambda t: (t[0], int(round(t[0] * t[1]))))


@st.composite
def tables(draw):
    """Random valid record tables: 1-6 two-arm studies with counts and means."""
    k = draw(st.integers(1, 6))
    rows = []
    for i in range(k):
        for arm, ctl in (("act", "false"), ("ctl", "true")):
            n, events = draw(arm_counts)
            rows.append({
                "study": f"S{i}", "arm": arm, "treatment": "drug" if ctl == "false" else "pbo",
                "control": ctl, "design": "parallel", "time_h": str(draw(st.sampled_from(
                    [2, 24, 72]))), "n": str(n), "responders": str(events),
                "mean": repr(draw(st.floats(-30, 30))), "sd": repr(draw(st.floats(0.5, 20))),
                "mean_type": "change", "source": "x", "evidence": "primary"})
    return pd.DataFrame(rows, dtype=str)


@SETTINGS
@given(tables(), st.randoms())
def test_valid_tables_never_raise_and_row_order_does_not_matter(t, rnd) -> None:
    a = validate(t, "t.csv")
    shuffled = t.sample(frac=1.0, random_state=rnd.randint(0, 2**31 - 1)).reset_index(drop=True)
    b = validate(shuffled, "t.csv")
    key = ["study", "arm", "n", "responders"]
    pd.testing.assert_frame_equal(
        a.table[key].sort_values(["study", "arm"]).reset_index(drop=True),
        b.table[key].sort_values(["study", "arm"]).reset_index(drop=True))


@SETTINGS
@given(arm_counts, arm_counts)
def test_swapping_arms_flips_binary_effects(t, c) -> None:
    (n1, e1), (n2, e2) = t, c
    for fn in (log_odds_ratio, log_risk_ratio, risk_difference):
        ab = fn([e1], [n1 - e1], [e2], [n2 - e2])
        ba = fn([e2], [n2 - e2], [e1], [n1 - e1])
        assert np.allclose(ab.yi, -ba.yi) and np.allclose(ab.vi, ba.vi)


@SETTINGS
@given(st.floats(-50, 50), st.floats(0.5, 30), st.integers(3, 300), st.floats(-50, 50),
       st.floats(0.5, 30), st.integers(3, 300), st.floats(0.1, 100))
def test_scaling_scales_md_and_leaves_smd(m1, s1, n1, m2, s2, n2, c) -> None:
    md = mean_difference([m1], [s1], [n1], [m2], [s2], [n2])
    md_c = mean_difference([c * m1], [c * s1], [n1], [c * m2], [c * s2], [n2])
    assert np.allclose(md_c.yi, c * md.yi) and np.allclose(md_c.vi, c**2 * md.vi)
    g = standardized_mean_difference([m1], [s1], [n1], [m2], [s2], [n2])
    g_c = standardized_mean_difference([c * m1], [c * s1], [n1], [c * m2], [c * s2], [n2])
    assert np.allclose(g.yi, g_c.yi) and np.allclose(g.vi, g_c.vi)
    swapped = standardized_mean_difference([m2], [s2], [n2], [m1], [s1], [n1])
    assert np.allclose(g.yi, -swapped.yi)


effects = st.lists(st.tuples(st.floats(-3, 3), st.floats(0.01, 2)), min_size=2, max_size=12)


@SETTINGS
@given(effects, st.sampled_from(["FE", "DL", "REML", "ML", "PM"]), st.randoms())
def test_estimators_ignore_order_and_flip_with_sign(data, method, rnd) -> None:
    y = np.array([d[0] for d in data])
    v = np.array([d[1] for d in data])
    res = meta_analysis(y, v, method)
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    res_p = meta_analysis(y[perm], v[perm], method)
    # iterative estimators stop at a tolerance: agree to well below the printed digits
    assert abs(res.estimate - res_p.estimate) < 1e-6
    assert abs(res.tau2 - res_p.tau2) < 1e-6
    flipped = meta_analysis(-y, v, method)
    assert abs(res.estimate + flipped.estimate) < 1e-6
    assert abs(res.tau2 - flipped.tau2) < 1e-6
    assert res.ci_low <= res.estimate <= res.ci_high
    assert res.tau2 >= 0 and 0 <= res.I2 <= 100
