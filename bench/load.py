"""Load runs (``make load``): 2,000 simulated studies, 50 time points per study, and the
validation of 10^6 rows (500,000 simulated studies, the documented --max-rows).

Each run goes through the command line as a user would, in a fresh process; the script
prints wall time, peak memory and the exit status (0, or 2 with the refusal message).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.special import expit

ROOT = Path(__file__).parents[1]
FIELDS = ["study", "arm", "treatment", "control", "design", "time_h", "doses_given", "n",
          "responders", "scale", "source", "evidence"]


def write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path


def many_studies(k: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(k):
        a = rng.normal(-1, 0.5)
        d = 0.8 + 0.3 * rng.standard_normal()
        for arm, ctl, eff in (("drug", "false", d), ("placebo", "true", 0.0)):
            n = int(rng.integers(20, 200))
            rows.append(dict(study=f"S{i:05d}", arm=arm, treatment=arm, control=ctl,
                             design="parallel", time_h="24", doses_given="1", n=n,
                             responders=int(rng.binomial(n, expit(a + eff))), scale="X",
                             source="simulated", evidence="derived"))
    return rows


def many_times(k: int, times: int, seed: int = 2) -> list[dict]:
    rng = np.random.default_rng(seed)
    grid = np.exp(np.linspace(np.log(1), np.log(672), times))
    rows = []
    for i in range(k):
        a = rng.normal(-1, 0.5)
        for t in grid:
            eff = 1.2 * (np.exp(-t / 150) - np.exp(-t / 4)) / 0.9
            for arm, ctl, e in (("drug", "false", eff), ("placebo", "true", 0.0)):
                n = 60
                rows.append(dict(study=f"T{i:03d}", arm=arm, treatment=arm, control=ctl,
                                 design="parallel", time_h=f"{t:.3f}", doses_given="1", n=n,
                                 responders=int(rng.binomial(n, expit(a + e))), scale="X",
                                 source="simulated", evidence="derived"))
    return rows


def run(label: str, args: list[str]) -> dict:
    cmd = ["/usr/bin/time", "-f", "%M", str(Path(sys.executable).with_name("trialmeta")), *args]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    peak_kb = int(out.stderr.strip().splitlines()[-1])
    msg = [x for x in out.stderr.splitlines() if x.startswith("error")]
    res = {"run": label, "exit": out.returncode, "wall_s": round(wall, 1),
           "peak_mb": round(peak_kb / 1024), "message": msg[0] if msg else ""}
    print(json.dumps(res), flush=True)
    return res


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="trialmeta-load-"))
    big = write(tmp / "studies_2000.csv", many_studies(2000))
    times = write(tmp / "times_50.csv", many_times(20, 50))
    million = write(tmp / "rows_1e6.csv", many_studies(500_000))
    results = [
        run("validate 2,000 studies", ["validate", str(big)]),
        run("frequentist REML, 2,000 studies",
            ["frequentist", str(big), "--measure", "OR", "--method", "REML"]),
        run("pooled-rate, 2,000 studies (2,000 arms)",
            ["fit", "pooled-rate", str(big), "--time", "24", "--allow-unconverged"]),
        run("contrast, 2,000 studies", ["fit", "contrast", str(big), "--allow-unconverged"]),
        run("contrast --engine exact, 2,000 studies",
            ["fit", "contrast", str(big), "--engine", "exact"]),
        run("time-course, 20 studies x 50 time points",
            ["fit", "time-course", str(times), "--outcome", "response", "--measure", "OR",
             "--allow-unconverged"]),
        run("max-rows guard", ["validate", str(big), "--max-rows", "1000"]),
        run("validate 10^6 rows (500,000 studies)", ["validate", str(million)]),
        run("max-rows guard while reading 10^6 rows",
            ["validate", str(million), "--max-rows", "1000"]),
    ]
    (ROOT / "bench" / "load.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
