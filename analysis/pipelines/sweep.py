"""Sensitivity sweep: whether a claim's verdict depends on the analyst's choices.

The grid changes one choice at a time from the claims file as written (the baseline):

- ``prior``: the half-normal scale of tau (pooled-rate and contrast claims);
- ``priors``: each family's other priors, one setting at a time divided and multiplied by a
  factor (pooled-rate mu; contrast effect and baseline; dose-response ED50, amplitude and
  tau; time-course T_r, T_d - T_r, peak and tau);
- ``rho``: the within-patient correlation between time points (time-course claims);
- ``form``: the dose-response or time-course curve;
- ``evidence``: primary evidence only;
- ``crossover``: crossover trials left out;
- ``window``: a narrower (±25 % of the target) or wider (±100 %) time window;
- ``region``: the claim's region 25 % of its width narrower or wider (a half-open region
  moves its finite bound by 25 % of its value);
- ``threshold``: the decision thresholds at 0.75/0.25 and 0.9/0.1;
- ``loo``: each study left out in turn, for the claims whose fit used it;
- ``bias``: the pooled effect adjusted for small-study effects (contrast claims: the
  Bayesian PET, a regression of the effects on their standard errors).

A cell whose numbers equal the baseline's exactly changed nothing the model saw (for
example "primary evidence only" when every row is primary): it is marked ``no_op`` and
left out of the counts. Each row also gives the change in P(region) and in the median per
cell, and whether what decided the verdict (evidence, studies, identifiability) changed.

Each cell re-evaluates the claims the change applies to (fits shared as in the report,
posteriors cached) and records verdict, median, interval and probability. Cells are engine
tasks: they carry the records, the claims and the change, and run on Dask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from ..claims.spec import Claim, ClaimsFile
from ..families.registry import family_of
from ..io.provenance import package_versions
from ..io.records import Records
from ..sampling.settings import SamplerSettings
from ..select.filters import TimeWindow, data_variants
from .engine import Task, task_key

PRIOR_SCALES = (0.25, 0.5, 1.0)
WINDOW_SHARES = {"narrow": 0.25, "wide": 1.0}
REGION_SHARE = 0.25
THRESHOLDS = (0.75, 0.9)
RESULT_FIELDS = ("verdict", "basis", "median", "ci_low", "ci_high", "probability", "studies")


@dataclass(frozen=True)
class Variation:
    """One cell of the grid: a single change from the baseline."""

    kind: str
    value: str = ""

    @property
    def id(self) -> str:
        """Short identifier, e.g. ``prior:half-normal:1.0`` or ``loo:Murrough 2013``."""
        return self.kind if not self.value else f"{self.kind}:{self.value}"

    @property
    def label(self) -> str:
        """What the cell changed, in words."""
        if self.kind == "threshold":
            return f"thresholds {self.value}/{1 - float(self.value):.2g}"
        if self.kind == "priors":
            family, _, change = self.value.partition(":")
            setting, op, factor = change.partition("*") if "*" in change \
                else change.partition("/")
            return f"{family} prior {setting} {'x' if op == '*' else '/'}{factor}"
        return {"baseline": "as in the claims file",
                "prior": f"tau ~ {self.value}",
                "rho": f"correlation between time points {self.value}",
                "likelihood": f"{self.value} likelihood",
                "form": f"{self.value} curve",
                "evidence": "primary evidence only",
                "crossover": "crossover trials left out",
                "window": f"{self.value} time window",
                "region": f"region {dict(narrow='narrowed', wide='widened').get(self.value)} "
                          f"by {REGION_SHARE:.0%} of its width",
                "loo": f"without {self.value}",
                "bias": "adjusted for small-study effects (PET: regression on the SE; "
                        "means little below 10 studies)",
                }.get(self.kind, f"{self.kind} {self.value}")


def vary(claim: Claim, v: Variation, records: Records) -> Claim | None:
    """Return ``claim`` with the change applied, or None when it does not apply."""
    family = family_of(claim.model)
    options = dict(claim.options)
    if v.kind == "baseline":
        return claim
    if v.kind == "prior":
        if not family.tau_prior or options.get("tau_prior"):
            return None
        options["tau_prior"] = v.value
    elif v.kind == "priors":
        target, _, change = v.value.partition(":")
        if target != family.name:
            return None
        op = "*" if "*" in change else "/"
        setting, _, factor = change.partition(op)
        current = dict(options.get("priors", ()))
        value = current.get(setting, family.default_prior(claim, setting))
        value = value * float(factor) if op == "*" else value / float(factor)
        current[setting] = round(value, 10)
        options["priors"] = tuple(sorted(current.items()))
    elif v.kind == "form":
        forms = family.forms(claim.model, options)
        current = options.get("form", forms[0] if forms else None)
        if v.value not in forms or v.value == current:
            return None
        options["form"] = v.value
    elif v.kind == "evidence":
        return replace(claim, filters=replace(claim.filters, evidence=("primary",)))
    elif v.kind == "crossover":
        designs = claim.filters.design or tuple(sorted(set(records.table["design"])))
        kept = tuple(d for d in designs if d != "crossover")
        return replace(claim, filters=replace(claim.filters, design=kept))
    elif v.kind == "window":
        if claim.window is None:
            return None
        target = claim.window.target_h
        half = max(WINDOW_SHARES[v.value] * target, 0.5)
        return replace(claim, window=TimeWindow.around(target, half))
    elif v.kind == "region":
        region = _resized(claim.region, 1 if v.value == "wide" else -1)
        return None if region is None else replace(claim, region=region)
    elif v.kind == "threshold":
        t = float(v.value)
        if t == claim.rule.support:
            return None
        return replace(claim, rule=replace(claim.rule, support=t, contradict=round(1 - t, 6)))
    elif v.kind == "loo":
        excluded = (*claim.filters.exclude_studies, v.value)
        return replace(claim, filters=replace(claim.filters, exclude_studies=excluded))
    elif not family.vary(claim, v.kind, v.value, options):
        return None  # another family's cell, or no change for this claim
    return replace(claim, options=tuple(sorted(options.items())))


def _resized(region: tuple[float, float], sign: int) -> tuple[float, float] | None:
    """Widen (sign 1) or narrow (-1) a region by REGION_SHARE of its width."""
    import math

    lo, hi = region
    if math.isfinite(lo) and math.isfinite(hi):
        step = REGION_SHARE * (hi - lo) / 2
        return (lo - sign * step, hi + sign * step)
    if math.isfinite(lo) and lo != 0:
        return (lo - sign * REGION_SHARE * abs(lo), hi)
    if math.isfinite(hi) and hi != 0:
        return (lo, hi + sign * REGION_SHARE * abs(hi))
    return None


def run_cell(v: Variation, records: Records, claims: ClaimsFile, settings: SamplerSettings,
             only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Evaluate the claims (``only`` these ids, if given) under one change."""
    from ..evaluate.evaluation import evaluate

    changed = []
    for claim in claims.claims:
        if only is not None and claim.id not in only:
            continue
        new = vary(claim, v, records)
        if new is not None:
            changed.append(new)
    if not changed:
        return {"variation": v.id, "claims": {}}
    ev = evaluate(records, replace(claims, claims=changed), settings, documents=False,
                  fragility=False)
    out = {}
    for r in ev.results:
        d = r.as_dict()
        out[r.claim.id] = {k: d[k] for k in RESULT_FIELDS}
    return {"variation": v.id, "claims": out}


