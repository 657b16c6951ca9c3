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
    from trialmeta.analysis.errors import SpecError
    from trialmeta.analysis.evaluate.claims import load_claims

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


#: YAML scalars a claims field may be given: edges, huge integers, non-numbers
YAML_SCALARS = st.one_of(
    st.sampled_from([".nan", ".inf", "-.inf", "1e400", "0", "-1", "2.7", "true", "null",
                     "'0.9'", "[]", "[1, 2]", "{a: 1}", "!!binary aGk=", "9" * 400, "-" + "9" * 40,
                     "0x10", "1_000", "~"]),
    st.integers(-10**30, 10**30).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
CLAIM_NUMBER_FIELDS = ["support", "contradict", "min_studies", "max_draws_factor",
                       "insufficient_sd_ratio", "time_h", "window_h", "threshold", "fraction"]


@FUZZ
@given(field=st.sampled_from(CLAIM_NUMBER_FIELDS), value=YAML_SCALARS,
       where=st.sampled_from(["claim", "defaults"]))
def test_hostile_claim_numbers(tmp_path: Path, field: str, value: str, where: str) -> None:
    """Every numeric claims field: refused with its name, or parsed to a finite in-range value."""
    from trialmeta.analysis.errors import SpecError
    from trialmeta.analysis.evaluate.claims import RULE_FIELDS, load_claims

    if where == "defaults" and field not in RULE_FIELDS:
        where = "claim"
    claim = ("claims:\n  - id: X\n    quote: q\n    model: pooled-rate\n    outcome: response\n"
             "    time_h: 24\n    quantity: pooled_rate\n    region: [0.2, 0.4]\n")
    if field == "time_h":
        claim = claim.replace("    time_h: 24\n", "")
    text = (f"defaults:\n  {field}: {value}\n" + claim if where == "defaults"
            else claim + f"    {field}: {value}\n")
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    try:
        parsed = load_claims(path).claims[0]
    except SpecError as exc:
        assert field in str(exc) or "YAML" in str(exc), str(exc)
        return
    rule = parsed.rule
    for v in (rule.support, rule.contradict, rule.sd_ratio):
        assert 0 <= v <= 1
    assert isinstance(rule.min_studies, int) and 1 <= rule.min_studies <= 1_000_000
    assert isinstance(rule.max_draws_factor, int) and 1 <= rule.max_draws_factor <= 64
    if field in ("min_studies", "max_draws_factor"):
        assert float(getattr(rule, field)) == float(value.replace("_", ""))  # never truncated
    if parsed.window is not None:
        import math

        assert math.isfinite(parsed.window.target_h)


OPTION_BOUNDS = {"--seed": (0, 2**32 - 1), "--draws": (10, 1_000_000),
                 "--tune": (10, 1_000_000), "--chains": (1, 64)}


@FUZZ
@given(option=st.sampled_from(sorted(OPTION_BOUNDS)), value=NASTY)
def test_hostile_sampler_options(tmp_path: Path, option: str, value: str) -> None:
    """Out-of-range or non-integer sampler options are refused by name, before any fit."""
    missing = str(tmp_path / "no-such-file.csv")
    r = runner.invoke(app, ["fit", "pooled-rate", missing, option, value])
    assert r.exit_code == 2 and "Traceback" not in r.output
    lo, hi = OPTION_BOUNDS[option]
    if "file not found" in r.output:  # accepted: then it was a whole number within bounds
        number = float(value.strip())
        assert number.is_integer() and lo <= number <= hi, (option, value)
    else:
        assert option in r.output, r.output
    try:
        must_accept = lo <= int(value.strip()) <= hi
    except ValueError:
        must_accept = False
    assert not must_accept or "file not found" in r.output
