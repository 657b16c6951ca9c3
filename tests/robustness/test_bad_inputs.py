"""Every file of the bad-input corpus (tests/data/bad/) gets its specific message and exit 2.

The corpus and its expectations are written by tests/data/bad/make_corpus.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trialmeta.cli.app import app
from typer.testing import CliRunner

BAD = Path(__file__).parents[1] / "data" / "bad"
CASES = json.loads((BAD / "expected.json").read_text())
runner = CliRunner()


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert all((BAD / c["file"]).exists() for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_bad_input(case: dict) -> None:
    path = str(BAD / case["file"])
    command = list(case["command"])
    if command[-1] == "--claims":  # a claims file: the records are the bundled ones
        args = [*command, path]
    elif command[0] == "validate":
        args = [command[0], path, *command[1:]]
    else:
        args = [*command, path]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    for words in case["expect"]:
        assert words in r.output, (words, r.output)
    if case["where"]:
        assert case["where"] in r.output, r.output
    if command[0] == "validate":
        assert case["file"] in r.output or "bundled" not in r.output  # names the file


def test_valid_bom_file_is_accepted(tmp_path: Path) -> None:
    from conftest import base_rows, write_csv

    plain = write_csv(tmp_path / "p.csv", base_rows())
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeff".encode() + plain.read_bytes())
    assert runner.invoke(app, ["validate", str(bom)]).exit_code == 0
