"""Claims as data: load and validate a claims file, and give each claim a verdict.

A claim names a model, an outcome and time, a record selection, a derived
quantity and a region. Its verdict comes from the evidential, directional rule in
:mod:`decision`: the posterior probability of the region, of each side of it, and the
same probability under the prior (the claim's quantity computed from prior draws), so
that "contradicted" needs evidence against the claim and a verdict the prior wrote
is "insufficient data".
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..claims.spec import (
    CLAIM_FIELDS,
    RULE_FIELDS,
    Claim,
    ClaimsFile,
    ContrastSpec,
    number_problem,
    parse_priors,
)
from ..errors import SpecError
from ..families.base import Family
from ..families.common import check_clusters
from ..families.registry import family_name, get_family
from ..io.files import read_regular, read_regular_text
from ..io.text_rules import text_problem
from ..io.yaml_input import load_yaml, top_level_lines
from ..sampling.inference import summarize_censored
from ..select.filters import Filters, TimeWindow
from ..stats.decision import (
    EVIDENCE_FIELDS,
    DecisionRule,
    Evidence,
    near_thresholds,
    verdict,
    weigh,
)
from .certainty import Certainty

CONTRAST_FIELDS = {"id", "title", "outcome", "measure", "time_h", "window_h", "selection",
                   "cluster",
                   "comparators"}


def parse_contrast(raw: Any, path: str) -> ContrastSpec:
    """Validate one entry of the ``contrasts`` list of a claims file."""
    from ..select.contrasts import BINARY_MEASURES, CONTINUOUS_MEASURES
    from ..select.contrasts import OUTCOMES as CONTRAST_OUTCOMES

    if not isinstance(raw, dict):
        raise SpecError(f"{path}: every contrast must be a mapping")
    cid = _shown_id(raw.get("id", "?"))

    def bad(fld: str, msg: str) -> SpecError:
        return SpecError(f"{path}: contrast '{cid}', field '{fld}': {msg}")

    unknown = sorted(set(raw) - CONTRAST_FIELDS)
    if unknown:
        raise bad(unknown[0], f"unknown field; known: {', '.join(sorted(CONTRAST_FIELDS))}")
    for req in ("id", "outcome", "measure", "time_h"):
        if req not in raw:
            raise bad(req, "required field is missing")
    for fld, is_name in (("id", True), ("title", False)):
        if fld in raw:
            if not isinstance(raw[fld], str):
                raise bad(fld, f"must be text, got {type(raw[fld]).__name__}")
            problem = text_problem(raw[fld], name=is_name)
            if problem:
                raise bad(fld, problem)
    if raw["outcome"] not in CONTRAST_OUTCOMES:
        raise bad("outcome", f"use one of {', '.join(CONTRAST_OUTCOMES)}")
    measures = CONTINUOUS_MEASURES if raw["outcome"] == "change" else BINARY_MEASURES
    if raw["measure"] not in measures:
        raise bad("measure", f"use one of {', '.join(measures)} for {raw['outcome']}")
    time_h = _number(path, cid, "time_h", raw["time_h"], 0.0)
    half = raw.get("window_h")
    try:
        window = TimeWindow.around(time_h, None if half is None
                                   else _number(path, cid, "window_h", half, 0.0))
    except (SpecError, ValueError) as exc:
        raise bad("window_h", str(exc)) from None
    filters = parse_selection(raw.get("selection"), lambda msg: bad("selection", msg))
    comps = raw.get("comparators") or {}
    if not isinstance(comps, dict) or not all(
            isinstance(v, list) and v and all(isinstance(x, str) for x in v)
            for v in comps.values()):
        raise bad("comparators", "must map a group name to a non-empty list of control "
                                 "treatments")
    for k, v in comps.items():
        for text in (str(k), *v):
            problem = text_problem(text, name=True)
            if problem:
                raise bad("comparators", problem)
    groups = tuple((str(k), tuple(str(x) for x in v)) for k, v in comps.items())
    nesting = {"cluster": raw["cluster"]} if "cluster" in raw else {}
    check_clusters(nesting, bad)
    return ContrastSpec(cid, str(raw.get("title", cid)), str(raw["outcome"]),
                        str(raw["measure"]), window, filters, groups,
                        nesting.get("cluster", ()))


def bundled_claims_path() -> Path:
    """Path of the bundled ketamine claims file."""
    return Path(str(resources.files("trialmeta.data").joinpath("claims/ketamine.yaml")))


def _fail(path: str, claim: str, fld: str, msg: str) -> SpecError:
    return SpecError(f"{path}: claim '{claim}', field '{fld}': {msg}")


def _number(path: str, cid: str, fld: str, value: Any, lo: float | None = None,
            hi: float | None = None) -> float:
    problem = number_problem(value, lo, hi)
    if problem:
        raise _fail(path, cid, fld, problem)
    return float(value)


#: claim fields every family may take (a family adds its own: ``Family.options``)
OPTION_FIELDS = {"measure", "form", "comparator", "moderators", "tau_prior", "priors"}


def _region_bound(path: str, cid: str, value: Any) -> float:
    if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", ".inf", "-inf",
                                                            "-.inf"):
        value = float(value.replace(".", ""))
    if isinstance(value, float) and np.isinf(value):
        return value
    return _number(path, cid, "region", value)


def parse_rule(raw: dict[str, Any], defaults: DecisionRule, fail: Any) -> DecisionRule:
    """Read the decision-rule fields of a claim (or of ``defaults``) over ``defaults``.

    ``fail(field, message)`` returns the error to raise for a bad value.
    """
    def number(fld: str, value: Any, lo: float, hi: float | None = None, *,
               whole: bool = False) -> float:
        problem = number_problem(value, lo, hi, whole=whole)
        if problem:
            raise fail(fld, problem)
        return float(value)

    bf = raw.get("insufficient_bf", [defaults.bf_low, defaults.bf_high])
    if not isinstance(bf, list) or len(bf) != 2:
        raise fail("insufficient_bf", "must be a list of two Bayes factors [low, high]")
    bf_low, bf_high = (number("insufficient_bf", x, 0.0) for x in bf)
    if not bf_low <= 1 <= bf_high:
        raise fail("insufficient_bf", "must bracket 1: [low <= 1, high >= 1]")
    rule = DecisionRule(
        support=number("support", raw.get("support", defaults.support), 0.5, 1),
        contradict=number("contradict", raw.get("contradict", defaults.contradict), 0, 1),
        min_studies=int(number("min_studies", raw.get("min_studies", defaults.min_studies), 1,
                               1_000_000, whole=True)),
        bf_low=bf_low, bf_high=bf_high,
        sd_ratio=number("insufficient_sd_ratio",
                        raw.get("insufficient_sd_ratio", defaults.sd_ratio), 0, 1),
        max_draws_factor=int(number("max_draws_factor",
                                    raw.get("max_draws_factor", defaults.max_draws_factor),
                                    1, 64, whole=True)))
    if not rule.contradict < rule.support:
        raise fail("contradict", "must be below 'support'")
    return rule


def parse_selection(raw: Any, fail: Any) -> Filters:
    """Build the record filters of a ``selection`` mapping; ``fail(message)`` on bad input."""
    if raw is not None and not isinstance(raw, dict):
        raise fail(f"must be a mapping of column to allowed values, got {type(raw).__name__}")
    for key, value in (raw or {}).items():
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            raise fail(f"{key}: an empty list would select nothing; leave '{key}' out to "
                       "keep every value")
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool)
                   for v in values):
            raise fail(f"{key}: every value must be a name or a number")
        for v in values:
            problem = (text_problem(v, name=True) if isinstance(v, str)
                       else number_problem(v))
            if problem:
                raise fail(f"{key}: {problem}")
    try:
        return Filters.from_mapping(raw)
    except SpecError as exc:
        raise fail(str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise fail(f"a value has the wrong type ({exc})") from None


def _check_option_types(options: dict[str, Any], family: Family, model: str,
                        fail: Any) -> None:
    """Check each model option's type and range; ``fail(field, message)`` makes the error."""
    for key in ("measure", "form", "tau_prior"):
        if key in options and not isinstance(options[key], str):
            raise fail(key, f"must be text, got {options[key]!r}")
    for key in ("comparator", "moderators"):
        v = options.get(key, [])
        if not all(isinstance(x, str) for x in (v if isinstance(v, list) else [v])):
            raise fail(key, "must be a name or a list of names")
    if "form" in options:
        known = family.forms(model, options)
        if not known:
            raise fail("form", f"{family.name} claims have no curve form")
        if options["form"] not in known:
            raise fail("form", f"unknown form '{options['form']}'; use one of "
                               f"{', '.join(known)}")
    if "tau_prior" in options:
        from ..stats.priors import heterogeneity_prior

        try:
            heterogeneity_prior(options["tau_prior"])
        except SpecError as exc:
            raise fail("tau_prior", str(exc)) from None


