"""Claims as data: load and validate a claims file, and give each claim a verdict.

A claim names a model, an outcome and time, a record selection, a derived
quantity and a region. Its verdict comes from the posterior probability ``p``
that the quantity lies in the region: ``supported`` when p >= support (0.8 by
default), ``contradicted`` when p <= contradict (0.2), otherwise
``inconclusive``; ``insufficient data`` when fewer than ``min_studies`` studies
inform it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import SpecError
from .models import get_model_class
from .selection import OUTCOMES, Filters, TimeWindow

VERDICTS = ("supported", "contradicted", "inconclusive", "insufficient data")
CLAIM_FIELDS = {"id", "title", "quote", "source", "model", "outcome", "time_h", "window_h",
                "quantity", "selection", "region", "support", "contradict", "min_studies",
                "needs", "caveat"}


@dataclass(frozen=True)
class DecisionRule:
    """Thresholds on P(quantity in region)."""

    support: float = 0.8
    contradict: float = 0.2
    min_studies: int = 2

    def verdict(self, probability: float, k_studies: int) -> str:
        """Verdict for a posterior probability and the number of studies."""
        if k_studies < self.min_studies:
            return "insufficient data"
        if probability >= self.support:
            return "supported"
        if probability <= self.contradict:
            return "contradicted"
        return "inconclusive"


@dataclass(frozen=True)
class Claim:
    """One testable claim.

    ``options`` holds the model-specific settings as sorted (name, value) pairs: measure,
    form, comparator, moderators, untimed, threshold, fraction, hill, direction, tau_prior.
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
    window: TimeWindow
    filters: Filters
    comparators: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass
class ClaimsFile:
    """A validated claims file."""

    path: str
    sha256: str
    claims: list[Claim] = field(default_factory=list)
    contrasts: list[ContrastSpec] = field(default_factory=list)
    analyses: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: str | None = None


CONTRAST_FIELDS = {"id", "title", "outcome", "measure", "time_h", "window_h", "selection",
                   "comparators"}


def parse_contrast(raw: Any, path: str) -> ContrastSpec:
    """Validate one entry of the ``contrasts`` list of a claims file."""
    from .contrasts import BINARY_MEASURES, CONTINUOUS_MEASURES
    from .contrasts import OUTCOMES as CONTRAST_OUTCOMES

    if not isinstance(raw, dict):
        raise SpecError(f"{path}: every contrast must be a mapping")
    cid = str(raw.get("id", "?"))

    def bad(fld: str, msg: str) -> SpecError:
        return SpecError(f"{path}: contrast '{cid}', field '{fld}': {msg}")

    unknown = sorted(set(raw) - CONTRAST_FIELDS)
    if unknown:
        raise bad(unknown[0], f"unknown field; known: {', '.join(sorted(CONTRAST_FIELDS))}")
    for req in ("id", "outcome", "measure", "time_h"):
        if req not in raw:
            raise bad(req, "required field is missing")
    if raw["outcome"] not in CONTRAST_OUTCOMES:
        raise bad("outcome", f"use one of {', '.join(CONTRAST_OUTCOMES)}")
    measures = CONTINUOUS_MEASURES if raw["outcome"] == "change" else BINARY_MEASURES
    if raw["measure"] not in measures:
        raise bad("measure", f"use one of {', '.join(measures)} for {raw['outcome']}")
    time_h = _number(path, cid, "time_h", raw["time_h"], 0.0)
    half = raw.get("window_h")
    try:
        window = TimeWindow.around(time_h, None if half is None else float(half))
        filters = Filters.from_mapping(raw.get("selection"))
    except (SpecError, ValueError) as exc:
        raise bad("selection", str(exc)) from None
    comps = raw.get("comparators") or {}
    if not isinstance(comps, dict) or not all(isinstance(v, list) for v in comps.values()):
        raise bad("comparators", "must map a group name to a list of control treatments")
    groups = tuple((str(k), tuple(str(x) for x in v)) for k, v in comps.items())
    return ContrastSpec(cid, str(raw.get("title", cid)), str(raw["outcome"]),
                        str(raw["measure"]), window, filters, groups)


