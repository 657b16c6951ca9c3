"""Run the report's independent fits in worker processes, filling the posterior cache.

The report itself then runs in one process and reads every posterior back from the
cache, so the results do not depend on how the work was split. Tasks carry paths and
indices, never PyMC objects.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from ..claims.spec import ClaimsFile
from ..sampling.settings import SamplerSettings


def tasks(claims: ClaimsFile) -> list[tuple[str, int]]:
    """Every independent unit of work, most expensive first.

    One per distinct claim fit (claims sharing a fit would otherwise race to compute it in
    two workers), one per contrast spec, one form table per fit of a family with curve
    forms.
    """
    from ..families.registry import family_of

    first: dict[tuple, int] = {}
    for i, c in enumerate(claims.claims):
        first.setdefault(c.fit_key(), i)
    fits = sorted(first.values())
    curves = [i for i in fits
              if family_of(claims.claims[i].model).forms(claims.claims[i].model,
                                                         dict(claims.claims[i].options))]
    return ([("forms", i) for i in curves]
            + [("contrast", j) for j in range(len(claims.contrasts))]
            + [("claim", i) for i in fits if i not in curves])


def _worker(records_path: str | None, claims: ClaimsFile, settings: SamplerSettings,
            chunk: list[tuple[str, int]]) -> int:
    """Run the tasks of ``chunk`` on the report's own claims.

    The claims are sent whole, not as a path: a report of the data alone has claims that no
    file holds (read from a path, they were the bundled ketamine claims).
    """
    from ..families.registry import family_of
    from ..io.records import read_records
    from .contrast_fits import fit_contrast_section

    records = read_records(records_path)
    done = 0
    for kind, i in chunk:
        if kind == "claim":
            c = claims.claims[i]
            family_of(c.model).run(records, c, settings)
        elif kind == "contrast":
            fit_contrast_section(records, [claims.contrasts[i]], settings)
        else:
            c = claims.claims[i]
            family = family_of(c.model)
            run = family.run(records, c, settings)
            if run.doc is None:
                continue
            family.form_table(records, run, settings)
        done += 1
    return done


def prefetch(records_path: str | None, settings: SamplerSettings, claims: ClaimsFile,
             jobs: int) -> None:
    """Fill the cache using ``jobs`` worker processes.

    One task at a time goes to whichever worker is free (the fits differ tenfold in cost,
    so a fixed split leaves one worker idle); the workers live for the whole prefetch.
    A form table fits its claim's own form too, so curve claims need no separate task.
    """
    from ..families.plugins import load_plugins, plugin_files

    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=load_plugins, initargs=(plugin_files(),)) as pool:
        for future in [pool.submit(_worker, records_path, claims, settings, [t])
                       for t in tasks(claims)]:
            future.result()
