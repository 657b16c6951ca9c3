"""Certainty of the evidence behind a verdict, from things the records say.

A verdict says where the posterior puts the claim's quantity; the certainty grade says how
much weight that deserves (in the spirit of GRADE, but computed, not judged). It starts at
``high`` and loses one level for each of:

* **design** -- some of the studies that identify the quantity are uncontrolled
  (single-arm before/after series: design ``single_arm``). When *every*
  identifying study is uncontrolled the verdict itself is capped at ``inconclusive``: an
  uncontrolled series cannot separate the treatment from regression to the mean,
  expectation and natural course;
* **fragility** -- leaving one study out changes the verdict (the study is named);
* **derived counts** -- an identifying study's numbers were computed from reported figures
  (tier ``derived``) or recovered from a summary effect (``back_calculated``);
* **one study** -- a single study carries the quantity (named, with its design);
* **small-study effects** -- refitted with the family's small-study adjustment (for the
  contrast family the Bayesian PET, a regression of the effects on their standard errors),
  the verdict changes. Checked only with at least 10 studies (Cochrane Handbook 13.3.5.4);
  with fewer the grade says it was not assessed, and loses nothing.

A failed convergence gate costs a level too. ``insufficient data`` is graded ``very low``.
The identifying studies are the fit's studies, except for a moderator coefficient
``beta:TERM``, which only the studies at the term's non-reference level identify
(``doses_given>1``: the repeated-dose studies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..select.filters import COUNT_COLUMN
from ..select.moderators import term_rows

if TYPE_CHECKING:  # pragma: no cover
    from ..claims.spec import Claim

GRADES = ("high", "moderate", "low", "very low")
#: designs that have no concurrent control
UNCONTROLLED = frozenset({"single_arm"})
WEAK_TIERS = frozenset({"derived", "back_calculated"})


@dataclass(frozen=True)
class Certainty:
    """A grade (``GRADES``) and the reasons that lowered it."""

    grade: str
    reasons: tuple[str, ...] = ()
    #: why the verdict was capped at inconclusive (every identifying study uncontrolled)
    cap: str | None = None
    #: studies whose omission changes the verdict (None: not assessed)
    fragile: tuple[str, ...] | None = None
    identifying: tuple[str, ...] = field(default=())
    #: the small-study check (None: the family has none, or the verdict needs none)
    small_study: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the grade as results.json carries it."""
        out = {"grade": self.grade, "reasons": list(self.reasons),
               "identifying_studies": list(self.identifying),
               "fragile_to": None if self.fragile is None else list(self.fragile)}
        if self.small_study is not None:
            out["small_study"] = self.small_study
        return out


def _outcome_rows(table: pd.DataFrame, claim: Claim, studies: list[str]) -> pd.DataFrame:
    rows = table[table["study"].astype(str).isin(studies)]
    column = COUNT_COLUMN.get(claim.outcome)
    if column in rows:
        rows = rows[rows[column].notna()]
    elif claim.outcome == "change" and "mean" in rows:
        rows = rows[rows["mean"].notna() | rows.get("effect", pd.Series(
            index=rows.index, dtype=float)).notna()]
    return rows


def identifying_studies(claim: Claim, studies: list[str], table: pd.DataFrame) -> list[str]:
    """Studies that identify the claim's quantity (see the module docstring)."""
    if not claim.quantity.startswith("beta:"):
        return list(studies)
    rows = _outcome_rows(table, claim, studies)
    mask = term_rows(rows, claim.quantity.removeprefix("beta:"))
    if mask is None:
        return list(studies)
    return sorted(set(rows.loc[mask, "study"].astype(str)))


def uncontrolled(table: pd.DataFrame, study: str) -> bool:
    """Whether a study has no concurrent control: its design is single-arm (``single_arm``).

    A head-to-head trial without a placebo arm is still randomised and concurrent: it counts
    as controlled. A file without a ``design`` column says nothing, and nothing is assumed.
    """
    if "design" not in table:
        return False
    design = set(table.loc[table["study"].astype(str) == study, "design"].dropna().astype(str))
    return bool(design) and design <= UNCONTROLLED


