"""Log densities and gradients of pooled-rate and contrast, written by hand for numba.

These are the same models as the PyMC ones in :mod:`trialmeta.analysis.models` (the tests
check log density and gradient against PyMC's at random points), compiled once to machine
code and cached on disk by numba, as rstanarm ships precompiled Stan models. nutpie's Rust
sampler calls them as C functions: no Python, no GIL, chains in parallel threads.

Every function reads its data from one float64 buffer (``buf``) laid out by
:mod:`trialmeta.analysis.sampling.precompiled`; the first :data:`HEADER` entries describe it.
Unconstrained parameters ``x``:

- pooled-rate: ``mu, log tau, z[k], beta[p]``
- contrast: ``d, t, u[S], e[C], beta[p], w[S]`` where ``t`` is log tau (half-normal,
  half-Cauchy priors) or log tau² (Turner, Rhodes priors) and ``w`` is ``alpha``
  (binary, arm-based) or ``z_control`` (continuous).
"""

from __future__ import annotations

import math

import numba
import numpy as np

HEADER = 24
# header slots
H_SIZE, H_FAMILY, H_K, H_S, H_C, H_P, H_TAU_KIND = 0, 1, 2, 3, 4, 5, 6
H_TAU_SCALE, H_TAU_LOC, H_PRIOR_M, H_PRIOR_SD, H_BASE_SD = 7, 8, 9, 10, 11
# slots of the curve families (kernels_curves): form, rho, and four prior constants
H_FORM, H_RHO, H_A, H_B, H_C2, H_D = 12, 13, 14, 15, 16, 17
# time-course: likelihood (0 joint normal, 1 binomial) and number of baseline blocks
H_LIK, H_BLOCKS = 18, 19
# families
POOLED_RATE, CONTRAST_BINARY, CONTRAST_NORMAL = 0.0, 1.0, 2.0
DOSE_BINARY, DOSE_NORMAL, TIME_COURSE = 3.0, 4.0, 5.0
# tau priors
HALF_NORMAL, HALF_CAUCHY, TURNER, RHODES = 0, 1, 2, 3

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_HALF_NORMAL = 0.5 * math.log(2.0 / math.pi)
_LOG_HALF_CAUCHY = math.log(2.0 / math.pi)
_LOG_T5 = math.lgamma(3.0) - math.lgamma(2.5) - 0.5 * math.log(5.0 * math.pi)

_JIT = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}
_LOGP_SIG = numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                              numba.types.CPointer(numba.types.double),
                              numba.types.CPointer(numba.types.double), numba.types.voidptr)
_EXPAND_SIG = numba.types.int64(numba.types.uint64, numba.types.uint64,
                                numba.types.CPointer(numba.types.double),
                                numba.types.CPointer(numba.types.double), numba.types.voidptr)


@numba.njit(**_JIT)
def _normal(x: float, m: float, sd: float) -> float:
    r = (x - m) / sd
    return -0.5 * r * r - math.log(sd) - _HALF_LOG_2PI


@numba.njit(**_JIT)
def _log1pexp(t: float) -> float:
    """log(1 + e^t) without overflow."""
    return max(t, 0.0) + math.log1p(math.exp(-abs(t)))


@numba.njit(**_JIT)
def _expit(t: float) -> float:
    if t >= 0.0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


@numba.njit(**_JIT)
def _binomial_logit(y: float, n: float, log_choose: float, t: float) -> float:
    return log_choose + y * t - n * _log1pexp(t)


