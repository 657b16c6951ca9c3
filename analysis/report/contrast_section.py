"""The report's contrast section: each comparison by comparator group, then pooled.

The fits are the pipeline's (``pipelines.contrast_fits``); this module draws them.
"""

from __future__ import annotations

from typing import Any

from .plots import contrast_forest, funnel_plot, svg

#: the group that pools every comparator of a comparison
POOLED = "all controls"


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
                if (g["group"] == POOLED or len(entry["groups"]) == 1) \
                        and g["contrasts"] >= 3:
                    g["funnel_svg"] = svg(funnel_plot, freq=g["frequentist"],
                                          title=f"Funnel: {entry['title']}")
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
