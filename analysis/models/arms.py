"""Symmetric arm-based likelihoods: each study's arms centred on the study's mean logit.

The usual arm-based parametrisation (Smith, Spiegelhalter & Thomas 1995) gives the control
arm the logit ``alpha_i`` and an active arm ``alpha_i + delta_ij``. With a proper prior on
``alpha_i`` that is asymmetric: the active arm's prior is wider than the control's, so when
both arms sit at 0 % (or 100 %) the posterior of ``delta`` moves away from 0 although the
trial holds no information about an odds ratio (five 0/20 vs 0/20 trials gave P(OR < 1)
= 0.98). Every arm-based model here therefore uses the centred (exchangeable) form::

    logit p_ij = alpha_i + delta_ij - (1 / K_i) sum_k delta_ik,    delta_i,control = 0

where ``K_i`` is the number of arms of study i (control included) and ``alpha_i`` is the
mean of the study's arm logits. In a two-arm trial the arms have logits
``alpha_i -/+ delta_i / 2``: swapping the arms mirrors the posterior of ``delta``, and in a
network the result does not depend on which arm is the study's baseline. The likelihood
is the same; only the prior of the nuisance baselines changes.
"""

from __future__ import annotations

import numpy as np


def centring_matrix(group: np.ndarray, n_groups: int, extra: int = 0) -> np.ndarray:
    """Return ``M`` with ``(M @ x)[g] = sum(x over group g) / (count(g) + extra)``.

    ``group`` gives each arm's (or contrast's) group index. ``extra = 1`` counts a
    control arm that is not among the rows (its effect is 0), as for contrast rows.
    """
    group = np.asarray(group, dtype=int)
    counts = np.bincount(group, minlength=n_groups) + extra
    m = np.zeros((n_groups, group.size))
    m[group, np.arange(group.size)] = 1.0 / counts[group]
    return m


def control_logits(alpha: np.ndarray, delta: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Control-arm logits ``alpha_i - sum_j delta_ij / (J_i + 1)`` of posterior draws.

    ``alpha``: draws x groups; ``delta``: draws x contrasts; ``group``: each contrast's
    group. Groups without contrasts keep ``alpha``.
    """
    return alpha - delta @ centring_matrix(group, alpha.shape[1], extra=1).T