@numba.njit(**_JIT)
def tau_prior(t: float, kind: int, scale: float, loc: float) -> tuple[float, float, float, float]:
    """Return tau, dtau/dt, the prior's log density in ``t`` (Jacobian included), its slope."""
    if kind == HALF_NORMAL or kind == HALF_CAUCHY:
        tau = math.exp(t)
        r = tau / scale
        if kind == HALF_NORMAL:
            return tau, tau, _LOG_HALF_NORMAL - math.log(scale) - 0.5 * r * r + t, 1.0 - r * r
        q = r * r
        return tau, tau, _LOG_HALF_CAUCHY - math.log(scale) - math.log1p(q) + t, \
            1.0 - 2.0 * q / (1.0 + q)
    tau = math.exp(0.5 * t)
    r = (t - loc) / scale
    if kind == TURNER:
        return tau, 0.5 * tau, -0.5 * r * r - math.log(scale) - _HALF_LOG_2PI, -r / scale
    q = 1.0 + r * r / 5.0
    return tau, 0.5 * tau, _LOG_T5 - math.log(scale) - 3.0 * math.log(q), \
        -1.2 * r / (scale * q)


@numba.njit(**_JIT)
def pooled_rate_logp(x: np.ndarray, buf: np.ndarray, grad: np.ndarray) -> float:
    """Log density and gradient (into ``grad``) of pooled-rate.

    ``x`` = mu, log tau, z[k], beta[p], then (when S > 0 studies share arms) log sigma, v[S]:
    theta_i = mu + x_i beta + sigma v_s(i) + tau z_i.
    """
    k, p, s_n = int(buf[H_K]), int(buf[H_P]), int(buf[H_S])
    m, sd = buf[H_PRIOR_M], buf[H_PRIOR_SD]
    y, n, lc = buf[HEADER:HEADER + k], buf[HEADER + k:HEADER + 2 * k], \
        buf[HEADER + 2 * k:HEADER + 3 * k]
    xm = buf[HEADER + 3 * k:HEADER + 3 * k + k * p]
    sidx = buf[HEADER + 3 * k + k * p:HEADER + 4 * k + k * p]
    mu = x[0]
    tau, dtau, lp, dt = tau_prior(x[1], HALF_NORMAL, buf[H_TAU_SCALE], 0.0)
    lp += _normal(mu, m, sd)
    grad[0] = -(mu - m) / (sd * sd)
    for j in range(p):
        b = x[2 + k + j]
        lp += _normal(b, 0.0, sd)
        grad[2 + k + j] = -b / (sd * sd)
    iv = 3 + k + p
    sigma = dsigma = ds = 0.0
    if s_n > 0:
        sigma, dsigma, lps, ds = tau_prior(x[2 + k + p], HALF_NORMAL, buf[H_BASE_SD], 0.0)
        lp += lps
        for i in range(s_n):
            lp += _normal(x[iv + i], 0.0, 1.0)
            grad[iv + i] = -x[iv + i]
    rz = rv = 0.0
    for i in range(k):
        z = x[2 + i]
        theta = mu + tau * z
        if s_n > 0:
            theta += sigma * x[iv + int(sidx[i])]
        for j in range(p):
            theta += xm[i * p + j] * x[2 + k + j]
        lp += _binomial_logit(y[i], n[i], lc[i], theta) - 0.5 * z * z - _HALF_LOG_2PI
        r = y[i] - n[i] * _expit(theta)  # d loglik / d theta
        grad[0] += r
        rz += r * z
        grad[2 + i] = tau * r - z
        if s_n > 0:
            v = x[iv + int(sidx[i])]
            rv += r * v
            grad[iv + int(sidx[i])] += sigma * r
        for j in range(p):
            grad[2 + k + j] += r * xm[i * p + j]
    grad[1] = dtau * rz + dt
    if s_n > 0:
        grad[2 + k + p] = dsigma * rv + ds
    return lp


