"""Log density and gradient of the network model, written by hand for numba.

The same model as :class:`trialmeta.analysis.models.network.Network` (the tests compare log
density, gradient, stored draws and log-likelihoods with PyMC's at random points). One
kernel serves the consistency model, the unrelated-mean-effects model and node-splitting:
each non-baseline arm's mean relative effect is ``effects[plus] - effects[minus]``
(an index of -1 reads 0).

Unconstrained parameters ``x``: ``effects[E], t, mu[S], u[S], e[A]`` where ``t`` is log tau
(half-normal, half-Cauchy) or log tau² (Turner, Rhodes). Buffer after the header (A arms):
``study[A], base[A], plus[A], minus[A], w_shared[A], w_own[A], y[A], n_or_se[A],
log_choose[A]``. Header ``H_A`` holds the variant: 0 consistency, 1 UME, 2 node-split.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .kernels import (
    _EXPAND_SIG,
    _HALF_LOG_2PI,
    _JIT,
    _LOGP_SIG,
    H_A,
    H_BASE_SD,
    H_C,
    H_FAMILY,
    H_K,
    H_PRIOR_SD,
    H_S,
    H_TAU_KIND,
    H_TAU_LOC,
    H_TAU_SCALE,
    HALF_CAUCHY,
    HEADER,
    _binomial_logit,
    _buffer,
    _expit,
    _normal,
    _status,
    tau_prior,
)

NETWORK_BINARY, NETWORK_NORMAL = 6.0, 7.0
CONSISTENCY, UME, SPLIT = 0, 1, 2


@numba.njit(**_JIT)
def _arms(buf: np.ndarray, a_n: int):  # nine array views
    """Return the buffer's per-arm columns (see the module docstring for their order)."""
    o = HEADER
    return (buf[o:o + a_n], buf[o + a_n:o + 2 * a_n], buf[o + 2 * a_n:o + 3 * a_n],
            buf[o + 3 * a_n:o + 4 * a_n], buf[o + 4 * a_n:o + 5 * a_n],
            buf[o + 5 * a_n:o + 6 * a_n], buf[o + 6 * a_n:o + 7 * a_n],
            buf[o + 7 * a_n:o + 8 * a_n], buf[o + 8 * a_n:o + 9 * a_n])


@numba.njit(**_JIT)
def network_logp(x: np.ndarray, buf: np.ndarray, grad: np.ndarray) -> float:
    """Log density and gradient (into ``grad``) of the arm-based network model."""
    e_n, s_n, a_n = int(buf[H_K]), int(buf[H_S]), int(buf[H_C])
    binary = buf[H_FAMILY] == NETWORK_BINARY
    esd, bsd = buf[H_PRIOR_SD], buf[H_BASE_SD]
    sidx, base, plus, minus, ws, wo, y, n, lc = _arms(buf, a_n)
    it, imu, iu, ie = e_n, e_n + 1, e_n + 1 + s_n, e_n + 1 + 2 * s_n
    tau, dtau, lp, dt = tau_prior(x[it], int(buf[H_TAU_KIND]), buf[H_TAU_SCALE],
                                  buf[H_TAU_LOC])
    for j in range(e_n):
        lp += _normal(x[j], 0.0, esd)
        grad[j] = -x[j] / (esd * esd)
    for i in range(s_n):
        mu, u = x[imu + i], x[iu + i]
        lp += _normal(mu, 0.0, bsd) - 0.5 * u * u - _HALF_LOG_2PI
        grad[imu + i] = -mu / (bsd * bsd)
        grad[iu + i] = -u
    effect, noises = np.zeros(a_n), np.zeros(a_n)
    total, count = np.zeros(s_n), np.zeros(s_n)
    for a in range(a_n):
        s = int(sidx[a])
        count[s] += 1.0
        if base[a] == 0.0:
            p, m = int(plus[a]), int(minus[a])
            noises[a] = ws[a] * x[iu + s] + wo[a] * x[ie + a]
            effect[a] = tau * noises[a]
            if p >= 0:
                effect[a] += x[p]
            if m >= 0:
                effect[a] -= x[m]
            total[s] += effect[a]
    resid, study_resid = np.zeros(a_n), np.zeros(s_n)
    for a in range(a_n):  # arms centred on their study's mean (models.arms)
        s = int(sidx[a])
        e = x[ie + a]
        lp -= 0.5 * e * e + _HALF_LOG_2PI
        grad[ie + a] = -e
        eta = x[imu + s] + effect[a] - total[s] / count[s]
        if binary:
            lp += _binomial_logit(y[a], n[a], lc[a], eta)
            resid[a] = y[a] - n[a] * _expit(eta)
        else:
            lp += _normal(y[a], eta, n[a])
            resid[a] = (y[a] - eta) / (n[a] * n[a])
        study_resid[s] += resid[a]
    dtau_sum = 0.0
    for a in range(a_n):
        s = int(sidx[a])
        grad[imu + s] += resid[a]
        if base[a] == 0.0:
            r = resid[a] - study_resid[s] / count[s]
            p, m = int(plus[a]), int(minus[a])
            if p >= 0:
                grad[p] += r
            if m >= 0:
                grad[m] -= r
            dtau_sum += r * noises[a]
            grad[iu + s] += r * tau * ws[a]
            grad[ie + a] += r * tau * wo[a]
    grad[it] = dtau * dtau_sum + dt
    return lp


