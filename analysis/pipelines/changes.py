"""What changed between two analyses: claims' verdicts and pooled estimates, before and after.

Both sides are documents shaped like ``results.json`` (``claims`` and, optionally,
``contrasts`` and ``data``). A claim's P(region) has moved when the change exceeds
``Z_MOVED`` combined Monte Carlo standard errors, sqrt(mcse_before^2 + mcse_after^2); a
verdict change is always reported. Studies added or removed are those the claim's fit (or
the comparison's pooled estimate) used on one side only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: |P_after - P_before| above this many combined Monte Carlo SEs counts as a move
Z_MOVED = 2.0
CLAIM_FIELDS = ("verdict", "probability", "probability_mcse", "median", "ci_low", "ci_high",
                "bayes_factor", "reason")


def _side(claim: dict[str, Any] | None) -> dict[str, Any] | None:
    if claim is None:
        return None
    return {**{k: claim.get(k) for k in CLAIM_FIELDS}, "quantity": claim.get("quantity", ""),
            "censored_above": list(claim.get("censored_above") or []),
            "studies": list(claim.get("studies") or [])}


def _moved(before: dict[str, Any], after: dict[str, Any]) -> bool | None:
    """Whether P(region) moved beyond Monte Carlo error (None when either side has no P)."""
    pb, pa = before.get("probability"), after.get("probability")
    if pb is None or pa is None:
        return None
    error = math.hypot(before.get("probability_mcse") or 0.0,
                       after.get("probability_mcse") or 0.0)
    return abs(pa - pb) > Z_MOVED * error


def compare_claims(before: list[dict[str, Any]],
                   after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compare each claim's two sides (in the order of ``after``, then ``before``-only ones).

    Each row says whether the verdict changed, whether P moved beyond Monte Carlo error, and
    which studies were added and removed.
    """
    old = {c["id"]: c for c in before}
    new = {c["id"]: c for c in after}
    out = []
    for cid in [*new, *(k for k in old if k not in new)]:
        b, a = _side(old.get(cid)), _side(new.get(cid))
        row: dict[str, Any] = {"id": cid, "title": (new.get(cid) or old.get(cid) or {})
                               .get("title", ""), "before": b, "after": a}
        if b is None or a is None:
            row.update(status="added" if b is None else "removed", changed=True,
                       moved=None, studies_added=[], studies_removed=[])
            out.append(row)
            continue
        added = sorted(set(a["studies"]) - set(b["studies"]))
        removed = sorted(set(b["studies"]) - set(a["studies"]))
        changed = a["verdict"] != b["verdict"]
        moved = _moved(b, a)
        status = ("verdict changed" if changed else "moved" if moved
                  else "same studies" if not added and not removed else "within error")
        row.update(status=status, changed=changed, moved=moved, studies_added=added,
                   studies_removed=removed)
        out.append(row)
    return out


