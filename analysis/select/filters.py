"""Select the records a model uses, and say which were dropped and why.

Time points: for each arm, the row whose ``time_h`` is nearest to the requested
hours within a window is used (ties go to the earlier time). The default window
is half the requested time on either side, at least 1 h: 24 h accepts 12-36 h.
Baseline rows (``time_h == 0`` or ``doses_given == 0``) are never outcomes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..io.memo import per_records
from ..io.records import COLUMN_BY_NAME, DEFAULT_DOMAIN, Records

#: the binary outcomes and the count column each reads
BINARY_OUTCOMES = ("response", "remission", "events")
#: endpoints kept unless a selection names others: never "cumulative"
DEFAULT_ENDPOINTS = ("fixed", "series_end")
COUNT_COLUMN = {"response": "responders", "remission": "remitters", "events": "events"}
DEFINITION_COLUMN = {"response": "response_def", "remission": "remission_def",
                     "events": "events_def"}


def data_variants(table: pd.DataFrame) -> frozenset[str]:
    """Which data variants of a sensitivity analysis can change anything for these records.

    ``evidence`` (primary evidence only) needs rows with an evidence tier; ``crossover``
    (crossover trials left out) needs a crossover trial. A variant that cannot apply would
    select nothing, or the same rows, and is left out of the sensitivity table and the sweep.
    """
    out = set()
    if table["evidence"].notna().any():
        out.add("evidence")
    if (table["design"] == "crossover").any():
        out.add("crossover")
    return frozenset(out)


@dataclass(frozen=True)
class Filters:
    """Record filters shared by every command and by claims files.

    Empty tuples and ``None`` mean "no restriction", except ``domain``: when empty, only
    depression outcomes are kept (suicidal ideation or dissociation are never pooled with
    depression unless asked for by name); and ``endpoint``: when empty, cumulative endpoints
    ("at any point up to time_h") are left out, since they exceed a rate at a fixed time.
    """

    treatment: tuple[str, ...] = ()
    route: tuple[str, ...] = ()
    population: tuple[str, ...] = ()
    doses_given: int | None = None
    dose: float | None = None
    dose_unit: tuple[str, ...] = ()
    design: tuple[str, ...] = ()
    scale: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    exclude_studies: tuple[str, ...] = ()
    domain: tuple[str, ...] = ()
    endpoint: tuple[str, ...] = ()
    #: change or endpoint means: read by the contrast selections (not by :meth:`apply`,
    #: which must keep a row's counts whatever its mean's type)
    mean_type: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: dict | None) -> Filters:
        """Build filters from a claims-file mapping (lists or scalars)."""
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown selection field(s): {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
        kwargs: dict[str, object] = {}
        for key, value in data.items():
            if key in ("doses_given",):
                kwargs[key] = None if value is None else int(value)
            elif key == "dose":
                kwargs[key] = None if value is None else float(value)
            else:
                values = value if isinstance(value, list | tuple) else [value]
                kwargs[key] = tuple(str(v) for v in values)
        bad = set(kwargs.get("mean_type", ())) - {"change", "endpoint"}
        if bad:
            raise SpecError(f"unknown mean_type {', '.join(sorted(bad))}; use change or "
                            "endpoint")
        return cls(**kwargs)

    def as_dict(self) -> dict[str, object]:
        """Return the non-empty filters (and the outcome domain) as a JSON-ready dict."""
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()
               if v not in ((), None)}
        out["domain"] = list(self.domain or (DEFAULT_DOMAIN,))
        out["endpoint"] = list(self.endpoint or DEFAULT_ENDPOINTS)
        return out

    def apply(self, table: pd.DataFrame) -> pd.DataFrame:
        """Return the rows that pass every filter."""
        keep = pd.Series(True, index=table.index)
        if "domain" in table:
            keep &= table["domain"].isin(self.domain or (DEFAULT_DOMAIN,))
        if "endpoint" in table:
            keep &= table["endpoint"].isin(self.endpoint or DEFAULT_ENDPOINTS)
        for col in ("treatment", "route", "population", "design", "scale", "evidence",
                    "dose_unit"):
            allowed = getattr(self, col)
            if allowed:
                keep &= table[col].isin(allowed)
        if self.doses_given is not None:
            keep &= table["doses_given"].fillna(-1).astype(int).eq(self.doses_given)
        if self.dose is not None:
            keep &= np.isclose(table["dose"].astype(float).fillna(-1.0), self.dose)
        if self.exclude_studies:
            keep &= ~table["study"].isin(self.exclude_studies)
        if self.dose is not None and not self.dose_unit and "dose_unit" in table:
            units = sorted(set(table.loc[keep & table["dose"].notna(), "dose_unit"].dropna()))
            if len(units) > 1:
                raise SpecError(f"dose {self.dose:g} matches arms in several units "
                                f"({', '.join(units)}); say which with --dose-unit "
                                "(dose_unit: in a selection)")
        return table[keep]


@dataclass(frozen=True)
class TimeWindow:
    """A target time with the window accepted around it (hours)."""

    target_h: float
    low_h: float
    high_h: float

    @classmethod
    def around(cls, target_h: float, half_width_h: float | None = None) -> TimeWindow:
        """Window of ``half_width_h`` either side (default: half the target, at least 1 h)."""
        if target_h <= 0:
            raise SpecError(f"--time must be > 0 hours (got {target_h:g}); 0 is baseline")
        half = max(target_h / 2.0, 1.0) if half_width_h is None else float(half_width_h)
        if half < 0:
            raise SpecError("the time window cannot be negative")
        return cls(target_h, max(target_h - half, 0.0), target_h + half)


@dataclass
class BinaryArms:
    """Arm-level counts for one outcome, one row per arm.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns study, arm, label, treatment, time_h, n, events, evidence, design,
        definition, source, line.
    dropped : list of dict
        Arms or rows left out, each with study, arm and reason.
    """

    outcome: str
    table: pd.DataFrame
    dropped: list[dict[str, object]] = field(default_factory=list)

    @property
    def k_studies(self) -> int:
        """Number of distinct studies."""
        return int(self.table["study"].nunique())

    @property
    def n_total(self) -> int:
        """Patients, each counted once.

        Arms of a parallel study are different patients (summed); the arms of a single-arm
        series or a crossover are the same patients (the largest arm counts).
        """
        t = self.table
        same = t["design"].isin(("single_arm", "crossover"))
        shared = t[same].groupby("study")["n"].max().sum() if same.any() else 0
        return int(t.loc[~same, "n"].sum() + shared)


def _nearest_rows(t: pd.DataFrame, count_col: str, outcome: str, window: TimeWindow | None,
                  untimed: bool) -> tuple[list[int], list[dict[str, object]]]:
    """Per arm (in order of appearance), the position of the row :func:`select_binary_arms` uses.

    The row with a count for ``outcome`` nearest the target time within the window (ties:
    the earlier time, then the earlier row), or with ``untimed`` an arm's single untimed
    row. Baseline rows (time 0 or no dose given yet) never count. Returns the positions
    and, for each arm left out, why.
    """
    has_count = t[count_col].notna().to_numpy()
    time = pd.to_numeric(t["time_h"], errors="coerce").to_numpy(dtype=float)
    given = pd.to_numeric(t["doses_given"], errors="coerce").to_numpy(dtype=float)
    outcome_row = has_count & ~((time == 0) | (given == 0))
    arms = pd.MultiIndex.from_arrays([t["study"], t["arm"]])
    codes, keys = pd.factorize(arms, sort=False)
    chosen: list[int] = []
    dropped: list[dict[str, object]] = []
    for code, (study, arm) in enumerate(keys):
        rows = np.flatnonzero(codes == code)
        if not has_count[rows].any():
            continue
        rows = rows[outcome_row[rows]]
        timed = rows[~np.isnan(time[rows])]
        if window is None:  # no target time: the arm's one row with a count
            if rows.size == 1:
                chosen.append(int(rows[0]))
            else:
                dropped.append(dict(study=study, arm=arm, reason=f"{rows.size} rows with "
                                    f"{outcome} counts (several time points); choose one "
                                    "with --time"))
            continue
        if timed.size == 0:
            bare = rows[np.isnan(time[rows])]
            if untimed and bare.size == 1:
                chosen.append(int(bare[0]))
                continue
            dropped.append(dict(study=study, arm=arm,
                                reason=f"{outcome} count has no time point (time_h empty)"))
            continue
        inside = timed[(time[timed] >= window.low_h) & (time[timed] <= window.high_h)]
        if inside.size == 0:
            times = ", ".join(f"{x:g}" for x in sorted(time[timed]))
            dropped.append(dict(study=study, arm=arm,
                                reason=f"no {outcome} count within {window.low_h:g}-"
                                       f"{window.high_h:g} h (has {times} h)"))
            continue
        order = np.lexsort((time[inside], np.abs(time[inside] - window.target_h)))
        chosen.append(int(inside[order[0]]))
    return chosen, dropped


@per_records
def select_binary_arms(records: Records, outcome: str, window: TimeWindow | None,
                       filters: Filters, *, active_only: bool = True,
                       untimed: bool = False) -> BinaryArms:
    """Choose, per arm, the row with counts for ``outcome`` nearest the target time.

    Parameters
    ----------
    records : Records
        Validated records.
    outcome : {"response", "remission", "events"}
        Which count to use.
    window : TimeWindow or None
        Target time and accepted window; None for every row, unwindowed (each arm's one row
        with a count: a file without time points).
    filters : Filters
        Record filters.
    active_only : bool
        Keep only non-control arms (the pooled-rate model describes treated arms).
    untimed : bool
        Also keep arms whose counts have no time point (for example "after the last of
        six infusions"), using their single untimed row.
    """
    if outcome not in BINARY_OUTCOMES:
        raise SpecError(f"unknown outcome '{outcome}'; use one of {', '.join(BINARY_OUTCOMES)}")
    count_col = COUNT_COLUMN[outcome]
    t = filters.apply(records.table)
    if active_only:
        t = t[~t["control"].fillna(False).astype(bool)]
    chosen, dropped = _nearest_rows(t, count_col, outcome, window, untimed)
    cols = ["study", "arm", "label", "treatment", "dose", "dose_unit", "route", "population",
            "design", "doses_given", "scale", "time_h", "n", "events", "evidence", "definition",
            "source", "line"]
    if not chosen:
        return BinaryArms(outcome, pd.DataFrame(columns=cols), dropped)
    sel = t.iloc[chosen]
    denom = sel["n_binary"].fillna(sel["n"]).astype(int)
    out = pd.DataFrame({
        "study": sel["study"].to_numpy(),
        "arm": sel["arm"].to_numpy(),
        "label": [f"{s} {a}" for s, a in zip(sel["study"], sel["arm"], strict=True)],
        "treatment": sel["treatment"].to_numpy(),
        "dose": pd.to_numeric(sel["dose"], errors="coerce").to_numpy(dtype=float),
        "dose_unit": sel["dose_unit"].to_numpy(),
        "route": sel["route"].to_numpy(),
        "population": sel["population"].to_numpy(),
        "design": sel["design"].to_numpy(),
        "doses_given": pd.to_numeric(sel["doses_given"], errors="coerce").to_numpy(dtype=float),
        "scale": sel["scale"].to_numpy(),
        "time_h": pd.to_numeric(sel["time_h"], errors="coerce").to_numpy(dtype=float),
        "n": denom.to_numpy(),
        "events": sel[count_col].astype(int).to_numpy(),
        "evidence": sel["evidence"].to_numpy(),
        "definition": sel[DEFINITION_COLUMN[outcome]].to_numpy(),
        "source": sel["source"].to_numpy(),
        "line": sel["line"].astype(int).to_numpy(),
    })
    own = [c for c in sel.columns if c not in COLUMN_BY_NAME and c not in out.columns
           and c != "line"]  # the user's own columns: moderators (BCG's ablat, a year ...)
    for c in own:
        out[c] = sel[c].to_numpy()
    return BinaryArms(outcome, out.reset_index(drop=True), dropped)