class ClaimProblemsError(SpecError):
    """Every problem of one claim (each names the claim and field)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n  - ".join(problems))
        self.problems = problems


def _collecting(problems: list[str], fn: Callable[[], Any]) -> Any:
    """Return ``fn()``; if it raises SpecError, add its problem(s) and return None."""
    try:
        return fn()
    except ClaimProblemsError as exc:
        problems.extend(exc.problems)
    except SpecError as exc:
        problems.append(str(exc))
    return None


def parse_claim(raw: Any, path: str, defaults: DecisionRule) -> Claim:
    """Validate one claim mapping; raise ClaimProblemsError naming every bad field at once.

    Checks that do not depend on each other all run; a field that others depend on (the
    model) stops only those others.
    """
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: every claim must be a mapping, got {type(raw).__name__}")
    cid = _shown_id(raw.get("id", "?"))
    problems: list[str] = []

    def check(fn: Callable[[], Any]) -> Any:
        return _collecting(problems, fn)

    from ..families.registry import claim_options

    family_fields = claim_options()  # field -> the families that take it
    all_fields = CLAIM_FIELDS | OPTION_FIELDS | set(family_fields)
    known = ", ".join(sorted(all_fields))
    problems += [str(_fail(path, cid, f, f"unknown field; known: {known}"))
                 for f in sorted(set(raw) - all_fields)]
    problems += [str(_fail(path, cid, req, "required field is missing"))
                 for req in ("id", "quote", "model", "outcome", "quantity", "region")
                 if req not in raw]
    problems += _text_field_problems(path, cid, raw)
    if problems:
        raise ClaimProblemsError(problems)
    family = check(lambda: get_family(_family(path, cid, raw)))
    if family is not None:
        problems += [str(_fail(path, cid, f, f"only {' and '.join(family_fields[f])} claims "
                                             f"take a {f}"))
                     for f in sorted(set(raw) & set(family_fields) - family.options)]
    options = {k: raw[k] for k in all_fields - CLAIM_FIELDS if k in raw}
    if family is not None:
        check(lambda: _check_outcome(path, cid, raw, family))
        check(lambda: _check_options(path, cid, raw, family, options))
    region = check(lambda: _region(path, cid, raw["region"]))
    timed = family is not None and family.timed and (
        "time_h" in raw or not family.time_optional)
    window = check(lambda: _window(path, cid, raw)) if timed else None
    filters = check(lambda: parse_selection(raw.get("selection"),
                                            lambda msg: _fail(path, cid, "selection", msg)))
    rule = check(lambda: parse_rule(raw, defaults, lambda fld, msg: _fail(path, cid, fld, msg)))
    if problems:
        raise ClaimProblemsError(problems)
    return Claim(cid, str(raw.get("title", cid)), str(raw["quote"]), str(raw.get("source", "")),
                 str(raw["model"]), str(raw["outcome"]), window, str(raw["quantity"]), filters,
                 region, rule, tuple(sorted(options.items())),
                 str(raw.get("needs", "")), str(raw.get("caveat", "")))


#: claim fields that are names (one line, printable) and free text (line breaks allowed)
NAME_FIELDS = ("id", "model", "outcome", "quantity")
TEXT_FIELDS = ("title", "quote", "source", "needs", "caveat")


def _shown_id(value: Any) -> str:
    """Return a claim id as an error message may print it (escaped if not printable)."""
    text = value if isinstance(value, str) else repr(value)
    return text if text_problem(text, name=True) is None else ascii(text)


def _text_field_problems(path: str, cid: str, raw: dict[str, Any]) -> list[str]:
    """Type and character checks of a claim's text fields (names and free text)."""
    out = []
    for fld in (*NAME_FIELDS, *TEXT_FIELDS):
        if fld not in raw:
            continue
        value = raw[fld]
        if fld == "id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            out.append(str(_fail(path, cid, fld, f"must be text, got {type(value).__name__}"
                                                  + (" (binary data)" if isinstance(
                                                      value, bytes) else ""))))
            continue
        if fld == "id" and not value.strip():
            out.append(str(_fail(path, cid, fld, "must not be empty")))
        problem = text_problem(value, name=fld in NAME_FIELDS)
        if problem:
            out.append(str(_fail(path, cid, fld, problem)))
    return out


