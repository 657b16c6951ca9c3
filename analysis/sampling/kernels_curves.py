"""Log densities and gradients of dose-response and time-course, written by hand for numba.

The same models as :mod:`trialmeta.analysis.models.dose_response` (forms ``linear``,
``loglinear``, ``emax`` without a Hill exponent, ``piecewise``) and
:mod:`trialmeta.analysis.models.time_course` (forms ``bateman`` and ``piecewise``); the
tests compare them with the PyMC models at random points. Layouts of ``x``:

- dose-response: ``theta, log tau, z[S], beta[p], (log_ed50 | u[K-1]), alpha[S]``; the
  piecewise weights ``w[K]`` ~ Dirichlet(1) are PyMC's simplex transform of ``u``:
  ``w = softmax(u, -sum(u))``, log density ``lgamma(K) + log K + sum(log w)``
- time-course: ``log tau, z[S]`` then ``peak, log_t_rise[G], log_t_gap[G]`` (bateman; G
  timing groups, 1 when timing is shared) or
  ``knot_effect[K]`` (piecewise); the likelihood is the joint normal of each study's
  contrasts, factorised as ``e = W (y - mean) ~ Normal(0, sd^2)`` with ``W`` unit
  lower-triangular (:class:`~trialmeta.analysis.models.time_course.SamplingStructure`),
  or (binomial) weighted binomial terms of the active arms and their controls, with one
  baseline ``alpha[B]`` per study, time and control appended to ``x``
  (:class:`~trialmeta.analysis.models.time_course.BinomialStructure`)

The Bateman curve is scaled by its value at its own peak time t*; since t* maximises the
bracket, the derivative of the scale with respect to T_r or T_d is the bracket's partial
derivative at t* (the envelope theorem), which keeps the gradient short.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .kernels import (
    _EXPAND_SIG,
    _JIT,
    _LOGP_SIG,
    DOSE_BINARY,
    H_A,
    H_B,
    H_BASE_SD,
    H_BLOCKS,
    H_C,
    H_C2,
    H_D,
    H_FORM,
    H_K,
    H_LIK,
    H_P,
    H_PRIOR_SD,
    H_S,
    H_TAU_SCALE,
    HALF_NORMAL,
    HEADER,
    _binomial_logit,
    _buffer,
    _expit,
    _normal,
    _status,
    tau_prior,
)

# dose-response forms
LINEAR, LOGLINEAR, EMAX, DOSE_PIECEWISE = 0, 1, 2, 3
# time-course forms
BATEMAN, PIECEWISE = 0, 1


@numba.njit(**_JIT)
def _simplex(x: np.ndarray, start: int, k_n: int, w: np.ndarray) -> float:
    """Fill ``w`` with the weights of ``u = x[start:start + k_n - 1]``; return sum(log w)."""
    total = 0.0
    for m in range(k_n - 1):
        total += x[start + m]
    top = -total
    for m in range(k_n - 1):
        top = max(top, x[start + m])
    norm = math.exp(-total - top)
    for m in range(k_n - 1):
        norm += math.exp(x[start + m] - top)
    lse = top + math.log(norm)
    for m in range(k_n - 1):
        w[m] = math.exp(x[start + m] - lse)
    w[k_n - 1] = math.exp(-total - lse)
    return -k_n * lse  # sum over m of (v_m - lse), where the v_m sum to zero


@numba.njit(**_JIT)
def _dose_layout(buf: np.ndarray) -> tuple[int, int, int, int, int, int, int]:
    """Sizes and offsets of dose-response: S, arms, p, K, form, index of log_ed50/u, of alpha."""
    s_n, a_n, p, k_n = int(buf[H_S]), int(buf[H_C]), int(buf[H_P]), int(buf[H_K])
    form = int(buf[H_FORM])
    ie = 2 + s_n + p
    extra = 1 if form == EMAX else (k_n - 1 if form == DOSE_PIECEWISE else 0)
    return s_n, a_n, p, k_n, form, ie, ie + extra


@numba.njit(**_JIT)
def _dose_shape(form: int, j: int, dose: np.ndarray, g0: np.ndarray, ed50: float,
                coef: np.ndarray, w: np.ndarray, k_n: int) -> float:
    """g(dose_j): Emax from ed50, piecewise from the weights, else the stored value."""
    if form == EMAX:
        return dose[j] / (ed50 + dose[j])
    if form == DOSE_PIECEWISE:
        g = 0.0
        for m in range(k_n):
            g += coef[j * k_n + m] * w[m]
        return g
    return g0[j]


@numba.njit(**_JIT)
def _dose_arms(x: np.ndarray, buf: np.ndarray, ed50: float, w: np.ndarray):
    """Each study's amplitude, each arm's g(dose) and each study's mean g (three arrays)."""
    s_n, a_n, p, k_n, form, ie, ia = _dose_layout(buf)
    o = HEADER
    sidx = buf[o:o + a_n]
    dose, g0 = buf[o + 4 * a_n:o + 5 * a_n], buf[o + 5 * a_n:o + 6 * a_n]
    xm = buf[o + 6 * a_n:o + 6 * a_n + s_n * p]
    coef = buf[o + 6 * a_n + s_n * p:o + 6 * a_n + s_n * p + a_n * k_n]
    tau = math.exp(x[1])  # half-normal tau: x[1] is log tau
    amps = np.empty(s_n)
    for i in range(s_n):
        amps[i] = x[0] + tau * x[2 + i]
        for k in range(p):
            amps[i] += xm[i * p + k] * x[2 + s_n + k]
    gs, gbar, count = np.empty(a_n), np.zeros(s_n), np.zeros(s_n)
    for j in range(a_n):
        gs[j] = _dose_shape(form, j, dose, g0, ed50, coef, w, k_n)
        gbar[int(sidx[j])] += gs[j]
        count[int(sidx[j])] += 1.0
    for i in range(s_n):
        gbar[i] /= max(count[i], 1.0)
    return amps, gs, gbar


