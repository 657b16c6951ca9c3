"""The report's section for a multi-agent dose-response network: curves, ED50s, equivalences."""

from __future__ import annotations

from typing import Any

from .plots import agents_plot, svg


def agents_section(doc: dict[str, Any], fid: str, claim_ids: list[str]) -> dict[str, Any]:
    """Return the generic section (heading, text, figure, tables) of one agents document."""
    label = ", ".join(claim_ids)
    scale = "log odds ratio" if doc["measure"] == "OR" else "mean difference"
    rows = [{"agent": a, "unit": d["unit"],
             "doses": ", ".join(f"{x:g}" for x in d["observed_doses"]),
             "emax": _interval(d["emax"]), "ed50": _interval(d["ed50"])}
            for a, d in doc["agents"].items()]
    equivalents = [{"dose of agent": f"{e['dose']:g} {e['agent']}", "other": e["other"],
                    "equivalent dose": _interval(e),
                    "P(beyond observed)": e["p_beyond_observed"]}
                   for e in doc["equivalent_doses"]]
    tau = doc["estimates"]["tau"]
    text = (f"{doc['outcome']} ({doc['measure']}), {doc['k']} studies, {doc['arms']} arms; "
            f"ED50 {doc['ed50_pooling']}, Emax {doc['emax_pooling']}; every agent's dose 0 is "
            f"the shared control '{doc['control']}'; tau {_interval(tau)}. An equivalent dose "
            "beyond the other agent's highest observed dose is an extrapolation of its curve. "
            + " ".join(f"Note: {n}." for n in doc.get("notes", [])))
    return {"id": fid, "claims": claim_ids, "family": "dose-response",
            "heading": f"Dose-response across agents (claims {label})", "text": text,
            "svg": svg(agents_plot, agents=doc["agents"], scale=scale,
                       title=f"Emax curves (claims {label})"),
            "tables": [
                {"caption": f"Each agent's Emax ({scale}) and ED50 (its own unit)",
                 "columns": ["agent", "unit", "doses", "emax", "ed50"], "rows": rows},
                {"caption": "Equivalent doses: the dose of the other agent with the same effect",
                 "columns": ["dose of agent", "other", "equivalent dose", "P(beyond observed)"],
                 "rows": equivalents}]}


def _interval(e: dict[str, Any]) -> str:
    def f(x: float | None) -> str:
        return "∞" if x is None or x == float("inf") else f"{x:.3g}"

    return f"{f(e.get('median'))} ({f(e.get('ci_low'))} to {f(e.get('ci_high'))})"
