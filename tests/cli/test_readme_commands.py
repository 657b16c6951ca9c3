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


def _runnable(args: list[str], tmp: Path) -> list[str]:
    out = []
    swap = {"my_trials.csv": str(bundled_path()), "my_trials.xlsx": str(bundled_path()),
            "my_claims.yaml": str(bundled_claims_path())}
    it = iter(args)
    for a in it:
        if a == "--out":
            out += [a, str(tmp / Path(next(it)).name)]
        elif a == "dat_bcg.csv":
            raw = BCG.read_text().replace('"ai","bi","ci","di"', '"tpos","tneg","cpos","cneg"')
            (tmp / a).write_text(raw)
            out.append(str(tmp / a))
        else:
            out.append(swap.get(a, a))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_runs(args: list[str], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the repository
    res = CliRunner().invoke(app, with_optional_values(_runnable(args, tmp_path)))
    # exit 1 is a verdict or a convergence failure the command reports, not a crash;
    # the README's `claims --fail-on contradicted` exits 1 only if a claim is contradicted
    assert res.exit_code == 0, (args, res.output[-2000:])