@numba.njit(**_JIT)
def pooled_rate_expand(x: np.ndarray, buf: np.ndarray, out: np.ndarray) -> None:
    """Write the stored draws: mu, tau, z, beta, (sigma, v), theta, rate, pooled_rate, log-lik."""
    k, p, s_n = int(buf[H_K]), int(buf[H_P]), int(buf[H_S])
    y, n, lc = buf[HEADER:HEADER + k], buf[HEADER + k:HEADER + 2 * k], \
        buf[HEADER + 2 * k:HEADER + 3 * k]
    xm = buf[HEADER + 3 * k:HEADER + 3 * k + k * p]
    sidx = buf[HEADER + 3 * k + k * p:HEADER + 4 * k + k * p]
    mu, tau = x[0], math.exp(x[1])
    out[0], out[1] = mu, tau
    o = 2
    for i in range(k + p):
        out[o + i] = x[2 + i]
    o += k + p
    iv = 3 + k + p
    sigma = 0.0
    if s_n > 0:
        sigma = math.exp(x[2 + k + p])
        out[o] = sigma
        for i in range(s_n):
            out[o + 1 + i] = x[iv + i]
        o += 1 + s_n
    for i in range(k):
        theta = mu + tau * x[2 + i]
        if s_n > 0:
            theta += sigma * x[iv + int(sidx[i])]
        for j in range(p):
            theta += xm[i * p + j] * x[2 + k + j]
        out[o + i] = theta
        out[o + k + i] = _expit(theta)
        out[o + 2 * k + 1 + i] = _binomial_logit(y[i], n[i], lc[i], theta)
    out[o + 2 * k] = _expit(mu)


@numba.njit(**_JIT)
def _study_offsets(deltas: np.ndarray, sidx: np.ndarray, s_n: int):  # (offsets, arm counts)
    """Return each study's offset ``sum_j delta_j / (J + 1)`` and its arm count ``J + 1``.

    The offset is the study's mean arm effect, the control's 0 included.
    """
    total, count = np.zeros(s_n), np.ones(s_n)
    for c in range(deltas.size):
        total[int(sidx[c])] += deltas[c]
        count[int(sidx[c])] += 1.0
    return total / count, count


@numba.njit(**_JIT)
def _centred_binomial(deltas: np.ndarray, sidx: np.ndarray, alpha: np.ndarray,
                      ya: np.ndarray, na: np.ndarray, lca: np.ndarray, yc: np.ndarray,
                      nc: np.ndarray, lcc: np.ndarray):  # (resid, d alpha, offsets, log-lik)
    """Binomial terms of symmetric arms: control ``alpha - o``, active ``alpha + delta - o``.

    Returns d logL / d delta per contrast (``r_j - R_i / K_i``), d logL / d alpha per
    study (``R_i``, the sum of its arms' residuals), the offsets ``o_i`` and the log-likelihood.
    """
    s_n = alpha.size
    offset, count = _study_offsets(deltas, sidx, s_n)
    total = 0.0
    arms = np.empty(s_n)
    for i in range(s_n):
        t = alpha[i] - offset[i]
        total += _binomial_logit(yc[i], nc[i], lcc[i], t)
        arms[i] = yc[i] - nc[i] * _expit(t)
    resid = np.empty(deltas.size)
    for c in range(deltas.size):
        s = int(sidx[c])
        t = alpha[s] + deltas[c] - offset[s]
        total += _binomial_logit(ya[c], na[c], lca[c], t)
        resid[c] = ya[c] - na[c] * _expit(t)
        arms[s] += resid[c]
    for c in range(deltas.size):
        resid[c] -= arms[int(sidx[c])] / count[int(sidx[c])]
    return resid, arms, offset, total


