"""Active-vs-control contrasts within trials, at one time point.

For each study the time point nearest the target (within the window) at which
both an active and a control arm carry the outcome is used. Several control arms
at that time are combined into one (counts summed; means and SDs pooled as in the
Cochrane Handbook, section 6.5.2.10). Each active arm gives one contrast against
that control; contrasts that share a control keep their correlation in the
Bayesian models, and split the shared control evenly in the frequentist engine.

Crossover trials: ``crossover="exclude"`` drops them; ``"keep"`` (default) uses
their arms. For counts, both periods are then analysed as independent groups,
which ignores the positive within-patient correlation and so overstates the
variance of the contrast (conservative). For means the contrast variance uses
a within-patient correlation ``rho`` (default 0.5):
var(MD) = (sd_a² + sd_c² − 2·rho·sd_a·sd_c) / n.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..io.memo import per_records
from ..io.records import Records
from ..stats.effects import (
    Effects,
    log_odds_ratio,
    log_risk_ratio,
    mean_difference,
    risk_difference,
    sd_from_se,
    standardized_mean_difference,
)
from .contrast_rows import (
    CONTRAST_TABLE_COLUMNS,
    MODERATOR_ATTRIBUTES,
    collapse_contrast_notes,
    contrast_level_rows,
    moderator_columns,
)
from .filters import BINARY_OUTCOMES, COUNT_COLUMN, Filters, TimeWindow

BINARY_MEASURES = ("OR", "RR", "RD")
CONTINUOUS_MEASURES = ("MD", "SMD")
#: every outcome a contrast can be taken on: the binary ones and a change in a scale
OUTCOMES = (*BINARY_OUTCOMES, "change")
STUDY_LEVEL = ("population", "design", "scale", "evidence", "exclude_studies", "domain",
               "endpoint")


@dataclass
class ContrastData:
    """Contrasts of active arms against their study's control at one time point.

    Attributes
    ----------
    arms : pandas.DataFrame
        One row per arm used (binary outcomes): study, arm, role, n, events, ...
    contrasts : pandas.DataFrame
        One row per active arm: study, arm, control, time_h, design, and for
        binary outcomes a, b, c, d (events and non-events of active and control);
        for continuous outcomes m1, sd1, n1, m2, sd2, n2, yi, vi, shared_var.
    """

    outcome: str
    measure: str
    window: TimeWindow
    arms: pd.DataFrame
    contrasts: pd.DataFrame
    dropped: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def binary(self) -> bool:
        """True for count outcomes (response, remission, events)."""
        return self.outcome in BINARY_OUTCOMES

    @property
    def k_studies(self) -> int:
        """Number of studies with at least one contrast."""
        return int(self.contrasts["study"].nunique()) if len(self.contrasts) else 0

    @property
    def studies(self) -> list[str]:
        """Study keys in order."""
        return list(dict.fromkeys(self.contrasts["study"])) if len(self.contrasts) else []

    @property
    def n_total(self) -> int:
        """Patients in the arms used (crossover patients counted once per arm)."""
        if self.binary:
            return int(self.arms["n"].sum()) if len(self.arms) else 0
        if not len(self.contrasts):
            return 0
        ctl = self.contrasts.drop_duplicates("study")["n2"].sum()
        return int(self.contrasts["n1"].sum() + ctl)


def _study_filters(filters: Filters) -> Filters:
    """Keep only the filters that apply to every arm of a study (controls included)."""
    return Filters(**{k: getattr(filters, k) for k in STUDY_LEVEL})


def _has_outcome(rows: pd.DataFrame, outcome: str, timed: bool) -> pd.DataFrame:
    baseline = rows["time_h"].fillna(-1).eq(0) | rows["doses_given"].fillna(-1).eq(0)
    rows = rows[~baseline]
    if timed:
        rows = rows[rows["time_h"].notna()]
    if outcome in COUNT_COLUMN:
        return rows[rows[COUNT_COLUMN[outcome]].notna()]
    return rows[rows["mean"].notna() & (rows["sd"].notna() | rows["se"].notna())
                & rows["n"].notna()]


def _combine_means(rows: pd.DataFrame) -> tuple[float, float, int]:
    """Pool several groups' mean, SD and n into one group (Cochrane 6.5.2.10)."""
    m, s, n = float(rows["m"].iloc[0]), float(rows["s"].iloc[0]), int(rows["n"].iloc[0])
    for r in rows.iloc[1:].to_dict("records"):
        m2, s2, n2 = float(r["m"]), float(r["s"]), int(r["n"])
        tot = n + n2
        var = ((n - 1) * s**2 + (n2 - 1) * s2**2 + n * n2 / tot * (m - m2) ** 2) / (tot - 1)
        m, s, n = (n * m + n2 * m2) / tot, float(np.sqrt(var)), tot
    return m, s, n


