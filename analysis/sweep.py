"""Sensitivity sweep: whether a claim's verdict depends on the analyst's choices.

The grid changes one choice at a time from the claims file as written (the baseline):

- ``prior``: the half-normal scale of tau (pooled-rate and contrast claims);
- ``form``: the dose-response or time-course curve;
- ``evidence``: primary evidence only;
- ``crossover``: crossover trials left out;
- ``window``: a narrower (±25 % of the target) or wider (±100 %) time window;
- ``loo``: each study left out in turn, for the claims whose fit used it.

Each cell re-evaluates the claims the change applies to (fits shared as in the report,
posteriors cached) and records verdict, median, interval and probability. Cells are engine
tasks: they carry the records, the claims and the change, and run on Dask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from .claims import Claim, ClaimsFile, model_family
from .engine import Task, task_key
from .inference import SamplerSettings, package_versions
from .records import Records
from .selection import TimeWindow

PRIOR_SCALES = (0.25, 0.5, 1.0)
WINDOW_SHARES = {"narrow": 0.25, "wide": 1.0}


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
        return {"baseline": "as in the claims file",
                "prior": f"tau ~ {self.value}",
                "form": f"{self.value} curve",
                "evidence": "primary evidence only",
                "crossover": "crossover trials left out",
                "window": f"{self.value} time window",
                "loo": f"without {self.value}"}[self.kind]


def _forms(family: str) -> tuple[str, ...]:
    if family == "dose-response":
        from .models.dose_response import FORMS
        return FORMS
    if family == "time-course":
        from .models.time_course import FORMS
        return FORMS
    return ()


def vary(claim: Claim, v: Variation, records: Records) -> Claim | None:
    """Return ``claim`` with the change applied, or None when it does not apply."""
    family = model_family(claim.model)
    options = dict(claim.options)
    if v.kind == "baseline":
        return claim
    if v.kind == "prior":
        if family not in ("pooled-rate", "contrast") or options.get("tau_prior"):
            return None
        options["tau_prior"] = v.value
    elif v.kind == "form":
        current = options.get("form", "emax" if family == "dose-response" else "bateman")
        if v.value not in _forms(family) or v.value == current:
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
    elif v.kind == "loo":
        excluded = (*claim.filters.exclude_studies, v.value)
        return replace(claim, filters=replace(claim.filters, exclude_studies=excluded))
    else:
        raise ValueError(f"unknown variation {v.kind}")
    return replace(claim, options=tuple(sorted(options.items())))


def run_cell(v: Variation, records: Records, claims: ClaimsFile, settings: SamplerSettings,
             only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Evaluate the claims (``only`` these ids, if given) under one change."""
    from .evaluate import evaluate

    changed = []
    for claim in claims.claims:
        if only is not None and claim.id not in only:
            continue
        new = vary(claim, v, records)
        if new is not None:
            changed.append(new)
    if not changed:
        return {"variation": v.id, "claims": {}}
    ev = evaluate(records, replace(claims, claims=changed), settings)
    out = {}
    for r in ev.results:
        d = r.as_dict()
        out[r.claim.id] = {k: d[k] for k in ("verdict", "median", "ci_low", "ci_high",
                                             "probability", "studies")}
    return {"variation": v.id, "claims": out}


def fixed_cells(claims: ClaimsFile) -> list[Variation]:
    """Return the changes that do not depend on the baseline: prior, form, data, window."""
    cells = [Variation("prior", f"half-normal:{s}") for s in PRIOR_SCALES]
    forms = sorted({f for c in claims.claims for f in _forms(model_family(c.model))})
    cells += [Variation("form", f) for f in forms]
    cells += [Variation("evidence", "primary"), Variation("crossover", "exclude")]
    cells += [Variation("window", w) for w in WINDOW_SHARES]
    return cells


def loo_cells(baseline: dict[str, Any]) -> list[Variation]:
    """Return leave-one-study-out changes, one per study a baseline fit used."""
    used = sorted({s for r in baseline["claims"].values() for s in r["studies"] or []})
    return [Variation("loo", s) for s in used]


def grid(claims: ClaimsFile, baseline: dict[str, Any], *, loo: bool = True) -> list[Variation]:
    """Every one-at-a-time change; leave-one-out for each study a baseline fit used."""
    return fixed_cells(claims) + (loo_cells(baseline) if loo else [])


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


def table(claims: ClaimsFile, baseline: dict[str, Any],
          cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per claim: how many cells keep the verdict, which change it, the range."""
    rows = []
    labels = {}
    for cell in cells:
        kind, _, value = cell["variation"].partition(":")
        labels[cell["variation"]] = Variation(kind, value).label
    for claim in claims.claims:
        base = baseline["claims"].get(claim.id)
        if base is None:
            continue
        runs = [(c["variation"], c["claims"][claim.id]) for c in cells
                if claim.id in c["claims"]]
        changed = [{"variation": vid, "change": labels[vid], "verdict": r["verdict"],
                    "median": r["median"]} for vid, r in runs if r["verdict"] != base["verdict"]]
        medians = [r["median"] for _, r in runs if r["median"] is not None]
        if base["median"] is not None:
            medians.append(base["median"])
        rows.append({
            "id": claim.id, "quantity": claim.quantity, "baseline_verdict": base["verdict"],
            "baseline_median": base["median"], "cells": len(runs),
            "same_verdict": len(runs) - len(changed),
            "median_min": min(medians) if medians else None,
            "median_max": max(medians) if medians else None,
            "changes": changed,
            "robust": not changed,
        })
    return rows
