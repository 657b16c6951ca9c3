"""Benchmark trialmeta (``make bench``): timings, ESS per second, scaling, memory.

Writes ``bench/results.json`` and prints a table. Every timing is a whole measurement of
this machine at this moment, not a test: nothing here passes or fails.

    python bench/run_bench.py [--quick]

Sections:
- per model family (pooled-rate, contrast, dose-response, time-course) on the bundled
  data, with the default sampler (nutpie on the precompiled numba kernels), nutpie on
  PyTensor's compiled C (``nutpie-pytensor``), and PyMC's own NUTS: import, build, compile (loading the kernels from numba's cache; PyMC
  compiles inside ``pm.sample``, so for it compile counts as sampling), sampling,
  post-processing, the whole process, and the minimum bulk ESS over every stored quantity
  (per second of sampling); pooled-rate and contrast again with 2,000 draws per chain;
- the exact normal-normal engine for 100 studies;
- ``trialmeta fit network`` on a simulated 100-trial, 8-treatment network (a fifth of
  the trials three-armed), whole process, without and with the inconsistency checks;
- scaling of pooled-rate and contrast in the number of studies, with peak memory (each
  size in a fresh process, so memory is that run's own);
- ``trialmeta report`` on the bundled data, cold (empty cache) and warm, and ``make report``
  (sweep, then the report with it, the calibration and the baseline data) cold and warm;
- a start-up breakdown per command (``bench/startup.py``): interpreter, imports by group,
  kernel load, sampling, diagnostics, PSIS-LOO, writing, the whole process, and rstanarm's
  whole process on the same 20-study pooled-rate model when R has it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent

FAMILY_CODE = r"""
import json, sys, time
t0 = time.perf_counter()
family, sampler, draws = sys.argv[1], sys.argv[2], int(sys.argv[3])
precompiled = sampler == "nutpie"  # every bundled family's default form has a kernel
import arviz
if not precompiled:
    import pymc
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.select.filters import Filters, TimeWindow
from trialmeta.analysis.sampling.inference import LazyModel, sample, diagnose
from trialmeta.analysis.sampling.settings import SamplerSettings
t_import = time.perf_counter() - t0
r = read_records()
dep = ("MADRS", "HDRS", "HDRS17", "HDRS21", "HDRS25", "HAMD6", "QIDS_SR16")
t1 = time.perf_counter()
if family == "pooled-rate":
    from trialmeta.analysis.select.filters import select_binary_arms
    from trialmeta.analysis.models.pooled_rate import PooledRate as M
    data = select_binary_arms(r, "response", TimeWindow.around(24),
                              Filters(treatment=("ketamine",), route=("iv",), scale=dep))
    m = M(); names = ["mu", "tau"]
elif family == "contrast":
    from trialmeta.analysis.select.contrasts import select_contrasts
    from trialmeta.analysis.models.contrast import Contrast as M
    data = select_contrasts(r, "response", "OR", TimeWindow.around(24),
                            Filters(treatment=("ketamine", "esketamine"), scale=dep))
    m = M(); names = ["d", "tau"]
elif family == "dose-response":
    from trialmeta.analysis.select.doses import select_dose_arms
    from trialmeta.analysis.models.dose_response import DoseResponse as M
    data = select_dose_arms(r, "response", TimeWindow.around(24),
                            Filters(treatment=("esketamine",), route=("intranasal",), scale=dep))
    m = M("emax"); names = ["theta", "tau", "ed50"]
else:
    from trialmeta.analysis.select.contrasts import select_time_course
    from trialmeta.analysis.models.time_course import TimeCourse as M
    data = select_time_course(r, "response", "OR",
                              Filters(treatment=("ketamine", "esketamine"), scale=dep))
    m = M("bateman"); names = ["tau", "peak", "t_rise", "t_decay"]
model = m.precompiled(data) if precompiled else m.build(data)
t_build = time.perf_counter() - t1
t_c = time.perf_counter()
if precompiled:  # numba kernels loaded from the on-disk cache
    import trialmeta.analysis.sampling.kernels_curves
    kernel_model = model
    model = LazyModel(lambda: None, lambda: kernel_model)
elif sampler == "nutpie-pytensor":  # PyMC compiles inside pm.sample: counted as sampling
    from trialmeta.analysis.sampling.samplers import compiled
    compiled(model)
