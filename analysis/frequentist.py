"""Frequentist random-effects meta-analysis that reproduces R metafor's ``rma``.

Estimators of the between-study variance tau²: fixed effect (FE, tau² = 0),
DerSimonian–Laird (DL), restricted maximum likelihood (REML), maximum likelihood
(ML) and Paule–Mandel (PM). Inference: normal (z) or Hartung–Knapp–Sidik–Jonkman
(HKSJ, metafor ``test="knha"``), with the prediction interval of a new study.
Heterogeneity statistics Q, I², H² are computed as metafor does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, stats

from .errors import SpecError

METHODS = ("FE", "DL", "REML", "ML", "PM")
TAU2_MAX = 1e4
TOL = 1e-12


@dataclass(frozen=True)
class MetaResult:
    """Pooled estimate and heterogeneity of one frequentist fit."""

    method: str
    hksj: bool
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau2: float
    I2: float  # noqa: N815 (the conventional name)
    H2: float  # noqa: N815
    Q: float  # noqa: N815
    Q_p: float  # noqa: N815

    def as_dict(self) -> dict[str, object]:
        """Return the result as a JSON-ready dict."""
        return asdict(self)


def _pooled(yi: np.ndarray, vi: np.ndarray, tau2: float) -> tuple[float, float, np.ndarray]:
    w = 1.0 / (vi + tau2)
    mu = float(np.sum(w * yi) / np.sum(w))
    return mu, float(np.sqrt(1.0 / np.sum(w))), w


def _q(yi: np.ndarray, vi: np.ndarray) -> float:
    mu, _, w = _pooled(yi, vi, 0.0)
    return float(np.sum(w * (yi - mu) ** 2))


def tau2_dl(yi: np.ndarray, vi: np.ndarray) -> float:
    """DerSimonian–Laird moment estimator, truncated at zero."""
    w = 1.0 / vi
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    return max(0.0, (_q(yi, vi) - (len(yi) - 1)) / c)


def _neg_loglik(tau2: float, yi: np.ndarray, vi: np.ndarray, reml: bool) -> float:
    mu, _, w = _pooled(yi, vi, tau2)
    ll = -0.5 * np.sum(np.log(vi + tau2)) - 0.5 * np.sum(w * (yi - mu) ** 2)
    if reml:
        ll -= 0.5 * np.log(np.sum(w))
    return float(-ll)


def tau2_likelihood(yi: np.ndarray, vi: np.ndarray, *, reml: bool) -> float:
    """(Restricted) maximum-likelihood tau² on [0, TAU2_MAX]."""
    upper = max(10.0 * float(np.var(yi, ddof=1)) + 10.0 * float(np.max(vi)), 1.0)
    res = optimize.minimize_scalar(_neg_loglik, bounds=(0.0, min(upper, TAU2_MAX)),
                                   args=(yi, vi, reml), method="bounded",
                                   options={"xatol": TOL, "maxiter": 2000})
    tau2 = float(res.x)
    # the bounded search never lands exactly on 0: take the boundary when it is better
    if _neg_loglik(0.0, yi, vi, reml) <= _neg_loglik(tau2, yi, vi, reml):
        return 0.0
    return tau2


def tau2_pm(yi: np.ndarray, vi: np.ndarray) -> float:
    """Paule–Mandel: the tau² at which the generalised Q equals k - 1."""
    k = len(yi)

    def excess(tau2: float) -> float:
        mu, _, w = _pooled(yi, vi, tau2)
        return float(np.sum(w * (yi - mu) ** 2) - (k - 1))

    if excess(0.0) <= 0:
        return 0.0
    hi = 1.0
    while excess(hi) > 0 and hi < TAU2_MAX:
        hi *= 10
    return float(optimize.brentq(excess, 0.0, hi, xtol=TOL, rtol=4 * np.finfo(float).eps))


def meta_analysis(yi, vi, method: str = "REML", *, hksj: bool = False,
                  level: float = 0.95) -> MetaResult:
    """Pool effects ``yi`` with sampling variances ``vi``.

    Parameters
    ----------
    yi, vi : array_like
        Effect estimates and their variances (ratio measures on the log scale).
    method : {"FE", "DL", "REML", "ML", "PM"}
        Estimator of tau².
    hksj : bool
        Hartung–Knapp–Sidik–Jonkman standard error and t-based intervals.
    level : float
        Confidence level of the intervals.
    """
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if method not in METHODS:
        raise SpecError(f"unknown method '{method}'; use one of {', '.join(METHODS)}")
    if y.shape != v.shape or y.ndim != 1 or len(y) < 1:
        raise SpecError("yi and vi must be 1-D arrays of the same non-zero length")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise SpecError("effects must be finite and variances > 0")
    k = len(y)
    if method == "FE":
        tau2 = 0.0
    elif k < 2:
        raise SpecError(f"{method} needs at least 2 studies to estimate tau² (got {k}); use FE")
    elif method == "DL":
        tau2 = tau2_dl(y, v)
    elif method == "PM":
        tau2 = tau2_pm(y, v)
    else:
        tau2 = tau2_likelihood(y, v, reml=method == "REML")
    mu, se, w = _pooled(y, v, tau2)
    alpha = 1 - level
    if hksj:
        if k < 2:
            raise SpecError("HKSJ needs at least 2 studies")
        se = float(np.sqrt(np.sum(w * (y - mu) ** 2) / ((k - 1) * np.sum(w))))
        crit = float(stats.t.ppf(1 - alpha / 2, k - 1))
    else:
        crit = float(stats.norm.ppf(1 - alpha / 2))
    q = _q(y, v) if k > 1 else 0.0
    w0 = 1.0 / v
    if method == "FE":
        i2 = max(0.0, 100.0 * (q - (k - 1)) / q) if q > 0 else 0.0
        h2 = q / (k - 1) if k > 1 else 1.0
    else:
        s2 = (k - 1) * np.sum(w0) / (np.sum(w0) ** 2 - np.sum(w0**2))
        i2 = float(100.0 * tau2 / (tau2 + s2))
        h2 = float((tau2 + s2) / s2)
    half_pi = crit * np.sqrt(se**2 + tau2)
    return MetaResult(
        method=method, hksj=hksj, k=k, estimate=mu, se=se,
        ci_low=mu - crit * se, ci_high=mu + crit * se,
        pi_low=float(mu - half_pi), pi_high=float(mu + half_pi),
        tau2=tau2, I2=i2, H2=h2, Q=q,
        Q_p=float(stats.chi2.sf(q, k - 1)) if k > 1 else 1.0,
    )