@numba.njit(**_JIT)
def dose_response_logp(x: np.ndarray, buf: np.ndarray, grad: np.ndarray) -> float:
    """Log density and gradient of dose-response (arm-level, binomial or normal)."""
    s_n, a_n, p, k_n, form, ie, ia = _dose_layout(buf)
    binary = buf[1] == DOSE_BINARY
    amp_sd, bsd, ed_m, ed_sd = buf[H_PRIOR_SD], buf[H_BASE_SD], buf[H_A], buf[H_B]
    o = HEADER
    sidx, y, n, lc = buf[o:o + a_n], buf[o + a_n:o + 2 * a_n], buf[o + 2 * a_n:o + 3 * a_n], \
        buf[o + 3 * a_n:o + 4 * a_n]
    dose = buf[o + 4 * a_n:o + 5 * a_n]
    xm = buf[o + 6 * a_n:o + 6 * a_n + s_n * p]
    coef = buf[o + 6 * a_n + s_n * p:o + 6 * a_n + s_n * p + a_n * k_n]
    iz, ib = 2, 2 + s_n
    theta = x[0]
    tau, dtau, lp, dt = tau_prior(x[1], HALF_NORMAL, buf[H_TAU_SCALE], 0.0)
    lp += _normal(theta, 0.0, amp_sd)
    grad[0] = -theta / (amp_sd * amp_sd)
    for j in range(p):
        lp += _normal(x[ib + j], 0.0, amp_sd)
        grad[ib + j] = -x[ib + j] / (amp_sd * amp_sd)
    ed50 = 0.0
    if form == EMAX:
        lp += _normal(x[ie], ed_m, ed_sd)
        grad[ie] = -(x[ie] - ed_m) / (ed_sd * ed_sd)
        ed50 = math.exp(x[ie])
    w = np.zeros(max(k_n, 1))
    if form == DOSE_PIECEWISE:  # Dirichlet(1) and the simplex transform's log Jacobian
        lp += math.lgamma(k_n) + math.log(k_n) + _simplex(x, ie, k_n, w)
        for m in range(k_n - 1):
            grad[ie + m] = k_n * (w[k_n - 1] - w[m])
    for i in range(s_n):
        z, a = x[iz + i], x[ia + i]
        lp += _normal(z, 0.0, 1.0) + _normal(a, 0.0, bsd)
        grad[iz + i] = -z
        grad[ia + i] = -a / (bsd * bsd)
    amps, gs, gbar = _dose_arms(x, buf, ed50, w)
    resid, study_resid, count = np.zeros(a_n), np.zeros(s_n), np.zeros(s_n)
    for j in range(a_n):  # arms centred on their study's mean (models.arms)
        s = int(sidx[j])
        eta = x[ia + s] + amps[s] * (gs[j] - gbar[s])
        if binary:
            lp += _binomial_logit(y[j], n[j], lc[j], eta)
            resid[j] = y[j] - n[j] * _expit(eta)
        else:  # n holds the standard error
            lp += _normal(y[j], eta, n[j])
            resid[j] = (y[j] - eta) / (n[j] * n[j])
        grad[ia + s] += resid[j]
        study_resid[s] += resid[j]
        count[s] += 1.0
    dtau_sum = 0.0
    for j in range(a_n):
        s = int(sidx[j])
        amp, g = amps[s], gs[j]
        r = resid[j] - study_resid[s] / count[s]  # sum_j r_j (g_j - gbar) = sum_j r'_j g_j
        grad[0] += r * g
        dtau_sum += r * g * x[iz + s]
        grad[iz + s] += r * g * tau
        for q in range(p):
            grad[ib + q] += r * g * xm[s * p + q]
        if form == EMAX:  # dg/dlog_ed50 = -dose * ed50 / (ed50 + dose)^2
            grad[ie] -= r * amp * dose[j] * ed50 / ((ed50 + dose[j]) ** 2)
        elif form == DOSE_PIECEWISE:  # dg/du_m = c_m w_m - c_K w_K + g (w_K - w_m)
            last = coef[j * k_n + k_n - 1] * w[k_n - 1]
            for m in range(k_n - 1):
                grad[ie + m] += r * amp * (coef[j * k_n + m] * w[m] - last
                                           + g * (w[k_n - 1] - w[m]))
    grad[1] = dtau * dtau_sum + dt
    return lp