def fixed_cells(claims: ClaimsFile, records: Records | None = None) -> list[Variation]:
    """Return the changes that do not depend on the baseline: prior, form, data, window.

    With ``records``, a data cell that cannot apply to them is left out: "primary evidence
    only" on a file that gives no evidence tier (it would select nothing), "crossover
    trials left out" on one without crossover trials.
    """
    cells = [Variation("prior", f"half-normal:{s}") for s in PRIOR_SCALES]
    forms = sorted({f for c in claims.claims
                    for f in family_of(c.model).forms(c.model, dict(c.options))})
    cells += [Variation("form", f) for f in forms]
    families = {f.name: f for f in (family_of(c.model) for c in claims.claims)}
    for name, family in sorted(families.items()):
        for setting, factor in family.prior_cells:
            cells += [Variation("priors", f"{name}:{setting}{op}{factor:g}") for op in "/*"]
    for _, family in sorted(families.items()):
        cells += [Variation(kind, value) for kind, value in family.sweep_cells()]
    can = {"evidence", "crossover"} if records is None else data_variants(records.table)
    cells += [Variation(kind, value) for kind, value in (("evidence", "primary"),
                                                         ("crossover", "exclude"))
              if kind in can]
    cells += [Variation("window", w) for w in WINDOW_SHARES]
    cells += [Variation("region", r) for r in ("narrow", "wide")]
    cells += [Variation("threshold", f"{t:g}") for t in THRESHOLDS]
    return cells