@numba.njit(**_JIT)
def contrast_logp(x: np.ndarray, buf: np.ndarray, grad: np.ndarray) -> float:
    """Log density and gradient of contrast (arm-based binomial or normal contrasts)."""
    s_n, c_n, p = int(buf[H_S]), int(buf[H_C]), int(buf[H_P])
    binary = buf[H_FAMILY] == CONTRAST_BINARY
    esd, bsd = buf[H_PRIOR_SD], buf[H_BASE_SD]
    o = HEADER
    sidx, ws, wo = buf[o:o + c_n], buf[o + c_n:o + 2 * c_n], buf[o + 2 * c_n:o + 3 * c_n]
    ya, na, lca = buf[o + 3 * c_n:o + 4 * c_n], buf[o + 4 * c_n:o + 5 * c_n], \
        buf[o + 5 * c_n:o + 6 * c_n]
    o += 6 * c_n
    yc, nc, lcc = buf[o:o + s_n], buf[o + s_n:o + 2 * s_n], buf[o + 2 * s_n:o + 3 * s_n]
    o += 3 * s_n
    xm = buf[o:o + c_n * p]
    iu, ie, ib, iw = 2, 2 + s_n, 2 + s_n + c_n, 2 + s_n + c_n + p
    d = x[0]
    tau, dtau, lp, dt = tau_prior(x[1], int(buf[H_TAU_KIND]), buf[H_TAU_SCALE], buf[H_TAU_LOC])
    lp += _normal(d, 0.0, esd)
    grad[0] = -d / (esd * esd)
    for j in range(p):
        lp += _normal(x[ib + j], 0.0, esd)
        grad[ib + j] = -x[ib + j] / (esd * esd)
    for i in range(s_n):
        u, w = x[iu + i], x[iw + i]
        lp -= 0.5 * u * u + _HALF_LOG_2PI
        grad[iu + i] = -u
        if binary:
            lp += _normal(w, 0.0, bsd)
            grad[iw + i] = -w / (bsd * bsd)
        else:
            lp -= 0.5 * w * w + _HALF_LOG_2PI
            grad[iw + i] = -w
    deltas, noises = np.empty(c_n), np.empty(c_n)
    for c in range(c_n):
        s = int(sidx[c])
        noises[c] = ws[c] * x[iu + s] + wo[c] * x[ie + c]
        deltas[c] = d + tau * noises[c]
        for j in range(p):
            deltas[c] += xm[c * p + j] * x[ib + j]
    resid = np.zeros(c_n)
    if binary:  # symmetric arms: logits centred on the study mean (models.arms)
        resid, arms, _, total = _centred_binomial(deltas, sidx, x[iw:iw + s_n],
                                                       ya, na, lca, yc, nc, lcc)
        lp += total
        for i in range(s_n):
            grad[iw + i] += arms[i]
    dtau_sum = 0.0
    for c in range(c_n):
        s = int(sidx[c])
        e = x[ie + c]
        lp -= 0.5 * e * e + _HALF_LOG_2PI
        noise = noises[c]
        if binary:
            r = resid[c]
        else:  # ya: contrast, na: own sd, lca: sqrt(shared variance)
            mean = deltas[c] + lca[c] * x[iw + s]
            r = (ya[c] - mean) / (na[c] * na[c])
            lp += _normal(ya[c], mean, na[c])
            grad[iw + s] += r * lca[c]
        grad[0] += r
        dtau_sum += r * noise
        grad[iu + s] += r * tau * ws[c]
        grad[ie + c] = r * tau * wo[c] - e
        for j in range(p):
            grad[ib + j] += r * xm[c * p + j]
    grad[1] = dtau * dtau_sum + dt
    return lp