def _family(path: str, cid: str, raw: dict[str, Any]) -> str:
    try:
        return family_name(str(raw["model"]))
    except SpecError as exc:
        raise _fail(path, cid, "model", str(exc)) from None


def _check_outcome(path: str, cid: str, raw: dict[str, Any], family: Family) -> None:
    outcomes = family.outcomes
    if raw["outcome"] not in outcomes:
        raise _fail(path, cid, "outcome", f"'{raw['outcome']}' is not one of {', '.join(outcomes)}")


def _check_options(path: str, cid: str, raw: dict[str, Any], family: Family,
                   options: dict[str, Any]) -> None:
    """Check a claim's options for its family and normalise them in place."""
    def fail(fld: str, msg: str) -> SpecError:
        return _fail(path, cid, fld, msg)

    _check_option_types(options, family, str(raw["model"]), fail)
    for key in ("comparator", "moderators"):
        if key in options:
            v = options[key]
            options[key] = tuple(str(x) for x in (v if isinstance(v, list) else [v]))
    message = family.check_quantity(str(raw["quantity"]), options)
    if message:
        raise fail("quantity", message)
    family.check_options(options, fail)
    if "priors" in options:
        options["priors"] = parse_priors(options["priors"], family,
                                         lambda msg: fail("priors", msg))


