"""Fit the claims file's descriptive comparisons (``contrasts:``), Bayesian and frequentist."""

from __future__ import annotations

from typing import Any

from ..claims.spec import ContrastSpec
from ..families.contrast import (
    contrast_document,
    frequentist_document,
    run_contrast,
    run_frequentist,
)
from ..io.records import Records
from ..report.contrast_section import POOLED, shows_funnel
from ..sampling.settings import SamplerSettings
from ..select.contrasts import select_contrasts
from ..stats.bias import REPORT_METHODS


def fit_contrast_section(records: Records, specs: list[ContrastSpec],
                         settings: SamplerSettings) -> list[dict[str, Any]]:
    """Fit every comparison of the claims file's ``contrasts`` list (Bayesian and REML).

    Each comparison is fitted per comparator group and pooled over all of them
    (``POOLED``); the report draws the figures (``report.contrast_section.with_figures``).
    """
    section = []
    for spec in specs:
        union = tuple(dict.fromkeys(t for _, ts in spec.comparators for t in ts))
        # one comparator group is the pooled group: never two identical sections
        groups = ([*spec.comparators, (POOLED, union)] if len(spec.comparators) > 1
                  else list(spec.comparators) or [(POOLED, union)])
        entry: dict[str, Any] = {"id": spec.id, "title": spec.title, "outcome": spec.outcome,
                                 "measure": spec.measure,
                                 "time_h": None if spec.window is None else spec.window.target_h,
                                 "clusters": list(spec.clusters), "groups": []}
        for name, comps in groups:
            data = select_contrasts(records, spec.outcome, spec.measure, spec.window,
                                    spec.filters, comparator=comps)
            g: dict[str, Any] = {"group": name, "comparators": list(comps),
                                 "k": data.k_studies, "contrasts": len(data.contrasts)}
            if data.k_studies == 0:
                g["status"] = "no study compares these arms at this time point"
                entry["groups"].append(g)
                continue
            crun = run_contrast(data, settings, data_sha256=records.sha256,
                                clusters=spec.clusters)
            bayes = contrast_document(crun, records)
            g["_idata"] = crun.fit.idata
            method = "REML" if len(data.contrasts) >= 2 else "FE"
            # the small-study analyses beside the group the funnel plot is drawn for
            funnel = shows_funnel(name, len(groups), len(data.contrasts))
            # nesting: rma.mv(random = ~ 1 | cluster/study) and CR1 errors on the outer cluster
            nested = funnel and bool(spec.clusters)
            freq = frequentist_document(run_frequentist(
                data, method, bias=REPORT_METHODS if funnel else (), bias_tolerant=True,
                clusters=(*spec.clusters, "study") if nested else (),
                robust_column=spec.clusters[0] if nested else None), records)
            g.update(status="fitted", bayesian=bayes, frequentist=freq)
            if len(data.contrasts) >= 2:
                g["frequentist_hksj"] = frequentist_document(
                    run_frequentist(data, "REML", hksj=True), records)
            entry["groups"].append(g)
        section.append(entry)
    return section
