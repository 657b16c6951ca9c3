"""Arm-level data for dose-response models: one drug, route and dose unit at a time.

Control arms enter at dose 0. For each study the time point nearest the target
(within the window) with at least two distinct doses is used. Continuous outcomes
are arm means with standard errors (SD / sqrt(n), or the reported SE); with
``standardize=True`` each study's arm means and SEs are divided by the study's
pooled SD so that studies on different scales share one (SMD-like) scale.

Contrast-level rows of the selected drug (a reported log OR, MD or, with ``standardize``,
SMD against the study's control or another dose) enter as contrasts between two doses,
nearest the target time, for studies whose arms do not qualify on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..io.memo import per_records
from ..io.records import Records
from .filters import COUNT_COLUMN, Filters, TimeWindow

STUDY_LEVEL = ("population", "design", "scale", "evidence", "exclude_studies", "domain",
               "endpoint")


@dataclass
class DoseData:
    """Arms of the selected studies with their dose (0 for controls).

    Attributes
    ----------
    arms : pandas.DataFrame
        study, arm, treatment, role, dose, time_h, n, and events (binary) or y, se.
    contrasts : pandas.DataFrame
        Reported contrasts: study, arm, vs, dose, vs_dose, time_h, yi, vi, shared_var.
    """

    outcome: str
    unit: str
    treatment: str
    window: TimeWindow
    arms: pd.DataFrame
    standardized: bool = False
    dropped: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def binary(self) -> bool:
        """True for count outcomes (response, remission, events)."""
        return self.outcome in COUNT_COLUMN

    @property
    def studies(self) -> list[str]:
        """Study keys in order (arm-level studies, then those with reported contrasts)."""
        keys = list(self.arms["study"]) if len(self.arms) else []
        keys += list(self.contrasts["study"]) if len(self.contrasts) else []
        return list(dict.fromkeys(keys))

    @property
    def doses(self) -> np.ndarray:
        """Distinct positive doses observed (arms and reported contrasts)."""
        d = self.arms["dose"].to_numpy(float) if len(self.arms) else np.zeros(0)
        if len(self.contrasts):
            d = np.r_[d, self.contrasts["dose"].to_numpy(float),
                      self.contrasts["vs_dose"].to_numpy(float)]
        return np.unique(d[d > 0])


@per_records
def select_dose_arms(records: Records, outcome: str, window: TimeWindow, filters: Filters, *,
                     comparator: tuple[str, ...] = (), standardize: bool = False) -> DoseData:
    """Select arms for a dose-response fit (see the module docstring)."""
    if outcome not in (*COUNT_COLUMN, "change"):
        raise SpecError(f"unknown outcome '{outcome}'; use response, remission, events or change")
    study_filters = Filters(**{k: getattr(filters, k) for k in STUDY_LEVEL})
    t = study_filters.apply(records.table)
    is_ctl = t["control"].fillna(False).astype(bool)
    # the dose is the x variable: never filter on it here
    active = Filters(**{**filters.__dict__, "dose": None}).apply(t[~is_ctl])
    active = active[active["dose"].notna()]
    treatments = sorted(set(active["treatment"]))
    units = sorted(set(active["dose_unit"].dropna()))
    routes = sorted(set(active["route"].dropna()))
    if len(treatments) > 1 or len(units) > 1 or len(routes) > 1:
        raise SpecError(
            "dose-response compares doses within one drug, route and dose unit, but the "
            f"selected arms have treatments {treatments}, routes {routes}, units {units}; "
            "narrow the selection with --treatment, --route and --dose-unit")
    if active.empty:
        raise SpecError("no active arm with a dose passes the filters")
    control = t[is_ctl]
    if comparator:
        control = control[control["treatment"].isin(comparator)]
    control = control.assign(dose=0.0)
    rows = pd.concat([active, control])
    baseline = rows["time_h"].fillna(-1).eq(0) | rows["doses_given"].fillna(-1).eq(0)
    rows = rows[~baseline & rows["time_h"].notna()]
    if outcome in COUNT_COLUMN:
        rows = rows[rows[COUNT_COLUMN[outcome]].notna()]
    else:
        rows = rows[rows["mean"].notna() & (rows["sd"].notna() | rows["se"].notna())
                    & rows["n"].notna()]
    dropped: list[dict[str, object]] = []
    notes: list[str] = []
    out = []
    with_drug = set(active["study"])
    reported = _reported_contrasts(t, active, filters, outcome, window, comparator,
                                   standardize, dropped, notes)
    with_reported = set(reported["study"])
    for study in dict.fromkeys(t["study"]):
        if study not in with_drug:
            dropped.append(dict(study=study, arm="*",
                                reason="no arm of the selected drug, route and unit"))
            continue
        r = rows[rows["study"] == study]
        by_time = {x: g for x, g in r.groupby(r["time_h"].astype(float))}
        ok = [x for x, g in by_time.items() if g["dose"].astype(float).nunique() >= 2
              and window.low_h <= x <= window.high_h]
        if study in with_reported:
            if not ok:
                continue  # the study enters through its reported contrasts
            reported = reported[reported["study"] != study]
            dropped.append(dict(study=study, arm="*", reason="reported contrasts not used: "
                                "the study's arm-level numbers are"))
        if not ok:
            dropped.append(dict(study=study, arm="*",
                                reason="fewer than two doses (control = 0) with this outcome "
                                       f"within {window.low_h:g}-{window.high_h:g} h"))
            continue
        time_h = min(ok, key=lambda x: (abs(x - window.target_h), x))
        g = by_time[time_h]
        if outcome == "change" and (g["scale"].nunique() > 1 or g["mean_type"].nunique() > 1):
            dropped.append(dict(study=study, arm="*",
                                reason="arms on different scales or mean types"))
            continue
        for rec in g.to_dict("records"):
            row = dict(study=study, arm=rec["arm"], treatment=rec["treatment"],
                       role="control" if rec["control"] else "active",
                       dose=float(rec["dose"]), time_h=time_h, design=rec["design"],
                       scale=rec["scale"], evidence=rec["evidence"],
                       population=rec["population"], route=rec["route"],
                       doses_given=rec["doses_given"])
            if outcome in COUNT_COLUMN:
                n = rec["n_binary"] if pd.notna(rec["n_binary"]) else rec["n"]
                row.update(n=int(n), events=int(rec[COUNT_COLUMN[outcome]]))
            else:
                se = (float(rec["sd"]) / np.sqrt(float(rec["n"])) if pd.notna(rec["sd"])
                      else float(rec["se"]))
                sd = float(rec["sd"]) if pd.notna(rec["sd"]) else se * np.sqrt(float(rec["n"]))
                row.update(n=int(rec["n"]), y=float(rec["mean"]), se=se, sd=sd)
            out.append(row)
        if (g["design"] == "crossover").any():
            notes.append(f"{study}: crossover arms analysed as independent groups")
    arms = pd.DataFrame(out)
    if arms.empty and reported.empty:
        raise SpecError("no study has two or more doses (counting control as 0) with this "
                        "outcome in the time window")
    if outcome == "change" and standardize and len(arms):
        pooled = arms.groupby("study")[["sd", "n"]].apply(
            lambda g: np.sqrt(((g["n"] - 1) * g["sd"] ** 2).sum() / (g["n"] - 1).sum()))
        s = arms["study"].map(pooled)
        arms = arms.assign(y=arms["y"] / s, se=arms["se"] / s)
        notes.append("arm means standardized by each study's pooled SD (SMD scale)")
    elif outcome == "change":
        scales = set(arms["scale"]) if len(arms) else set()
        scales |= set(reported["scale"]) if len(reported) else set()
        if len(scales) > 1:
            raise SpecError(f"arms are on different rating scales ({', '.join(sorted(scales))}"
                            "); use --standardize or select one --scale")
    return DoseData(outcome, units[0] if units else "", treatments[0], window, arms,
                    standardize, dropped, notes,
                    reported.drop(columns=["scale"]).reset_index(drop=True))


def _reported_contrasts(t: pd.DataFrame, active: pd.DataFrame, filters: Filters,
                        outcome: str, window: TimeWindow, comparator: tuple[str, ...],
                        standardize: bool, dropped: list, notes: list) -> pd.DataFrame:
    """Return the reported contrasts of the drug as pairs of doses (comparator: its dose or 0)."""
    from .contrast_rows import contrast_level_rows

    measure = "OR" if outcome in COUNT_COLUMN else ("SMD" if standardize else "MD")
    rows, left_out, said = contrast_level_rows(
        t, Filters(**{**filters.__dict__, "dose": None}), outcome, measure, window, comparator)
    dropped += left_out
    columns = ["study", "arm", "vs", "dose", "vs_dose", "time_h", "yi", "vi", "shared_var",
               "scale"]
    out = []
    for r in rows:
        if r["arm"] not in set(active.loc[active["study"] == r["study"], "arm"]):
            continue  # another drug, route or unit
        vs = t[(t["study"] == r["study"]) & (t["arm"] == r["control"])]
        is_ctl = vs["control"].fillna(False).astype(bool)
        if vs.empty or not (is_ctl.all() or vs["dose"].notna().all()):
            dropped.append(dict(study=r["study"], arm=r["arm"],
                                reason=f"the comparator {r['control']} has no dose"))
            continue
        vs_dose = 0.0 if is_ctl.all() else float(vs["dose"].iloc[0])
        out.append(dict(study=r["study"], arm=r["arm"], vs=r["control"], dose=float(r["dose"]),
                        vs_dose=vs_dose, time_h=r["time_h"], yi=r["yi"], vi=r["vi"],
                        shared_var=r["shared_var"], scale=r["scale"]))
    notes += [n for n in said if any(n.startswith(f"{c['study']}:") for c in out)]
    return pd.DataFrame(out, columns=columns)
