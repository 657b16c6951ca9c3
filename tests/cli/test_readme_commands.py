"""Every trialmeta command shown in the README parses (fast) and runs (slow) as written.

Placeholders a reader replaces with their own files are replaced here too: ``my_trials.csv``
and ``my_trials.xlsx`` by the bundled records, ``my_claims.yaml`` by the bundled claims,
``dat_bcg.csv`` by metafor's dat.bcg with R's column names, and every ``--out`` by a
temporary path. Before: the README's ``frequentist ... --hksj --json`` failed once --hksj
took a value, and nothing noticed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from trialmeta.analysis.evaluate.claims import bundled_claims_path
from trialmeta.analysis.io.records import bundled_path
from trialmeta.cli.app import app, with_optional_values
from typer.testing import CliRunner

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
BCG = ROOT / "tests" / "data" / "metadat" / "bcg.csv"


def readme_commands() -> list[list[str]]:
    """The trialmeta command lines of the README's ``sh`` blocks, comments removed."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == ".venv/bin/trialmeta":
                commands.append(words[1:])
    return commands


COMMANDS = readme_commands()


def test_the_readme_shows_the_commands_of_every_kind() -> None:
    shown = {c[0] if c[0] != "fit" else f"fit {c[1]}" for c in COMMANDS if c}
    assert {"validate", "import", "frequentist", "forest", "report", "claims", "fit contrast",
            "fit network", "fit pooled-rate"} <= shown, shown


def _parse(args: list[str]):
    """Parse a command line as the CLI would, without running it."""
    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("trialmeta", list(args))
    while hasattr(cmd, "resolve_command"):  # a group: resolve the subcommand and parse it
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            break
        name, sub, rest = cmd.resolve_command(ctx, rest)
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub
    return ctx


@pytest.mark.parametrize("args", [["frequentist", "--bogus"], ["fit", "contrast", "--draws",
                                                                  "many"], ["fit", "nope"]])
def test_the_parse_check_can_fail(args: list[str]) -> None:
    with pytest.raises(Exception, match="No such|valid integer|such command"):
        _parse(args)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_parses(args: list[str]) -> None:
    """Options renamed, removed or given the wrong type fail here in milliseconds."""
    if args == ["--help"]:
        return
    _parse(with_optional_values(args))


#: calibration commands run with this many simulations here (the README's 200 take
#: minutes each; what is tested is that each command runs as written, not its coverage)
TEST_SIMS = "8"
#: options whose value is a path the README's commands write or read in turn
PATH_OPTIONS = ("--out", "--sweep", "--calibration")


def _runnable(args: list[str], tmp: Path) -> list[str]:
    out = []
    swap = {"my_trials.csv": str(bundled_path()), "my_trials.xlsx": str(bundled_path()),
            "my_claims.yaml": str(bundled_claims_path())}
    it = iter(args)
    for a in it:
        if a in PATH_OPTIONS:  # the README's relative output paths, inside tmp
            out += [a, str(tmp / next(it))]
        elif a == "--sims":
            out += [a, TEST_SIMS]
            next(it)
        elif a == "dat_bcg.csv":
            raw = BCG.read_text().replace('"ai","bi","ci","di"', '"tpos","tneg","cpos","cneg"')
            (tmp / a).write_text(raw)
            out.append(str(tmp / a))
        else:
            out.append(swap.get(a, a))
    return out


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the README's order, in one folder: the sweep and calibration files the last
    report reads are the ones the commands before it wrote."""
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the repository
    failed = []
    for args in COMMANDS:
        res = CliRunner().invoke(app, with_optional_values(_runnable(args, tmp_path)))
        # `claims --fail-on contradicted` exits 1 only if a claim is contradicted
        if res.exit_code != 0:
            failed.append((" ".join(args), res.exit_code, res.output[-800:]))
    assert not failed, failed
