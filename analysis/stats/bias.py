r"""Small-study effects and publication bias, as R metafor computes them.

- **Trim-and-fill** (Duval & Tweedie 2000; metafor's ``trimfill``): the side of the funnel
  thought to be missing is the one opposite the sign of the slope of a meta-regression on the
  standard error; the studies on the other side are ranked by their distance from the pooled
  estimate, the number missing ``k0`` is estimated (L0 or R0), the ``k0`` most extreme are
  trimmed and the estimate recomputed until ``k0`` is stable; their mirror images about the
  trimmed estimate, :math:`2\hat\mu - y_i`, are then filled in with the same variances and
  the model refitted.
- **PET and PEESE** (Stanley & Doucouliagos 2014): the intercept of the meta-regression of
  the effects on their standard error (PET) or on their variance (PEESE), the effect of a
  study with infinite precision. **PET-PEESE** takes PEESE when PET's intercept differs from
  zero (two-sided p below ``alpha``, 0.10 by default, i.e. one-sided 0.05), PET otherwise.
- **Egger's test** in metafor's default form (``regtest(res)``): the z test of the slope of
  the SE in the meta-regression with the model's own tau² estimator; the classic form
  (``regtest(res, model = "lm")``, weighted least squares with a t test) is
  :func:`~trialmeta.analysis.stats.frequentist.egger_test`.

All of them are unreliable with few studies (fewer than 10, the Cochrane Handbook's rule for
funnel-plot tests) and under heterogeneity, which can itself make a funnel asymmetric.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from ..errors import SpecError
from .frequentist import meta_analysis, meta_regression

#: fewer studies than this: say that the methods mean little (Cochrane Handbook 13.3.5.4)
FEW_STUDIES = 10
ESTIMATORS = ("L0", "R0")


def _missing(y: np.ndarray, beta: float, estimator: str) -> float:
    """Estimate k0 from the signed ranks of the distances from ``beta``."""
    k = len(y)
    centred = y - beta
    ranks = stats.rankdata(np.abs(centred), method="ordinal")  # R: ties.method = "first"
    signed = np.sign(centred) * ranks
    if estimator == "R0":
        below = -signed[signed < 0]
        if not len(below):
            raise SpecError("trim-and-fill R0 is undefined: no study lies on the other side "
                            "of the estimate")
        return (k - float(below.max())) - 1
    s_r = float(signed[signed > 0].sum())
    return (4 * s_r - k * (k + 1)) / (2 * k - 1)


def trim_and_fill(yi, vi, method: str = "REML", *, estimator: str = "L0",
                  side: str | None = None) -> dict[str, Any]:
    """Trim-and-fill, step for step as metafor 3.8's ``trimfill``.

    Parameters
    ----------
    yi, vi : array_like
        Effects and sampling variances.
    method : str
        The tau² estimator of every fit (``FE`` for a fixed-effect trim-and-fill).
    estimator : {"L0", "R0"}
        Duval and Tweedie's estimator of the number of missing studies.
    side : {"left", "right"}, optional
        Where studies are missing; by default the side opposite the sign of the slope of
        ``rma(yi, vi, mods = ~ sqrt(vi))`` (negative slope: missing on the right).

    Returns
    -------
    dict
        ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``tau2`` of the filled model, ``k0``,
        ``side``, ``estimator`` and ``filled`` (the imputed studies' ``yi`` and ``vi``).
    """
    y0, v0 = np.asarray(yi, float), np.asarray(vi, float)
    if estimator not in ESTIMATORS:
        raise SpecError(f"unknown trim-and-fill estimator '{estimator}'; use L0 or R0")
    k = len(y0)
    if k < 3:
        raise SpecError(f"trim-and-fill needs at least 3 studies (got {k})")
    if side is None:
        slope = meta_regression(y0, v0, np.column_stack([np.ones(k), np.sqrt(v0)]),
                                ["intercept", "sei"], method).estimate[1]
        side = "right" if slope < 0 else "left"
    if side not in ("left", "right"):
        raise SpecError(f"side must be left or right (got '{side}')")
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * y0, kind="stable")
    y, v = sign * y0[order], v0[order]
    k0, previous, beta = 0, -1, 0.0
    for _ in range(100):
        if k0 == previous:
            break
        previous = k0
        beta = meta_analysis(y[:k - k0], v[:k - k0], method).estimate
        k0 = max(0, round(_missing(y, beta, estimator)))  # R rounds half to even, as here
        if k0 >= k:
            raise SpecError("trim-and-fill would trim every study")
    else:
        raise SpecError("trim-and-fill did not converge in 100 iterations")
    filled_y = sign * (2 * beta - y[k - k0:]) if k0 else np.array([])
    filled_v = v[k - k0:] if k0 else np.array([])
    fit = meta_analysis(np.concatenate([y0, filled_y]), np.concatenate([v0, filled_v]),
                        method)
    return {"estimate": fit.estimate, "se": fit.se, "ci_low": fit.ci_low,
            "ci_high": fit.ci_high, "tau2": fit.tau2, "k0": int(k0), "side": side,
            "estimator": estimator, "method": method,
            "filled": [{"yi": float(a), "vi": float(b)} for a, b in zip(filled_y, filled_v,
                                                                          strict=True)]}


def _intercept(yi: np.ndarray, vi: np.ndarray, predictor: np.ndarray, name: str,
               method: str) -> dict[str, Any]:
    x = np.column_stack([np.ones(len(yi)), predictor])
    fit = meta_regression(yi, vi, x, ["intercept", name], method)
    return {"estimate": fit.estimate[0], "se": fit.se[0], "ci_low": fit.ci_low[0],
            "ci_high": fit.ci_high[0], "p": fit.p[0], "slope": fit.estimate[1],
            "slope_se": fit.se[1], "slope_p": fit.p[1], "tau2": fit.tau2, "method": method}


def pet(yi, vi, method: str = "REML") -> dict[str, Any]:
    """PET: the intercept of ``rma(yi, vi, mods = ~ sqrt(vi))`` (the effect at SE 0)."""
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    return _intercept(y, v, np.sqrt(v), "sei", method)


def peese(yi, vi, method: str = "REML") -> dict[str, Any]:
    """PEESE: the intercept of ``rma(yi, vi, mods = ~ vi)`` (the effect at variance 0)."""
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    return _intercept(y, v, v, "vi", method)


def pet_peese(yi, vi, method: str = "REML", *, alpha: float = 0.10) -> dict[str, Any]:
    """Return the conditional PET-PEESE estimate: PEESE when PET's p is below ``alpha``.

    ``alpha`` is two-sided: 0.10 is the usual one-sided test at 0.05 that there is an effect
    at all (Stanley & Doucouliagos 2014).
    """
    first = pet(yi, vi, method)
    chosen = "peese" if first["p"] < alpha else "pet"
    out = first if chosen == "pet" else peese(yi, vi, method)
    return {**out, "chosen": chosen, "alpha": alpha, "pet_p": first["p"]}


def egger_rma(yi, vi, method: str = "REML") -> dict[str, Any]:
    """Egger's test as metafor's default ``regtest(res)``: z test of the SE's slope."""
    fit = pet(yi, vi, method)
    return {"variant": "regtest(res): rma with the SE as moderator, z test", "z":
            fit["slope"] / fit["slope_se"], "p": fit["slope_p"], "method": method,
            "k": len(np.asarray(yi))}


#: the methods ``frequentist --bias`` takes
BIAS_METHODS = ("trimfill", "trimfill:R0", "pet", "peese", "pet-peese")


def bias_analysis(name: str, yi, vi, method: str = "REML") -> dict[str, Any]:
    """Run one ``--bias`` method by name; say when k is too small for it to mean much."""
    k = len(np.asarray(yi))
    if name in ("trimfill", "trimfill:L0", "trimfill:R0"):
        out = trim_and_fill(yi, vi, method, estimator=name.partition(":")[2] or "L0")
    elif name == "pet":
        out = pet(yi, vi, method)
    elif name == "peese":
        out = peese(yi, vi, method)
    elif name == "pet-peese":
        out = pet_peese(yi, vi, method)
    else:
        raise SpecError(f"unknown bias method '{name}'; use one of {', '.join(BIAS_METHODS)}")
    if k < FEW_STUDIES:
        out["note"] = (f"only {k} studies: small-study methods mean little below "
                       f"{FEW_STUDIES}, and heterogeneity alone can make a funnel asymmetric")
    return out