t_compile = time.perf_counter() - t_c
t2 = time.perf_counter()
idata = sample(model, SamplerSettings(sampler=sampler, draws=draws))
t_sample = time.perf_counter() - t2
t3 = time.perf_counter()
diag = diagnose(idata, names)
from trialmeta.analysis.io.posterior_store import as_arviz
ess = arviz.ess(as_arviz(idata).posterior, method="bulk")  # every stored quantity
ess_min = min(float(ess[v].values.min()) for v in ess.data_vars)
t_post = time.perf_counter() - t3
print(json.dumps({"import_s": t_import, "build_s": t_build, "compile_s": t_compile,
                  "sample_s": t_sample, "sampler": sampler, "draws": draws,
                  "post_s": t_post, "ess_bulk_min": ess_min,
                  "ess_per_s": ess_min / t_sample, "divergences": diag.divergences}))
"""

#: (family, sampler, draws per chain) measured in fresh processes
FAMILY_RUNS = [(f, s, 1000) for s in ("nutpie", "nutpie-pytensor", "pymc")
               for f in ("pooled-rate", "contrast", "dose-response", "time-course")]
#: the issue-7 target: one fit with >= 1,000 bulk ESS for every quantity, as a process
FAMILY_RUNS += [("pooled-rate", "nutpie", 2000), ("contrast", "nutpie", 2000)]

SCALE_CODE = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
from scipy.special import expit
from trialmeta.analysis.sampling.settings import SamplerSettings
family, k, draws = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(k)
n = rng.integers(20, 200, size=(k, 2))
if family == "pooled-rate":
    from trialmeta.analysis.select.filters import BinaryArms
    from trialmeta.analysis.models.pooled_rate import PooledRate
    y = rng.binomial(n[:, 0], expit(rng.normal(-0.3, 0.5, k)))
    t = pd.DataFrame({"study": [f"S{i}" for i in range(k)], "arm": "a",
                      "label": [f"S{i} a" for i in range(k)], "time_h": 24.0,
                      "n": n[:, 0], "events": y, "evidence": "primary",
                      "design": "parallel", "scale": "X"})
    data, model = BinaryArms("response", t), PooledRate()
else:
    from trialmeta.analysis.select.contrasts import ContrastData
    from trialmeta.analysis.models.contrast import Contrast
    a = rng.normal(-1, 0.5, k)
    d = 0.8 + 0.3 * rng.standard_normal(k)
    ec = rng.binomial(n[:, 0], expit(a)); ea = rng.binomial(n[:, 1], expit(a + d))
    t = pd.DataFrame({"study": [f"S{i}" for i in range(k)], "arm": "a", "control": "c",
                      "comparator": "placebo", "time_h": 24.0, "design": "parallel",
                      "a": ea, "b": n[:, 1] - ea, "c": ec, "d": n[:, 0] - ec,
                      "evidence": "primary"})
    data, model = ContrastData("response", "OR", None, pd.DataFrame(), t), Contrast()
t0 = time.perf_counter()
fit = model.fit(data, SamplerSettings(draws=draws, tune=draws))
wall = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"k": k, "draws": draws, "fit_s": wall, "peak_mb": peak_mb,
                  "passed": fit.diagnostics.passed}))
"""

EXACT_CODE = r"""
import json, time
import numpy as np
from trialmeta.analysis.stats.exact import exact_normal_normal
from trialmeta.analysis.stats.priors import heterogeneity_prior
rng = np.random.default_rng(1)
y = rng.normal(0.3, 0.2, 100); v = rng.uniform(0.01, 0.1, 100)
prior = heterogeneity_prior("half-normal:0.5")
exact_normal_normal(y, v, tau_prior=prior)  # warm-up (imports)
times = []
for _ in range(5):
    t = time.perf_counter(); exact_normal_normal(y, v, tau_prior=prior)
    times.append(time.perf_counter() - t)
print(json.dumps({"k": 100, "best_s": min(times), "median_s": sorted(times)[2]}))
"""


def network_csv(path: Path, trials: int = 100, seed: int = 1) -> None:
    """Write a simulated network (8 treatments, arm-based random effects) as records."""
    import numpy as np

    rng = np.random.default_rng(seed)
    nodes = list("ABCDEFGH")
    d = dict(zip(nodes, [0.0, 0.3, 0.5, 0.6, 0.8, 0.2, 0.4, 1.0], strict=True))
    head = ("study,arm,treatment,control,design,time_h,doses_given,n,responders,scale,"
            "source,evidence")
    lines = [head]
    for i in range(trials):
        size = 3 if i % 5 == 0 else 2
        arms = rng.choice(nodes, size, replace=False)
        mu = rng.normal(-1.0, 0.5)
        for j, t in enumerate(arms):
            eta = mu + (0.0 if j == 0 else d[t] - d[arms[0]] + rng.normal(0.0, 0.2))
            n = int(rng.integers(30, 120))
            events = int(rng.binomial(n, 1 / (1 + np.exp(-eta))))
            lines.append(f"T{i},{t},{t},false,parallel,24,1,{n},{events},MADRS,"
                         f"simulated:{i},primary")
    path.write_text("\n".join(lines) + "\n")


