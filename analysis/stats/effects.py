"""Effect sizes with their sampling variances (pure functions, arrays in, arrays out).

Definitions follow metafor's ``escalc``: log risk ratio (RR), log odds ratio (OR),
risk difference (RD), mean difference (MD) and Hedges' g (SMD) with the exact
small-sample correction. The continuity correction (``add`` to every cell) is applied
only to studies with a zero cell, and only for the frequentist engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln


@dataclass(frozen=True)
class Effects:
    """Effect estimates ``yi`` and sampling variances ``vi`` (one per study)."""

    measure: str
    yi: np.ndarray
    vi: np.ndarray


def _cells(ai, bi, ci, di, add: float) -> tuple[np.ndarray, ...]:
    """Add ``add`` to all four cells of the studies that have a zero cell."""
    a, b, c, d = (np.asarray(x, dtype=float) for x in (ai, bi, ci, di))
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    return tuple(np.where(zero, x + add, x) for x in (a, b, c, d))


def log_risk_ratio(ai, bi, ci, di, add: float = 0.5) -> Effects:
    """Log RR of events ``ai`` / non-events ``bi`` (treated) vs ``ci`` / ``di`` (control)."""
    a, b, c, d = _cells(ai, bi, ci, di, add)
    yi = np.log(a / (a + b)) - np.log(c / (c + d))
    vi = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    return Effects("RR", yi, vi)


def log_odds_ratio(ai, bi, ci, di, add: float = 0.5) -> Effects:
    """Log OR with Woolf's variance."""
    a, b, c, d = _cells(ai, bi, ci, di, add)
    return Effects("OR", np.log(a * d / (b * c)), 1 / a + 1 / b + 1 / c + 1 / d)


def risk_difference(ai, bi, ci, di) -> Effects:
    """Risk difference (no continuity correction needed)."""
    a, b, c, d = (np.asarray(x, dtype=float) for x in (ai, bi, ci, di))
    p1, p2 = a / (a + b), c / (c + d)
    return Effects("RD", p1 - p2, p1 * (1 - p1) / (a + b) + p2 * (1 - p2) / (c + d))


def control_variance(measure: str, ai, bi, ci, di, add: float = 0.5) -> np.ndarray:
    """Return the control arm's part of a binary contrast's sampling variance.

    Two contrasts against the same control share exactly this much covariance: ``1/c + 1/d``
    (OR), ``1/c - 1/(c + d)`` (RR) and ``p(1 - p)/n`` (RD), with the cells corrected as for
    the contrast itself.
    """
    if measure == "RD":
        c, d = (np.asarray(x, dtype=float) for x in (ci, di))
        p = c / (c + d)
        return p * (1 - p) / (c + d)
    _, _, c, d = _cells(ai, bi, ci, di, add)
    return 1 / c + 1 / d if measure == "OR" else 1 / c - 1 / (c + d)


def mean_difference(m1, sd1, n1, m2, sd2, n2) -> Effects:
    """Raw mean difference with heteroscedastic variance."""
    m1, sd1, n1, m2, sd2, n2 = (np.asarray(x, dtype=float) for x in (m1, sd1, n1, m2, sd2, n2))
    return Effects("MD", m1 - m2, sd1**2 / n1 + sd2**2 / n2)


def hedges_correction(df: np.ndarray) -> np.ndarray:
    """Exact small-sample bias correction J(df) = Γ(df/2) / (√(df/2) Γ((df-1)/2))."""
    df = np.asarray(df, dtype=float)
    return np.exp(gammaln(df / 2) - 0.5 * np.log(df / 2) - gammaln((df - 1) / 2))


def standardized_mean_difference(m1, sd1, n1, m2, sd2, n2) -> Effects:
    """Hedges' g with the exact correction and metafor's large-sample variance."""
    m1, sd1, n1, m2, sd2, n2 = (np.asarray(x, dtype=float) for x in (m1, sd1, n1, m2, sd2, n2))
    sp = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))
    g = hedges_correction(n1 + n2 - 2) * (m1 - m2) / sp
    vi = 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))
    return Effects("SMD", g, vi)


def sd_from_se(se, n) -> np.ndarray:
    """Return the standard deviation from the standard error of a mean: SE × √n."""
    return np.asarray(se, dtype=float) * np.sqrt(np.asarray(n, dtype=float))
