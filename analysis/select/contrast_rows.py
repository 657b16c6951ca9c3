"""Contrast-level rows: trials that report an effect estimate instead of arm-level numbers.

A row for an active arm may carry ``vs`` (its comparator's arm label), ``effect_outcome``,
``effect_measure``, ``effect`` and ``effect_se`` (or a 95 % CI, from which the SE is derived
as (high - low) / (2 x 1.96)). Such a row enters a contrast analysis as one contrast with
that estimate and variance, next to the contrasts computed from arm-level rows (NICE DSU
TSD2's shared-parameter approach; multinma). Effects are on the analysis scale: log OR, log
RR, RD, MD or SMD (Hedges' g).

Contrasts of one study that share a comparator are correlated: their shared variance is the
comparator's own sampling variance when its row gives it (MD: se^2 or sd^2 / n; SMD: 1 / n; log OR:
1/events + 1/non-events), otherwise half the smallest of the study's contrast variances (the
value for equal arms), and the output says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..io.records import COLUMN_BY_NAME
from .filters import COUNT_COLUMN, Filters, TimeWindow

#: arm attributes a meta-regression may use as moderators
MODERATOR_ATTRIBUTES = ("treatment", "route", "population", "doses_given", "dose")
#: the contrast table's own columns: a user column of the same name is not carried along
CONTRAST_TABLE_COLUMNS = frozenset({
    "study", "arm", "role", "control", "comparator", "time_h", "design", "a", "b", "c", "d",
    "evidence", "line", "level", "control_lines", "scale", "mean_type", "m1", "sd1", "n1",
    "m2", "sd2", "n2", "n", "events", "yi", "vi", "shared_var",
    "notes"})  # free text that documents a row, never a moderator


def moderator_columns(row: dict) -> dict[str, object]:
    """Active-arm attributes that meta-regression can use as moderators.

    The contract's arm attributes and every column of the user's own (BCG's ``ablat``, a
    risk-of-bias grade...), except one named like a column of the contrast table.
    """
    own = {k: v for k, v in row.items()
           if k not in COLUMN_BY_NAME and k not in CONTRAST_TABLE_COLUMNS}
    return {**{k: row[k] for k in MODERATOR_ATTRIBUTES}, **own}


#: the contrast-level measure that matches each analysis measure
ROW_MEASURE = {"OR": "logOR", "RR": "logRR", "RD": "RD", "MD": "MD", "SMD": "SMD"}
Z95 = 1.959963984540054


def _comparator_variance(rows: pd.DataFrame, outcome: str, measure: str) -> float | None:
    """Return the comparator arm's own sampling variance from its row, when the row gives it."""
    if rows.empty:
        return None
    r = rows.iloc[0]
    if outcome == "change":
        n = r["n"]
        if measure == "MD" and pd.notna(r["se"]):
            return float(r["se"]) ** 2  # the comparator's mean (an LS mean) and its SE
        if n is None or pd.isna(n):
            return None
        if measure == "SMD":
            return 1.0 / float(n)
        sd = r["sd"] if pd.notna(r["sd"]) else (r["se"] * np.sqrt(float(n))
                                                if pd.notna(r["se"]) else None)
        return None if sd is None else float(sd) ** 2 / float(n)
    col = COUNT_COLUMN[outcome]
    n = r["n_binary"] if pd.notna(r["n_binary"]) else r["n"]
    if pd.isna(r[col]) or n is None or pd.isna(n) or measure != "OR":
        return None
    events, total = float(r[col]), float(n)
    if events == 0 or events == total:
        return None
    return 1.0 / events + 1.0 / (total - events)