@numba.njit(**_JIT)
def dose_response_expand(x: np.ndarray, buf: np.ndarray, out: np.ndarray) -> None:
    """Write the stored draws: theta, tau, z, beta, (log_ed50, ed50 | w), alpha, log-lik."""
    s_n, a_n, p, k_n, form, ie, ia = _dose_layout(buf)
    binary = buf[1] == DOSE_BINARY
    o = HEADER
    sidx, y, n, lc = buf[o:o + a_n], buf[o + a_n:o + 2 * a_n], buf[o + 2 * a_n:o + 3 * a_n], \
        buf[o + 3 * a_n:o + 4 * a_n]
    tau = math.exp(x[1])
    out[0], out[1] = x[0], tau
    q = 2
    for i in range(s_n + p):  # z, beta
        out[q + i] = x[2 + i]
    q += s_n + p
    ed50 = 0.0
    if form == EMAX:
        ed50 = math.exp(x[ie])
        out[q], out[q + 1] = x[ie], ed50
        q += 2
    w = np.zeros(max(k_n, 1))
    if form == DOSE_PIECEWISE:
        _simplex(x, ie, k_n, w)
        for m in range(k_n):
            out[q + m] = w[m]
        q += k_n
    for i in range(s_n):
        out[q + i] = x[ia + i]
    q += s_n
    amps, gs, gbar = _dose_arms(x, buf, ed50, w)
    for j in range(a_n):
        s = int(sidx[j])
        eta = x[ia + s] + amps[s] * (gs[j] - gbar[s])
        out[q + j] = (_binomial_logit(y[j], n[j], lc[j], eta) if binary
                      else _normal(y[j], eta, n[j]))


@numba.njit(**_JIT)
def _bracket(t: float, t_r: float, t_d: float) -> tuple[float, float, float]:
    """B(t) = exp(-t/T_d) - exp(-t/T_r) and its partial derivatives in T_r and T_d."""
    ed, er = math.exp(-t / t_d), math.exp(-t / t_r)
    return ed - er, -er * t / (t_r * t_r), ed * t / (t_d * t_d)


@numba.njit(**_JIT)
def _groups(buf: np.ndarray) -> int:
    """Return the number of timing groups (Bateman T_r, T_d per group; 1: shared)."""
    return max(1, int(buf[H_D]))