def bundled_claims_path() -> Path:
    """Path of the bundled ketamine claims file."""
    return Path(str(resources.files("trialmeta.data").joinpath("claims/ketamine.yaml")))


def _fail(path: str, claim: str, fld: str, msg: str) -> SpecError:
    return SpecError(f"{path}: claim '{claim}', field '{fld}': {msg}")


def _number(path: str, cid: str, fld: str, value: Any, lo: float | None = None,
            hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, cid, fld, f"must be a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _fail(path, cid, fld, f"{v:g} is out of range [{lo}, {hi}]")
    return v


OPTION_FIELDS = {"measure", "form", "comparator", "moderators", "untimed", "threshold", "tau_prior",
                 "fraction", "hill", "direction"}
QUANTITIES = {
    "pooled-rate": ("pooled_rate", "predictive_rate", "tau", "mu_logit"),
    "contrast": ("effect", "predictive_effect", "tau", "or", "rr", "rd", "control_rate"),
    "dose-response": ("ed50", "theta", "tau", "effect_at:DOSE", "difference:LOW:HIGH"),
    "time-course": ("onset_h", "time_to_peak_h", "duration_h", "peak", "effect_at:HOURS"),
}


def model_family(model: str) -> str:
    """Return the built-in family a (possibly plug-in) model belongs to."""
    if model in QUANTITIES:
        return model
    from .models.time_course import TimeCourse

    cls = get_model_class(model)
    if isinstance(cls, type) and issubclass(cls, TimeCourse):
        return "time-course"
    raise SpecError(f"model '{model}' cannot be used in a claim (only the built-in families "
                    "and time-course plug-ins can)")


def _check_quantity(family: str, quantity: str, options: dict[str, Any]) -> str | None:
    """Return a message if ``quantity`` is not one the family can compute."""
    if quantity in QUANTITIES[family]:
        return None
    head, _, rest = quantity.partition(":")
    try:
        if head == "beta" and family in ("pooled-rate", "contrast", "dose-response") \
                and options.get("moderators"):
            return None
        if head == "effect_at" and family in ("dose-response", "time-course"):
            float(rest)
            return None
        if head == "difference" and family == "dose-response":
            lo, hi = (float(x) for x in rest.split(":"))
            return None if lo < hi else "difference:LOW:HIGH needs LOW < HIGH"
    except ValueError:
        pass
    extra = " (beta:NAME needs moderators)" if family in ("pooled-rate", "contrast") else ""
    return f"model {family} has no quantity '{quantity}'; known: " \
           f"{', '.join(QUANTITIES[family])}{extra}"


def _region_bound(path: str, cid: str, value: Any) -> float:
    if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", ".inf", "-inf",
                                                            "-.inf"):
        value = float(value.replace(".", ""))
    if isinstance(value, float) and np.isinf(value):
        return value
    return _number(path, cid, "region", value)