@numba.njit(**_JIT)
def network_expand(x: np.ndarray, buf: np.ndarray, out: np.ndarray) -> None:
    """Write the stored draws: effects (and d), tau, [log tau²], mu, u, e, log-likelihoods."""
    e_n, s_n, a_n = int(buf[H_K]), int(buf[H_S]), int(buf[H_C])
    binary = buf[H_FAMILY] == NETWORK_BINARY
    variant = int(buf[H_A])
    kind = int(buf[H_TAU_KIND])
    sidx, base, plus, minus, ws, wo, y, n, lc = _arms(buf, a_n)
    it, imu, iu, ie = e_n, e_n + 1, e_n + 1 + s_n, e_n + 1 + 2 * s_n
    tau = math.exp(x[it]) if kind <= HALF_CAUCHY else math.exp(0.5 * x[it])
    free = e_n - (1 if variant == SPLIT else 0)
    q = 0
    for j in range(free):  # d_free (or d_pair)
        out[q + j] = x[j]
    q += free
    if variant != UME:  # d: the reference's 0, then d_free
        out[q] = 0.0
        for j in range(free):
            out[q + 1 + j] = x[j]
        q += free + 1
    if variant == SPLIT:
        out[q] = x[free]
        q += 1
    out[q] = tau
    q += 1
    if kind > HALF_CAUCHY:
        out[q] = x[it]
        q += 1
    for i in range(2 * s_n + a_n):  # mu, u, e
        out[q + i] = x[imu + i]
    q += 2 * s_n + a_n
    effect, total, count = np.zeros(a_n), np.zeros(s_n), np.zeros(s_n)
    for a in range(a_n):
        s = int(sidx[a])
        count[s] += 1.0
        if base[a] == 0.0:
            effect[a] = tau * (ws[a] * x[iu + s] + wo[a] * x[ie + a])
            if plus[a] >= 0:
                effect[a] += x[int(plus[a])]
            if minus[a] >= 0:
                effect[a] -= x[int(minus[a])]
            total[s] += effect[a]
    for a in range(a_n):
        s = int(sidx[a])
        eta = x[imu + s] + effect[a] - total[s] / count[s]
        out[q + a] = _binomial_logit(y[a], n[a], lc[a], eta) if binary \
            else _normal(y[a], eta, n[a])


@numba.cfunc(_LOGP_SIG, cache=True, nogil=True)
def network_logp_c(dim, x_, grad_, logp_, data_):  # noqa: D103
    grad = numba.carray(grad_, (dim,))
    value = network_logp(numba.carray(x_, (dim,)), _buffer(data_), grad)
    logp_[0] = value
    return _status(value, grad)


@numba.cfunc(_EXPAND_SIG, cache=True, nogil=True)
def network_expand_c(dim, n_out, x_, out_, data_):  # noqa: D103
    network_expand(numba.carray(x_, (dim,)), _buffer(data_), numba.carray(out_, (n_out,)))
    return 0