@numba.njit(**_JIT)
def _shapes(x: np.ndarray, form: int, ic: int, g_n: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T_r, T_d and the Bateman scale of each timing group (zeros for piecewise)."""
    t_r, t_d, norm = np.zeros(g_n), np.zeros(g_n), np.zeros(g_n)
    if form != BATEMAN:
        return t_r, t_d, norm
    for g in range(g_n):
        t_r[g] = math.exp(x[ic + 1 + g])
        t_d[g] = t_r[g] + math.exp(x[ic + 1 + g_n + g])
        tp = math.log(t_d[g] / t_r[g]) * t_d[g] * t_r[g] / (t_d[g] - t_r[g])
        norm[g] = math.exp(-tp / t_d[g]) - math.exp(-tp / t_r[g])
    return t_r, t_d, norm


@numba.njit(**_JIT)
def _time_course_residuals(x: np.ndarray, buf: np.ndarray, tau: float, form: int,
                           r: np.ndarray, f: np.ndarray, amp: np.ndarray) -> None:
    """Fill the curve f, the study's amplitude and the residual y - amp * f per contrast."""
    s_n, c_n = int(buf[H_S]), int(buf[H_C])
    o = HEADER
    ic = 1 + s_n
    t_r, t_d, norm = _shapes(x, form, ic, _groups(buf))
    for c in range(c_n):
        s = int(buf[o + c])
        if form == BATEMAN:
            g = int(buf[o + 7 * c_n + c])
            t = buf[o + 3 * c_n + c]
            f[c] = x[ic] * (math.exp(-t / t_d[g]) - math.exp(-t / t_r[g])) / norm[g]
        else:
            lo = int(buf[o + 4 * c_n + c])
            v_lo = 0.0 if lo == 0 else x[ic + lo - 1]
            f[c] = v_lo + buf[o + 5 * c_n + c] * (x[ic + lo] - v_lo)
        amp[c] = math.exp(tau * x[1 + s] - 0.5 * tau * tau)
        r[c] = buf[o + c_n + c] - amp[c] * f[c]


@numba.njit(**_JIT)
def _decorrelated(r: np.ndarray, start: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Return e = W r: row c of W, stored from its study's first contrast to c."""
    e = np.zeros(r.size)
    k = 0
    for c in range(r.size):
        lo = int(start[c])
        for j in range(lo, c + 1):
            e[c] += w[k + j - lo] * r[j]
        k += c + 1 - lo
    return e


@numba.njit(**_JIT)
def _binomial_terms(x: np.ndarray, buf: np.ndarray, amp: np.ndarray, f: np.ndarray,
                    dmean: np.ndarray, grad: np.ndarray, terms: np.ndarray | None) -> float:
    """Weighted binomial terms of the time-course (baselines last in ``x``).

    Adds d logL / d (amp * f) per contrast to ``dmean`` and the baselines' prior and
    likelihood gradient to ``grad``; writes each term's log density to ``terms`` if given.
    """
    c_n, b_n = int(buf[H_C]), int(buf[H_BLOCKS])
    o = HEADER + 8 * c_n
    bidx = buf[o:o + c_n]
    m = c_n + b_n
    p = o + c_n
    y, n, lc, wt = buf[p:p + m], buf[p + m:p + 2 * m], buf[p + 2 * m:p + 3 * m], \
        buf[p + 3 * m:p + 4 * m]
    ia, bsd = x.size - b_n, buf[H_BASE_SD]
    lp = 0.0
    offset, count, block_g = np.zeros(b_n), np.ones(b_n), np.zeros(b_n)
    for b in range(b_n):
        a = x[ia + b]
        lp += _normal(a, 0.0, bsd)
        grad[ia + b] = -a / (bsd * bsd)
    for j in range(c_n):  # arms centred on their block's mean (models.arms)
        offset[int(bidx[j])] += amp[j] * f[j]
        count[int(bidx[j])] += 1.0
    for b in range(b_n):
        offset[b] /= count[b]
    gs = np.zeros(c_n)
    for j in range(m):
        b = int(bidx[j]) if j < c_n else j - c_n
        eta = x[ia + b] - offset[b] + (amp[j] * f[j] if j < c_n else 0.0)
        term = wt[j] * _binomial_logit(y[j], n[j], lc[j], eta)
        lp += term
        if terms is not None:
            terms[j] = term
        g = wt[j] * (y[j] - n[j] * _expit(eta))
        grad[ia + b] += g
        block_g[b] += g
        if j < c_n:
            gs[j] = g
    for j in range(c_n):
        dmean[j] += gs[j] - block_g[int(bidx[j])] / count[int(bidx[j])]
    return lp


@numba.njit(**_JIT)
def time_course_logp(x: np.ndarray, buf: np.ndarray, grad: np.ndarray) -> float:
    """Log density and gradient of time-course (contrast level, joint normal likelihood)."""
    s_n, c_n, k_n = int(buf[H_S]), int(buf[H_C]), int(buf[H_K])
    g_n = _groups(buf)
    form = int(buf[H_FORM])
    peak_sd = buf[H_PRIOR_SD]
    o = HEADER
    sidx, sd, t = buf[o:o + c_n], buf[o + 2 * c_n:o + 3 * c_n], buf[o + 3 * c_n:o + 4 * c_n]
    pos, frac = buf[o + 4 * c_n:o + 5 * c_n], buf[o + 5 * c_n:o + 6 * c_n]
    start, gidx, w = buf[o + 6 * c_n:o + 7 * c_n], buf[o + 7 * c_n:o + 8 * c_n], \
        buf[o + 8 * c_n:]
    iz, ic = 1, 1 + s_n
    tau, dtau, lp, dt = tau_prior(x[0], HALF_NORMAL, buf[H_TAU_SCALE], 0.0)
    for i in range(s_n):
        lp += _normal(x[iz + i], 0.0, 1.0)
        grad[iz + i] = -x[iz + i]
    t_r, t_d, norm = _shapes(x, form, ic, g_n)
    dn_r, dn_d = np.zeros(g_n), np.zeros(g_n)
    if form == BATEMAN:
        peak, tsd = x[ic], buf[H_C2]
        lp += _normal(peak, 0.0, peak_sd)
        grad[ic] = -peak / (peak_sd * peak_sd)
        for g in range(g_n):
            a, b = x[ic + 1 + g], x[ic + 1 + g_n + g]
            lp += _normal(a, buf[H_A], tsd) + _normal(b, buf[H_B], tsd)
            grad[ic + 1 + g] = -(a - buf[H_A]) / (tsd * tsd)
            grad[ic + 1 + g_n + g] = -(b - buf[H_B]) / (tsd * tsd)
            tp = math.log(t_d[g] / t_r[g]) * t_d[g] * t_r[g] / (t_d[g] - t_r[g])
            _, dn_r[g], dn_d[g] = _bracket(tp, t_r[g], t_d[g])
    else:
        for j in range(k_n):
            lp += _normal(x[ic + j], 0.0, peak_sd)
            grad[ic + j] = -x[ic + j] / (peak_sd * peak_sd)
    r, f, amp = np.empty(c_n), np.empty(c_n), np.empty(c_n)
    _time_course_residuals(x, buf, tau, form, r, f, amp)
    dmean = np.zeros(c_n)  # d logL / d (amp * f) per contrast
    if buf[H_LIK] == 1.0:
        lp += _binomial_terms(x, buf, amp, f, dmean, grad, None)
    else:
        e = _decorrelated(r, start, w)
        k = 0
        for c in range(c_n):
            lo = int(start[c])
            lp += _normal(e[c], 0.0, sd[c])
            g = e[c] / (sd[c] * sd[c])
            for j in range(lo, c + 1):
                dmean[j] += g * w[k + j - lo]
            k += c + 1 - lo
    g_peak = 0.0  # d logL / d peak, and d logL / d(T_r, T_d) of each group, via the curve
    g_r, g_d = np.zeros(g_n), np.zeros(g_n)
    dtau_sum = 0.0
    for c in range(c_n):
        s = int(sidx[c])
        grad[iz + s] += dmean[c] * f[c] * amp[c] * tau
        dtau_sum += dmean[c] * f[c] * amp[c] * (x[iz + s] - tau)
        rf = dmean[c] * amp[c]  # d logL / d f
        if form == BATEMAN:
            g = int(gidx[c])
            br, dbr, dbd = _bracket(t[c], t_r[g], t_d[g])
            g_peak += rf * br / norm[g]
            g_r[g] += rf * x[ic] * (dbr * norm[g] - br * dn_r[g]) / (norm[g] * norm[g])
            g_d[g] += rf * x[ic] * (dbd * norm[g] - br * dn_d[g]) / (norm[g] * norm[g])
        else:
            lo = int(pos[c])
            if lo > 0:
                grad[ic + lo - 1] += rf * (1.0 - frac[c])
            grad[ic + lo] += rf * frac[c]
    grad[0] = dtau * dtau_sum + dt
    if form == BATEMAN:  # T_r = e^a, T_d = e^a + e^b, per group
        grad[ic] += g_peak
        for g in range(g_n):
            grad[ic + 1 + g] += t_r[g] * (g_r[g] + g_d[g])
            grad[ic + 1 + g_n + g] += (t_d[g] - t_r[g]) * g_d[g]
    return lp


@numba.njit(**_JIT)
def time_course_expand(x: np.ndarray, buf: np.ndarray, out: np.ndarray) -> None:
    """Write the stored draws: tau, z, curve parameters (and T_r, T_d, t* per group), log-lik."""
    s_n, c_n, k_n = int(buf[H_S]), int(buf[H_C]), int(buf[H_K])
    g_n = _groups(buf)
    form = int(buf[H_FORM])
    o = HEADER
    sd, start, w = buf[o + 2 * c_n:o + 3 * c_n], buf[o + 6 * c_n:o + 7 * c_n], \
        buf[o + 8 * c_n:]
    ic = 1 + s_n
    tau = math.exp(x[0])
    out[0] = tau
    for i in range(s_n):
        out[1 + i] = x[1 + i]
    q = 1 + s_n
    t_r, t_d, _ = _shapes(x, form, ic, g_n)
    if form == BATEMAN:
        for j in range(1 + 2 * g_n):  # peak, log_t_rise[G], log_t_gap[G]
            out[q + j] = x[ic + j]
        q += 1 + 2 * g_n
        for g in range(g_n):
            out[q + g], out[q + g_n + g] = t_r[g], t_d[g]
            out[q + 2 * g_n + g] = math.log(t_d[g] / t_r[g]) * t_d[g] * t_r[g] / (
                t_d[g] - t_r[g])
        q += 3 * g_n
    else:
        for j in range(k_n):
            out[q + j] = x[ic + j]
        q += k_n
    r, f, amp = np.empty(c_n), np.empty(c_n), np.empty(c_n)
    _time_course_residuals(x, buf, tau, form, r, f, amp)
    if buf[H_LIK] == 1.0:
        b_n = int(buf[H_BLOCKS])
        ia = x.size - b_n
        for b in range(b_n):
            out[q + b] = x[ia + b]
        _binomial_terms(x, buf, amp, f, np.zeros(c_n), np.zeros(x.size), out[q + b_n:])
        return
    e = _decorrelated(r, start, w)
    for c in range(c_n):
        out[q + c] = _normal(e[c], 0.0, sd[c])


@numba.cfunc(_LOGP_SIG, cache=True, nogil=True)
def dose_response_logp_c(dim, x_, grad_, logp_, data_):  # noqa: D103
    grad = numba.carray(grad_, (dim,))
    value = dose_response_logp(numba.carray(x_, (dim,)), _buffer(data_), grad)
    logp_[0] = value
    return _status(value, grad)


@numba.cfunc(_LOGP_SIG, cache=True, nogil=True)
def time_course_logp_c(dim, x_, grad_, logp_, data_):  # noqa: D103
    grad = numba.carray(grad_, (dim,))
    value = time_course_logp(numba.carray(x_, (dim,)), _buffer(data_), grad)
    logp_[0] = value
    return _status(value, grad)


@numba.cfunc(_EXPAND_SIG, cache=True, nogil=True)
def dose_response_expand_c(dim, n_out, x_, out_, data_):  # noqa: D103
    dose_response_expand(numba.carray(x_, (dim,)), _buffer(data_),
                         numba.carray(out_, (n_out,)))
    return 0


@numba.cfunc(_EXPAND_SIG, cache=True, nogil=True)
def time_course_expand_c(dim, n_out, x_, out_, data_):  # noqa: D103
    time_course_expand(numba.carray(x_, (dim,)), _buffer(data_), numba.carray(out_, (n_out,)))
    return 0
