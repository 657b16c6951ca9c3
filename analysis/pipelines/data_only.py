"""What a report shows for a file that comes without claims: the data alone.

``trialmeta report FILE`` without ``--claims`` on a user's own file never applies the
bundled ketamine claims or the published comparisons to it. It describes the data: each
treatment against control for every outcome the file carries (Bayesian and REML fits, the
forest and funnel plots, heterogeneity), and nothing is judged.
"""

from __future__ import annotations

import hashlib

from ..claims.spec import Claim, ClaimsFile, ContrastSpec
from ..io.records import Records
from ..select.filters import COUNT_COLUMN, Filters, TimeWindow
from ..stats.decision import DecisionRule

#: the outcomes described, with the measure each is pooled on
OUTCOME_MEASURES = (("events", "OR"), ("response", "OR"), ("remission", "OR"),
                    ("change", "MD"))
#: the target of a file with time points (the claims' usual 24 h, as the fit commands)
DEFAULT_TIME_H = 24.0
TITLES = {"events": "Events", "response": "Response", "remission": "Remission",
          "change": "Continuous outcome"}


def data_only_claims(records: Records, clusters: tuple[str, ...] = ()) -> ClaimsFile:
    """Return a claims file with no claims: what the records carry, described.

    One comparison per outcome the records carry, and the pooled rate of treated arms per
    count outcome (``descriptive``: fitted and shown, never judged).

    An outcome is described when at least one study has it in two or more arms (a control
    among them), or as a reported contrast. Means on several scales are pooled as SMDs. A
    file with time points is described near 24 h (its rows nearest 24 h within 12-36 h);
    a file without is described unwindowed. ``clusters`` (columns above the study, outer
    first) nest every comparison: a three- or more-level model.
    """
    t = records.table
    timed = t["time_h"].notna().any()
    window = TimeWindow.around(DEFAULT_TIME_H) if timed else None
    specs = []
    for outcome, measure in OUTCOME_MEASURES:
        column = COUNT_COLUMN.get(outcome, "mean")
        arms = t[t[column].notna()]
        reported = t[(t["effect"].notna()) & (t["effect_outcome"] == outcome)]
        controlled = arms.groupby("study")["control"].apply(lambda c: bool(c.fillna(False).any()))
        two_arms = arms.groupby("study")["arm"].nunique() >= 2
        if not (controlled & two_arms).any() and reported.empty:
            continue
        if outcome == "change":
            scales = set(arms["scale"].dropna()) | set(reported["scale"].dropna())
            given = set(reported["effect_measure"].dropna())
            measure = "SMD" if len(scales) > 1 or given == {"SMD"} else "MD"
        elif not reported.empty and set(reported["effect_measure"].dropna()) <= {"logRR"}:
            measure = "RR"
        elif not reported.empty and set(reported["effect_measure"].dropna()) <= {"RD"}:
            measure = "RD"
        when = "" if window is None else f" near {DEFAULT_TIME_H:g} h"
        specs.append(ContrastSpec(
            id=f"data-{outcome}", title=f"{TITLES[outcome]}: each treatment against control"
            f"{when} ({measure})", outcome=outcome, measure=measure, window=window,
            filters=Filters(), comparators=(), clusters=tuple(clusters)))
    rates = []
    for outcome in COUNT_COLUMN:  # the pooled rate of treated arms, where two or more have it
        treated = t[t[COUNT_COLUMN[outcome]].notna() & ~t["control"].fillna(False).astype(bool)]
        if len(treated.groupby(["study", "arm"])) >= 2:
            rates.append(Claim(id=f"rate-{outcome}", title=f"Pooled {outcome} rate",
                               quote="", source="", model="pooled-rate", outcome=outcome,
                               window=window, quantity="pooled_rate", filters=Filters(),
                               region=(0.0, 1.0), rule=DecisionRule(),
                               options=(("untimed", True),) if timed else ()))
    nested = ":" + "/".join(clusters) if clusters else ""
    digest = hashlib.sha256(("data-only:" + records.sha256 + nested).encode()).hexdigest()
    return ClaimsFile(path="(none: the data alone)", sha256=digest, contrasts=specs,
                      descriptive=rates)
