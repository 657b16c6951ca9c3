"""The posterior cache: hits return the same draws; corrupt or foreign entries are refitted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from trialmeta.analysis.models.pooled_rate import PooledRate
from trialmeta.analysis.sampling.inference import flat
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.filters import BinaryArms


def data() -> BinaryArms:
    t = pd.DataFrame({"study": ["A", "B", "C"], "arm": "a", "label": ["A a", "B a", "C a"],
                      "time_h": 24.0, "n": [20, 30, 25], "events": [8, 15, 9],
                      "evidence": "primary", "design": "parallel", "scale": "X"})
    return BinaryArms("response", t)


def test_cache_hit_and_corrupt_entry(tmp_path: Path) -> None:
    settings = SamplerSettings(draws=200, tune=200, chains=2, seed=4, cache_dir=str(tmp_path))
    first = PooledRate().fit(data(), settings)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob("*.nc"))  # netCDF only when shipped
    again = PooledRate().fit(data(), settings)
    np.testing.assert_array_equal(flat(first.idata, "mu"), flat(again.idata, "mu"))
    for name in ("diverging", "step_size"):  # the fast format keeps every group
        np.testing.assert_array_equal(first.idata.sample_stats[name].values,
                                      again.idata.sample_stats[name].values)
    np.testing.assert_array_equal(first.idata.log_likelihood["events"].values,
                                  again.idata.log_likelihood["events"].values)
    assert list(again.idata.posterior["theta"].coords["arm"].values) == \
        list(first.idata.posterior["theta"].coords["arm"].values)
    files[0].write_bytes(b"not an npz file")  # corrupt the entry
    refit = PooledRate().fit(data(), settings)
    np.testing.assert_array_equal(flat(first.idata, "mu"), flat(refit.idata, "mu"))
    assert files[0].read_bytes()[:4] != b"not "  # rewritten with a good posterior


def test_different_inputs_do_not_share_an_entry(tmp_path: Path) -> None:
    settings = SamplerSettings(draws=200, tune=200, chains=2, seed=4, cache_dir=str(tmp_path))
    PooledRate().fit(data(), settings)
    other = data()
    other.table.loc[0, "events"] = 9
    PooledRate().fit(other, settings)
    PooledRate().fit(data(), SamplerSettings(draws=200, tune=200, chains=2, seed=5,
                                             cache_dir=str(tmp_path)))
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_netcdf_copy_is_written_once_and_reads_as_the_posterior(tmp_path: Path) -> None:
    import arviz as az
    from trialmeta.analysis.io.cache import cached_file

    settings = SamplerSettings(draws=200, tune=200, chains=2, seed=4, cache_dir=str(tmp_path))
    first = PooledRate().fit(data(), settings)
    stored = PooledRate().fit(data(), settings).idata  # read back from the cache
    nc = cached_file(stored, settings.cache_dir)
    assert nc is not None and nc.suffix == ".nc"
    stamp = nc.stat().st_mtime_ns
    assert cached_file(first.idata, settings.cache_dir) == nc and nc.stat().st_mtime_ns == stamp
    back = az.from_netcdf(nc)
    np.testing.assert_array_equal(back.posterior["mu"].values, first.idata.posterior["mu"].values)
    assert back.attrs["cache_key"] == first.idata.attrs["cache_key"]


WARM_FIT = """
import json, sys
import pandas as pd
from trialmeta.analysis.sampling import inference
from trialmeta.analysis.sampling.inference import loo
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.models.pooled_rate import PooledRate
computed = []
real_convergence, real_loo = inference._convergence, inference._psis_loo
inference._convergence = lambda *a: computed.append("diagnose") or real_convergence(*a)
inference._psis_loo = lambda *a: computed.append("loo") or real_loo(*a)
from trialmeta.analysis.select.filters import BinaryArms
t = pd.DataFrame({"study": ["A", "B", "C"], "arm": "a", "label": ["A a", "B a", "C a"],
                  "time_h": 24.0, "n": [20, 30, 25], "events": [8, 15, 9],
                  "evidence": "primary", "design": "parallel", "scale": "X"})
settings = SamplerSettings(draws=200, tune=200, chains=2, seed=4, cache_dir=sys.argv[1])
fit = PooledRate().fit(BinaryArms("response", t), settings)
print(json.dumps({"diagnostics": fit.diagnostics.as_dict(), "loo": loo(fit.idata, None),
                  "computed": computed,
                  "arviz": "arviz" in sys.modules, "xarray": "xarray" in sys.modules}))
