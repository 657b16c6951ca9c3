"""What a claims file says, as types: claims, comparisons and the file (no parsing, no judging).

These sit below the model families, which take a :class:`Claim` to fit, and below the
evaluator (:mod:`trialmeta.analysis.evaluate`), which parses claims files into them and
judges them. The number and prior checks here are shared by the claims parser and by the
families' own option checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..select.filters import Filters, TimeWindow
from ..stats.decision import DecisionRule


class PriorSettings(Protocol):
    """What ``parse_priors`` needs of a family: its name and the prior settings it takes."""

    name: str
    prior_settings: tuple[str, ...]

VERDICTS = ("supported", "contradicted", "inconclusive", "insufficient data", "not evaluated")
RULE_FIELDS = {"support", "contradict", "min_studies", "insufficient_bf",
               "insufficient_sd_ratio", "max_draws_factor"}
CLAIM_FIELDS = {"id", "title", "quote", "source", "model", "outcome", "time_h", "window_h",
                "quantity", "selection", "region", "needs", "caveat"} | RULE_FIELDS

@dataclass(frozen=True)
class Claim:
    """One testable claim.

    ``options`` holds the model-specific settings as sorted (name, value) pairs: measure,
    form, comparator, moderators, untimed, threshold, fraction, hill, direction, tau_prior,
    rho (time-course) and priors (sorted (setting, value) pairs, see ``PRIOR_FIELDS``).
    """

    id: str
    title: str
    quote: str
    source: str
    model: str
    outcome: str
    window: TimeWindow | None
    quantity: str
    filters: Filters
    region: tuple[float, float]
    rule: DecisionRule
    options: tuple[tuple[str, Any], ...] = ()
    needs: str = ""
    caveat: str = ""

    def option(self, name: str, default: Any = None) -> Any:
        """One model-specific option."""
        return dict(self.options).get(name, default)

    def fit_key(self) -> tuple:
        """Claims with the same key share one fit (summary-only options do not count)."""
        fit_options = tuple((k, v) for k, v in self.options
                            if k not in ("threshold", "fraction", "direction"))
        return (self.model, self.outcome, self.window, self.filters, fit_options)


@dataclass(frozen=True)
class ContrastSpec:
    """A descriptive active-vs-control analysis the report shows (not a claim)."""

    id: str
    title: str
    outcome: str
    measure: str
    #: None: every row, unwindowed (a file without time points)
    window: TimeWindow | None
    filters: Filters
    comparators: tuple[tuple[str, tuple[str, ...]], ...]
    #: columns whose levels group studies, outer first (a three- or more-level model)
    clusters: tuple[str, ...] = ()


@dataclass
class ClaimsFile:
    """A validated claims file."""

    path: str
    sha256: str
    claims: list[Claim] = field(default_factory=list)
    contrasts: list[ContrastSpec] = field(default_factory=list)
    analyses: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: str | None = None
    #: descriptive fits the report shows without judging anything (a report of the data
    #: alone: the pooled rate of treated arms per outcome); never given a verdict
    descriptive: list[Claim] = field(default_factory=list)


def number_problem(value: Any, lo: float | None = None, hi: float | None = None, *,
                    whole: bool = False) -> str | None:
    """Say what is wrong with a value that must be a finite number in [lo, hi], if anything.

    ``whole``: the number must be a whole number (``2.7`` is refused, not truncated).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number, got {str(value)[:40]!r}"
    try:
        v = float(value)
    except OverflowError:
        return f"a number with {len(str(value))} digits is out of range [{lo}, {hi}]"
    if not np.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        return f"{v:g} is out of range [{lo}, {hi}]"
    if whole and not v.is_integer():
        return f"{v:g} must be a whole number"
    return None


def parse_priors(raw: Any, family: PriorSettings, fail: Any) -> tuple[tuple[str, float], ...]:
    """Validate a ``priors`` mapping for ``family``; return sorted (setting, value) pairs.

    ``fail(message)`` returns the error to raise.
    """
    known = family.prior_settings
    if not isinstance(raw, dict):
        raise fail(f"must be a mapping of prior setting to number; {family.name} takes "
                   f"{', '.join(known) or 'none'}")
    out = []
    for key, value in raw.items():
        if key not in known:
            raise fail(f"unknown setting '{key}' for {family.name}; known: "
                       f"{', '.join(known) or 'none'}")
        problem = number_problem(value, None if key == "mu_mean" else 1e-9)
        if problem:
            raise fail(f"{key} {problem}")
        out.append((str(key), float(value)))
    return tuple(sorted(out))
