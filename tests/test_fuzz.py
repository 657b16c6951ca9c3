"""Fuzzing (issue 20; `make fuzz`): hostile record tables, claims documents and option values.

Asserted for every generated input: the exit status is 0, 1 or 2, no traceback reaches the
user, and nothing is written outside the given folders. Bounded to a few minutes in all.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trialmeta.cli.app import app
from typer.testing import CliRunner

from tests.conftest import HEADER, base_rows

pytestmark = pytest.mark.fuzz
runner = CliRunner()
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

#: cells a hostile table may hold: numbers at the edges, markup, control characters, formulas
NASTY = st.one_of(
    st.sampled_from(["", "nan", "inf", "-inf", "1e-300", "1e300", "-1", "0", "0.5", "true",
                     "=cmd|' /C calc'!A0", "<script>", "A$_$B", "\\frac{", "..", "\u200b",
                     "Mu\u0308ller", "999999999999999999999", " 12 ", "12,5", "NA"]),
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
)


def _invoke(args: list[str]) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code in (0, 1, 2), (args, r.exit_code, r.output)
    assert "Traceback" not in r.output, (args, r.output)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError((args, repr(r.exception)))


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(HEADER), NASTY),
                      min_size=1, max_size=6))
def test_hostile_record_tables(tmp_path: Path, edits: list) -> None:
    rows = base_rows()
    for i, col, value in edits:
        rows[i][col] = value
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HEADER, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path = tmp_path / "fuzz.csv"
    path.write_text(buf.getvalue(), encoding="utf-8", errors="surrogateescape")
    before = set(tmp_path.iterdir())
    _invoke(["validate", str(path)])
    assert set(tmp_path.iterdir()) == before


YAML_PIECES = st.sampled_from([
    "claims:\n", "  - id: X\n", "    quote: q\n", "    model: pooled-rate\n",
    "    model: time-course\n", "    outcome: response\n", "    time_h: 24\n",
    "    quantity: pooled_rate\n", "    region: [0, 1]\n", "    region: [1, 0]\n",
    "    region: [a, b]\n", "    threshold: big\n", "    hill: maybe\n", "    form: emax\n",
    "    selection: [x]\n", "    selection: {doses_given: one}\n", "    priors: {mu_sd: -1}\n",
    "defaults:\n  support: high\n", "published: ../../etc/passwd\n", "a: &a [1]\nb: *a\n",
    "[[[[[[[[", "}}}", "\t", "claims: []\n", "claims: 3\n", "    region: [0, 1]\n",
])


@FUZZ
@given(pieces=st.lists(YAML_PIECES, min_size=1, max_size=12))
def test_hostile_claims_documents(tmp_path: Path, pieces: list[str]) -> None:
    from trialmeta.analysis.claims import load_claims
    from trialmeta.analysis.errors import SpecError

    path = tmp_path / "claims.yaml"
    path.write_text("".join(pieces))
    try:
        load_claims(path)
    except SpecError:
        pass  # the only way a claims file may fail


@FUZZ
@given(time=NASTY, window=NASTY, prior=NASTY)
def test_hostile_option_values(tmp_path: Path, time: str, window: str, prior: str) -> None:
    """Option values for the engines that do not sample (fast): refused (2) or run (0/1)."""
    _invoke(["frequentist", "--time", time, "--window", window, "--json"])
    _invoke(["fit", "contrast", "--engine", "exact", "--time", time, "--window", window,
             "--tau-prior", f"half-normal:{prior}", "--json"])
