"""The report's contrast section: each comparison by comparator group, then pooled.

The fits are the pipeline's (``pipelines.contrast_fits``); this module draws them.
"""

from __future__ import annotations

import math
from typing import Any

from .numbers import ptext
from .plots import contrast_forest, funnel_plot, svg

#: the group that pools every comparator of a comparison
POOLED = "all controls"


def shows_funnel(group: str, groups: int, contrasts: int) -> bool:
    """Whether a comparison group gets the funnel plot and the small-study analyses.

    The pooled group (or the only group), with at least three contrasts.
    """
    return (group == POOLED or groups == 1) and contrasts >= 3


def with_figures(section: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Draw each fitted comparison's forest plot, and the pooled group's funnel plot.

    The groups are the pipeline's (:func:`~trialmeta.analysis.pipelines.contrast_fits.
    fit_contrast_section`); the funnel needs at least three contrasts.
    """
    out = []
    for entry in section:
        groups = []
        for g in entry["groups"]:
            if g.get("status") == "fitted":
                g = {**g, "forest_svg": svg(contrast_forest, bayes=g["bayesian"],
                                            freq=g["frequentist"],
                                            title=f"{entry['title']}: {g['group']}")}
                if shows_funnel(g["group"], len(entry["groups"]), g["contrasts"]):
                    g["funnel_svg"] = svg(funnel_plot, freq=g["frequentist"],
                                          title=f"Funnel: {entry['title']}")
                    g["_bias_rows"] = bias_rows(g["frequentist"])
                    g["_dependence_rows"] = dependence_rows(g["frequentist"])
            groups.append(g)
        out.append({**entry, "groups": groups})
    return out


def strip_figures(section: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the section without its SVG strings (for results.json)."""
    out = []
    for entry in section:
        groups = [{k: v for k, v in g.items() if not k.endswith("_svg") and
                   not k.startswith("_")} for g in entry["groups"]]
        out.append({**entry, "groups": groups})
    return out


def _interval(d: dict[str, Any], log: bool) -> str:
    text = f"{d['estimate']:.3f} ({d['ci_low']:.3f} to {d['ci_high']:.3f})"
    if log:
        text += (f" [{math.exp(d['estimate']):.2f} ({math.exp(d['ci_low']):.2f} to "
                 f"{math.exp(d['ci_high']):.2f})]")
    return text


def bias_rows(freq: dict[str, Any]) -> list[dict[str, str]]:
    """Return the small-study analyses of a frequentist document as rows, unadjusted first.

    Each row: ``method``, ``estimate`` (with its 95% CI; ratios in brackets) and
    ``detail`` (what the method found, or why it could not run here).
    """
    bias = freq.get("bias") or {}
    if not bias:
        return []
    log = freq["scale"] == "log"
    rows = [{"method": f"Random effects, no adjustment ({freq['method']})",
             "estimate": _interval(freq, log), "detail": f"k = {freq['k']}"}]
    names = {"trimfill": "Trim-and-fill (L0)", "trimfill:R0": "Trim-and-fill (R0)",
             "pet": "PET: the effect at SE 0", "peese": "PEESE: the effect at variance 0",
             "pet-peese": "PET-PEESE"}
    for key, b in bias.items():
        if key == "egger_rma":
            continue
        label = names.get(key, "Selection model" if key.startswith("step") else key)
        if "error" in b:
            rows.append({"method": label, "estimate": "–",
                         "detail": f"not computable here: {b['error']}"})
            continue
        if "k0" in b:
            detail = (f"{b['k0']} stud{'y' if b['k0'] == 1 else 'ies'} filled on the "
                      f"{b['side']}")
        elif "chosen" in b:
            detail = f"{b['chosen'].upper()} chosen (PET {ptext(b['pet_p'])})"
        elif "delta" in b:
            side = {"greater": "positive", "less": "negative"}.get(b["alternative"])
            cuts = ", ".join(f"{c:g}" for c in b["steps"][:-1])
            label = (f"Selection model: steps at p = {cuts}"
                     + (f", one-sided (favouring {side} effects)" if side else ", two-sided"))
            weights = ", ".join(f"{d:.2f}" for d in b["delta"][1:])
            detail = (f"relative chance of publication beyond the first step {weights}; "
                      f"LRT {ptext(b['LRT_p'])}")
        else:
            detail = f"slope {ptext(b['slope_p'])}"
        rows.append({"method": label, "estimate": _interval(b, log), "detail": detail})
    return rows


def dependence_rows(freq: dict[str, Any]) -> list[dict[str, str]]:
    """Return the multilevel fit and the cluster-robust errors of a document as rows.

    Empty when the comparison was not nested (no ``cluster``).
    """
    m, r = freq.get("multilevel"), freq.get("robust")
    if not m:
        return []
    log = freq["scale"] == "log"
    rows = [{"method": f"Random effects, independent contrasts ({freq['method']})",
             "estimate": _interval(freq, log), "detail": f"k = {freq['k']}"}]
    sig = ", ".join(f"{lv} {s:.3g} ({u} units)" for lv, s, u in
                    zip(m["levels"], m["sigma2"], m["units"], strict=True))
    rows.append({"method": f"Multilevel (REML, {' / '.join(m['levels'])})",
                 "estimate": _interval(m, log), "detail": f"variance per level: {sig}"})
    if r:
        c = r["coefficients"][0]
        rows.append({"method": f"Cluster-robust errors ({r['estimator']}, by {r['cluster']})",
                     "estimate": _interval(c, log),
                     "detail": f"{r['clusters']} clusters, t with {r['df']} df"})
    return rows
