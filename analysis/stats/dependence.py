r"""Dependent effects: three-level models and cluster-robust errors, as R metafor.

Several effects from one study (or one research group, one district) are not independent.
``robust(res, cluster, adjust = TRUE, clubSandwich = FALSE)`` keeps the model's estimates and
replaces their covariance by the sandwich

.. math::

    V_R = \frac{n}{n - p} \, B \Big( \bigoplus_c e_c e_c^\top \Big) B^\top,
    \qquad B = (X^\top W X)^{-1} X^\top W,

with :math:`e_c` the residuals :math:`y - X\hat\beta` of cluster :math:`c`, :math:`n`
clusters and :math:`p` coefficients; tests and intervals use t with :math:`n - p` degrees of
freedom (metafor's CR1 estimator).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from ..errors import SpecError
from .frequentist import meta_regression


def robust(yi, vi, design, terms: list[str], cluster, method: str = "REML",
           level: float = 0.95) -> dict[str, Any]:
    """Cluster-robust (CR1) inference for a meta-analysis or meta-regression.

    Parameters
    ----------
    yi, vi : array_like
        Effects and sampling variances.
    design : array_like, shape (k, p)
        Design matrix (a column of ones for the pooled estimate alone).
    terms : list of str
        Column names of ``design``.
    cluster : array_like
        The cluster of each effect (study, research group ...); no missing values.
    method : str
        tau² estimator of the working model.
    level : float
        Confidence level of the intervals.

    Returns
    -------
    dict
        ``coefficients`` (term, estimate, se, ci_low, ci_high, p), the first of them again
        as ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p``, ``df`` (clusters minus
        coefficients), ``clusters``, ``tau2`` of the working model, ``QM`` and ``QM_p`` (F
        test of the non-intercept terms, when there are any).
    """
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    x = np.asarray(design, float)
    groups = np.asarray(cluster, dtype=object)
    if any(g is None or g != g for g in groups):
        raise SpecError("the cluster column has missing values; every effect needs one")
    k, p = x.shape
    labels = list(dict.fromkeys(groups.tolist()))
    n = len(labels)
    df = n - p
    if df <= 0:
        raise SpecError(f"{n} clusters cannot give robust errors for {p} coefficient(s); "
                        "robust inference needs more clusters than coefficients")
    fit = meta_regression(y, v, x, terms, method)
    beta = np.asarray(fit.estimate)
    w = 1.0 / (v + fit.tau2)
    xtwx_inv = np.linalg.inv((x.T * w) @ x)
    bread = xtwx_inv @ (x.T * w)
    e = y - x @ beta
    meat = np.zeros((k, k))
    for label in labels:
        idx = np.flatnonzero(groups == label)
        meat[np.ix_(idx, idx)] = np.outer(e[idx], e[idx])
    vb = (n / df) * bread @ meat @ bread.T
    se = np.sqrt(np.diag(vb))
    t = beta / se
    crit = float(stats.t.ppf(1 - (1 - level) / 2, df))
    out: dict[str, Any] = {
        "coefficients": [{"term": term, "estimate": float(b), "se": float(s),
                          "ci_low": float(b - crit * s), "ci_high": float(b + crit * s),
                          "p": float(2 * stats.t.sf(abs(z), df))}
                         for term, b, s, z in zip(terms, beta, se, t, strict=True)],
        "df": df, "clusters": n, "k": k, "tau2": fit.tau2, "method": method,
        "estimator": "CR1 (metafor robust, adjust = TRUE)"}
    # the first coefficient (the pooled estimate, or the intercept) at the top level too
    out.update({key: out["coefficients"][0][key]
                for key in ("estimate", "se", "ci_low", "ci_high", "p")})
    if p > 1:
        m = p - 1
        qm = float(beta[1:] @ np.linalg.solve(vb[1:, 1:], beta[1:])) / m
        out.update(QM=qm, QM_df=m, QM_df_residual=df, QM_p=float(stats.f.sf(qm, m, df)))
    return out


def _membership(labels: np.ndarray) -> np.ndarray:
    """Return the k x levels 0/1 matrix of which level each effect belongs to."""
    levels = list(dict.fromkeys(labels.tolist()))
    index = {lv: i for i, lv in enumerate(levels)}
    z = np.zeros((len(labels), len(levels)))
    z[np.arange(len(labels)), [index[lv] for lv in labels]] = 1.0
    return z


def multilevel(yi, vi, clusters: list, names: list[str], design=None,
               level: float = 0.95) -> dict[str, Any]:
    r"""Fit a multilevel random-effects model, as ``rma.mv(yi, vi, random = ~ 1 | a/b)``.

    With clusters nested outer to inner (``a``, then ``b`` within ``a``), the effects have

    .. math::

        y = X\beta + \sum_l Z_l u_l + e, \quad u_l \sim N(0, \sigma_l^2 I),
        \quad e \sim N(0, \mathrm{diag}(v)),

    where :math:`Z_l` says which level-:math:`l` unit (``a``, then ``a/b``) each effect is in.
    The :math:`\sigma_l^2` maximise the restricted likelihood
    :math:`-\tfrac12(\log|V| + \log|X^\top V^{-1} X| + r^\top V^{-1} r)`, :math:`V =
    \mathrm{diag}(v) + \sum_l \sigma_l^2 Z_l Z_l^\top` (bounded at 0); :math:`\hat\beta` is the
    GLS estimate with covariance :math:`(X^\top V^{-1} X)^{-1}` and z tests, as metafor's
    defaults.
    """
    from scipy.optimize import minimize

    y, v = np.asarray(yi, float), np.asarray(vi, float)
    k = len(y)
    x = np.ones((k, 1)) if design is None else np.asarray(design, float)
    keys = [np.asarray(c, dtype=object) for c in clusters]
    if any(any(g is None or g != g for g in c) for c in keys):
        raise SpecError("a cluster column has missing values; every effect needs one")
    # nested: the inner level's units are (outer, inner) pairs, as metafor's a/b
    nested = [np.array(["/".join(map(str, parts)) for parts in zip(*keys[:i + 1],
                                                                    strict=True)],
                       dtype=object) for i in range(len(keys))]
    zs = [_membership(c) for c in nested]
    blocks = [z @ z.T for z in zs]

    def parts(s2: np.ndarray):
        big = np.diag(v) + sum(s * b for s, b in zip(s2, blocks, strict=True))
        inv = np.linalg.inv(big)
        xtvx = x.T @ inv @ x
        beta = np.linalg.solve(xtvx, x.T @ inv @ y)
        r = y - x @ beta
        return big, inv, xtvx, beta, r

    def restricted(log_like_of: np.ndarray) -> float:
        big, inv, xtvx, _, r = parts(log_like_of)
        return 0.5 * (np.linalg.slogdet(big)[1] + np.linalg.slogdet(xtvx)[1] + r @ inv @ r)

    start = np.full(len(zs), max(float(np.var(y)) / (len(zs) + 1), 1e-4))
    best = None
    for s0 in (start, start / 10, start * 3):
        res = minimize(restricted, s0, method="L-BFGS-B",
                       bounds=[(0.0, None)] * len(zs),
                       options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    s2 = np.maximum(best.x, 0.0)
    _, _, xtvx, beta, _ = parts(s2)
    vb = np.linalg.inv(xtvx)
    se = np.sqrt(np.diag(vb))
    crit = float(stats.norm.ppf(1 - (1 - level) / 2))
    return {"estimate": float(beta[0]), "se": float(se[0]),
            "ci_low": float(beta[0] - crit * se[0]), "ci_high": float(beta[0] + crit * se[0]),
            "p": float(2 * stats.norm.sf(abs(beta[0] / se[0]))),
            "sigma2": [float(s) for s in s2], "levels": list(names),
            "units": [z.shape[1] for z in zs], "k": k, "method": "REML",
            "logLik_restricted": float(-best.fun - 0.5 * (k - x.shape[1]) * np.log(2 * np.pi))}
