"""The report's worker processes fit the report's own claims.

Before, a worker re-read the claims from their path; a report of a user's file without a
claims file has no path, and the workers fitted the bundled ketamine comparisons on the
user's data instead (caching nothing the report then used).
"""

from __future__ import annotations

from pathlib import Path

from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.pipelines.data_only import data_only_claims
from trialmeta.analysis.pipelines.prefetch import _worker, tasks
from trialmeta.analysis.sampling.settings import SamplerSettings

BCG = str(Path(__file__).parents[1] / "data" / "metadat" / "bcg.csv")


def test_a_worker_fits_the_data_only_comparisons_into_the_cache(tmp_path: Path) -> None:
    claims = data_only_claims(read_records(BCG))
    work = [t for t in tasks(claims) if t[0] == "contrast"]
    assert work == [("contrast", 0)]
    settings = SamplerSettings(draws=200, tune=200, chains=2, seed=1,
                               cache_dir=str(tmp_path / "cache"))
    assert _worker(BCG, claims, settings, work) == 1
    cached = [p for p in (tmp_path / "cache").iterdir() if p.suffix in (".nc", ".npz")]
    assert cached, "the worker fitted nothing the report could read back"
