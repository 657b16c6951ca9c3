"""The report's section for a network fit: graph, effects and SUCRA, league table, checks."""

from __future__ import annotations

from typing import Any

from .plots import network_plot, svg


def league_table(doc: dict[str, Any]) -> dict[str, Any]:
    """Return the league table as the usual triangular matrix.

    The diagonal names the treatments; the cell below it in row i, column j is the effect of
    the row treatment i against the column treatment j, as a median (95% CrI): with the
    reference first, the first column is every treatment against the reference. The upper
    triangle would repeat it with the sign reversed, so it is left empty.
    """
    nodes = list(doc["nodes"])
    pairs = {(r["treatment"], r["vs"]): r for r in doc["league"]}
    rows = []
    for i, row_node in enumerate(nodes):
        cells: dict[str, Any] = {"": row_node}
        for j, col_node in enumerate(nodes):
            if j == i:
                cells[col_node] = col_node
            elif j < i:
                r = pairs.get((row_node, col_node))
                cells[col_node] = "–" if r is None else (
                    f"{r['median']:.2f} ({r['ci_low']:.2f} to {r['ci_high']:.2f})")
            else:
                cells[col_node] = ""
        rows.append(cells)
    return {"caption": f"League table ({doc['scale']}): below the diagonal, the row "
                       "treatment against the column treatment, median (95% CrI)",
            "columns": ["", *nodes], "rows": rows, "league": True}


def network_section(doc: dict[str, Any], fid: str, claim_ids: list[str]) -> dict[str, Any]:
    """Return the generic section (heading, text, figure, tables) of one network document."""
    label = ", ".join(claim_ids)
    effects = [{"treatment": n, **doc["effects"][n], "sucra": doc["ranks"][n]["sucra"]}
               for n in doc["nodes"][1:]]
    tables = [
        {"caption": f"Each treatment vs {doc['reference']} ({doc['scale']}; "
                    f"{doc['direction']}), with SUCRA",
         "columns": ["treatment", "median", "ci_low", "ci_high", "sucra"], "rows": effects},
        league_table(doc),
        {"caption": "Edges: pairs compared within trials",
         "columns": ["from", "to", "trials", "patients"], "rows": doc["edges"]},
    ]
    if doc.get("node_splits"):
        tables.append({
            "caption": "Node-splitting: direct vs indirect evidence (two-sided p)",
            "columns": ["comparison", "direct", "indirect", "difference", "p_value"],
            "rows": [{"comparison": x["comparison"], "p_value": x["p_value"],
                      **{k: _interval(x[k]) for k in ("direct", "indirect", "difference")}}
                     for x in doc["node_splits"]]})
    inc = doc.get("inconsistency")
    if inc and "elpd_difference_ume_minus_consistency" in inc:
        check = (f"Unrelated mean effects vs consistency (PSIS-LOO): elpd difference "
                 f"{inc['elpd_difference_ume_minus_consistency']:.2f} (SE "
                 f"{inc['se_difference']:.2f}); "
                 + (f"UNRELIABLE: Pareto k up to {inc['pareto_k_max']:.2f} > 0.7, so the "
                    "comparison cannot be trusted either way." if not inc.get("reliable", True)
                    else f"inconsistency "
                    f"{'FLAGGED' if inc['inconsistency_flagged'] else 'not flagged'}."))
    else:
        check = f"Consistency not checked: {(inc or {}).get('skipped', 'no loop')}."
    tau = doc["estimates"]["tau"]
    text = (f"{doc['outcome']} ({doc['measure']}), {doc['k']} studies, {doc['arms']} arms, "
            f"{len(doc['nodes'])} treatments; tau {tau['median']:.2f} "
            f"({tau['ci_low']:.2f} to {tau['ci_high']:.2f}). {check} "
            + " ".join(f"Note: {n}." for n in doc.get("notes", [])))
    image = svg(network_plot, nodes=doc["nodes"], edges=doc["edges"],
                title=f"network (claims {label})")
    return {"id": fid, "claims": claim_ids, "family": "network",
            "heading": f"Network: {doc['outcome']} vs {doc['reference']} (claims {label})",
            "text": text, "svg": image, "tables": tables}


def _interval(e: dict[str, Any]) -> str:
    return f"{e['median']:.2f} ({e['ci_low']:.2f} to {e['ci_high']:.2f})"