"""


def test_warm_fit_needs_no_arviz_and_gives_the_same_diagnostics(tmp_path: Path) -> None:
    """Diagnostics and PSIS-LOO of a cached posterior are kept next to it; neither a cold nor
    a warm fit imports ArviZ or xarray (issue 18: they are computed in NumPy)."""
    import json
    import subprocess
    import sys

    def run() -> dict:
        out = subprocess.run([sys.executable, "-c", WARM_FIT, str(tmp_path)], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    cold, warm = run(), run()
    assert not any(r[m] for r in (cold, warm) for m in ("arviz", "xarray"))
    assert cold["computed"] == ["diagnose", "loo"] and warm["computed"] == []
    assert warm["diagnostics"] == cold["diagnostics"] and warm["loo"] == cold["loo"]
    # a damaged memo is recomputed, not trusted
    for memo in tmp_path.glob("*.derived.json"):
        memo.write_text("{not json")
    again = run()
    assert again["computed"] == ["diagnose", "loo"]
    assert again["diagnostics"] == cold["diagnostics"]
    # an edited one too (issue 20: "passed" written into a failed fit's side file)
    for memo in tmp_path.glob("*.derived.json"):
        doc = json.loads(memo.read_text())
        for entry in doc["entries"]["diagnose"].values():
            entry["r_hat_max"] = 1.0
            entry["divergences"] = 0
        memo.write_text(json.dumps(doc))
    edited = run()
    assert "diagnose" in edited["computed"] and edited["diagnostics"] == cold["diagnostics"]


def test_stored_posterior_reads_like_arviz(tmp_path: Path) -> None:
    from trialmeta.analysis.io.posterior_store import StoredPosterior
    from trialmeta.analysis.sampling.inference import diagnose

    settings = SamplerSettings(draws=200, tune=200, chains=2, seed=4, cache_dir=str(tmp_path))
    first = PooledRate().fit(data(), settings)
    again = PooledRate().fit(data(), settings)
    stored = again.idata
    assert isinstance(stored, StoredPosterior)
    back = stored.to_arviz()
    for group in first.idata.groups():
        assert group in stored and group in back.groups()
        for name, var in first.idata[group].data_vars.items():
            np.testing.assert_array_equal(stored[group][name].values, var.values)
            assert stored[group][name].dims == var.dims
            np.testing.assert_array_equal(back[group][name].values, var.values)
    assert stored.posterior.sizes["draw"] == 200 and "theta" in stored.posterior
    assert list(stored.posterior["theta"].coords["arm"].values) == ["A a", "B a", "C a"]
    back.attrs.pop("cache_key")  # no memo: ArviZ computes the diagnostics afresh
    fresh = diagnose(back, ["mu", "tau"])
    assert (fresh.r_hat_max, fresh.ess_bulk_min) == (again.diagnostics.r_hat_max,
                                                     again.diagnostics.ess_bulk_min)


def test_a_truncated_cached_netcdf_is_never_copied(tmp_path: Path) -> None:
    """Issue 20: the report's fits/*.nc come from a verified file, else a fresh one."""
    from trialmeta.analysis.io.cache import cached_file

    settings = SamplerSettings(draws=100, tune=100, chains=2, seed=4, cache_dir=str(tmp_path))
    PooledRate().fit(data(), settings)
    fit = PooledRate().fit(data(), settings)  # read back from the cache
    path = cached_file(fit.idata, settings.cache_dir)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    again = cached_file(fit.idata, settings.cache_dir)
    assert again.read_bytes() == whole


def _double(x: int) -> int:
    return 2 * x


def test_report_helper_writes_the_netcdf_copy_the_report_would(tmp_path: Path) -> None:
    import arviz as az
    from trialmeta.analysis.io.cache import cached_file
    from trialmeta.analysis.pipelines.report_helper import ReportHelper

    settings = SamplerSettings(draws=200, tune=200, chains=2, seed=4, cache_dir=str(tmp_path))
    idata = PooledRate().fit(data(), settings).idata
    helper = ReportHelper(settings)
    helper.enabled = True  # also on a one-core machine
    try:
        later = helper.call(_double, 21)
        helper.add_posterior(idata)
        helper.wait()
        assert later() == 42
    finally:
        helper.close()
    key = idata.attrs["cache_key"]
    made = tmp_path / f"{key}.nc"
    assert made.exists()
    stamp = made.stat().st_mtime_ns
    used = cached_file(idata, settings.cache_dir)
    assert used == made and made.stat().st_mtime_ns == stamp  # used as it was
    np.testing.assert_array_equal(az.from_netcdf(made).posterior["mu"].values,
                                  flat(idata, "mu").reshape(2, 200))


def test_report_helper_without_a_cache_runs_work_in_place() -> None:
    from trialmeta.analysis.pipelines.report_helper import ReportHelper

    helper = ReportHelper(SamplerSettings(cache_dir=None))
    assert not helper.enabled
    assert helper.call(_double, 4)() == 8
    helper.add_posterior(None)
    helper.wait()
    assert helper._pool is None
