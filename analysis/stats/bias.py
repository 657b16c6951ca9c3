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

- **Step-function selection models** (Hedges 1992, Vevea & Hedges 1995; metafor's
  ``selmodel(type = "stepfun")``): a study whose one-sided p-value falls in the j-th interval
  of ``0 < c_1 < ... < c_J = 1`` is published with relative probability :math:`\delta_j`
  (:math:`\delta_1 = 1`). With :math:`y_i \sim N(\mu, v_i + \tau^2)` before selection, the
  likelihood of a published study is

  .. math:: L_i = \frac{\delta_{j(i)}\, \phi(y_i; \mu, v_i + \tau^2)}
                       {\sum_j \delta_j P_{ij}(\mu, \tau^2)},

  where :math:`P_{ij}` is the probability that its p-value falls in interval j. All of
  :math:`\mu, \tau^2, \delta_2 \dots \delta_J` are estimated by maximum likelihood; the SEs
  come from the Hessian; the likelihood-ratio test compares with the model without selection.

All of them are unreliable with few studies (fewer than 10, the Cochrane Handbook's rule for
funnel-plot tests) and under heterogeneity, which can itself make a funnel asymmetric.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize, stats

from ..errors import SpecError
from .frequentist import _neg_loglik, meta_analysis, meta_regression

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


ALTERNATIVES = ("greater", "less", "two.sided", "auto")
DELTA_MAX = 100.0  # metafor's delta.max for step functions (delta.min is 0)


def _p_values(y: np.ndarray, v: np.ndarray, alternative: str) -> np.ndarray:
    """Return the studies' p-values as metafor's selection models compute them."""
    z = y / np.sqrt(v)
    if alternative == "two.sided":
        return 2 * stats.norm.sf(np.abs(z))
    return stats.norm.cdf(z) if alternative == "less" else stats.norm.sf(z)


def _below(c: np.ndarray, mu: float, total_sd: np.ndarray, s: np.ndarray,
           alternative: str) -> np.ndarray:
    """Return P(p <= c) for each study (rows) and cut-off (columns) before selection."""
    c, sd, s = c[None, :], total_sd[:, None], s[:, None]
    if alternative == "greater":  # p <= c  <=>  y >= s z_(1-c)
        return stats.norm.sf((s * stats.norm.isf(c) - mu) / sd)
    if alternative == "less":  # p <= c  <=>  y <= s z_c
        return stats.norm.cdf((s * stats.norm.ppf(c) - mu) / sd)
    cut = s * stats.norm.isf(c / 2)
    return stats.norm.sf((cut - mu) / sd) + stats.norm.cdf((-cut - mu) / sd)


def _step_loglik(mu: float, tau2: float, delta: np.ndarray, y: np.ndarray, v: np.ndarray,
                 steps: np.ndarray, group: np.ndarray, alternative: str) -> float:
    """Log-likelihood of the step-function selection model (metafor's ``ll.stepfun``)."""
    tau2 = 0.0 if tau2 < 10 * np.finfo(float).eps else tau2
    total_sd = np.sqrt(v + tau2)
    cum = _below(steps, mu, total_sd, np.sqrt(v), alternative)
    cum[:, -1] = 1.0  # p <= 1 for certain
    probs = np.diff(np.column_stack([np.zeros(len(y)), cum]), axis=1)
    a = probs @ delta
    return float(np.sum(np.log(delta[group]) + stats.norm.logpdf(y, mu, total_sd)
                        - np.log(a)))


