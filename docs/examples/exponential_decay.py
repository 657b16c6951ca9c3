"""A time-course form for trialmeta: the effect starts at its peak and decays exponentially.

    f(t) = A * exp(-t * ln 2 / T_half)

Load it with ``trialmeta --plugin docs/examples/exponential_decay.py ...`` (see
docs/extending.md), or publish it in a package under the ``trialmeta.models`` entry point.
"""

from __future__ import annotations

import numpy as np
from trialmeta.analysis.models.time_course import TimeCourse
from trialmeta.analysis.sampling.inference import flat


class ExponentialDecay(TimeCourse):
    """Immediate effect A that halves every T_half hours."""

    name = "exp-decay"
    description = "time-course: immediate effect decaying exponentially (half-life)"
    gate = {"exp-decay": ["tau", "peak", "t_half"]}

    def __init__(self, form: str = "exp-decay", **kwargs):
        super().__init__(form, **kwargs)

    def curve_tensor(self, t: np.ndarray):
        """Create A and T_half in the current PyMC model and return f(t)."""
        import pymc as pm
        import pytensor.tensor as pt

        a = pm.Normal("peak", 0.0, self.priors.peak_sd)
        t_half = pm.Deterministic("t_half", pt.exp(pm.Normal("log_t_half", np.log(72.0), 1.5)))
        return a * pt.exp(-t * np.log(2.0) / t_half)

    def curve_draws(self, fit, times: np.ndarray) -> np.ndarray:
        """Posterior draws of f(t) at ``times`` (draws x times)."""
        a = flat(fit.idata, "peak")[:, None]
        t_half = flat(fit.idata, "t_half")[:, None]
        return a * np.exp(-np.asarray(times, float)[None, :] * np.log(2.0) / t_half)


TRIALMETA_MODELS = {"exp-decay": ExponentialDecay}