def parse_claim(raw: Any, path: str, defaults: DecisionRule) -> Claim:
    """Validate one claim mapping; raise SpecError naming the claim and field."""
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: every claim must be a mapping, got {type(raw).__name__}")
    cid = str(raw.get("id", "?"))
    unknown = sorted(set(raw) - CLAIM_FIELDS - OPTION_FIELDS)
    if unknown:
        known = ", ".join(sorted(CLAIM_FIELDS | OPTION_FIELDS))
        raise _fail(path, cid, unknown[0], f"unknown field; known: {known}")
    for req in ("id", "quote", "model", "outcome", "quantity", "region"):
        if req not in raw:
            raise _fail(path, cid, req, "required field is missing")
    try:
        family = model_family(str(raw["model"]))
    except SpecError as exc:
        raise _fail(path, cid, "model", str(exc)) from None
    outcomes = OUTCOMES if family == "pooled-rate" else (*OUTCOMES, "change")
    if raw["outcome"] not in outcomes:
        raise _fail(path, cid, "outcome", f"'{raw['outcome']}' is not one of {', '.join(outcomes)}")
    options = {k: raw[k] for k in OPTION_FIELDS if k in raw}
    for key in ("comparator", "moderators"):
        if key in options:
            v = options[key]
            options[key] = tuple(str(x) for x in (v if isinstance(v, list) else [v]))
    message = _check_quantity(family, str(raw["quantity"]), options)
    if message:
        raise _fail(path, cid, "quantity", message)
    region = raw["region"]
    if not isinstance(region, list) or len(region) != 2:
        raise _fail(path, cid, "region", "must be a list of two numbers [low, high]")
    lo, hi = (_region_bound(path, cid, x) for x in region)
    if not lo < hi:
        raise _fail(path, cid, "region", f"low ({lo:g}) must be below high ({hi:g})")
    window = None
    if family != "time-course":
        if "time_h" not in raw:
            raise _fail(path, cid, "time_h", "required field is missing")
        time_h = _number(path, cid, "time_h", raw["time_h"], 0.0)
        half = raw.get("window_h")
        try:
            window = TimeWindow.around(time_h, None if half is None
                                       else _number(path, cid, "window_h", half, 0.0))
        except SpecError as exc:
            raise _fail(path, cid, "time_h", str(exc)) from None
    try:
        filters = Filters.from_mapping(raw.get("selection"))
    except SpecError as exc:
        raise _fail(path, cid, "selection", str(exc)) from None
    rule = DecisionRule(
        support=_number(path, cid, "support", raw.get("support", defaults.support), 0, 1),
        contradict=_number(path, cid, "contradict", raw.get("contradict", defaults.contradict),
                           0, 1),
        min_studies=int(_number(path, cid, "min_studies",
                                raw.get("min_studies", defaults.min_studies), 1)),
    )
    if not rule.contradict < rule.support:
        raise _fail(path, cid, "contradict", "must be below 'support'")
    return Claim(cid, str(raw.get("title", cid)), str(raw["quote"]), str(raw.get("source", "")),
                 str(raw["model"]), str(raw["outcome"]), window, str(raw["quantity"]), filters,
                 (lo, hi), rule, tuple(sorted(options.items())),
                 str(raw.get("needs", "")), str(raw.get("caveat", "")))