@numba.njit(**_JIT)
def contrast_expand(x: np.ndarray, buf: np.ndarray, out: np.ndarray) -> None:
    """Write the stored draws: d, tau, [t], u, e, beta, delta, w, log-likelihoods."""
    s_n, c_n, p = int(buf[H_S]), int(buf[H_C]), int(buf[H_P])
    binary = buf[H_FAMILY] == CONTRAST_BINARY
    kind = int(buf[H_TAU_KIND])
    o = HEADER
    sidx, ws, wo = buf[o:o + c_n], buf[o + c_n:o + 2 * c_n], buf[o + 2 * c_n:o + 3 * c_n]
    ya, na, lca = buf[o + 3 * c_n:o + 4 * c_n], buf[o + 4 * c_n:o + 5 * c_n], \
        buf[o + 5 * c_n:o + 6 * c_n]
    o += 6 * c_n
    yc, nc, lcc = buf[o:o + s_n], buf[o + s_n:o + 2 * s_n], buf[o + 2 * s_n:o + 3 * s_n]
    o += 3 * s_n
    xm = buf[o:o + c_n * p]
    iu, ie, ib, iw = 2, 2 + s_n, 2 + s_n + c_n, 2 + s_n + c_n + p
    tau = math.exp(x[1]) if kind <= HALF_CAUCHY else math.exp(0.5 * x[1])
    out[0], out[1] = x[0], tau
    q = 2
    if kind > HALF_CAUCHY:
        out[2] = x[1]
        q = 3
    for i in range(s_n + c_n + p):  # u, e, beta
        out[q + i] = x[2 + i]
    q += s_n + c_n + p
    deltas = np.empty(c_n)
    for c in range(c_n):
        s = int(sidx[c])
        deltas[c] = x[0] + tau * (ws[c] * x[iu + s] + wo[c] * x[ie + c])
        for j in range(p):
            deltas[c] += xm[c * p + j] * x[ib + j]
        out[q + c] = deltas[c]
    offset = _study_offsets(deltas, sidx, s_n)[0]
    for c in range(c_n):
        s = int(sidx[c])
        if binary:
            ll = _binomial_logit(ya[c], na[c], lca[c], x[iw + s] + deltas[c] - offset[s])
        else:
            ll = _normal(ya[c], deltas[c] + lca[c] * x[iw + s], na[c])
        out[q + c_n + s_n + (s_n if binary else 0) + c] = ll
    q += c_n
    for i in range(s_n):
        out[q + i] = x[iw + i]
        if binary:
            out[q + s_n + i] = _binomial_logit(yc[i], nc[i], lcc[i], x[iw + i] - offset[i])


@numba.njit(**_JIT)
def _buffer(data_):
    header = numba.carray(data_, (HEADER,), dtype=np.float64)
    return numba.carray(data_, (int(header[H_SIZE]),), dtype=np.float64)


@numba.njit(**_JIT)
def _status(value: float, grad: np.ndarray) -> int:
    """Return nutpie's status codes: 0 fine, 3 a non-finite gradient, 4 a non-finite log density."""
    for g in grad:
        if not math.isfinite(g):
            return 3
    return 0 if math.isfinite(value) else 4


# The C entry points nutpie calls. Module-level functions (not closures), so that numba's
# on-disk cache finds them again in the next process.
@numba.cfunc(_LOGP_SIG, cache=True, nogil=True)
def pooled_rate_logp_c(dim, x_, grad_, logp_, data_):  # noqa: D103
    grad = numba.carray(grad_, (dim,))
    value = pooled_rate_logp(numba.carray(x_, (dim,)), _buffer(data_), grad)
    logp_[0] = value
    return _status(value, grad)


@numba.cfunc(_LOGP_SIG, cache=True, nogil=True)
def contrast_logp_c(dim, x_, grad_, logp_, data_):  # noqa: D103
    grad = numba.carray(grad_, (dim,))
    value = contrast_logp(numba.carray(x_, (dim,)), _buffer(data_), grad)
    logp_[0] = value
    return _status(value, grad)


@numba.cfunc(_EXPAND_SIG, cache=True, nogil=True)
def pooled_rate_expand_c(dim, n_out, x_, out_, data_):  # noqa: D103
    pooled_rate_expand(numba.carray(x_, (dim,)), _buffer(data_), numba.carray(out_, (n_out,)))
    return 0


@numba.cfunc(_EXPAND_SIG, cache=True, nogil=True)
def contrast_expand_c(dim, n_out, x_, out_, data_):  # noqa: D103
    contrast_expand(numba.carray(x_, (dim,)), _buffer(data_), numba.carray(out_, (n_out,)))
    return 0