def _pooled(section: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each comparison group's Bayesian and frequentist pooled effect and its studies."""
    out = {}
    for c in section:
        for g in c.get("groups", []):
            bayes = (g.get("bayesian") or {}).get("estimates", {}).get("effect") or {}
            freq = g.get("frequentist") or {}
            labels = {f"{r['study']} {r['arm']}"
                      for r in (g.get("bayesian") or {}).get("per_study", [])}
            labels |= {r["contrast"] for r in freq.get("studies", [])
                       if isinstance(r, dict) and "contrast" in r}
            studies = sorted({x.split(" ")[0] for x in labels})
            out[(c["id"], g["group"])] = {
                "title": c.get("title", c["id"]), "k": g.get("k"), "studies": studies,
                "contrasts": sorted(labels),
                "bayes_median": bayes.get("median"), "bayes_ci_low": bayes.get("ci_low"),
                "bayes_ci_high": bayes.get("ci_high"), "bayes_sd": bayes.get("sd"),
                "freq_estimate": freq.get("estimate"), "freq_ci_low": freq.get("ci_low"),
                "freq_ci_high": freq.get("ci_high")}
    return out


def compare_pooled(before: list[dict[str, Any]],
                   after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per comparison group of the contrast section: k, studies and pooled effects, both sides.

    Only groups whose studies or k differ are listed: the others had the same data.
    """
    old, new = _pooled(before), _pooled(after)
    rows = []
    for key in [*new, *(k for k in old if k not in new)]:
        b, a = old.get(key), new.get(key)
        if b is not None and a is not None and b["contrasts"] == a["contrasts"] \
                and b["k"] == a["k"] and b["bayes_median"] == a["bayes_median"]:
            continue
        rows.append({"comparison": key[0], "group": key[1],
                     "title": (a or b or {}).get("title", key[0]), "before": b, "after": a,
                     "studies_added": sorted(set((a or {}).get("studies", []))
                                             - set((b or {}).get("studies", []))),
                     "studies_removed": sorted(set((b or {}).get("studies", []))
                                               - set((a or {}).get("studies", [])))})
    return rows


def data_changes(before: Any, after: Any) -> dict[str, Any]:  # Records
    """Studies added, removed, or with rows added, removed or changed (all columns compared)."""
    def rows(records: Any) -> dict[str, set[tuple]]:
        t = records.table.drop(columns=[c for c in ("line",) if c in records.table])
        t = t.astype(str)
        return {s: {tuple(r) for r in g.itertuples(index=False)}
                for s, g in t.groupby("study", sort=True)}

    b, a = rows(before), rows(after)
    return {"before": {"sha256": before.sha256, "rows": len(before.table), "studies": len(b)},
            "after": {"sha256": after.sha256, "rows": len(after.table), "studies": len(a)},
            "studies_added": sorted(set(a) - set(b)),
            "studies_removed": sorted(set(b) - set(a)),
            "studies_with_new_rows": sorted(s for s in set(a) & set(b) if a[s] != b[s])}


def compare(before: dict[str, Any], after: dict[str, Any], label: str,
            data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the "what changed" document: claims, pooled comparisons and ``data`` changes."""
    claims = compare_claims(before.get("claims", []), after.get("claims", []))
    return {
        "baseline": label,
        "data": data or {},
        "claims": claims,
        "verdicts_changed": [c["id"] for c in claims if c["changed"]],
        "pooled": compare_pooled(before.get("contrasts", []), after.get("contrasts", [])),
        "z_moved": Z_MOVED,
    }


def read_results(path: Path) -> dict[str, Any]:
    """Read a report's ``results.json`` (a report folder or the file); SpecError if unusable."""
    import json
    import os

    from ..errors import SpecError
    from ..io.files import read_regular_text

    file = path / "results.json" if path.is_dir() else path
    if not os.path.lexists(file):
        raise SpecError(f"{file}: not found (give a report folder or its results.json)")
    try:
        doc = json.loads(read_regular_text(file, "results.json"))
    except ValueError as exc:
        raise SpecError(f"{file}: not a readable results.json ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list) or not all(
            isinstance(c, dict) and "id" in c and "verdict" in c for c in doc["claims"]):
        raise SpecError(f"{file}: not a trialmeta results.json (no list of claims with ids "
                        "and verdicts)")
    problems = results_problems(doc)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                            if len(problems) > 5 else "")
        raise SpecError(f"{file}: not a results.json as trialmeta writes it "
                        f"(edited by hand?): {shown}")
    return doc


NUMBER_FIELDS = ("probability", "probability_mcse", "median", "ci_low", "ci_high",
                 "bayes_factor")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def results_problems(doc: dict[str, Any]) -> list[str]:
    """Return what in a ``results.json`` document ``diff`` cannot use (empty: all fine).

    Every field the comparison reads is checked for its type: text where text belongs,
    finite numbers (or null) where numbers belong, unique claim ids.
    """
    out: list[str] = []
    seen: set[str] = set()

    def text(where: str, v: Any, *, optional: bool = False) -> None:
        if not (isinstance(v, str) or (optional and v is None)):
            out.append(f"{where} is {type(v).__name__}, not text")

    def number(where: str, v: Any) -> None:
        if v is not None and not _is_number(v):
            out.append(f"{where} = {str(v)[:40]!r} is not a finite number")

    def text_list(where: str, v: Any) -> None:
        if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            out.append(f"{where} is not a list of text")

    for i, c in enumerate(doc["claims"]):
        where = f"claims[{i}]"
        text(f"{where}.id", c["id"])
        if isinstance(c["id"], str):
            if c["id"] in seen:
                out.append(f"{where}.id {c['id']!r} appears twice")
            seen.add(c["id"])
        text(f"{where}.verdict", c["verdict"])
        for key in NUMBER_FIELDS:
            number(f"{where}.{key}", c.get(key))
        for key in ("title", "quantity", "reason"):
            text(f"{where}.{key}", c.get(key), optional=True)
        text_list(f"{where}.studies", c.get("studies"))
        if c.get("censored_above") is not None and not isinstance(c["censored_above"], list):
            out.append(f"{where}.censored_above is not a list")
    data = doc.get("data")
    if data is not None:
        if not isinstance(data, dict):
            out.append("data is not a mapping")
        else:
            text("data.sha256", data.get("sha256"), optional=True)
            for key in ("rows", "studies"):
                if data.get(key) is not None and not (isinstance(data[key], int)
                                                      and not isinstance(data[key], bool)):
                    out.append(f"data.{key} is not a whole number")
            text_list("data.study_list", data.get("study_list"))
    fits = doc.get("fits")
    if fits is not None:
        if not isinstance(fits, dict):
            out.append("fits is not a mapping")
        else:
            for fid, fit in fits.items():
                est = fit.get("estimates") if isinstance(fit, dict) else None
                if not isinstance(fit, dict) or not isinstance(est or {}, dict):
                    out.append(f"fits.{fid} is not a fit as trialmeta writes it")
                    continue
                for q, e in (est or {}).items():
                    if isinstance(e, dict):
                        for key in ("median", "ci_low", "ci_high", "sd"):
                            number(f"fits.{fid}.estimates.{q}.{key}", e.get(key))
    contrasts = doc.get("contrasts", [])
    if not isinstance(contrasts, list):
        return [*out, "contrasts is not a list"]
    for i, c in enumerate(contrasts):
        where = f"contrasts[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("groups", []), list):
            out.append(f"{where} is not a comparison with a list of groups")
            continue
        text(f"{where}.id", c.get("id"))
        for j, g in enumerate(c.get("groups", [])):
            gw = f"{where}.groups[{j}]"
            if not isinstance(g, dict):
                out.append(f"{gw} is not a mapping")
                continue
            text(f"{gw}.group", g.get("group"))
            if g.get("k") is not None and not (isinstance(g["k"], int)
                                               and not isinstance(g["k"], bool)):
                out.append(f"{gw}.k is not a whole number")
            bayes, freq = g.get("bayesian"), g.get("frequentist")
            if bayes is not None:
                effect = (bayes.get("estimates") or {}).get("effect") if isinstance(
                    bayes, dict) else None
                if not isinstance(bayes, dict) or not isinstance(effect or {}, dict) \
                        or not isinstance(bayes.get("per_study", []), list) \
                        or not all(isinstance(r, dict) and isinstance(r.get("study"), str)
                                   and isinstance(r.get("arm"), str)
                                   for r in bayes.get("per_study", [])):
                    out.append(f"{gw}.bayesian is not a fit as trialmeta writes it")
                else:
                    for key in ("median", "ci_low", "ci_high", "sd"):
                        number(f"{gw}.bayesian.estimates.effect.{key}", (effect or {}).get(key))
            if freq is not None:
                if not isinstance(freq, dict) or not isinstance(freq.get("studies", []), list):
                    out.append(f"{gw}.frequentist is not a fit as trialmeta writes it")
                    continue
                for key in ("estimate", "ci_low", "ci_high"):
                    number(f"{gw}.frequentist.{key}", freq.get(key))
                for r in freq.get("studies", []):
                    if isinstance(r, dict) and "contrast" in r:
                        text(f"{gw}.frequentist.studies.contrast", r["contrast"])
    return out


def _reason(row: dict[str, Any]) -> str:
    b, a = row["before"], row["after"]
    if b is None or a is None:
        return f"claim {row['status']}"
    parts = []
    if row["changed"]:
        parts.append(f"verdict {b['verdict']} -> {a['verdict']}")
    if b.get("probability") is not None and a.get("probability") is not None:
        moved = " (beyond Monte Carlo error)" if row["moved"] else ""
        parts.append(f"P {b['probability']:.2f} -> {a['probability']:.2f}{moved}")
    if row["studies_added"]:
        parts.append(f"studies added: {', '.join(row['studies_added'])}")
    if row["studies_removed"]:
        parts.append(f"studies removed: {', '.join(row['studies_removed'])}")
    return "; ".join(parts) or "no change"


def _studies(doc: dict[str, Any]) -> set[str]:
    """Every study a report used: the data's list when it has one, else its claims'."""
    listed = (doc.get("data") or {}).get("study_list")
    if listed is not None:
        return set(listed)
    return {s for c in doc["claims"] for s in c.get("studies") or []}


def diff_reports(before: dict[str, Any], after: dict[str, Any], label: str) -> dict[str, Any]:
    """Compare two ``results.json`` documents (``trialmeta diff`` and ``report --previous``)."""
    data_b, data_a = before.get("data") or {}, after.get("data") or {}
    doc = compare(before, after, label, {
        "before": {k: data_b.get(k) for k in ("sha256", "rows", "studies")},
        "after": {k: data_a.get(k) for k in ("sha256", "rows", "studies")}})
    for row in doc["claims"]:
        row["reason"] = _reason(row)
    doc["estimates"] = compare_fits(before.get("fits") or {}, after.get("fits") or {})
    doc["studies_added"] = sorted(_studies(after) - _studies(before))
    doc["studies_removed"] = sorted(_studies(before) - _studies(after))
    ids_b = {c["id"] for c in before.get("claims", [])}
    ids_a = {c["id"] for c in after.get("claims", [])}
    doc["claims_added"] = sorted(ids_a - ids_b)
    doc["claims_removed"] = sorted(ids_b - ids_a)
    doc["warnings"] = comparability_warnings(before, after)
    return doc


def comparability_warnings(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Say what makes two reports hard to compare: different claims files, no shared claim."""
    out = []
    prov_b, prov_a = before.get("provenance") or {}, after.get("provenance") or {}
    if prov_b.get("claims_sha256") and prov_a.get("claims_sha256") and \
            prov_b["claims_sha256"] != prov_a["claims_sha256"]:
        out.append(f"the two reports come from different claims files ({prov_b.get('claims')} "
                   f"and {prov_a.get('claims')}): a verdict may differ because the claim "
                   "changed, not the evidence")
    ids_b = {c["id"] for c in before.get("claims", [])}
    ids_a = {c["id"] for c in after.get("claims", [])}
    if ids_b and ids_a and not ids_b & ids_a:
        out.append("the two reports share no claim: they look like unrelated analyses")
    return out


ESTIMATE_KEYS = ("median", "ci_low", "ci_high")


def _estimate(e: Any) -> dict[str, Any] | None:
    return {k: e.get(k) for k in (*ESTIMATE_KEYS, "sd")} if isinstance(e, dict) else None


def compare_fits(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pooled estimate of every fit (``results.json``'s ``fits``), before and after.

    Listed when a fit or quantity is on one side only or its median or interval changed.
    """
    rows = []
    for fid in [*after, *(f for f in before if f not in after)]:
        b = (before.get(fid) or {}).get("estimates") or {}
        a = (after.get(fid) or {}).get("estimates") or {}
        for q in [*a, *(x for x in b if x not in a)]:
            eb, ea = b.get(q), a.get(q)
            if not isinstance(eb, dict) and not isinstance(ea, dict):
                continue
            if isinstance(eb, dict) and isinstance(ea, dict) and \
                    all(eb.get(k) == ea.get(k) for k in ESTIMATE_KEYS):
                continue
            rows.append({"fit": fid, "quantity": q, "before": _estimate(eb),
                         "after": _estimate(ea)})
    return rows