def load_claims(path: str | Path | None = None) -> ClaimsFile:
    """Load and validate a claims file (YAML, safe loader)."""
    p = Path(path) if path is not None else bundled_claims_path()
    name = str(path) if path is not None else "bundled:claims/ketamine.yaml"
    if not p.exists():
        raise SpecError(f"{name}: claims file not found")
    data = p.read_bytes()
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpecError(f"{name}: not valid UTF-8 YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list) or not doc["claims"]:
        raise SpecError(f"{name}: expected a mapping with a non-empty list under 'claims'")
    d = doc.get("defaults") or {}
    if not isinstance(d, dict):
        raise SpecError(f"{name}: 'defaults' must be a mapping")
    defaults = DecisionRule(float(d.get("support", 0.8)), float(d.get("contradict", 0.2)),
                            int(d.get("min_studies", 2)))
    claims = [parse_claim(raw, name, defaults) for raw in doc["claims"]]
    raw_contrasts = doc.get("contrasts") or []
    if not isinstance(raw_contrasts, list):
        raise SpecError(f"{name}: 'contrasts' must be a list")
    contrasts = [parse_contrast(raw, name) for raw in raw_contrasts]
    ids = [c.id for c in claims]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise SpecError(f"{name}: claim id(s) used more than once: {', '.join(dupes)}")
    analyses = doc.get("analyses") or {}
    if not isinstance(analyses, dict):
        raise SpecError(f"{name}: 'analyses' must be a mapping of model name to options")
    published = doc.get("published")
    if published is not None and not isinstance(published, str):
        raise SpecError(f"{name}: 'published' must be a path (relative to the claims file)")
    return ClaimsFile(name, hashlib.sha256(data).hexdigest(), claims, contrasts, analyses,
                      published)


@dataclass
class ClaimResult:
    """The verdict of one claim with the numbers behind it."""

    claim: Claim
    verdict: str
    probability: float | None
    estimate: dict[str, float] | None
    studies: list[str]
    diagnostics_passed: bool | None
    reason: str
    #: Monte Carlo standard error of ``probability`` (batch means over the draws)
    probability_mcse: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the verdict as the documented JSON record."""
        c, e = self.claim, self.estimate or {}
        return {
            "id": c.id, "title": c.title, "quote": c.quote, "quantity": c.quantity,
            "model": c.model, "outcome": c.outcome,
            "time_h": None if c.window is None else c.window.target_h,
            "region": list(c.region), "selection": c.filters.as_dict(),
            "median": e.get("median"), "ci_low": e.get("ci_low"), "ci_high": e.get("ci_high"),
            "probability": self.probability, "probability_mcse": self.probability_mcse,
            "verdict": self.verdict, "studies": self.studies,
            "diagnostics_passed": self.diagnostics_passed, "reason": self.reason,
        }


def judge(claim: Claim, draws: np.ndarray | None, studies: list[str],
          diagnostics_passed: bool | None, estimate: dict[str, float] | None,
          unidentified: str | None = None) -> ClaimResult:
    """Turn posterior draws of the claim's quantity into a verdict.

    ``unidentified`` explains why the records cannot inform the quantity even though
    studies were selected (for example a dose no trial used): the verdict is then
    ``insufficient data`` whatever the posterior says, since it would restate the prior.
    """
    k = len(studies)
    if unidentified:
        return ClaimResult(claim, "insufficient data", None, None, studies,
                           diagnostics_passed, unidentified)
    if draws is None or k < claim.rule.min_studies:
        when = "" if claim.window is None else f" near {claim.window.target_h:g} h"
        settle = claim.needs or (f"More trials reporting {claim.outcome}{when} in the selected "
                                 "arms would settle it.")
        reason = (f"{k} stud(ies) inform this claim; at least {claim.rule.min_studies} needed. "
                  f"{settle}")
        return ClaimResult(claim, "insufficient data", None, estimate, studies,
                           diagnostics_passed, reason)
    lo, hi = claim.region
    inside = (draws >= lo) & (draws <= hi)
    p = float(np.mean(inside))
    mcse = monte_carlo_se(inside)
    verdict = claim.rule.verdict(p, k)
    reason = (f"P({claim.quantity} in [{lo:g}, {hi:g}]) = {p:.2f} "
              f"(supported >= {claim.rule.support:g}, contradicted <= {claim.rule.contradict:g})")
    near = [t for t in (claim.rule.support, claim.rule.contradict) if abs(p - t) < 2 * mcse]
    if near:
        reason += (f"; P = {p:.3f} lies within two Monte Carlo standard errors ({mcse:.3f}) of "
                   f"the {near[0]:g} threshold, so another seed could give another verdict: "
                   "more draws (--draws) would settle which side it is on")
    if diagnostics_passed is False:
        reason += "; the fit FAILED its convergence diagnostics, so treat this as provisional"
    if claim.caveat:
        reason += f". Caveat: {claim.caveat}"
    return ClaimResult(claim, verdict, p, estimate, studies, diagnostics_passed, reason, mcse)


def monte_carlo_se(values: np.ndarray, batches: int = 40) -> float:
    """Monte Carlo standard error of the mean of MCMC draws, by batch means.

    ``values`` are draws with chains one after another (as :func:`flat` gives them);
    with 4 chains of 1,000 draws each batch of 100 lies inside one chain. Batch means
    (Flegal & Jones 2010) account for autocorrelation without a spectral estimate.
    """
    x = np.asarray(values, dtype=float).ravel()
    size = x.size // batches
    if size < 2:
        return float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")
    means = x[:size * batches].reshape(batches, size).mean(axis=1)
    return float(means.std(ddof=1) / np.sqrt(batches))