def contrast_level_rows(t: pd.DataFrame, filters: Filters, outcome: str, measure: str,
                        window: TimeWindow | None, comparator: tuple[str, ...],
                        mean_types: tuple[str, ...] = (), *, every_time: bool = False,
                        crossover: str = "keep"
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Return the contrasts that contrast-level rows give, the rows left out, and notes.

    ``t`` holds the rows that passed the study-level filters; ``filters`` select the active
    arms as for arm-level rows; ``mean_types`` (change outcomes) keeps rows of those types.
    With ``every_time`` (time-course), each row after the dose is a contrast at its time;
    ``crossover="exclude"`` leaves out crossover trials.
    """
    rows = t[t["effect"].notna() & (t["effect_outcome"] == outcome)]
    if crossover == "exclude":
        rows = rows[rows["design"] != "crossover"]
    rows = filters.apply(rows[~rows["control"].fillna(False).astype(bool)])
    if mean_types and outcome == "change":
        rows = rows[rows["mean_type"].isin(mean_types)]
    contrasts: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    notes: list[str] = []
    picked: list[pd.Series] = []
    for (study, arm), group in rows.groupby(["study", "arm"], sort=False):
        if every_time:
            timed = group[group["time_h"].astype(float) > 0]
            if timed.empty:
                dropped.append(dict(study=study, arm=arm, reason=f"contrast-level {outcome} "
                                    "has no time after the dose"))
            picked += [r for _, r in timed.iterrows()]
            continue
        if window is not None:
            timed = group[group["time_h"].notna()]
            inside = timed[(timed["time_h"] >= window.low_h) & (timed["time_h"] <= window.high_h)]
            if inside.empty:
                dropped.append(dict(study=study, arm=arm, reason=f"contrast-level {outcome} "
                                    f"has no time in {window.low_h:g}-{window.high_h:g} h"))
                continue
            dist = (inside["time_h"].astype(float) - window.target_h).abs()
            r = inside.assign(_d=dist.to_numpy()).sort_values(["_d", "time_h"]).iloc[0]
        else:
            if len(group) > 1:
                dropped.append(dict(study=study, arm=arm,
                                    reason="several time points; choose one with --time"))
                continue
            r = group.iloc[0]
        picked.append(r)
    for r in picked:
        study, arm = r["study"], r["arm"]
        if r["effect_measure"] != ROW_MEASURE[measure]:
            dropped.append(dict(study=study, arm=arm, reason=f"reported as "
                                f"{r['effect_measure']}; the analysis uses {measure}"))
            continue
        vs_rows = t[(t["study"] == study) & (t["arm"] == r["vs"])]
        vs_treatment = vs_rows["treatment"].iloc[0] if len(vs_rows) else r["vs"]
        if comparator and vs_treatment not in comparator:
            continue
        if pd.notna(r["effect_se"]):
            var = float(r["effect_se"]) ** 2
        else:
            var = ((float(r["effect_ci_high"]) - float(r["effect_ci_low"])) / (2 * Z95)) ** 2
            notes.append(f"{study}: SE derived from the 95% CI of the reported {measure}")
        same_time = vs_rows["time_h"].isna() if pd.isna(r["time_h"]) else \
            vs_rows["time_h"] == r["time_h"]
        contrasts.append(dict(
            study=study, arm=arm, control=str(r["vs"]), comparator=str(vs_treatment),
            time_h=None if pd.isna(r["time_h"]) else float(r["time_h"]),
            design=r["design"] if pd.notna(r["design"]) else "", level="contrast",
            yi=float(r["effect"]), vi=var, scale=r["scale"], evidence=r["evidence"],
            mean_type=r["mean_type"], line=r["line"],
            _comparator_var=_comparator_variance(vs_rows[same_time], outcome, measure),
            **moderator_columns(r)))
        notes.append(f"{study}: {arm} vs {r['vs']} entered as a reported {measure} "
                     "(contrast level)")
    return _shared_variances(contrasts, notes), dropped, notes


#: more contrast-level notes than this are said in one line
MAX_LISTED_NOTES = 5


def collapse_contrast_notes(notes: list[str], measure: str) -> list[str]:
    """Say "N contrasts entered as reported MDs" once when a file has many of them.

    For the notes a contrast selection shows; :func:`contrast_level_rows` itself keeps one
    note per study (the network selection files each note under its study).
    """
    entered = [n for n in notes if n.endswith("(contrast level)")]
    if len(entered) <= MAX_LISTED_NOTES:
        return notes
    rest = [n for n in notes if not n.endswith("(contrast level)")]
    return [f"{len(entered)} contrasts entered as reported {measure}s (contrast level)", *rest]


def _shared_variances(contrasts: list[dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """Set each contrast-level row's shared (comparator) variance, saying when it is assumed."""
    by_study: dict[tuple, list[dict[str, Any]]] = {}
    for c in contrasts:
        by_study.setdefault((c["study"], c["control"], c["time_h"]), []).append(c)
    for (study, _, _), group in by_study.items():
        known = group[0].pop("_comparator_var")
        for c in group[1:]:
            c.pop("_comparator_var")
        if len(group) == 1:
            group[0]["shared_var"] = 0.0
            continue
        if known is None:
            known = 0.5 * min(c["vi"] for c in group)
            notes.append(f"{study}: the comparator's variance shared by its contrasts is not "
                         "reported; taken as half the smallest contrast variance (equal arms)")
        for c in group:
            c["shared_var"] = float(min(known, c["vi"]))
    return contrasts
