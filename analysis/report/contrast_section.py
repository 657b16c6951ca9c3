"""The report's contrast section: each comparison by comparator group, then pooled."""

from __future__ import annotations

from typing import Any

from ..evaluate.claims import ContrastSpec
from ..families.comparative import (
    contrast_document,
    frequentist_document,
    run_contrast,
    run_frequentist,
)
from ..io.records import Records
from ..sampling.inference import SamplerSettings
from ..select.contrasts import select_contrasts
from .plots import contrast_forest, funnel_plot, svg

POOLED = "all controls"


def run_contrast_section(records: Records, specs: list[ContrastSpec],
                         settings: SamplerSettings, *, figures: bool = True
                         ) -> list[dict[str, Any]]:
    """Fit every comparison of the claims file's ``contrasts`` list (Bayesian and REML).

    ``figures=False`` draws no forest or funnel plot (for numbers that are not shown).
    """
    section = []
    for spec in specs:
        union = tuple(dict.fromkeys(t for _, ts in spec.comparators for t in ts))
        groups = [*spec.comparators, (POOLED, union)]
        entry: dict[str, Any] = {"id": spec.id, "title": spec.title, "outcome": spec.outcome,
                                 "measure": spec.measure, "time_h": spec.window.target_h,
                                 "groups": []}
        for name, comps in groups:
            data = select_contrasts(records, spec.outcome, spec.measure, spec.window,
                                    spec.filters, comparator=comps)
            g: dict[str, Any] = {"group": name, "comparators": list(comps),
                                 "k": data.k_studies, "contrasts": len(data.contrasts)}
            if data.k_studies == 0:
                g["status"] = "no study compares these arms at this time point"
                entry["groups"].append(g)
                continue
            crun = run_contrast(data, settings, data_sha256=records.sha256)
            bayes = contrast_document(crun, records)
            g["_idata"] = crun.fit.idata
            method = "REML" if len(data.contrasts) >= 2 else "FE"
            freq = frequentist_document(run_frequentist(data, method), records)
            g.update(status="fitted", bayesian=bayes, frequentist=freq)
            if len(data.contrasts) >= 2:
                g["frequentist_hksj"] = frequentist_document(
                    run_frequentist(data, "REML", hksj=True), records)
            if not figures:
                entry["groups"].append(g)
                continue
            g["forest_svg"] = svg(contrast_forest, bayes=bayes, freq=freq,
                                  title=f"{spec.title}: {name}")
            if name == POOLED and len(data.contrasts) >= 3:
                g["funnel_svg"] = svg(funnel_plot, freq=freq, title=f"Funnel: {spec.title}")
            entry["groups"].append(g)
        section.append(entry)
    return section


def strip_figures(section: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the section without its SVG strings (for results.json)."""
    out = []
    for entry in section:
        groups = [{k: v for k, v in g.items() if not k.endswith("_svg") and
                   not k.startswith("_")} for g in entry["groups"]]
        out.append({**entry, "groups": groups})
    return out