def _region(path: str, cid: str, region: Any) -> tuple[float, float]:
    if not isinstance(region, list) or len(region) != 2:
        raise _fail(path, cid, "region", "must be a list of two numbers [low, high]")
    lo, hi = (_region_bound(path, cid, x) for x in region)
    if not lo < hi:
        raise _fail(path, cid, "region", f"low ({lo:g}) must be below high ({hi:g})")
    if np.isinf(lo) and np.isinf(hi):
        raise _fail(path, cid, "region", "[-inf, inf] holds every value: a claim must exclude "
                                         "some; give at least one finite bound")
    return lo, hi


def _window(path: str, cid: str, raw: dict[str, Any]) -> TimeWindow:
    if "time_h" not in raw:
        raise _fail(path, cid, "time_h", "required field is missing")
    time_h = _number(path, cid, "time_h", raw["time_h"], 0.0)
    half = raw.get("window_h")
    try:
        return TimeWindow.around(time_h, None if half is None
                                 else _number(path, cid, "window_h", half, 0.0))
    except SpecError as exc:
        raise _fail(path, cid, "time_h", str(exc)) from None


#: the keys a claims file may have at its top level, and the format version this reads
TOP_LEVEL_KEYS = ("version", "published", "defaults", "claims", "contrasts", "analyses")
CLAIMS_VERSION = 1