def _hessian(f, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Return the Hessian of ``f`` by central differences with one Richardson step.

    Steps are 1e-4 of ``max(|x|, scale)``, halved once; the floor ``scale`` keeps a
    parameter near zero from getting a step lost in rounding.
    """
    n = len(x)

    def at(h: np.ndarray) -> np.ndarray:
        out = np.empty((n, n))
        for i in range(n):
            for j in range(i, n):
                ei, ej = np.zeros(n), np.zeros(n)
                ei[i], ej[j] = h[i], h[j]
                out[i, j] = out[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                         + f(x - ei - ej)) / (4 * h[i] * h[j])
        return out

    h = 1e-4 * np.maximum(np.abs(x), scale)
    coarse, fine = at(h), at(h / 2)
    return (4 * fine - coarse) / 3


def step_selection(yi, vi, steps, method: str = "REML", *,
                   alternative: str = "greater") -> dict[str, Any]:
    """Fit a step-function selection model by maximum likelihood.

    As metafor 3.8's ``selmodel(rma(yi, vi, method), type = "stepfun", steps = steps)``.

    Parameters
    ----------
    yi, vi : array_like
        Effects and sampling variances.
    steps : sequence of float
        The p-value cut-offs in (0, 1]; 1 is added when missing.
    method : str
        The tau² estimator of the model asked for. As in metafor, any estimator but FE is
        replaced by ML: the selection model and the model without selection it is tested
        against (by the likelihood ratio) are both ML fits; FE fixes tau² at 0 in both.
    alternative : {"greater", "less", "two.sided", "auto"}
        The p-values the selection acts on: one-sided for a positive effect (metafor's
        default), for a negative effect, or two-sided. ``auto`` takes the side of the
        pooled estimate without selection (selection favours results that are
        significant in the direction the studies found).

    Returns
    -------
    dict
        ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p``, ``tau2`` (and ``tau2_se``),
        ``steps``, ``delta`` (``delta_se``, the first fixed at 1), ``k_per_interval``,
        ``LRT``, ``LRT_df``, ``LRT_p``, ``loglik`` and ``warnings``.
    """
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    if alternative not in ALTERNATIVES:
        raise SpecError(f"unknown alternative '{alternative}'; use one of "
                        f"{', '.join(ALTERNATIVES)}")
    cuts = np.unique(np.asarray(steps, float))
    if not len(cuts) or (cuts <= 0).any() or (cuts > 1).any():
        raise SpecError("selection-model steps must lie in (0, 1]")
    if cuts[-1] != 1:
        cuts = np.append(cuts, 1.0)
    k, n_delta = len(y), len(cuts) - 1
    fixed_tau2 = method.upper() == "FE"
    base = meta_analysis(y, v, "FE" if fixed_tau2 else "ML")
    if alternative == "auto":
        alternative = "less" if base.estimate < 0 else "greater"
    if k < 1 + (0 if fixed_tau2 else 1) + n_delta:
        raise SpecError(f"{k} studies are too few for a selection model with {len(cuts)} "
                        "intervals")
    pvals = _p_values(y, v, alternative)
    group = np.searchsorted(cuts, pvals, side="left")  # first step with p <= step
    counts = np.bincount(group, minlength=len(cuts))
    if (counts == 0).any():
        empty = [f"{lo:g} < p <= {hi:g}" for lo, hi, n in
                 zip(np.r_[0, cuts[:-1]], cuts, counts, strict=True) if n == 0]
        raise SpecError("no study's p-value falls in " + ", ".join(empty)
                        + "; choose other steps")

    def natural(par: np.ndarray) -> float:
        """Negative log-likelihood at (mu, [tau2,] delta_2..J) as they are."""
        tau2 = 0.0 if fixed_tau2 else float(par[1])
        return -_step_loglik(float(par[0]), tau2, np.r_[1.0, par[len(par) - n_delta:]], y,
                             v, cuts, group, alternative)

    def untransformed(par: np.ndarray) -> np.ndarray:
        """Map the optimiser's free parameters: log tau2, deltas logistic on (0, 100)."""
        out = np.array(par, float)
        if not fixed_tau2:
            out[1] = np.exp(par[1])
        out[len(par) - n_delta:] = DELTA_MAX / (1 + np.exp(-par[len(par) - n_delta:]))
        return out

    def negll(par: np.ndarray) -> float:
        value = natural(untransformed(par))
        return value if np.isfinite(value) else 1e300

    start = np.r_[base.estimate, [] if fixed_tau2 else [np.log(base.tau2 + 0.001)],
                  np.full(n_delta, np.log(1 / (DELTA_MAX - 1)))]
    fit = optimize.minimize(negll, start, method="BFGS", options={"gtol": 1e-9,
                                                                 "maxiter": 2000})
    fit = optimize.minimize(negll, fit.x, method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20000})
    point = untransformed(fit.x)
    mu, tau2 = float(point[0]), 0.0 if fixed_tau2 else float(point[1])
    delta = np.r_[1.0, point[len(point) - n_delta:]]
    loglik = -negll(fit.x)
    warnings: list[str] = []
    if ((delta[1:] <= np.finfo(float).eps ** 0.25)
            | (delta[1:] >= DELTA_MAX - 100 * np.finfo(float).eps ** 0.25)).any():
        warnings.append("a selection weight lies at its bound (0 or 100); treat the results "
                        "with caution")

    cov = None
    try:
        scale = np.r_[np.median(np.sqrt(v)), [] if fixed_tau2 else [np.median(v)],
                      np.full(n_delta, 0.05)]
        hess = _hessian(natural, point, scale)
        cov = np.linalg.inv(hess)
        if not np.all(np.isfinite(cov)) or (np.diag(cov) <= 0).any():
            cov = None
    except np.linalg.LinAlgError:
        cov = None
    if cov is None:
        warnings.append("the Hessian could not be inverted: no standard errors")
    var = np.diag(cov) if cov is not None else np.full(len(point), np.nan)
    se = float(np.sqrt(var[0]))
    crit = stats.norm.isf(0.025)
    delta_se = [None] + [float(np.sqrt(x)) for x in var[len(point) - n_delta:]]
    ll0 = -_neg_loglik(base.tau2, y, v, reml=False)  # logLik(res, REML = FALSE)
    lrt = max(0.0, -2 * (ll0 - loglik))
    return {"estimate": mu, "se": se, "ci_low": mu - crit * se, "ci_high": mu + crit * se,
            "p": float(2 * stats.norm.sf(abs(mu / se))) if se > 0 else None,
            "tau2": tau2, "tau2_se": None if fixed_tau2 else float(np.sqrt(var[1])),
            "steps": [float(c) for c in cuts], "alternative": alternative,
            "delta": [float(d) for d in delta], "delta_se": delta_se,
            "k_per_interval": [int(n) for n in counts], "LRT": lrt, "LRT_df": n_delta,
            "LRT_p": float(stats.chi2.sf(lrt, n_delta)), "loglik": loglik,
            "loglik_without_selection": ll0, "method": "ML", "base_method": method,
            "warnings": warnings}