def untimed_rows(claim: Claim, table: pd.DataFrame) -> list[str]:
    """Rows of the claim's selection with its outcome but no time point ("study/arm").

    A claim at a time point (``time_h``, without ``untimed``) cannot use them; more
    extraction (the hours after the infusion) could bring them in.
    """
    window = getattr(claim, "window", None)
    if window is None or claim.option("untimed", False) or "time_h" not in table:
        return []
    rows = claim.filters.apply(table)
    column = COUNT_COLUMN.get(claim.outcome)
    if column not in rows:
        return []
    rows = rows[rows[column].notna() & rows["time_h"].isna()]
    return [f"{s}/{a}" for s, a in zip(rows["study"], rows["arm"], strict=True)]


def _describe(table: pd.DataFrame, study: str) -> str:
    rows = table[table["study"].astype(str) == study]
    design = ", ".join(sorted(set(rows["design"].dropna().astype(str)))) \
        if "design" in rows else ""
    text = f"{study} ({design or 'design not recorded'}"
    if "population" in rows and rows["population"].notna().any():
        text += f", {rows['population'].dropna().astype(str).iloc[0]}"
    if "notes" in rows and rows["notes"].notna().any():
        note = rows["notes"].dropna().astype(str).iloc[0].split(";")[0].strip()
        if note:
            text += f"; {note[:120]}{'...' if len(note) > 120 else ''}"
    return text + ")"


def assess(claim: Claim, verdict: str, studies: list[str], table: pd.DataFrame, *,
           diagnostics_passed: bool | None = None, fragile: list[str] | None = None,
           reason: str = "", small_study: dict[str, Any] | None = None) -> Certainty:
    """Grade the evidence behind one verdict (module docstring).

    ``reason`` is the verdict's reason: for ``insufficient data`` a study it says a
    comparison "rests on ... alone" is named with its design, as a single study is.
    """
    ident = identifying_studies(claim, studies, table)
    if verdict == "insufficient data":
        said = ["the records as extracted cannot settle this quantity"]
        untimed = untimed_rows(claim, table)
        if untimed:
            shown = ", ".join(untimed[:8]) + (f" and {len(untimed) - 8} more"
                                              if len(untimed) > 8 else "")
            said.append(f"{len(untimed)} row(s) with this outcome were left out only for "
                        f"a missing time point: {shown}")
        alone = [s for s in ident if f"rests on {s} alone" in reason]
        if len(ident) == 1:
            said.append(f"one study carries it: {_describe(table, ident[0])}")
        elif alone:
            said.append(f"the only bridge: {_describe(table, alone[0])}")
        return Certainty("very low", tuple(said), identifying=tuple(ident),
                         fragile=None if fragile is None else tuple(fragile))
    reasons: list[str] = []
    cap = None
    open_series = [s for s in ident if uncontrolled(table, s)]
    if ident and len(open_series) == len(ident):
        cap = (f"identified only by uncontrolled studies ({', '.join(open_series)}): "
               "without a concurrent control the data cannot tell the treatment from "
               "regression to the mean, expectation or natural course")
        reasons.append(cap)
        reasons.append("uncontrolled designs only")  # two levels: the GRADE start for them
    elif open_series:
        reasons.append(f"{len(open_series)} of {len(ident)} identifying studies are "
                       f"uncontrolled ({', '.join(open_series)})")
    if fragile:
        reasons.append(f"fragile: leaving out {', '.join(fragile)} changes the verdict")
    rows = _outcome_rows(table, claim, ident)
    if "evidence" in rows:
        weak = rows[rows["evidence"].isin(WEAK_TIERS)]
        if len(weak):
            by_tier = weak.groupby("evidence")["study"].agg(lambda s: sorted(set(s)))
            parts = [f"{tier.replace('_', '-')} counts in {', '.join(names)}"
                     for tier, names in by_tier.items()]
            reasons.append("numbers not printed per arm: " + "; ".join(parts))
    if len(ident) == 1:
        reasons.append(f"one study carries it: {_describe(table, ident[0])}")
    if diagnostics_passed is False:
        reasons.append("the fit failed its convergence diagnostics")
    if small_study and small_study.get("changes_verdict"):
        p = small_study.get("probability")
        reasons.append("small-study effects: adjusted by a regression on the standard error "
                       f"({small_study['method'].upper()}), the verdict would be "
                       f"{small_study['verdict']}"
                       + ("" if p is None else f" (P = {p:.2f})"))
    level = min(len(reasons), len(GRADES) - 1)
    return Certainty(GRADES[level], tuple(reasons), cap=cap,
                     fragile=None if fragile is None else tuple(fragile),
                     identifying=tuple(ident), small_study=small_study)
