"""Run the report's independent fits in worker processes, filling the posterior cache.

The report itself then runs in one process and reads every posterior back from the
cache, so the results do not depend on how the work was split. Tasks carry paths and
indices, never PyMC objects.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from ..inference import SamplerSettings


def tasks(n_claims: int, n_contrasts: int) -> list[tuple[str, int]]:
    """Every independent unit of work: one per claim fit, contrast spec and form table."""
    return ([("claim", i) for i in range(n_claims)]
            + [("contrast", j) for j in range(n_contrasts)]
            + [("forms", i) for i in range(n_claims)])


def _worker(records_path: str | None, claims_path: str | None, settings: SamplerSettings,
            chunk: list[tuple[str, int]]) -> int:
    from dataclasses import replace

    from ..claims import load_claims, model_family
    from ..curves import compare_forms
    from ..evaluate import RUNNERS
    from ..models.dose_response import FORMS as DOSE_FORMS
    from ..models.time_course import FORMS as TIME_FORMS
    from ..records import read_records
    from .contrast_section import run_contrast_section

    records = read_records(records_path)
    claims = load_claims(claims_path)
    done = 0
    for kind, i in chunk:
        if kind == "claim":
            c = claims.claims[i]
            RUNNERS[model_family(c.model)](records, c, settings)
        elif kind == "contrast":
            run_contrast_section(records, [claims.contrasts[i]], settings)
        else:
            c = claims.claims[i]
            family = model_family(c.model)
            if family not in ("dose-response", "time-course"):
                continue
            run = RUNNERS[family](records, c, settings)
            if run.doc is None:
                continue
            forms = DOSE_FORMS if family == "dose-response" else TIME_FORMS
            compare_forms(records, family, replace(run.extra["opts"]), settings, forms,
                          done={run.doc["form"]: run.doc})
        done += 1
    return done


def prefetch(records_path: str | None, claims_path: str | None, settings: SamplerSettings,
             n_claims: int, n_contrasts: int, jobs: int) -> None:
    """Fill the cache using ``jobs`` worker processes (round-robin split of the tasks)."""
    work = tasks(n_claims, n_contrasts)
    chunks = [work[k::jobs] for k in range(jobs)]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        for future in [pool.submit(_worker, records_path, claims_path, settings, ch)
                       for ch in chunks if ch]:
            future.result()
