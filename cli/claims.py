"""`trialmeta claims`: the verdict table of a claims file, for people and for CI."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DEFAULTS,
    AllowUnconvergedOpt,
    ChainsOpt,
    DrawsOpt,
    FileArg,
    JsonOpt,
    SamplerOpt,
    SeedOpt,
    TuneOpt,
    claim_numbers,
    exit_if_no_fit_converged,
    handle_errors,
    verdict_label,
)

FAIL_ON = {"contradicted": ("contradicted",),
           "inconclusive": ("contradicted", "inconclusive")}


@handle_errors
def claims(
    file: FileArg = None,
    claims_file: Annotated[str | None, typer.Option(
        "--claims", help="Claims file (YAML); the bundled ketamine claims if omitted.")] = None,
    fail_on: Annotated[str | None, typer.Option(
        help="Exit 1 when a claim is 'contradicted' (or, with 'inconclusive', when one is "
             "contradicted or inconclusive).")] = None,
    seed: SeedOpt = DEFAULTS.seed,
    draws: DrawsOpt = DEFAULTS.draws,
    tune: TuneOpt = DEFAULTS.tune,
    chains: ChainsOpt = DEFAULTS.chains,
    sampler: SamplerOpt = DEFAULTS.sampler,
    json: JsonOpt = False,
    allow_unconverged: AllowUnconvergedOpt = False,
) -> None:
    """Test every claim against the records and print the verdicts."""
    from trialmeta.analysis.evaluate.claims import load_claims
    from trialmeta.analysis.evaluate.evaluation import evaluate
    from trialmeta.analysis.io.files import dumps_json, rounded
    from trialmeta.analysis.io.provenance import command_line, package_versions
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.sampling.settings import SamplerSettings

    if fail_on is not None and fail_on not in FAIL_ON:
        typer.echo("error: --fail-on takes contradicted or inconclusive", err=True)
        raise typer.Exit(2)
    records = read_records(file)
    cf = load_claims(claims_file)
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed,
                               sampler=sampler)
    ev = evaluate(records, cf, settings)
    rows = [r.as_dict() for r in ev.results]
    if json:
        doc = {"claims": rows, "provenance": {
            "data": records.path, "data_sha256": records.sha256, "claims": cf.path,
            "claims_sha256": cf.sha256, "seed": seed, "sampler": settings.as_dict(),
            "versions": package_versions(), "command": command_line()}}
        typer.echo(dumps_json(rounded(doc)), nl=False)
    else:
        for c in rows:
            num = claim_numbers(c)
            diag = {None: "", True: "", False: " [diagnostics FAILED]"}[c["diagnostics_passed"]]
            typer.echo(f"{c['id']:<14} {verdict_label(c)}")
            typer.echo(f"{'':<15}{c['quantity']}: {num}studies {len(c['studies'])}{diag}")
            typer.echo(f"{'':<15}\"{c['quote']}\"")
            typer.echo(f"{'':<15}{c['reason']}")
            reasons = (c.get("certainty") or {}).get("reasons") or []
            if reasons:
                typer.echo(f"{'':<15}certainty: {'; '.join(reasons)}")
    exit_if_no_fit_converged(rows, allow_unconverged)
    if fail_on and any(c["verdict"] in FAIL_ON[fail_on] for c in rows):
        raise typer.Exit(1)