def _candidates(records: Records, outcome: str, filters: Filters, comparator: tuple[str, ...],
                mean_type: str | None, *, timed: bool
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rows passing the study-level filters, and the active and control rows with the outcome."""
    t = _study_filters(filters).apply(records.table)
    is_ctl = t["control"].fillna(False).astype(bool)
    active = filters.apply(t[~is_ctl])
    control = t[is_ctl]
    if comparator:
        control = control[control["treatment"].isin(comparator)]
    types = (mean_type,) if mean_type else filters.mean_type
    if types and outcome == "change":
        active = active[active["mean_type"].isin(types)]
        control = control[control["mean_type"].isin(types)]
    return t, _has_outcome(active, outcome, timed), _has_outcome(control, outcome, timed)


def _check_options(outcome: str, measure: str, crossover: str, rho: float) -> None:
    if outcome not in OUTCOMES:
        raise SpecError(f"unknown outcome '{outcome}'; use one of {', '.join(OUTCOMES)}")
    allowed = CONTINUOUS_MEASURES if outcome == "change" else BINARY_MEASURES
    if measure not in allowed:
        raise SpecError(f"measure {measure} does not fit outcome '{outcome}'; use one of "
                        f"{', '.join(allowed)}")
    if crossover not in ("keep", "exclude"):
        raise SpecError("crossover must be 'keep' or 'exclude'")
    if not -1 <= rho <= 1:
        raise SpecError("rho must lie in [-1, 1]")


def _per_study(t: pd.DataFrame, active: pd.DataFrame, control: pd.DataFrame):
    """Yield (study, its active rows, its control rows) in order of first appearance.

    The tables are split once: a mask per study would scan them whole for every study.
    """
    by_active = dict(tuple(active.groupby("study", sort=False)))
    by_control = dict(tuple(control.groupby("study", sort=False)))
    for study in dict.fromkeys(t["study"]):
        yield (study, by_active.get(study, active.iloc[0:0]),
               by_control.get(study, control.iloc[0:0]))


@per_records
def select_time_course(records: Records, outcome: str, measure: str, filters: Filters, *,
                       comparator: tuple[str, ...] = (), crossover: str = "keep",
                       rho: float = 0.5, mean_type: str | None = None,
                       allow_mixed_mean_types: bool = False) -> ContrastData:
    """Contrasts at every post-dose time point of every study (for time-course models).

    Only rows after a single administration (``doses_given == 1``) are used unless the
    filters say otherwise; baselines never count as outcomes. Contrast-level rows enter
    at each of their times, beside the arm-level contrasts.
    """
    _check_options(outcome, measure, crossover, rho)
    if filters.doses_given is None:
        filters = Filters(**{**filters.__dict__, "doses_given": 1})
    t, active, control = _candidates(records, outcome, filters, comparator, mean_type,
                                     timed=True)
    dropped: list[dict[str, object]] = []
    out: dict[str, list] = {"arms": [], "contrasts": [], "notes": []}
    reported, reported_dropped, reported_notes = contrast_level_rows(
        t, filters, outcome, measure, None, comparator,
        (mean_type,) if mean_type else filters.mean_type, every_time=True,
        crossover=crossover)
    with_reported = {r["study"] for r in reported}
    for study, a, c in _per_study(t, active, control):
        design = (a["design"].dropna().tolist() + c["design"].dropna().tolist() or [""])[0]
        if design == "crossover" and crossover == "exclude":
            dropped.append(dict(study=study, arm="*", reason="crossover trial excluded"))
            continue
        times = sorted(set(a["time_h"].astype(float)) & set(c["time_h"].astype(float)))
        if not times and study in with_reported:
            continue  # the study reports its contrasts (below)
        if not times:
            dropped.append(dict(study=study, arm="*",
                                reason=f"no time point with both an active and a control "
                                       f"arm carrying {outcome} data"))
            continue
        for time_h in times:
            reason = _contrasts_at(study, a[a["time_h"].astype(float) == time_h],
                                   c[c["time_h"].astype(float) == time_h], time_h, design,
                                   outcome, out)
            if reason:
                dropped.append(dict(study=study, arm="*", reason=f"{time_h:g} h: {reason}"))
    contrasts = pd.DataFrame(out["contrasts"] + reported)
    if len(contrasts):  # a study's contrasts together (the likelihood factorises by study)
        order = {s: i for i, s in enumerate(dict.fromkeys(contrasts["study"]))}
        contrasts = contrasts.sort_values("study", key=lambda s: s.map(order),
                                          kind="stable").reset_index(drop=True)
    data = ContrastData(outcome, measure, None, pd.DataFrame(out["arms"]), contrasts,
                        dropped + reported_dropped,
                        list(dict.fromkeys(out["notes"] + collapse_contrast_notes(
                            reported_notes, measure))))
    if outcome == "change" and len(data.contrasts):
        _continuous_effects(data, rho, allow_mixed_mean_types)
    return data


@per_records
def select_contrasts(records: Records, outcome: str, measure: str, window: TimeWindow | None,
                     filters: Filters, *, comparator: tuple[str, ...] = (),
                     crossover: str = "keep", rho: float = 0.5,
                     mean_type: str | None = None,
                     allow_mixed_mean_types: bool = False) -> ContrastData:
    """Build the contrasts a contrast model or the frequentist engine uses.

    Parameters
    ----------
    records : Records
        Validated records.
    outcome : {"response", "remission", "events", "change"}
        Counts, or the continuous outcome (change or endpoint means).
    measure : {"OR", "RR", "RD", "MD", "SMD"}
        Effect measure; binary outcomes take OR/RR/RD, "change" takes MD/SMD.
    window : TimeWindow or None
        Target time and window; ``None`` for records without time points (each
        study must then have one time point, or none).
    filters : Filters
        Filters; treatment, route, dose and doses_given select the active arms.
    comparator : tuple of str
        Control treatments to keep (all control arms when empty).
    crossover : {"keep", "exclude"}
        What to do with crossover trials.
    rho : float
        Within-patient correlation for crossover means.
    mean_type : {"change", "endpoint"}, optional
        Use only means of this type (else ``filters.mean_type``). Without one, a study
        reporting both uses its change scores, and contrasts of both types are refused.
    allow_mixed_mean_types : bool
        Allow both types across studies (when the mean type is a moderator).
    """
    _check_options(outcome, measure, crossover, rho)
    binary = outcome != "change"
    t, active, control = _candidates(records, outcome, filters, comparator, mean_type,
                                     timed=window is not None)
    dropped: list[dict[str, object]] = []
    out: dict[str, list] = {"arms": [], "contrasts": [], "notes": []}
    reported, reported_dropped, reported_notes = contrast_level_rows(
        t, filters, outcome, measure, window, comparator,
        (mean_type,) if mean_type else filters.mean_type, crossover=crossover)
    with_reported = {r["study"] for r in reported}
    for study, a, c in _per_study(t, active, control):
        design = (a["design"].dropna().tolist() + c["design"].dropna().tolist() or [""])[0]
        if design == "crossover" and crossover == "exclude":
            dropped.append(dict(study=study, arm="*", reason="crossover trial excluded"))
            continue
        if a.empty or c.empty:
            if study in with_reported:
                continue  # the study reports its contrast (below)
            what = " or ".join(w for w, x in (("active", a), ("control", c)) if x.empty)
            dropped.append(dict(study=study, arm="*",
                                reason=f"no {what} arm with {outcome} data passing the filters"))
            continue
        a_times = a["time_h"].astype(float).fillna(-1.0)
        c_times = c["time_h"].astype(float).fillna(-1.0)
        common = sorted(set(a_times) & set(c_times))
        if window is None:
            if len(common) != 1 or len(set(a_times) | set(c_times)) > 1:
                dropped.append(dict(study=study, arm="*",
                                    reason="several time points; choose one with --time"))
                continue
            time_h = common[0]
        else:
            inside = [x for x in common if window.low_h <= x <= window.high_h]
            if not inside:
                have = ", ".join(f"{x:g}" for x in common) or "none shared by both arms"
                dropped.append(dict(study=study, arm="*",
                                    reason=f"no time in {window.low_h:g}-{window.high_h:g} h "
                                           f"with both arms (has {have})"))
                continue
            time_h = min(inside, key=lambda x: (abs(x - window.target_h), x))
        a = a[a_times.to_numpy() == time_h]
        c = c[c_times.to_numpy() == time_h]
        time_h = None if time_h < 0 else time_h
        reason = _contrasts_at(study, a, c, time_h, design, outcome, out)
        if reason:
            dropped.append(dict(study=study, arm="*", reason=reason))
    arms = pd.DataFrame(out["arms"])
    contrasts = pd.DataFrame(out["contrasts"] + reported)
    # an empty selection has the columns a full one has: code that reads c["a"] or c["yi"]
    # sees zero rows, not a KeyError (docs/extending.md lists them)
    if contrasts.empty:
        contrasts = pd.DataFrame(columns=list(BINARY_CONTRAST_COLUMNS if binary
                                              else CONTINUOUS_CONTRAST_COLUMNS))
    if arms.empty:
        arms = pd.DataFrame(columns=ARM_COLUMNS)
    data = ContrastData(outcome, measure, window, arms, contrasts, dropped + reported_dropped,
                        list(dict.fromkeys(out["notes"] + collapse_contrast_notes(
                            reported_notes, measure))))
    if not binary and len(contrasts):
        _continuous_effects(data, rho, allow_mixed_mean_types)
    return data


#: the columns every contrast selection has (empty or not); the user's own columns follow
SHARED_CONTRAST_COLUMNS = ("study", "arm", "control", "comparator", "time_h", "design",
                           "level", "evidence", "line", *MODERATOR_ATTRIBUTES)
BINARY_CONTRAST_COLUMNS = (*SHARED_CONTRAST_COLUMNS, "a", "b", "c", "d", "control_lines")
CONTINUOUS_CONTRAST_COLUMNS = (*SHARED_CONTRAST_COLUMNS, "scale", "mean_type", "m1", "sd1",
                               "n1", "m2", "sd2", "n2", "yi", "vi")
ARM_COLUMNS = ("study", "arm", "role", "treatment", "n", "events", "time_h", "design")
#: the arm-level means of a continuous contrast (absent when every contrast is reported)
ARM_MEANS = ("m1", "sd1", "n1", "m2", "sd2", "n2")


def moderator_names(contrasts: pd.DataFrame) -> list[str]:
    """Return the columns of a contrast table a moderator may name (for messages)."""
    return [c for c in contrasts.columns
            if c in (*MODERATOR_ATTRIBUTES, "design") or c not in CONTRAST_TABLE_COLUMNS]


def _contrasts_at(study: str, a: pd.DataFrame, c: pd.DataFrame, time_h: float | None,
                  design: str, outcome: str, out: dict[str, list]) -> str | None:
    """Append the arms and contrasts of one study at one time; return a reason to drop it."""
    binary = outcome in COUNT_COLUMN
    arm_rows, contrast_rows, notes = out["arms"], out["contrasts"], out["notes"]
    ctl_label = "+".join(c["arm"].tolist())
    if len(c) > 1:
        notes.append(f"{study}: control arms {', '.join(c['arm'])} combined")
    if design == "crossover":
        notes.append(f"{study}: crossover trial kept (both periods)")
    if binary:
        col = COUNT_COLUMN[outcome]
        cn = c["n_binary"].fillna(c["n"]).astype(int)
        ce, cn_sum = int(c[col].astype(int).sum()), int(cn.sum())
        arm_rows.append(dict(study=study, arm=ctl_label, role="control",
                             treatment="+".join(sorted(set(c["treatment"]))), n=cn_sum,
                             events=ce, time_h=time_h, design=design))
        for r in a.to_dict("records"):
            n1 = int(r["n_binary"] if pd.notna(r["n_binary"]) else r["n"])
            e1 = int(r[col])
            arm_rows.append(dict(study=study, arm=r["arm"], role="active",
                                 treatment=r["treatment"], n=n1, events=e1, time_h=time_h,
                                 design=design))
            contrast_rows.append(dict(study=study, arm=r["arm"], control=ctl_label,
                                      comparator="+".join(sorted(set(c["treatment"]))),
                                      time_h=time_h, design=design, a=e1, b=n1 - e1,
                                      c=ce, d=cn_sum - ce, evidence=r["evidence"],
                                      line=r["line"], level="arm",
                                      control_lines=" ".join(str(x) for x in c["line"]),
                                      **moderator_columns(r)))
    else:
        scales = set(a["scale"]) | set(c["scale"])
        if len(scales) > 1:
            return f"arms on different scales ({', '.join(sorted(scales))})"
        types = set(a["mean_type"]) | set(c["mean_type"])
        if len(types) > 1:
            both = ((a["mean_type"] == "change").any() and (c["mean_type"] == "change").any())
            if not both:
                return "change and endpoint means mixed within the study"
            a, c = a[a["mean_type"] == "change"], c[c["mean_type"] == "change"]
            types = {"change"}
            notes.append(f"{study}: change scores used (endpoint scores also reported)")

        def sds(rows: pd.DataFrame) -> pd.DataFrame:
            s = rows["sd"].astype(float)
            from_se = s.isna()
            if from_se.any():
                s = s.where(~from_se, sd_from_se(rows["se"].astype(float),
                                                 rows["n"].astype(float)))
            return rows.assign(m=rows["mean"].astype(float), s=s,
                               sd_derived=from_se.to_numpy())

        a, c = sds(a), sds(c)
        if c["sd_derived"].any() or a["sd_derived"].any():
            notes.append(f"{study}: SD derived from SE x sqrt(n)")
        m2, s2, n2 = _combine_means(c)
        for r in a.to_dict("records"):
            contrast_rows.append(dict(
                study=study, arm=r["arm"], control=ctl_label,
                comparator="+".join(sorted(set(c["treatment"]))), time_h=time_h,
                design=design, scale=next(iter(scales)), mean_type=next(iter(types)),
                m1=float(r["m"]), sd1=float(r["s"]), n1=int(r["n"]), m2=m2, sd2=s2, n2=n2,
                evidence=r["evidence"], level="arm", line=r["line"], **moderator_columns(r)))
    return None


def _continuous_effects(data: ContrastData, rho: float, allow_mixed: bool = False) -> None:
    """Add yi, vi and the shared-control covariance to continuous contrasts."""
    t = data.contrasts
    if data.measure == "MD" and t["scale"].nunique() > 1:
        raise SpecError("mean differences need one rating scale, but the contrasts use "
                        f"{', '.join(sorted(t['scale'].unique()))}; use --measure SMD or "
                        "select one --scale")
    if t["mean_type"].nunique() > 1:
        by_type = {k: sorted(set(g["study"])) for k, g in t.groupby("mean_type")}
        listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(by_type.items()))
        if not allow_mixed:
            raise SpecError(
                "the contrasts mix change-score and endpoint means (" + listed + "), which "
                "measure different things; choose one with --mean-type change|endpoint "
                "(mean_type: in a claims file's selection), or fit the mean type as a "
                "moderator (--moderator mean_type:categorical)")
        data.notes.append("change-score and endpoint means pooled with the mean type as a "
                          "moderator (" + listed + ")")
    elif t["mean_type"].notna().any():
        data.notes.append(f"means: {t['mean_type'].dropna().iloc[0]} scores")
    arm = (t["level"] == "arm").to_numpy() if "level" in t else np.ones(len(t), bool)
    t = t.reindex(columns=[*t.columns, *(c for c in ARM_MEANS if c not in t)])
    m1, s1, n1 = t["m1"].to_numpy(float), t["sd1"].to_numpy(float), t["n1"].to_numpy(float)
    m2, s2, n2 = t["m2"].to_numpy(float), t["sd2"].to_numpy(float), t["n2"].to_numpy(float)
    cross = (t["design"] == "crossover").to_numpy()
    if data.measure == "MD":
        eff = mean_difference(m1, s1, n1, m2, s2, n2)
        yi, vi = eff.yi, eff.vi
        vi_cross = (s1**2 + s2**2 - 2 * rho * s1 * s2) / n1
        shared = s2**2 / n2
    else:
        eff = standardized_mean_difference(m1, s1, n1, m2, s2, n2)
        yi, vi = eff.yi, eff.vi
        vi_cross = 2 * (1 - rho) / n1 + yi**2 / (2 * n1)
        shared = 1 / n2
    vi = np.where(cross, vi_cross, vi)
    shared = np.where(cross, 0.0, shared)
    if not arm.all():  # contrast-level rows keep their reported estimate and variance
        yi = np.where(arm, yi, t["yi"].to_numpy(float))
        vi = np.where(arm, vi, t["vi"].to_numpy(float))
        shared = np.where(arm, shared, t["shared_var"].to_numpy(float))
    data.contrasts = t.assign(yi=yi, vi=vi, shared_var=shared)


RATIO = ("OR", "RR")
BINARY_FN = {"OR": log_odds_ratio, "RR": log_risk_ratio, "RD": risk_difference}


def check_estimable(data: ContrastData) -> None:
    """Raise SpecError when there is nothing to contrast or the ratio cannot be estimated."""
    c = data.contrasts
    if not len(c):
        raise SpecError("no contrasts to analyse: no study has both an active and a control "
                        "arm with this outcome (single-arm studies cannot be compared)")
    if data.binary and data.measure in RATIO and "a" in c and c["a"].notna().any():
        if int((c["a"] + c["c"]).sum()) == 0:
            raise SpecError(f"no events in any arm: the {data.measure} is not estimable")
        if int((c["b"] + c["d"]).sum()) == 0:
            raise SpecError(f"every patient in every arm had the event: the {data.measure} is "
                            "not estimable")


def contrast_effects(data: ContrastData) -> Effects:
    """Per-contrast effects and variances for the frequentist engine.

    A control shared by m active arms is split evenly (n/m patients, events/m)
    so that it is not counted m times (Cochrane Handbook 23.3.4).
    """
    check_estimable(data)
    c = data.contrasts
    arm = (c["level"] == "arm").to_numpy() if "level" in c else np.ones(len(c), bool)
    counts = c[arm].groupby("study", sort=False)["arm"].transform("count")
    m = np.ones(len(c))
    m[arm] = counts.to_numpy(float)
    if data.binary:
        eff = BINARY_FN[data.measure](c["a"].fillna(0), c["b"].fillna(0), c["c"].fillna(0) / m,
                                      c["d"].fillna(0) / m)
        if arm.all():
            return eff
        return Effects(data.measure, np.where(arm, eff.yi, c["yi"].to_numpy(float)),
                       np.where(arm, eff.vi, c["vi"].to_numpy(float)))
    vi = c["vi"].to_numpy(float) + np.where(arm, (m - 1) * c["shared_var"].to_numpy(float), 0.0)
    return Effects(data.measure, c["yi"].to_numpy(float), vi)


#: why a double-zero or double-all study is left out of an odds-ratio model
UNINFORMATIVE = ("{kind}: no information about the odds ratio (left out of the arm-based "
                 "model, as in the Cochrane Handbook 10.4.4.2)")


def uninformative_studies(data: ContrastData) -> dict[str, str]:
    """Studies whose arm-level counts say nothing about an odds ratio, with the reason.

    A study whose every arm has no events ("double-zero") or only events ("double-all")
    has a likelihood that is flat in the log odds ratio once its baseline is free: it
    carries no information about the odds ratio. Studies with reported contrasts are kept.
    """
    c = data.contrasts
    if not data.binary or c.empty or not {"a", "b", "c", "d"} <= set(c.columns):
        return {}
    arm = c["level"] != "contrast" if "level" in c else pd.Series(True, index=c.index)
    out = {}
    for study, g in c.groupby("study", sort=False):
        if not arm[g.index].all():
            continue
        if (g["a"] == 0).all() and (g["c"] == 0).all():
            out[str(study)] = UNINFORMATIVE.format(kind="no events in any arm (double-zero)")
        elif (g["b"] == 0).all() and (g["d"] == 0).all():
            out[str(study)] = UNINFORMATIVE.format(kind="every patient an event in every "
                                                   "arm (double-all)")
    return out


def informative_contrasts(data: ContrastData) -> ContrastData:
    """Return ``data`` without its double-zero and double-all studies, each named in ``dropped``.

    The arm-based binomial models use these data; the frequentist engine keeps every study
    (as metafor's ``escalc``, which adds 0.5 to the zero cells) and the notes say so.
    """
    from dataclasses import replace

    gone = uninformative_studies(data)
    if not gone:
        return data
    keep = ~data.contrasts["study"].isin(list(gone))
    arms = data.arms[~data.arms["study"].isin(list(gone))] if "study" in data.arms else data.arms
    dropped = [*data.dropped, *(dict(study=s, arm="*", reason=r) for s, r in gone.items())]
    note = (f"{len(gone)} stud{'y' if len(gone) == 1 else 'ies'} with no events (or only "
            f"events) in every arm left out of the odds-ratio model: {', '.join(gone)}")
    return replace(data, contrasts=data.contrasts[keep].reset_index(drop=True), arms=arms,
                   dropped=dropped, notes=[*data.notes, note])