#: the methods ``frequentist --bias`` takes
BIAS_METHODS = ("trimfill", "trimfill:R0", "pet", "peese", "pet-peese", "step:P1[,P2...]")


def _step_arguments(name: str) -> tuple[list[float], str]:
    """Parse ``step:0.025,0.5`` or ``step:0.025,0.5:less``."""
    _, _, rest = name.partition(":")
    cuts, _, alternative = rest.partition(":")
    try:
        steps = [float(c) for c in cuts.split(",") if c.strip()]
    except ValueError:
        raise SpecError(f"cannot read the steps of '{name}'; write e.g. step:0.025,0.5") \
            from None
    if not steps:
        raise SpecError(f"'{name}' needs its steps, e.g. step:0.025,0.5")
    return steps, alternative or "greater"


#: the analyses the report shows beside each pooled comparison (the selection model with
#: one step at one-sided p = 0.025, on the side of the pooled estimate)
REPORT_METHODS = ("trimfill", "pet", "peese", "pet-peese", "step:0.025:auto")


def bias_panel(yi, vi, method: str = "REML",
               names: tuple[str, ...] = REPORT_METHODS) -> dict[str, Any]:
    """Run several ``--bias`` methods; one that cannot run here gives its reason instead.

    Returns a mapping of method name to its result, or to ``{"error": reason}``.
    """
    out: dict[str, Any] = {}
    for name in names:
        try:
            out[name] = bias_analysis(name, yi, vi, method)
        except SpecError as exc:
            out[name] = {"error": str(exc)}
    return out


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
    elif name == "step" or name.startswith("step:"):
        steps, alternative = _step_arguments(name)
        out = step_selection(yi, vi, steps, method, alternative=alternative)
    else:
        raise SpecError(f"unknown bias method '{name}'; use one of {', '.join(BIAS_METHODS)}")
    if k < FEW_STUDIES:
        out["note"] = (f"only {k} studies: small-study methods mean little below "
                       f"{FEW_STUDIES}, and heterogeneity alone can make a funnel asymmetric")
    return out
