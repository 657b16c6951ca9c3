"""What every command shares: error handling, record filters and sampler options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from trialmeta.analysis.sampling.settings import (  # the bounds the library checks too
    MAX_CHAINS,
    MAX_DRAWS,
    MAX_SEED,
    SamplerSettings,
)

F = TypeVar("F", bound=Callable[..., Any])

#: the sampler options' defaults: the library's own (one place, ``SamplerSettings``)
DEFAULTS = SamplerSettings()


def finite(value: Any) -> Any:
    """Option callback: refuse nan and infinities (click's float type accepts them)."""
    import math

    values = value if isinstance(value, list | tuple) else [value]
    for v in values:
        if v is not None and not math.isfinite(v):
            raise typer.BadParameter(f"{v} is not a finite number")
    return value


FileArg = Annotated[str | None, typer.Argument(
    help="Records file (CSV, TSV, XLSX or Parquet); the bundled ketamine dataset if omitted.",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document instead of text.")]
SeedOpt = Annotated[int, typer.Option(min=0, max=MAX_SEED,
                                      help="Random seed for every random step (0 to 2^32-1).")]
DrawsOpt = Annotated[int, typer.Option(min=10, max=MAX_DRAWS, help="Posterior draws per chain.")]
TuneOpt = Annotated[int, typer.Option(min=10, max=MAX_DRAWS, help="Warm-up draws per chain.")]
ChainsOpt = Annotated[int, typer.Option(min=1, max=MAX_CHAINS, help="Number of chains.")]
SamplerOpt = Annotated[str, typer.Option(
    help="NUTS implementation: nutpie (default; Rust NUTS on precompiled kernels for "
         "pooled-rate and contrast, on PyTensor's compiled C otherwise), nutpie-pytensor "
         "(always PyTensor), pymc (PyMC's own) or numpyro (needs JAX, not installed).")]
TreatmentOpt = Annotated[list[str] | None, typer.Option(
    "--treatment", help="Keep arms with this treatment (repeatable).")]
RouteOpt = Annotated[list[str] | None, typer.Option(
    "--route", help="Keep this route (repeatable).")]
PopulationOpt = Annotated[list[str] | None, typer.Option(
    "--population", help="Keep this population (repeatable).")]
ScaleOpt = Annotated[list[str] | None, typer.Option(
    "--scale", help="Keep rows on this rating scale (repeatable).")]
DomainOpt = Annotated[list[str] | None, typer.Option(
    "--domain", help="Keep outcomes of this construct (repeatable): depression (the default), "
                     "suicidal_ideation, dissociation, ...")]
EndpointOpt = Annotated[list[str] | None, typer.Option(
    "--endpoint", help="Keep outcomes with this endpoint type (repeatable): fixed, series_end "
                       "(the default: both) or cumulative.")]
EvidenceOpt = Annotated[list[str] | None, typer.Option(
    "--evidence", help="Keep rows of this evidence tier (repeatable).")]
DosesOpt = Annotated[int | None, typer.Option(
    "--doses-given", min=1, max=10_000,
    help="Keep rows after exactly this many administrations.")]
DoseOpt = Annotated[float | None, typer.Option("--dose", help="Keep arms at this dose.",
    callback=finite)]
DoseUnitOpt = Annotated[list[str] | None, typer.Option(
    "--dose-unit", help="Keep arms dosed in this unit (mg/kg, mg, mg/day, ug/kg; repeatable).")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a message to stderr and return the Exit to raise."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def emit_fit(doc: dict, json: bool, allow_unconverged: bool, text: str) -> None:
    """Print a fit's document (JSON) or its text; exit 1 if it failed its convergence gate."""
    from trialmeta.analysis.io.files import dumps_json

    typer.echo(dumps_json(doc) if json else text, nl=not json)
    diag = doc["diagnostics"]
    if not diag["passed"] and not allow_unconverged:
        raise fail("error: the fit failed its convergence diagnostics: "
                   + "; ".join(diag["messages"])
                   + " (use --allow-unconverged to accept it)", 1)


def os_error_text(exc: OSError) -> str:
    """One line for an operating-system error: the path, what happened, what to do."""
    import errno

    hints = {errno.ENOSPC: "free some space or write elsewhere",
             errno.EDQUOT: "free some space or write elsewhere",
             errno.EROFS: "choose a writable folder (--out, --cache)",
             errno.EACCES: "choose a folder you may write (--out, --cache)",
             errno.EPERM: "choose a folder you may write (--out, --cache)"}
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc)
    hint = hints.get(exc.errno or 0, "check the path")
    return f"{where}{what}; {hint}; nothing was written"


def handle_errors(func: F) -> F:
    """Turn library errors into a clear message and exit status 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from trialmeta.analysis.errors import ConvergenceError, TrialmetaError

        try:
            return func(*args, **kwargs)
        except ConvergenceError as exc:  # the input was valid; the fit could not run
            raise fail(f"error: {exc}", 1) from None
        except TrialmetaError as exc:
            raise fail(f"error: {exc}") from None
        except KeyboardInterrupt:
            raise fail("interrupted; nothing was written", 130) from None
        except OSError as exc:  # a full disk, a read-only or vanished folder, ...
            raise fail(f"error: {os_error_text(exc)}") from None

    return wrapper  # type: ignore[return-value]


def filters_from_options(treatment: list[str] | None, route: list[str] | None,
                         population: list[str] | None, scale: list[str] | None,
                         evidence: list[str] | None, doses_given: int | None,
                         dose: float | None, domain: list[str] | None = None,
                         endpoint: list[str] | None = None,
                         dose_unit: list[str] | None = None) -> Any:
    """Build record filters from the shared command-line options."""
    from trialmeta.analysis.select.filters import Filters

    return Filters(treatment=tuple(treatment or ()), route=tuple(route or ()),
                   population=tuple(population or ()), scale=tuple(scale or ()),
                   evidence=tuple(evidence or ()), doses_given=doses_given, dose=dose,
                   domain=tuple(domain or ()), endpoint=tuple(endpoint or ()),
                   dose_unit=tuple(dose_unit or ()))



ModeratorOpt = Annotated[list[str] | None, typer.Option(
    "--moderator", help="Meta-regression covariate: COLUMN, COLUMN:categorical or "
                        "COLUMN>VALUE (repeatable), e.g. doses_given>1.")]
PriorsOpt = Annotated[str, typer.Option(
    "--priors", help="Prior preset: default (weakly informative; mean differences scaled to "
                     "the outcome's median SD) or vague (N(0, 100^2) on effects and "
                     "baselines, half-normal(5) on tau: NICE TSD2 and multinma's defaults).")]
EffectSdOpt = Annotated[float | None, typer.Option(
    "--effect-sd", min=1e-6, max=1e6, callback=finite,
    help="SD of the normal prior on the pooled effect (and moderator coefficients), on the "
         "analysis scale (log OR, MD, SMD).")]
BaselineSdOpt = Annotated[float | None, typer.Option(
    "--baseline-sd", min=1e-6, max=1e6, callback=finite,
    help="SD of the normal prior on each study's baseline (control log odds, or the mean "
         "in a network of means).")]


def prior_lines(priors: dict) -> list[str]:
    """Describe the priors of a fit in one readable line (printed with every Bayesian fit)."""
    tau = priors["tau"]
    extra = "".join(f", {text}" for key, text in (
        ("pet_slope", f"small-study slope ~ {priors.get('pet_slope')}"),
        ("cluster_sigma", f"each cluster's sigma {priors.get('cluster_sigma')}"))
        if priors.get(key))
    return [f"  priors: effect ~ N(0, {priors['effect_sd']:g}^2), baseline ~ "
            f"N(0, {priors['baseline_sd']:g}^2), {tau.get('label') or tau['kind']}{extra}"]


ComparatorOpt = Annotated[list[str] | None, typer.Option(
    "--comparator", help="Keep control arms with this treatment (repeatable; all controls if "
                         "omitted).")]
CrossoverOpt = Annotated[str, typer.Option(
    help="Crossover trials: keep (arms as independent groups for counts; within-patient "
         "correlation --rho for means) or exclude.")]
RhoOpt = Annotated[float, typer.Option(
    help="Within-patient correlation used for crossover means.", callback=finite)]
MeanTypeOpt = Annotated[str | None, typer.Option(
    "--mean-type", help="Use only 'change' or only 'endpoint' means.")]


def dropped_lines(dropped: list[dict]) -> list[str]:
    """Group left-out studies by reason, one line per reason."""
    by_reason: dict[str, list[str]] = {}
    for d in dropped:
        label = d["study"] if d.get("arm") in (None, "*") else f"{d['study']} {d['arm']}"
        by_reason.setdefault(str(d["reason"]), []).append(label)
    return [f"  left out ({reason}): {', '.join(names)}" for reason, names in by_reason.items()]


WorkersOpt = Annotated[int | None, typer.Option(
    min=1, max=256, help="Worker processes of the local Dask cluster (default: number of cores).")]
SchedulerOpt = Annotated[str | None, typer.Option(
    help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (no local cluster).")]
CellCacheOpt = Annotated[Path | None, typer.Option(
    "--cache", help="Folder for finished results (a rerun skips them) and posteriors.")]


def verdict_label(c: dict) -> str:
    """Return the verdict as people read it: "supported (probable), low certainty"."""
    label = c.get("qualifier") or c.get("strength")
    grade = (c.get("certainty") or {}).get("grade")
    return (c["verdict"] + (f" ({label})" if label else "")
            + (f", {grade} certainty" if grade else ""))


def claim_numbers(c: dict) -> str:
    """One line of a claim's numbers: median, interval, P(region) prior -> posterior, BF.

    A censored value (an event never reached within the time grid) prints as "> 672".
    """
    if c["probability"] is None:
        return ""
    from trialmeta.analysis.models.time_course import GRID_END_H

    def v(key: str) -> str:
        if key in c.get("censored_above", []):
            return f"> {GRID_END_H:g}"
        return "–" if c.get(key) is None else f"{c[key]:.3g}"

    prior = "" if c.get("p_prior") is None else (
        f" (prior {c['p_prior']:.2f}, Bayes factor {c['bayes_factor']:.3g})")
    return (f"median {v('median')} (95% CrI {v('ci_low')} to {v('ci_high')}), "
            f"P(region) {c['probability']:.2f}{prior}; ")


AllowUnconvergedOpt = Annotated[bool, typer.Option(
    "--allow-unconverged", help="Exit 0 even when every fit fails its convergence "
                                "diagnostics (short test runs).")]
#: the same for a command that makes one fit
FitAllowUnconvergedOpt = Annotated[bool, typer.Option(
    help="Exit 0 even when the fit fails its convergence diagnostics.")]


def exit_if_no_fit_converged(claim_rows: list[dict], allowed: bool = False) -> None:
    """Exit 1 when every claim that was fitted sits on a fit that failed its gate (as fit)."""
    if allowed:
        return
    fitted = [c for c in claim_rows if c.get("diagnostics_passed") is not None]
    if fitted and not any(c["diagnostics_passed"] for c in fitted):
        raise fail("error: every fit failed its convergence diagnostics, so no claim has a "
                   "verdict from converged draws; raise --draws or --tune", 1)
