"""Simulation-based calibration: the statistics, and small real runs of both families."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trialmeta.analysis.calibration import (
    LEVELS,
    CalibrationSpec,
    clopper_pearson,
    summarize,
)
from trialmeta.cli.app import app
from typer.testing import CliRunner

runner = CliRunner()


def test_clopper_pearson_matches_r_binom_test() -> None:
    # R: binom.test(5, 10)$conf.int and binom.test(0, 10)$conf.int
    assert clopper_pearson(5, 10) == pytest.approx((0.1870860, 0.8129140), abs=1e-7)
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 0.3084971), abs=1e-7)
    assert clopper_pearson(10, 10) == pytest.approx((0.6915029, 1.0), abs=1e-7)


def _synthetic(n: int, covered_share: float, rank_of, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for s in range(n):
        q = {}
        for label in ("mu", "tau", "pooled_rate", "theta[first arm]"):
            covered = {str(lv): bool(rng.random() < (lv if covered_share is None
                                                     else covered_share)) for lv in LEVELS}
            q[label] = {"truth": 0.0, "rank": int(rank_of(rng)), "mean": 0.0,
                        "covered": covered}
        out.append({"sim": s, "quantities": q,
                    "diagnostics": {"divergences": 0, "r_hat_max": 1.0, "passed": True}})
    return out


def test_uniform_ranks_and_nominal_coverage_are_calibrated() -> None:
    spec = CalibrationSpec("pooled-rate")
    s = summarize(spec, _synthetic(400, None, lambda r: r.integers(0, 100)))
    assert set(s.verdicts.values()) == {"calibrated"}


def test_undercoverage_and_skewed_ranks_are_flagged() -> None:
    spec = CalibrationSpec("pooled-rate")
    s = summarize(spec, _synthetic(400, 0.6, lambda r: min(99, int(r.exponential(10)))))
    for verdict in s.verdicts.values():
        assert verdict.startswith("miscalibrated")
        assert "ranks not uniform" in verdict
    assert all("under-covers" in r.verdict for r in s.coverage if r.level > 0.6)


def test_too_few_simulations_give_no_verdict() -> None:
    s = summarize(CalibrationSpec("pooled-rate"),
                  _synthetic(10, None, lambda r: r.integers(0, 100)))
    assert all(v.startswith("too few simulations") for v in s.verdicts.values())


def _calibrate(tmp_path: Path, model: str, *extra: str) -> dict:
    r = runner.invoke(app, ["calibrate", model, "--sims", "50", "--draws", "200", "--tune",
                            "200", "--chains", "2", "--workers", "2", "--seed", "3",
                            "--cache", str(tmp_path / "cache"), "--json", *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


@pytest.mark.parametrize("model", ["pooled-rate", "contrast"])
def test_small_calibration_covers_within_binomial_error(tmp_path: Path, model: str) -> None:
    doc = _calibrate(tmp_path, model)
    assert doc["sims"] == 50
    for row in doc["coverage"]:
        assert row["ci_low"] <= row["level"] <= row["ci_high"], row
    assert all(v == "calibrated" for v in doc["verdicts"].values()), doc["verdicts"]
    assert doc["diagnostics"]["with_divergences"] <= 5
    # resumable: a rerun reads every simulation back from the cache, same summary
    again = _calibrate(tmp_path, model)
    assert again["coverage"] == doc["coverage"] and again["ranks"] == doc["ranks"]


def test_recovery_of_planted_values(tmp_path: Path) -> None:
    r = runner.invoke(app, ["calibrate", "pooled-rate", "--recover", "--plant", "mu=0.3",
                            "--sims", "20", "--draws", "200", "--tune", "200", "--chains",
                            "2", "--workers", "2", "--cache", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    rec = doc["recovery"]["mu"]
    assert rec["mean_truth"] == pytest.approx(0.3)
    assert doc["recovery"]["tau"]["mean_truth"] == pytest.approx(0.5)  # the default plant
    # bias within 4 standard errors of the mean over 20 simulations
    sd = np.sqrt(max(rec["rmse"] ** 2 - rec["bias"] ** 2, 0.0))
    assert abs(rec["bias"]) < 4 * sd / np.sqrt(20)


def test_bad_calibrate_requests_exit_2(tmp_path: Path) -> None:
    for args, msg in [(["time-course"], "calibrate supports"),
                      (["pooled-rate", "--plant", "mu=1"], "--plant needs --recover"),
                      (["pooled-rate", "--recover", "--plant", "sigma=1"], "plant one of"),
                      (["pooled-rate", "--recover", "--plant", "mu=x"], "must be a number")]:
        r = runner.invoke(app, ["calibrate", *args, "--cache", str(tmp_path)])
        assert r.exit_code == 2 and msg in r.output, (args, r.output)
