"""The living-review workflow's commands (not GitHub itself) on a toy change to the data."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
QUICK = "--draws 150 --tune 150 --chains 2 --seed 9 --allow-unconverged"


def test_the_workflow_runs_the_script_it_documents() -> None:
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "living-review.yml").read_text())
    runs = [s.get("run", "") for s in flow["jobs"]["report"]["steps"]]
    assert "make install" in runs and "make report" in runs
    assert any(r.startswith("scripts/living_review.sh") for r in runs)
    assert set(flow[True]) >= {"pull_request", "schedule"}  # YAML reads "on" as True


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs git and a clone of the repository")
def test_a_removed_study_shows_in_the_diff(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    data = repo / "data" / "ketamine_trials.csv"
    lines = data.read_text().splitlines(keepends=True)
    data.write_text("".join(x for x in lines if not x.startswith("Su2023,")))  # the toy change
    env = {**os.environ, "TRIALMETA": str(Path(sys.executable).with_name("trialmeta")),
           "REPORT_ARGS": QUICK, "CACHE": str(tmp_path / "cache")}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "living_review.sh"), "HEAD", "lr"],
                         cwd=repo, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = repo / "lr"
    doc = json.loads((out / "diff.json").read_text())
    assert doc["studies_removed"] == ["Su2023"]
    touched = [c for c in doc["claims"] if "Su2023" in c["studies_removed"]]
    assert touched  # C9 rests on Su2023
    assert (out / "verdicts-changed").read_text().strip() in ("0", "1")
    assert "## Since the previous report" in (out / "report" / "report.md").read_text()
    assert (out / "history" / "history.csv").is_file()


BCG_CLAIMS = """claims:
  - id: bcg-protects
    quote: BCG vaccination lowers the risk of tuberculosis
    model: contrast
    outcome: events
    quantity: effect
    region: [-.inf, 0]
"""


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_any_project_can_run_the_living_review_on_its_own_files(tmp_path: Path) -> None:
    """Before: the script hard-coded the ketamine files. A user's own repository with its
    records and claims anywhere runs it with their paths; diff.txt has no raw floats."""
    repo = tmp_path / "review"
    (repo / "evidence").mkdir(parents=True)
    bcg = (ROOT / "tests" / "data" / "metadat" / "bcg.csv").read_text().splitlines(True)
    (repo / "evidence" / "bcg.csv").write_text("".join(bcg[:-1]))  # one trial to come
    (repo / "evidence" / "claims.yaml").write_text(BCG_CLAIMS)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True)
    (repo / "evidence" / "bcg.csv").write_text("".join(bcg))  # the new trial arrives
    env = {**os.environ, "TRIALMETA": str(Path(sys.executable).with_name("trialmeta")),
           "REPORT_ARGS": QUICK, "CACHE": str(tmp_path / "cache")}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "living_review.sh"), "HEAD", "lr",
                          "evidence/bcg.csv", "evidence/claims.yaml"], cwd=repo, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    doc = json.loads((repo / "lr" / "diff.json").read_text())
    assert doc["studies_added"] == ["Comstock et al 1976"] and doc["warnings"] == []
    text = (repo / "lr" / "diff.txt").read_text()
    assert "None" not in text
    assert not re.search(r"\d\.\d{6,}", text), text  # no 10-digit floats in the PR comment