def _top_level_problems(doc: dict[Any, Any], name: str, lines: dict[str, int]) -> list[str]:
    """Unknown top-level keys (a misspelt ``defaults`` must not pass unseen) and the version."""
    import difflib

    out = []
    for key in doc:
        if key in TOP_LEVEL_KEYS:
            continue
        shown = _shown_id(key)
        close = difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1)
        out.append(f"{name}, line {lines.get(str(key), '?')}: unknown top-level key '{shown}'"
                   + (f"; did you mean '{close[0]}'?" if close else
                      f"; known: {', '.join(TOP_LEVEL_KEYS)}"))
    if "version" in doc:
        v = doc["version"]
        if isinstance(v, bool) or not isinstance(v, int) or v != CLAIMS_VERSION:
            out.append(f"{name}, line {lines.get('version', '?')}: version "
                       f"{str(v)[:40]} is not one this trialmeta reads (version "
                       f"{CLAIMS_VERSION})")
    return out


#: a claims file larger than this is refused unread (a claims file is a few kilobytes)
MAX_CLAIMS_BYTES = 10_000_000


def load_claims(path: str | Path | None = None) -> ClaimsFile:
    """Load and validate a claims file (YAML, safe loader)."""
    p = Path(path) if path is not None else bundled_claims_path()
    name = str(path) if path is not None else "bundled:claims/ketamine.yaml"
    if not p.exists():
        raise SpecError(f"{name}: claims file not found")
    data = read_regular(p, "claims file", max_bytes=MAX_CLAIMS_BYTES)
    doc = load_yaml(data, name)
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list) or not doc["claims"]:
        raise SpecError(f"{name}: expected a mapping with a non-empty list under 'claims'")
    top_problems = _top_level_problems(doc, name, top_level_lines(data))
    if top_problems:
        raise SpecError(top_problems[0] if len(top_problems) == 1 else
                        f"{len(top_problems)} problems:\n  - " + "\n  - ".join(top_problems))
    d = doc.get("defaults") or {}
    if not isinstance(d, dict):
        raise SpecError(f"{name}: 'defaults' must be a mapping")
    unknown = sorted(set(d) - RULE_FIELDS)
    if unknown:
        raise SpecError(f"{name}: defaults: unknown field '{unknown[0]}'; known: "
                        f"{', '.join(sorted(RULE_FIELDS))}")
    defaults = parse_rule(d, DecisionRule(),
                          lambda fld, msg: SpecError(f"{name}: defaults, field '{fld}': {msg}"))
    problems: list[str] = []

    def each(parse: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        parsed = [_collecting(problems, lambda raw=raw: parse(raw)) for raw in items]
        return [x for x in parsed if x is not None]

    claims = each(lambda raw: parse_claim(raw, name, defaults), doc["claims"])
    raw_contrasts = doc.get("contrasts") or []
    if not isinstance(raw_contrasts, list):
        problems.append(f"{name}: 'contrasts' must be a list")
        raw_contrasts = []
    contrasts = each(lambda raw: parse_contrast(raw, name), raw_contrasts)
    if problems:  # every claim's problems and every contrast's first, all at once
        raise SpecError(problems[0] if len(problems) == 1 else
                        f"{len(problems)} problems:\n  - " + "\n  - ".join(problems))
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
    if published is not None:
        folder = p.resolve().parent
        target = (folder / published).resolve()
        if not target.is_relative_to(folder):
            raise SpecError(f"{name}: 'published' ({published}) points outside the claims "
                            f"file's folder {folder}; a claims file may only name files "
                            "beside it")
    out = ClaimsFile(name, hashlib.sha256(data).hexdigest(), claims, contrasts, analyses,
                     published)
    load_published(out, published)  # refused now, before any fit, if it cannot be used
    return out


def load_published(claims: ClaimsFile, published: str | None) -> list[dict[str, str]]:
    """Read the published pooled results the claims file points to (CSV with sources)."""
    if not published:
        return []
    base = Path(claims.path.removeprefix("bundled:")) if not claims.path.startswith(
        "bundled:") else None
    if base is None:
        base = bundled_claims_path()
    path = (base.parent / published).resolve()
    if not path.exists():
        raise SpecError(f"{claims.path}: published results file not found: {published}")
    text = read_regular_text(path, "published results table")
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise SpecError(f"{path}: the published results table is not valid CSV ({exc})") \
            from None
    required = {"source", "comparison", "outcome", "time", "measure", "estimate", "ours", "url"}
    if rows and not required <= set(rows[0]):
        raise SpecError(f"{path}: needs columns {', '.join(sorted(required))}")
    for i, row in enumerate(rows, start=2):  # its cells reach the report: the free-text rule
        for column, value in row.items():
            problem = text_problem(str(value or ""), name=False) if column else None
            if problem or None in (column, value):
                raise SpecError(f"{path}, row {i}, column {column!r}: "
                                f"{problem or 'the row has more or fewer cells than the header'}")
    return rows


#: the deciding probability from which a directional verdict reads "strong"
STRONG = 0.95


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
    #: prior vs posterior: P_prior, P(below), P(above), Bayes factor, spread ratio
    evidence: Evidence | None = None
    #: posterior draws behind the verdict (per chain, after any extension)
    draws: int | None = None
    #: median and interval of the claim's quantity under the prior
    prior_estimate: dict[str, float] | None = None
    #: what decided: "evidence" (the probabilities), "studies" (too few) or "unidentified"
    basis: str = "evidence"
    #: certainty of the evidence (:mod:`~trialmeta.analysis.evaluate.certainty`)
    certainty: Certainty | None = None
    #: why an "inconclusive" is not a verdict either way: "weak Bayes factor" (the
    #: probability was there, the evidence was not), "inconsistent" (direct and indirect
    #: evidence disagree), "uncontrolled designs only"; None otherwise
    qualifier: str | None = None

    @property
    def strength(self) -> str | None:
        """Grade a directional verdict: ``strong`` (P >= 0.95) or ``probable`` (below).

        The deciding probability is P(region) for supported, P(side) for contradicted. A
        directional claim with no true effect reaches ``supported`` about one time in five
        at a 0.8 threshold, ``strong`` about one in twenty.
        """
        ev = self.evidence
        if ev is None or self.verdict not in ("supported", "contradicted"):
            return None
        p = ev.p_post if self.verdict == "supported" else max(ev.p_below, ev.p_above)
        return "strong" if p >= STRONG else "probable"

    def as_dict(self) -> dict[str, Any]:
        """Return the verdict as the documented JSON record (censored values as null)."""
        c, e = self.claim, self.estimate or {}
        ev = self.evidence.as_dict() if self.evidence else dict.fromkeys(EVIDENCE_FIELDS)
        censored = [k for k in ("median", "ci_low", "ci_high")
                    if e.get(k) is not None and np.isinf(e[k])]
        return {
            "id": c.id, "title": c.title, "quote": c.quote, "quantity": c.quantity,
            "model": c.model, "outcome": c.outcome,
            "time_h": None if c.window is None else c.window.target_h,
            "region": list(c.region), "selection": c.filters.as_dict(),
            "median": _finite(e.get("median")), "ci_low": _finite(e.get("ci_low")),
            "ci_high": _finite(e.get("ci_high")), "censored_above": censored,
            "prior": None if self.prior_estimate is None else {
                k: _finite(self.prior_estimate.get(k)) for k in ("median", "ci_low", "ci_high")},
            "probability": self.probability, "probability_mcse": self.probability_mcse,
            **ev, "draws_per_chain": self.draws,
            "verdict": self.verdict, "qualifier": self.qualifier,
            "strength": self.strength, "basis": self.basis,
            "studies": self.studies,
            "diagnostics_passed": self.diagnostics_passed, "reason": self.reason,
            "certainty": None if self.certainty is None else self.certainty.as_dict(),
        }


def _finite(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _settle(claim: Claim) -> str:
    when = "" if claim.window is None else f" near {claim.window.target_h:g} h"
    return claim.needs or (f"More trials reporting {claim.outcome}{when} in the selected "
                           "arms would settle it.")


def judge(claim: Claim, draws: np.ndarray | None, studies: list[str],
          diagnostics_passed: bool | None, estimate: dict[str, float] | None,
          unidentified: str | None = None, prior: np.ndarray | None = None,
          at_cap: bool = False) -> ClaimResult:
    """Turn posterior (and prior) draws of the claim's quantity into a verdict.

    Parameters
    ----------
    claim : Claim
        The claim, with its region and decision rule.
    draws : ndarray or None
        Posterior draws of the quantity (None: no fit).
    studies : list of str
        Studies that inform it.
    diagnostics_passed : bool or None
        Whether the fit passed its convergence gate (None: no fit).
    estimate : dict or None
        Summary of ``draws``.
    unidentified : str, optional
        Why the records cannot inform the quantity (a dose no trial used, a time outside
        the observed range, a shape parameter that did not contract): the verdict is then
        ``insufficient data`` whatever the posterior says.
    prior : ndarray, optional
        Draws of the same quantity under the prior. Without them the "data barely moved
        it" check cannot run, and the reason says so.
    at_cap : bool
        The draws were already extended to the cap: a probability still within two
        Monte Carlo standard errors of a threshold gives ``inconclusive``.
    """
    k = len(studies)
    ev = None if draws is None else weigh(draws, prior, claim.region)
    prior_est = None if prior is None else summarize_censored(prior)
    base = dict(estimate=estimate, studies=studies, diagnostics_passed=diagnostics_passed,
                evidence=ev, prior_estimate=prior_est,
                probability=None if ev is None else ev.p_post,
                probability_mcse=None if ev is None else ev.mcse)
    if draws is None or k < claim.rule.min_studies:
        reason = (f"{k} stud(ies) inform this claim; at least {claim.rule.min_studies} needed. "
                  f"{_settle(claim)}")
        return ClaimResult(claim, "insufficient data", reason=reason, basis="studies", **base)
    if unidentified:
        return ClaimResult(claim, "insufficient data", reason=unidentified,
                           basis="unidentified", **base)
    lo, hi = claim.region
    label, why = verdict(ev, claim.rule)
    qualifier = "weak Bayes factor" if why.startswith("weak-") else None
    reason = _evidence_text(claim, ev)
    near = near_thresholds(ev, claim.rule)
    if near and at_cap:
        label = "inconclusive"
        reason += (f"; even after extending the draws {claim.rule.max_draws_factor}x it lies "
                   f"within two Monte Carlo standard errors of a threshold ({near[0]}), so no "
                   "verdict is given either way")
    elif near:
        reason += (f"; within two Monte Carlo standard errors of a threshold ({near[0]}): "
                   "more draws would settle which side it is on")
    elif why == "moved":
        reason = (f"the data barely move this quantity: {reason}; the verdict would restate "
                  f"the prior. {_settle(claim)}")
    elif why in ("below", "above"):
        reason = f"the posterior lies {why} [{lo:g}, {hi:g}]: {reason}"
    elif why == "weak-in":
        reason = (f"the posterior puts it in [{lo:g}, {hi:g}] but the data did not add "
                  f"evidence for that (Bayes factor {ev.bayes_factor:.3g} < "
                  f"{claim.rule.bf_high:g}; the prior already held {ev.p_prior:.2f} of it): "
                  f"{reason}")
    elif why in ("weak-below", "weak-above"):
        reason = (f"the posterior lies {why.removeprefix('weak-')} [{lo:g}, {hi:g}] but the "
                  f"data did not move it there (Bayes factor {ev.bayes_factor:.3g} > "
                  f"{claim.rule.bf_low:.3g}): {reason}")
    if prior is None:
        reason += "; no prior draws for this quantity, so prior and posterior are not compared"
    if diagnostics_passed is False:
        reason += "; the fit FAILED its convergence diagnostics, so treat this as provisional"
    if claim.caveat:
        reason += f". Caveat: {claim.caveat}"
    return ClaimResult(claim, label, reason=reason, qualifier=qualifier, **base)


def _evidence_text(claim: Claim, ev: Evidence) -> str:
    lo, hi = claim.region
    text = (f"P({claim.quantity} in [{lo:g}, {hi:g}]) = {ev.p_post:.2f}, below {ev.p_below:.2f}, "
            f"above {ev.p_above:.2f}")
    if ev.p_prior is not None:
        text += f"; under the prior {ev.p_prior:.2f}, Bayes factor {ev.bayes_factor:.3g}"
    if ev.spread_ratio is not None:
        text += f", posterior/prior spread {ev.spread_ratio:.2f}"
    return text