def run_py(code: str, *args: str) -> tuple[dict, float]:
    """Run code in a fresh interpreter; return its JSON line and the whole wall time."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"benchmark step {args} failed:\n{out.stderr}")
    wall = time.perf_counter() - t
    line = [x for x in out.stdout.splitlines() if x.startswith("{")][-1]
    return json.loads(line), wall


def timed(cmd: list[str], env: dict | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller scaling sizes")
    args = ap.parse_args()
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    trialmeta = str(Path(sys.executable).with_name("trialmeta"))
    results["help_s"] = min(timed([trialmeta, "--help"]) for _ in range(3))
    fams: dict = {}
    print(f"{'family':<14}{'sampler':<16}{'draws':>6}{'import':>8}{'build':>7}{'compile':>9}"
          f"{'sample':>8}{'post':>6}{'whole':>7}{'min ESS':>9}{'ESS/s':>7}", flush=True)
    for family, sampler, draws in FAMILY_RUNS:
        doc, wall = run_py(FAMILY_CODE, family, sampler, str(draws))
        doc["whole_process_s"] = wall
        fams.setdefault(sampler, {})[family if draws == 1000 else f"{family}@{draws}"] = doc
        print(f"{family:<14}{sampler:<16}{draws:6d}{doc['import_s']:7.1f}s"
              f"{doc['build_s']:6.2f}s{doc['compile_s']:8.1f}s{doc['sample_s']:7.1f}s"
              f"{doc['post_s']:5.2f}s{wall:6.1f}s{doc['ess_bulk_min']:9.0f}"
              f"{doc['ess_per_s']:7.0f}", flush=True)
    results["families"] = fams
    results["exact_100_studies"], _ = run_py(EXACT_CODE)
    print(f"exact engine, 100 studies: {results['exact_100_studies']['best_s'] * 1000:.0f} ms",
          flush=True)
    net_dir = Path(tempfile.mkdtemp(prefix="trialmeta-bench-network-"))
    network_csv(net_dir / "network.csv")
    fit = [trialmeta, "fit", "network", str(net_dir / "network.csv"), "--reference", "A",
           "--allow-unconverged", "--json"]
    results["network_100_trials"] = {  # fit commands keep no posterior cache
        "consistency_s": timed([*fit, "--no-check-inconsistency"]),
        "with_checks_s": timed(fit)}
    shutil.rmtree(net_dir, ignore_errors=True)
    print(f"fit network, 100 trials, 8 treatments: "
          f"{results['network_100_trials']['consistency_s']:.1f}s whole process "
          f"(with UME and node-splitting {results['network_100_trials']['with_checks_s']:.1f}s)",
          flush=True)
    sizes = [10, 100, 1000] if args.quick else [10, 100, 1000, 10000]
    scaling = []
    for family in ("pooled-rate", "contrast"):
        for k in sizes:
            draws = 1000 if k <= 1000 else 300
            doc, _ = run_py(SCALE_CODE, family, str(k), str(draws))
            doc["family"] = family
            scaling.append(doc)
            print(f"scaling {family:<12} k={k:<6} draws={draws:<5} {doc['fit_s']:7.1f}s "
                  f"peak {doc['peak_mb']:7.0f} MB", flush=True)
    results["scaling"] = scaling
    cache = Path(tempfile.mkdtemp(prefix="trialmeta-bench-cache-"))
    out = Path(tempfile.mkdtemp(prefix="trialmeta-bench-report-"))
    cold = timed([trialmeta, "report", "--out", str(out / "r"), "--cache", str(cache),
                  "--quiet"])
    warm = timed([trialmeta, "report", "--out", str(out / "r"), "--cache", str(cache),
                  "--quiet"])
    # the README's main job: sweep, then the report with the sweep, calibration and baseline
    make = ["make", "--no-print-directory", "report", f"CACHE={cache / 'make'}",
            f"OUT={out / 'make'}"]
    make_cold, make_warm = timed(make), timed(make)
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    results["report"] = {"cold_s": cold, "warm_s": warm, "make_report_cold_s": make_cold,
                         "make_report_warm_s": make_warm}
    print(f"report: cold {cold:.1f}s, warm {warm:.1f}s; make report: cold {make_cold:.1f}s, "
          f"warm {make_warm:.1f}s; trialmeta --help {results['help_s']:.2f}s", flush=True)
    from startup import show, startup

    results["startup"] = startup()
    show(results["startup"])
    results["bench_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (HERE / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {HERE / 'results.json'}")


if __name__ == "__main__":
    main()
