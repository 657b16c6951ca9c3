"""Frequentist random-effects meta-analysis that reproduces R metafor's ``rma``.

Estimators of the between-study variance tau²: fixed effect (FE, tau² = 0),
DerSimonian–Laird (DL), restricted maximum likelihood (REML), maximum likelihood
(ML) and Paule–Mandel (PM). Inference: normal (z) or Hartung–Knapp–Sidik–Jonkman
(HKSJ, metafor ``test="knha"``), with the prediction interval of a new study.
Heterogeneity statistics Q, I², H² are computed as metafor does.

The iterative estimators follow metafor 3.8 step for step (Fisher scoring for
REML/ML from the Hedges start, stopping when tau² moves by at most 1e-5; Brent's
root search with tolerance eps^0.25 for PM), so that the numbers agree with
metafor to the digits it prints, rather than being more precise than it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from ..errors import SpecError

METHODS = ("FE", "DL", "REML", "ML", "PM")
THRESHOLD = 1e-5  # metafor control threshold: convergence of Fisher scoring
LL_TOL = np.finfo(float).eps ** 0.25  # metafor control tol (ll0check, uniroot)
PM_TOL = LL_TOL
TAU2_PM_MAX = 100.0  # metafor control tau2.max
MAXITER = 100


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
    I2: float  # the conventional name
    H2: float
    Q: float
    Q_p: float
    #: metafor's ``test``: "z" (Wald), "knha" (Hartung-Knapp) or "adhoc" (max(1, q))
    test: str = "z"
    #: "default" (the CI's distribution) or "higgins2009" (t with k - 2 df)
    pi_type: str = "default"
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """Return the result as a JSON-ready dict."""
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


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
    """Negative (restricted) log-likelihood of tau² with mu profiled out (constants kept)."""
    mu, _, w = _pooled(yi, vi, tau2)
    k = len(yi)
    ll = (-0.5 * (k - (1 if reml else 0)) * np.log(2 * np.pi)
          - 0.5 * np.sum(np.log(vi + tau2)) - 0.5 * np.sum(w * (yi - mu) ** 2))
    if reml:
        ll -= 0.5 * np.log(np.sum(w))
    return float(-ll)


def tau2_likelihood(yi: np.ndarray, vi: np.ndarray, *, reml: bool) -> float:
    """(Restricted) maximum-likelihood tau² by Fisher scoring, as metafor ``rma`` does.

    Start at the Hedges (HE) estimate, step ``(y'PPy - tr P)/tr PP`` (REML) or
    ``(y'PPy - sum w)/sum w²`` (ML), halve steps that would go below 0, stop when
    tau² changes by at most :data:`THRESHOLD`; then fall back to 0 when the likelihood
    at 0 is higher by more than :data:`LL_TOL` (metafor's ``ll0check``).
    """
    k = len(yi)
    tau2 = max(0.0, (float(np.sum((yi - yi.mean()) ** 2)) - np.sum(vi) * (k - 1) / k) / (k - 1))
    change, it = THRESHOLD + 1, 0
    while change > THRESHOLD:
        it += 1
        if it > MAXITER:
            raise SpecError("Fisher scoring did not converge for tau²; try method PM or DL")
        w = 1.0 / (vi + tau2)
        sw = w.sum()
        py = w * (yi - np.sum(w * yi) / sw)
        ypp = float(py @ py)
        if reml:
            tr_p = sw - np.sum(w**2) / sw
            tr_pp = np.sum(w**2) - 2 * np.sum(w**3) / sw + (np.sum(w**2) / sw) ** 2
            adj = (ypp - tr_p) / tr_pp
        else:
            adj = (ypp - sw) / np.sum(w**2)
        while tau2 + adj < 0:
            adj /= 2
        old, tau2 = tau2, tau2 + adj
        change = abs(old - tau2)
    if _neg_loglik(tau2, yi, vi, reml) - _neg_loglik(0.0, yi, vi, reml) > LL_TOL \
            and tau2 > THRESHOLD:
        return 0.0
    return float(tau2)


def zeroin(f, lo: float, hi: float, tol: float, maxiter: int = MAXITER) -> float:
    """Brent's root finder in the form R's ``uniroot`` uses (netlib zeroin).

    Kept identical in its steps so that Paule–Mandel agrees with metafor's
    ``uniroot(..., tol = .Machine$double.eps^0.25)`` to the last digit it prints.
    """
    eps = np.finfo(float).eps
    a, b = lo, hi
    fa, fb = f(a), f(b)
    if fa == 0:
        return a
    if fb == 0:
        return b
    c, fc = a, fa
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * eps * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p, q = cb * t1, 1.0 - t1
            else:
                q, t1, t2 = fa / fc, fb / fc, fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    raise SpecError("root search for tau² did not converge")


def tau2_pm(yi: np.ndarray, vi: np.ndarray) -> float:
    """Paule–Mandel: the tau² at which the generalised Q equals k - 1 (metafor's search)."""
    k = len(yi)

    def excess(tau2: float) -> float:
        mu, _, w = _pooled(yi, vi, tau2)
        return float(np.sum(w * (yi - mu) ** 2) - (k - 1))

    # metafor: tau2.max = max(100, 10 * mad(yi)^2), mad scaled by 1.4826 as in R
    mad = 1.4826 * float(np.median(np.abs(yi - np.median(yi))))
    upper = max(TAU2_PM_MAX, 10 * mad**2)
    if excess(0.0) < 0:
        return 0.0
    if excess(upper) > 0:
        raise SpecError(f"Paule-Mandel tau² exceeds {upper:g}; use another method")
    return float(zeroin(excess, 0.0, upper, PM_TOL))


HKSJ = {False: "z", "off": "z", True: "knha", "plain": "knha", "adhoc": "adhoc"}
PI_TYPES = ("default", "higgins2009")


def meta_analysis(yi, vi, method: str = "REML", *, hksj: bool | str = False,
                  level: float = 0.95, pi_type: str = "default") -> MetaResult:
    """Pool effects ``yi`` with sampling variances ``vi``.

    Parameters
    ----------
    yi, vi : array_like
        Effect estimates and their variances (ratio measures on the log scale).
    method : {"FE", "DL", "REML", "ML", "PM"}
        Estimator of tau².
    hksj : bool or {"off", "plain", "adhoc"}
        Hartung–Knapp–Sidik–Jonkman standard error and t(k - 1) intervals (True or
        "plain", metafor ``test="knha"``); "adhoc" never lets the HKSJ standard error fall
        below the Wald one (the scaling factor q is replaced by max(1, q), metafor
        ``test="adhoc"``). Plain HKSJ narrower than the Wald interval gives a warning.
    level : float
        Confidence level of the intervals.
    pi_type : {"default", "higgins2009"}
        Prediction interval: the CI's distribution (metafor's default), or t with k - 2
        degrees of freedom (Higgins, Thompson & Spiegelhalter 2009).
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
    if hksj not in HKSJ:
        raise SpecError(f"unknown HKSJ variant {hksj!r}; use off, plain or adhoc")
    if pi_type not in PI_TYPES:
        raise SpecError(f"unknown prediction interval '{pi_type}'; use {', '.join(PI_TYPES)}")
    test = HKSJ[hksj]
    mu, se, w = _pooled(y, v, tau2)
    alpha = 1 - level
    warnings: list[str] = []
    if test != "z":
        if k < 2:
            raise SpecError("HKSJ needs at least 2 studies")
        q_kh = float(np.sum(w * (y - mu) ** 2) / (k - 1))
        wald_se, wald_crit = se, float(stats.norm.ppf(1 - alpha / 2))
        se = float(np.sqrt((max(1.0, q_kh) if test == "adhoc" else q_kh) / np.sum(w)))
        crit = float(stats.t.ppf(1 - alpha / 2, k - 1))
        if test == "knha" and crit * se < wald_crit * wald_se:
            warnings.append("the HKSJ interval is narrower than the Wald interval (q = "
                            f"{q_kh:.3g} < 1); the ad hoc variant (--hksj adhoc) keeps it at "
                            "least as wide")
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
    pi_crit = crit
    if pi_type == "higgins2009":
        if k < 3:
            raise SpecError("the t(k - 2) prediction interval needs at least 3 studies")
        pi_crit = float(stats.t.ppf(1 - alpha / 2, k - 2))
    half_pi = pi_crit * np.sqrt(se**2 + tau2)
    return MetaResult(
        method=method, hksj=test != "z", k=k, estimate=mu, se=se,
        ci_low=mu - crit * se, ci_high=mu + crit * se,
        pi_low=float(mu - half_pi), pi_high=float(mu + half_pi),
        tau2=tau2, I2=i2, H2=h2, Q=q,
        Q_p=float(stats.chi2.sf(q, k - 1)) if k > 1 else 1.0,
        test=test, pi_type=pi_type, warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class MantelHaenszel:
    """Mantel–Haenszel pooled log OR or log RR with its standard error."""

    measure: str
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, object]:
        """Return the result as a JSON-ready dict."""
        return asdict(self)


def mantel_haenszel(ai, bi, ci, di, measure: str = "OR", level: float = 0.95) -> MantelHaenszel:
    """Mantel–Haenszel log OR (Robins–Breslow–Greenland variance) or log RR (Greenland–Robins).

    No continuity correction is needed; tables with no events in either arm add nothing.
    """
    a, b, c, d = (np.asarray(x, dtype=float) for x in (ai, bi, ci, di))
    n = a + b + c + d
    if measure == "OR":
        r, s = a * d / n, b * c / n
        big_r, big_s = r.sum(), s.sum()
        if big_r == 0 or big_s == 0:
            raise SpecError("Mantel-Haenszel OR is undefined: no discordant information")
        p, q = (a + d) / n, (b + c) / n
        var = ((p * r).sum() / (2 * big_r**2) + (p * s + q * r).sum() / (2 * big_r * big_s)
               + (q * s).sum() / (2 * big_s**2))
    elif measure == "RR":
        r, s = a * (c + d) / n, c * (a + b) / n
        big_r, big_s = r.sum(), s.sum()
        if big_r == 0 or big_s == 0:
            raise SpecError("Mantel-Haenszel RR is undefined: no events in one group")
        var = (((a + b) * (c + d) * (a + c) - a * c * n) / n**2).sum() / (big_r * big_s)
    else:
        raise SpecError(f"Mantel-Haenszel supports OR and RR, not {measure}")
    est, se = float(np.log(big_r / big_s)), float(np.sqrt(var))
    z = float(stats.norm.ppf(0.5 + level / 2))
    return MantelHaenszel(measure, len(a), est, se, est - z * se, est + z * se)


def leave_one_out(yi, vi, method: str = "REML", *,
                  hksj: bool | str = False) -> list[MetaResult]:
    """Refit without each study in turn (metafor ``leave1out``)."""
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    keep = np.ones(len(y), dtype=bool)
    out = []
    for i in range(len(y)):
        keep[:] = True
        keep[i] = False
        out.append(meta_analysis(y[keep], v[keep], method, hksj=hksj))
    return out


#: below this many contrasts Egger's test has little power (Sterne et al. 2011, BMJ 343:d4002)
EGGER_MIN_POWERED = 10


@dataclass(frozen=True)
class EggerTest:
    """Egger's regression test for funnel-plot asymmetry (weighted least squares).

    Every field is present whatever the data: ``computable`` is False (and the numbers
    None) when the regression cannot be fitted, with the reason in ``note``; ``note`` also
    warns when there are fewer than ``EGGER_MIN_POWERED`` contrasts.
    """

    slope: float | None
    t: float | None
    df: int
    p_value: float | None
    limit_estimate: float | None
    computable: bool = True
    note: str | None = None

    def as_dict(self) -> dict[str, object]:
        """Return the result as a JSON-ready dict."""
        return asdict(self)


def egger_test(yi, vi) -> EggerTest:
    """Regress effects on their standard errors with weights 1/v (metafor ``regtest(model="lm")``).

    The slope tests small-study effects; the intercept is the effect a study with
    zero standard error would show:

    ``y_i = b0 + b1 * sqrt(v_i) + e_i``, ``e_i ~ N(0, s^2 v_i)``, t = b1 / se(b1), df = k - 2.

    When every standard error is the same the slope is not identified (the design matrix is
    singular), and when the line fits exactly its standard error is 0: the test is then
    reported as not computable, with the reason, rather than failing.
    """
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    k = len(y)
    if k < 3:
        raise SpecError(f"Egger's test needs at least 3 studies (got {k})")
    small = (f"fewer than {EGGER_MIN_POWERED} contrasts: the test has little power"
             if k < EGGER_MIN_POWERED else None)

    def not_computable(reason: str) -> EggerTest:
        return EggerTest(None, None, k - 2, None, None, computable=False,
                         note="; ".join(filter(None, [reason, small])))

    se = np.sqrt(v)
    if np.ptp(se) <= 1e-12 * max(float(np.max(se)), 1e-300):
        return not_computable("not computable: every contrast has the same standard error, "
                              "so a slope on the standard error cannot be estimated")
    x = np.column_stack([np.ones(k), se])
    w = 1.0 / v
    xtwx = x.T @ (w[:, None] * x)
    try:
        beta = np.linalg.solve(xtwx, x.T @ (w * y))
        inv = np.linalg.inv(xtwx)
    except np.linalg.LinAlgError:
        return not_computable("not computable: the standard errors are too alike to fit "
                              "a slope")
    resid = y - x @ beta
    sigma2 = float(np.sum(w * resid**2) / (k - 2))
    var = sigma2 * inv[1, 1]
    if not (np.isfinite(var) and var > 0 and np.all(np.isfinite(beta))):
        return not_computable("not computable: the effects lie exactly on a line in their "
                              "standard errors, so the slope has no standard error")
    t = float(beta[1] / np.sqrt(var))
    return EggerTest(float(beta[1]), t, k - 2, float(2 * stats.t.sf(abs(t), k - 2)),
                     float(beta[0]), note=small)


@dataclass(frozen=True)
class MetaRegression:
    r"""A mixed-effects meta-regression (metafor ``rma(yi, vi, mods = ...)``).

    The model is :math:`y_i = x_i^\top \beta + u_i + e_i`, :math:`u_i \sim N(0, \tau^2)`,
    :math:`e_i \sim N(0, v_i)`: :math:`\hat\beta = (X^\top W X)^{-1} X^\top W y` with
    :math:`W = \mathrm{diag}(1 / (v_i + \hat\tau^2))`. ``QM`` is the omnibus Wald test of
    every coefficient but the intercept (an F statistic with (m, k - p) degrees of freedom under
    Knapp–Hartung); ``QE`` the residual heterogeneity test.
    """

    method: str
    test: str
    terms: tuple[str, ...]
    estimate: tuple[float, ...]
    se: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    p: tuple[float, ...]
    QM: float
    QM_df: tuple[int, int | None]
    QM_p: float
    QE: float
    QE_p: float
    tau2: float
    k: int

    def as_dict(self) -> dict[str, object]:
        """JSON form: ``coefficients`` (term, estimate, se, ci_low, ci_high, p) and the tests."""
        coefficients = [dict(term=t, estimate=e, se=s, ci_low=lo, ci_high=hi, p=p)
                        for t, e, s, lo, hi, p in zip(self.terms, self.estimate, self.se,
                                                       self.ci_low, self.ci_high, self.p,
                                                       strict=True)]
        return {"method": self.method, "test": self.test, "k": self.k,
                "coefficients": coefficients, "QM": self.QM, "QM_df": self.QM_df[0],
                "QM_df_residual": self.QM_df[1], "QM_p": self.QM_p, "QE": self.QE,
                "QE_p": self.QE_p, "tau2": self.tau2}


def _projection(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x'WX)^{-1}`` and ``proj = W - W x (x'WX)^{-1} x'W`` for weights ``w``."""
    xw = x.T * w
    inv = np.linalg.inv(xw @ x)
    proj = np.diag(w) - xw.T @ inv @ xw
    return inv, proj


def _reg_neg_loglik(tau2: float, y: np.ndarray, v: np.ndarray, x: np.ndarray,
                    reml: bool) -> float:
    k, p = x.shape
    w = 1.0 / (v + tau2)
    inv, _ = _projection(x, w)
    beta = inv @ (x.T * w) @ y
    rss = float(np.sum(w * (y - x @ beta) ** 2))
    ll = -0.5 * (k - (p if reml else 0)) * np.log(2 * np.pi) - 0.5 * np.sum(np.log(v + tau2))
    ll -= 0.5 * rss
    if reml:
        ll -= 0.5 * np.linalg.slogdet((x.T * w) @ x)[1]
    return float(-ll)


def tau2_regression(y: np.ndarray, v: np.ndarray, x: np.ndarray, method: str) -> float:
    """tau² of a meta-regression, step for step as metafor 3.8's ``rma.uni``.

    DL: ``(y'proj_y - (k - p)) / tr proj`` with ``W = diag(1/v)``. PM: the root of
    ``y'proj_y = k - p``. REML and ML: Fisher scoring from the Hedges estimate
    ``(y'(I - H)y - tr((I - H)V)) / (k - p)``, steps ``(y'PPy - tr proj) / tr PP`` (REML) or
    ``(y'PPy - sum w) / sum w²`` (ML), halved below 0, until tau² moves by at most
    :data:`THRESHOLD`; then 0 if the likelihood is higher there (``ll0check``).
    """
    k, p = x.shape
    yc = y - y.mean()  # metafor iterates on the centred outcome (the same tau²)
    if method == "FE":
        return 0.0
    if method == "DL":
        _, proj = _projection(x, 1.0 / v)
        return max(0.0, float((yc @ proj @ yc - (k - p)) / np.trace(proj)))
    if method == "PM":
        def excess(tau2: float) -> float:
            _, proj = _projection(x, 1.0 / (v + tau2))
            return float(yc @ proj @ yc - (k - p))

        mad = 1.4826 * float(np.median(np.abs(y - np.median(y))))
        upper = max(TAU2_PM_MAX, 10 * mad**2)
        if excess(0.0) < 0:
            return 0.0
        if excess(upper) > 0:
            raise SpecError(f"Paule-Mandel tau² exceeds {upper:g}; use another method")
        return float(zeroin(excess, 0.0, upper, PM_TOL))
    reml = method == "REML"
    hat = x @ np.linalg.inv(x.T @ x) @ x.T
    resid = np.eye(k) - hat
    tau2 = max(0.0, float((yc @ resid @ yc - np.trace(resid * v)) / (k - p)))
    change, it = THRESHOLD + 1, 0
    while change > THRESHOLD:
        it += 1
        if it > MAXITER:
            raise SpecError("Fisher scoring did not converge for tau²; try method PM or DL")
        w = 1.0 / (v + tau2)
        _, proj = _projection(x, w)
        proj_y = proj @ yc
        ypp = float(proj_y @ proj_y)
        if reml:
            adj = (ypp - np.trace(proj)) / float(np.sum(proj * proj.T))
        else:
            adj = (ypp - w.sum()) / float(np.sum(w**2))
        while tau2 + adj < 0:
            adj /= 2
        old, tau2 = tau2, tau2 + adj
        change = abs(old - tau2)
    if _reg_neg_loglik(tau2, y, v, x, reml) - _reg_neg_loglik(0.0, y, v, x, reml) > LL_TOL \
            and tau2 > THRESHOLD:
        return 0.0
    return float(tau2)


def meta_regression(yi, vi, design, terms: tuple[str, ...] | list[str], method: str = "REML", *,
                    hksj: bool | str = False, level: float = 0.95) -> MetaRegression:
    """Mixed-effects meta-regression, as metafor's ``rma(yi, vi, mods = ~ ...)``.

    Parameters
    ----------
    yi, vi : array_like
        Effects and sampling variances, one per study.
    design : array_like, shape (k, p)
        Design matrix X; its first column the intercept.
    terms : sequence of str
        Column names of ``X`` (``intercept``, ``COL`` or ``COL=level``).
    method : {"FE", "DL", "REML", "ML", "PM"}
        tau² estimator.
    hksj : bool or {"off", "plain", "adhoc"}
        Knapp–Hartung: the covariance scaled by ``s² = y'proj_y / (k - p)`` (never below 1 for
        "adhoc"), t(k - p) tests and intervals, QM an F statistic.
    level : float
        Confidence level.

    Returns
    -------
    MetaRegression
    """
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    x = np.asarray(design, float)
    if method not in METHODS:
        raise SpecError(f"unknown method '{method}'; use one of {', '.join(METHODS)}")
    if hksj not in HKSJ:
        raise SpecError(f"unknown HKSJ variant {hksj!r}; use off, plain or adhoc")
    k, p = x.shape
    if k <= p:
        raise SpecError(f"{k} studies cannot estimate {p} coefficients and tau²; use fewer "
                        "moderators")
    if np.linalg.matrix_rank(x) < p:
        raise SpecError("the moderators are collinear (a column is a combination of others, "
                        "or a level has no study); drop one")
    tau2 = tau2_regression(y, v, x, method)
    w = 1.0 / (v + tau2)
    inv, proj = _projection(x, w)
    beta = inv @ (x.T * w) @ y
    vb = inv
    test = HKSJ[hksj]
    alpha = 1 - level
    if test != "z":
        s2 = float(np.sum(w * (y - x @ beta) ** 2)) / (k - p)
        vb = (max(1.0, s2) if test == "adhoc" else s2) * vb
    se = np.sqrt(np.diag(vb))
    z = beta / se
    m = p - 1
    qm = float(beta[1:] @ np.linalg.solve(vb[1:, 1:], beta[1:])) if m else 0.0
    if test != "z":
        qm /= max(m, 1)
        qm_p = float(stats.f.sf(qm, m, k - p)) if m else 1.0
        pval = 2 * stats.t.sf(np.abs(z), k - p)
        crit = float(stats.t.ppf(1 - alpha / 2, k - p))
        qm_df: tuple[int, int | None] = (m, k - p)
    else:
        qm_p = float(stats.chi2.sf(qm, m)) if m else 1.0
        pval = 2 * stats.norm.sf(np.abs(z))
        crit = float(stats.norm.ppf(1 - alpha / 2))
        qm_df = (m, None)
    _, proj0 = _projection(x, 1.0 / v)
    qe = float(y @ proj0 @ y)
    return MetaRegression(
        method=method, test=test, terms=tuple(terms),
        estimate=tuple(float(b) for b in beta), se=tuple(float(s) for s in se),
        ci_low=tuple(float(b - crit * s) for b, s in zip(beta, se, strict=True)),
        ci_high=tuple(float(b + crit * s) for b, s in zip(beta, se, strict=True)),
        p=tuple(float(x) for x in pval), QM=qm, QM_df=qm_df, QM_p=qm_p, QE=qe,
        QE_p=float(stats.chi2.sf(qe, k - p)), tau2=tau2, k=k)
