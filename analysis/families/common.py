"""What the built-in families share: the base class, prior draws and the data checks.

Each built-in family lives in its own module (``pooled_rate``, ``contrast``,
``dose_response``, ``time_course``, ``network``): its class, its runner (select the
claim's records, fit, give named draws) and its JSON document together.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..sampling.settings import SamplerSettings
from ..stats.decision import spread
from .base import Family

#: draws from the prior behind P_prior (Monte Carlo SE of a probability <= 0.006)
PRIOR_DRAWS = 8000


#: depression scales of the bundled data (dose-response and time-course SBC selections)
DEPRESSION_SCALES = ("MADRS", "HDRS", "HDRS17", "HDRS21", "HDRS24", "HDRS25", "HDRS28",
                     "HAMD6", "QIDS_SR16")


def prior_fit(model: Any, fit: Any, settings: SamplerSettings) -> Any:
    """Return a copy of ``fit`` whose posterior holds draws from the model's priors.

    None when the model cannot draw from its priors (a plug-in without ``prior_params``).
    """
    from ..io.posterior_store import draws_as_posterior

    draw = getattr(model, "prior_params", None)
    rng = np.random.default_rng([settings.seed, 0x5EED])
    params = None if draw is None else draw(fit, PRIOR_DRAWS, rng)
    return None if params is None else replace(fit, idata=draws_as_posterior(params))


def _contraction(post: np.ndarray, prior: np.ndarray, name: str, limit: float) -> str | None:
    """Say so when a parameter's posterior spread is above ``limit`` of its prior's."""
    ratio = spread(post) / spread(prior)
    if ratio > limit:
        return (f"{name} barely moved from its prior (posterior/prior spread {ratio:.2f} > "
                f"{limit:g}), so the quantity's value would come from the prior")
    return None


def _moderated(quantity: str, options: dict[str, Any]) -> bool:
    return quantity.startswith("beta:") and bool(options.get("moderators"))


def _events_into_arms(data: Any, simulated: dict[str, np.ndarray]) -> Any:
    """Return ``data`` whose arms hold the events the PyMC model simulated (SBC)."""
    from dataclasses import replace

    return replace(data, arms=data.arms.assign(events=np.asarray(simulated["events"], int)))


class BuiltinFamily(Family):
    """A built-in family: its module's runner fits a claim (``run``)."""


class ModeratedFamily(BuiltinFamily):
    """A family whose claims may judge moderator coefficients ``beta:NAME``."""

    def check_quantity(self, quantity: str, options: dict[str, Any]) -> str | None:
        """Also accept ``beta:NAME`` when the claim has moderators."""
        said = super().check_quantity(quantity, options)
        if said is None or _moderated(quantity, options):
            return None
        return f"{said} (beta:NAME needs moderators)"


def _shown(priors: dict[str, Any]) -> dict[str, Any]:
    """Prior settings as the report prints them (numbers with ``:g``)."""
    return {k: (f"{v:g}" if isinstance(v, float | int) else v) for k, v in priors.items()}


def check_flag(options: dict[str, Any], key: str, fail: Any) -> None:
    """Refuse a claim field that must be true or false."""
    if key in options and not isinstance(options[key], bool):
        raise fail(key, f"must be true or false, got {options[key]!r}")


def check_clusters(options: dict[str, Any], fail: Any) -> None:
    """Refuse a ``cluster`` field that is not a column name or a list of them (outer first)."""
    if "cluster" in options:
        v = options["cluster"]
        names = v if isinstance(v, list) else [v]
        if not names or not all(isinstance(x, str) and x for x in names):
            raise fail("cluster", "must be a column name or a list of them, outer first")
        options["cluster"] = tuple(names)


def check_number(options: dict[str, Any], key: str, fail: Any,
                 lo: float | None = None, hi: float | None = None) -> None:
    """Refuse a claim field that must be a finite number in [lo, hi]."""
    from ..claims.spec import number_problem

    if key in options:
        problem = number_problem(options[key], lo, hi)
        if problem:
            raise fail(key, problem)
