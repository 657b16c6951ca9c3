"""The ``trialmeta`` command: one Typer app combining one module per command."""

from __future__ import annotations

from typing import Annotated

import typer

from .calibrate import calibrate
from .claims import claims
from .contrast import contrast, frequentist
from .curves import compare_forms, dose_response, time_course
from .diff import diff
from .fit import pooled_rate
from .forest import forest
from .import_wide import import_wide
from .network import network
from .report import report
from .sweep import sweep
from .validate import validate

app = typer.Typer(
    name="trialmeta",
    help="Bayesian meta-analysis of clinical-trial outcomes, with reports that test "
         "published claims. With no FILE, commands use the bundled ketamine dataset.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
@app.callback()
def main_options(
    plugin: Annotated[list[str] | None, typer.Option(
        "--plugin", help="Python file defining TRIALMETA_MODELS and/or TRIALMETA_FAMILIES "
                         "(repeatable); see docs/extending.md. The file is executed as Python "
                         "code with your rights (as are plug-ins installed as packages): "
                         "load only files you trust.")] = None,
) -> None:
    """Bayesian meta-analysis of clinical-trial outcomes."""
    if plugin:
        from trialmeta.analysis.errors import TrialmetaError
        from trialmeta.analysis.families.plugins import load_plugin

        try:
            for path in plugin:
                load_plugin(path)
        except TrialmetaError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None


#: ``trialmeta fit FAMILY``: one command per built-in model family, registered here
fit_app = typer.Typer(help="Fit a model family to the records.", no_args_is_help=True)
fit_app.command("pooled-rate")(pooled_rate)
fit_app.command("contrast")(contrast)
fit_app.command("dose-response")(dose_response)
fit_app.command("time-course")(time_course)
fit_app.command("network")(network)

app.command("validate")(validate)
app.command("import")(import_wide)
app.add_typer(fit_app, name="fit")
app.command("report")(report)
app.command("claims")(claims)
app.command("calibrate")(calibrate)
app.command("sweep")(sweep)
app.command("frequentist")(frequentist)
app.command("forest")(forest)
app.command("compare-forms")(compare_forms)
app.command("diff")(diff)


@app.command("models")
def models() -> None:
    """List the model families claims can name, then the registered model classes."""
    from trialmeta.analysis.families.registry import (
        get_family,
        get_model_class,
        model_registry,
        registry,
    )

    typer.echo("families (claims: model: NAME)")
    for name in sorted(registry()):
        typer.echo(f"  {name:<16} {get_family(name).description}")
    typer.echo("models (fit commands; a TimeCourse subclass is a time-course form)")
    for name in sorted(model_registry()):
        cls = get_model_class(name)
        typer.echo(f"  {name:<16} {getattr(cls, 'description', '')}")


#: options whose value may be left out, and the value they then take (``--hksj`` alone is
#: metafor's test="knha", as before ``--hksj adhoc`` existed)
OPTIONAL_VALUES = {"--hksj": "plain"}


def with_optional_values(argv: list[str]) -> list[str]:
    """Return ``argv`` with the implied value after an option given without one.

    ``--hksj --json`` became ``--hksj=--json`` (an unknown variant) once ``--hksj`` took a
    value; a following token that is another option, or nothing, now means the default.
    """
    out: list[str] = []
    for i, token in enumerate(argv):
        out.append(token)
        implied = OPTIONAL_VALUES.get(token)
        if implied is not None and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(implied)
    return out


def main() -> None:
    """Entry point of the console script."""
    import sys

    app(args=with_optional_values(sys.argv[1:]), prog_name="trialmeta")
