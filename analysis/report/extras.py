"""Report parts beyond the fits: published comparison, sensitivity, limitations, CSV tables."""

from __future__ import annotations

import csv
import io
from typing import Any

from ..io.records import Records


def _claim_scope(records: Records, row: dict) -> str:
    """Return what a claim's estimate pooled: its selection's active arms in its studies."""
    from ..select.filters import Filters

    t = Filters.from_mapping(row.get("selection") or {}).apply(records.table)
    t = t[t["study"].isin(row["studies"]) & ~t["control"].fillna(False).astype(bool)]
    return _scope(records, list(zip(t["study"], t["arm"], strict=True)), [])


def _ours(key: str, claims_rows: list[dict], contrasts: list[dict],
          records: Records | None = None) -> dict[str, Any] | None:
    """Our estimate a published result is compared with; with ``records``, its scope too."""
    kind, _, rest = key.partition("/")
    if kind == "claim":
        row = next((c for c in claims_rows if c["id"] == rest), None)
        if row is None or row["median"] is None:
            return None
        return {"median": row["median"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                "k": len(row["studies"]), "label": f"claim {rest}: {row['quantity']}",
                "scope": _claim_scope(records, row) if records is not None else None}
    if kind == "contrast":
        cid, group, quantity = rest.split("/")
        for c in contrasts:
            if c["id"] != cid:
                continue
            for g in c["groups"]:
                if g["group"] == group and g.get("bayesian"):
                    e = g["bayesian"]["estimates"].get(quantity)
                    if e:
                        rows = g["bayesian"]["per_study"]
                        scope = None if records is None else _scope(
                            records, [(r["study"], r["arm"]) for r in rows],
                            [r["comparator"] for r in rows])
                        return {"median": e["median"], "ci_low": e["ci_low"],
                                "ci_high": e["ci_high"], "k": g["k"],
                                "label": f"{c['title']}: {group} ({quantity})",
                                "scope": scope}
    return None


def _web_link(url: str | None) -> bool:
    """Whether a URL may become a link in the report: http or https only."""
    return bool(url) and str(url).strip().lower().startswith(("http://", "https://"))


def _scope(records: Records, arms: list[tuple[str, str]], controls: list[str]) -> str:
    """Say what our estimate pooled: drugs and routes, populations, controls, studies."""
    t = records.table
    keys = set(arms)
    used = t[[(s, a) in keys for s, a in zip(t["study"], t["arm"], strict=True)]]

    def listed(col: str) -> str:
        return ", ".join(sorted({str(x) for x in used[col].dropna()})) or "?"

    studies = sorted({s for s, _ in arms})
    text = (f"{listed('treatment')} ({listed('route')}); {listed('population')}; "
            f"{len(studies)} studies")
    return text + (f"; vs {', '.join(sorted(set(controls)))}" if controls else "")


def published_comparison(rows: list[dict[str, str]], claims_rows: list[dict],
                         contrasts: list[dict],
                         records: Records | None = None) -> list[dict[str, Any]]:
    """Put published pooled results side by side with ours (where we estimate the same).

    With ``records``, each row also says what our estimate pooled (``ours_scope``: drugs,
    routes, populations, controls, studies), so the reader sees how the two comparisons
    differ.
    """
    out = []
    for r in rows:
        ours = _ours(r["ours"], claims_rows, contrasts, records) if r.get("ours") else None

        def num(x: str) -> float | None:
            return float(x) if x not in ("", None) else None

        out.append({"source": r["source"], "comparison": r["comparison"],
                    "outcome": r["outcome"], "time": r["time"], "measure": r["measure"],
                    "estimate": num(r["estimate"]), "ci_low": num(r.get("ci_low", "")),
                    "ci_high": num(r.get("ci_high", "")), "studies": r.get("studies", ""),
                    "url": r["url"] if _web_link(r["url"]) else "",
                    "quote": r.get("quote", ""), "ours": ours})
    return out


def limitations(records: Records, claims_rows: list[dict], curves: list[dict],
                diagnostics_rows: list[dict]) -> list[str]:
    """Limitations that follow from the records and the fits (computed, not boilerplate)."""
    t = records.table
    out = []
    derived = int((t["evidence"] == "derived").sum())
    if derived:
        out.append(f"{derived} of {len(t)} rows hold values computed from reported numbers "
                   "(evidence tier 'derived'), for example counts from percentages.")
    secondary = int((t["evidence"] == "secondary").sum())
    if secondary:
        out.append(f"{secondary} rows were read from secondary sources (registries, review "
                   "tables) rather than the trial reports.")
    cross = sorted(set(t.loc[t["design"] == "crossover", "study"]))
    if cross:
        out.append(f"Crossover trials ({', '.join(cross)}) are analysed with both periods as "
                   "independent groups where first-period outcomes are not reported; the "
                   "sensitivity analysis excludes them.")
    single = sorted(set(t.loc[t["design"] == "single_arm", "study"]))
    if single:
        out.append(f"{len(single)} open-label single-arm series inform only the pooled rates "
                   "and the repeated-dosing comparison; they have no control arm.")
    insufficient = [c["id"] for c in claims_rows if c["verdict"] == "insufficient data"]
    if insufficient:
        out.append(f"The records as extracted cannot inform claims "
                   f"{', '.join(insufficient)}; their reasons say what data would, and their "
                   "certainty lists any row left out only for a missing time point.")
    for c in curves:
        for w in c["doc"]["warnings"]:
            out.append(f"{c['kind']} ({c['doc']['form']}): {w}.")
    failed = [d["id"] for d in diagnostics_rows if not d["passed"]]
    if failed:
        out.append(f"{len(failed)} fit(s) failed the convergence gate: {', '.join(failed)}; "
                   "numbers from them are provisional.")
    return list(dict.fromkeys(out))


#: a text cell starting with one of these is a formula to a spreadsheet (OWASP CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Return a CSV cell: text a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Render rows as CSV text with a fixed column order (LF line endings).

    Text from the records or claims that starts like a formula (``=``, ``+``, ``-``, ``@``)
    is written with a leading apostrophe, so a spreadsheet shows it instead of running it.
    """
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in columns})
    return buf.getvalue()


def reach(rows: list[dict[str, Any]], claim_id: str) -> str | None:
    """Say what a claim could have reached at its design, from its operating characteristics.

    "At this design this claim cannot reach supported" when even in the world where it
    holds ``supported`` came up in no simulation whose 95 % interval reaches 5 %.
    """
    mine = [r for r in rows if r["claim"] == claim_id]
    if not mine:
        return None
    true = [r for r in mine if r["claim_true"]]
    false = [r for r in mine if not r["claim_true"]]
    parts = []
    for r in true:
        s = r["supported"]
        if s["ci_high"] < 0.05:
            parts.append(f"at this design this claim cannot reach supported (0 of {r['sims']} "
                         f"simulations where it holds, {r['world']})")
        else:
            parts.append(f"supported in {s['p']:.0%} of simulations where it holds "
                         f"({r['world']})")
    for r in false:
        parts.append(f"supported in {r['supported']['p']:.0%} and contradicted in "
                     f"{r['contradicted']['p']:.0%} where it does not ({r['world']})")
    return "; ".join(parts)