def loo_cells(baseline: dict[str, Any]) -> list[Variation]:
    """Return leave-one-study-out changes, one per study a baseline fit used."""
    used = sorted({s for r in baseline["claims"].values() for s in r["studies"] or []})
    return [Variation("loo", s) for s in used]


def grid(claims: ClaimsFile, baseline: dict[str, Any], *, loo: bool = True,
         records: Records | None = None) -> list[Variation]:
    """Every one-at-a-time change; leave-one-out for each study a baseline fit used."""
    return fixed_cells(claims, records) + (loo_cells(baseline) if loo else [])


def cell_tasks(cells: list[Variation], records: Records, claims: ClaimsFile,
               settings: SamplerSettings, baseline: dict[str, Any] | None = None) -> list[Task]:
    """Engine tasks; a leave-one-out cell only re-evaluates the claims that used the study."""
    base = task_key("sweep", records.sha256, claims.sha256, settings.as_dict(),
                    package_versions())
    out = []
    for v in cells:
        only = None
        if v.kind == "loo" and baseline is not None:
            only = tuple(sorted(cid for cid, r in baseline["claims"].items()
                                if v.value in (r["studies"] or [])))
        out.append(Task(task_key(base, asdict(v), only), run_cell,
                        (v, records, claims, settings, only)))
    return out


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def table(claims: ClaimsFile, baseline: dict[str, Any],
          cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per claim: cells that keep the verdict, which change it, and by how much.

    Cells that reproduce the baseline's numbers exactly are counted as ``no_op_cells`` and
    left out of ``cells``, ``same_verdict`` and the ranges.
    """
    rows = []
    labels = {}
    for cell in cells:
        kind, _, value = cell["variation"].partition(":")
        labels[cell["variation"]] = Variation(kind, value).label
    for claim in claims.claims:
        base = baseline["claims"].get(claim.id)
        if base is None:
            continue
        runs, no_op = [], []
        for c in cells:
            r = c["claims"].get(claim.id)
            if r is None:
                continue
            same = all(r.get(k) == base.get(k) for k in RESULT_FIELDS) and not \
                c["variation"].startswith(("region", "threshold"))
            (no_op if same else runs).append((c["variation"], r))
        detail = [{"variation": vid, "change": labels[vid], "verdict": r["verdict"],
                   "delta_p": _delta(r.get("probability"), base.get("probability")),
                   "delta_median": _delta(r["median"], base["median"]),
                   "basis_changed": r.get("basis") != base.get("basis")} for vid, r in runs]
        changed = [d for d in detail if d["verdict"] != base["verdict"]]
        medians = [r["median"] for _, r in runs if r["median"] is not None]
        if base["median"] is not None:
            medians.append(base["median"])
        dps = [abs(d["delta_p"]) for d in detail if d["delta_p"] is not None]
        rows.append({
            "id": claim.id, "quantity": claim.quantity, "baseline_verdict": base["verdict"],
            "baseline_median": base["median"], "cells": len(runs),
            "no_op_cells": [vid for vid, _ in no_op],
            "same_verdict": len(runs) - len(changed),
            "median_min": min(medians) if medians else None,
            "median_max": max(medians) if medians else None,
            "max_abs_delta_p": max(dps) if dps else None,
            "changes": changed, "cells_detail": detail,
            "robust": not changed,
        })
    return rows
