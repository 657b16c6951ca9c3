"""Start-up breakdown of each command, whole process (part of ``make bench``).

For every command: the bare interpreter, imports by group (from ``python -X importtime``,
each module's own time summed by top-level package), the numba kernels' load (part of the trialmeta
group, shown apart), then sampling, diagnostics, PSIS-LOO and writing (timers around the
functions that do them), and the whole process. With R's rstanarm installed, the same
20-study pooled-rate model is timed there too (whole ``Rscript`` process).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent

COMMANDS = {
    "--help": ["--help"],
    "fit pooled-rate (20 studies)": ["fit", "pooled-rate", "{arms20}", "--outcome", "response",
                                     "--time", "24", "--json"],
    "fit pooled-rate": ["fit", "pooled-rate", "--outcome", "response", "--json"],
    "fit contrast": ["fit", "contrast", "--json"],
    "fit dose-response": ["fit", "dose-response", "--json"],
    "fit time-course": ["fit", "time-course", "--json"],
}
GROUPS = {"numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow", "numba": "numba",
          "llvmlite": "numba", "scipy": "scipy", "typer": "cli (typer, click, rich)",
          "click": "cli (typer, click, rich)", "rich": "cli (typer, click, rich)",
          "trialmeta": "trialmeta", "nutpie": "nutpie", "arviz": "arviz/xarray/matplotlib",
          "xarray": "arviz/xarray/matplotlib", "matplotlib": "arviz/xarray/matplotlib",
          "pymc": "pymc/pytensor", "pytensor": "pymc/pytensor"}
KERNELS = ("trialmeta.analysis.sampling.kernels", "trialmeta.analysis.sampling.kernels_curves")

DRIVER = r"""
import json, sys, time
t0 = time.perf_counter()
phases = {}
def timer(module, name, phase):
    real = getattr(module, name)
    def wrapped(*a, **k):
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - t
    setattr(module, name, wrapped)
from trialmeta.cli import app as cli_app
if sys.argv[1] != "--help":
    from trialmeta.analysis.io import files as tio
    from trialmeta.analysis.sampling import inference, precompiled
    timer(precompiled, "run", "sampling")
    timer(inference, "_convergence", "diagnostics")
    timer(inference, "_psis_loo", "loo")
    timer(tio, "dumps_json", "writing")
sys.argv = ["trialmeta", *sys.argv[1:]]
try:
    cli_app.main()
except SystemExit:
    pass
print(json.dumps({"phases": phases, "in_process_s": time.perf_counter() - t0}),
      file=sys.stderr)
"""


def _import_groups(stderr: str) -> tuple[dict[str, float], float]:
    """Seconds of import per group (each module's own time, by its top-level package), and
    the numba kernels' load (their modules' cumulative time, numba's import included)."""
    groups: dict[str, float] = {}
    kernels = 0.0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, cumulative, name = (x.strip() for x in line[len("import time:"):].split("|"))
        if not own.isdigit():
            continue
        if name in KERNELS:
            kernels += int(cumulative) / 1e6
        group = GROUPS.get(name.split(".")[0], "other")
        groups[group] = groups.get(group, 0.0) + int(own) / 1e6
    return groups, kernels


def _arms20(folder: Path) -> Path:
    """A 20-study single-arm response table (simulated, fixed seed)."""
    import numpy as np

    rng = np.random.default_rng(1)
    path = folder / "arms20.csv"
    lines = ["study,arm,treatment,control,time_h,doses_given,n,responders,scale,source,"
             "evidence"]
    for i in range(20):
        n = int(rng.integers(20, 120))
        p = 1 / (1 + np.exp(-(0.2 + 0.5 * rng.normal())))
        lines.append(f"S{i:02d},ketamine,ketamine,false,24,1,{n},{int(rng.binomial(n, p))},"
                     "MADRS,simulated,derived")
    path.write_text("\n".join(lines) + "\n")
    return path


def _rstanarm(arms: Path) -> float | None:
    """Whole-process seconds of rstanarm on the same model, or None without R/rstanarm."""
    if shutil.which("Rscript") is None:
        return None
    script = arms.with_suffix(".R")
    script.write_text(
        "suppressMessages(library(rstanarm))\n"
        f"d <- read.csv('{arms}')\n"
        "fit <- stan_glmer(cbind(responders, n - responders) ~ 1 + (1 | study), "
        "family = binomial, data = d, chains = 4, iter = 2000, warmup = 1000, cores = 2, "
        "seed = 1, refresh = 0)\n")
    t = time.perf_counter()
    out = subprocess.run(["Rscript", str(script)], capture_output=True, text=True)
    return time.perf_counter() - t if out.returncode == 0 else None


def startup(repeats: int = 3) -> dict:
    """Run every command ``repeats`` times (fresh processes); keep each one's fastest run."""
    folder = Path(tempfile.mkdtemp(prefix="trialmeta-startup-"))
    arms = _arms20(folder)
    t = time.perf_counter()
    for _ in range(repeats):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    interpreter = (time.perf_counter() - t) / repeats
    out: dict = {"interpreter_s": interpreter, "commands": {}}
    for label, args in COMMANDS.items():
        args = [a.replace("{arms20}", str(arms)) for a in args]
        best = None
        for _ in range(repeats):
            t = time.perf_counter()
            run = subprocess.run([sys.executable, "-X", "importtime", "-c", DRIVER, *args],
                                 capture_output=True, text=True, cwd=ROOT)
            wall = time.perf_counter() - t
            if best is None or wall < best["whole_process_s"]:
                groups, kernels = _import_groups(run.stderr)
                tail = [x for x in run.stderr.splitlines() if x.startswith("{")]
                phases = json.loads(tail[-1])["phases"] if tail else {}
                best = {"whole_process_s": wall, "imports_s": groups,
                        "kernel_load_s": kernels, **{f"{k}_s": v for k, v in phases.items()}}
        out["commands"][label] = best
    out["rstanarm_20_studies_s"] = _rstanarm(arms)
    shutil.rmtree(folder, ignore_errors=True)
    return out


def show(doc: dict) -> None:
    """Print the breakdown as a table."""
    print(f"start-up (fastest of several fresh processes; interpreter "
          f"{doc['interpreter_s']:.2f}s):", flush=True)
    for label, c in doc["commands"].items():
        imports = ", ".join(f"{k} {v:.2f}" for k, v in sorted(c["imports_s"].items(),
                                                             key=lambda kv: -kv[1]) if v >= 0.01)
        phases = ", ".join(f"{k[:-2]} {c[k]:.2f}" for k in ("sampling_s", "diagnostics_s",
                                                             "loo_s", "writing_s") if k in c)
        print(f"  {label:<30} whole {c['whole_process_s']:.2f}s | imports: {imports} | "
              f"kernel load {c['kernel_load_s']:.2f} | {phases}", flush=True)
    r = doc.get("rstanarm_20_studies_s")
    if r:
        ours = doc["commands"]["fit pooled-rate (20 studies)"]["whole_process_s"]
        print(f"  rstanarm, same 20 studies, whole Rscript process: {r:.2f}s "
              f"(trialmeta/rstanarm = {ours / r:.2f})", flush=True)


if __name__ == "__main__":
    show(startup())
