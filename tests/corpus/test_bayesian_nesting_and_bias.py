"""The Bayesian side of issue 32: nesting (``--cluster``) in the contrast and pooled-rate
families, and the small-study adjustment (Bayesian PET) in fits, claims and the sweep.

References: metafor's rma.mv REML fit of dat.konstantopoulos2011, lme4's binomial GLMM
(Laplace ML) of dat.hannum2020, and metafor's PET (``rma(yi, vi, mods = ~ sqrt(vi))``) of
dat.hackshaw1998, pinned with their R calls in tests/reference/metadat-corpus.json. A
posterior median is not an ML estimate: with the vague priors used here they differ by the
integration over the variance components, not by Monte Carlo error (whose MCSE is below
0.01 SE here), so the tolerance is a quarter of the reference's standard error, and each
reference SD must lie in the posterior's 95% interval.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from trialmeta.analysis.errors import SpecError
from trialmeta.analysis.select.moderators import nested_levels
from trialmeta.cli.app import app
from typer.testing import CliRunner

runner = CliRunner()
HERE = Path(__file__).parents[1]
DATA = HERE / "data" / "metadat"
REF = json.loads((HERE / "reference" / "metadat-corpus.json").read_text())
SMALL = ["--draws", "500", "--tune", "500"]


def fit(command: str, name: str, *args: str, quick: bool = True) -> dict:
    """Fit at seed 1; ``quick``: 500 draws a chain, else the defaults (the nested fits)."""
    res = runner.invoke(app, ["fit", command, str(DATA / name), *args, "--seed", "1",
                              "--json", *(SMALL if quick else [])])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


@pytest.mark.slow
def test_contrast_three_levels_agree_with_rma_mv() -> None:
    """rma.mv(yi, vi, random = ~ 1 | district/school): 0.1847 (SE 0.0846)."""
    doc = fit("contrast", "konstantopoulos2011.csv", "--outcome", "change", "--measure",
              "MD", "--cluster", "district", "--priors", "vague", quick=False)
    ref = REF["konstantopoulos2011"]["multilevel"]
    e = doc["estimates"]
    assert doc["diagnostics"]["passed"]
    assert abs(e["effect"]["median"] - ref["estimate"]) < 0.25 * ref["se"]
    district, school = (math.sqrt(s) for s in ref["sigma2"])
    assert e["sigma:district"]["ci_low"] < district < e["sigma:district"]["ci_high"]
    assert doc["priors"]["cluster_sigma"] == "has tau's prior"
    assert e["tau"]["ci_low"] < school < e["tau"]["ci_high"]
    # the new-study prediction carries both levels: wider than tau alone would make it
    spread = e["predictive_effect"]["ci_high"] - e["predictive_effect"]["ci_low"]
    assert spread > 2 * 1.96 * e["tau"]["median"] * 1.2


@pytest.mark.slow
def test_pooled_rate_with_countries_agrees_with_a_binomial_glmm() -> None:
    """glmer(cbind(xi, ni - xi) ~ 1 + (1 | country/row)): logit -0.296 (SE 0.329)."""
    doc = fit("pooled-rate", "hannum2020.csv", "--outcome", "events", "--cluster", "country",
              quick=False)
    ref = REF["hannum2020"]["glmer"]
    e = doc["estimates"]
    assert doc["diagnostics"]["passed"]
    assert abs(e["mu_logit"]["median"] - ref["estimate"]) < 0.25 * ref["se"]
    assert e["sigma:country"]["ci_low"] < ref["sd_country"] < e["sigma:country"]["ci_high"]
    assert e["tau"]["ci_low"] < ref["sd_study"] < e["tau"]["ci_high"]


def test_bayesian_pet_agrees_with_metafor_pet() -> None:
    """The PET intercept of dat.hackshaw1998: REML 0.0216 (SE 0.1016); the slope's p 0.035.

    Sampled in make test (the precompiled kernel, 500 draws a chain)."""
    doc = fit("contrast", "hackshaw1998.csv", "--outcome", "change", "--measure", "MD",
              "--small-study", "pet", "--priors", "vague")
    freq = runner.invoke(app, ["frequentist", str(DATA / "hackshaw1998.csv"), "--outcome",
                               "change", "--measure", "MD", "--bias", "pet", "--json"])
    pet = json.loads(freq.output)["bias"]["pet"]
    e = doc["estimates"]
    assert doc["diagnostics"]["passed"]
    assert abs(e["effect"]["median"] - pet["estimate"]) < 0.25 * pet["se"]
    assert doc["priors"]["pet_slope"] == "N(0, 2^2)"  # every prior is written out
    assert abs(e["beta:sei"]["median"] - pet["slope"]) < 0.25 * pet["slope_se"]
    plain = fit("contrast", "hackshaw1998.csv", "--outcome", "change", "--measure", "MD",
                "--priors", "vague")
    assert plain["estimates"]["effect"]["median"] > e["effect"]["median"] + 0.1


def test_nested_levels_refuse_what_is_not_a_cluster() -> None:
    t = pd.DataFrame({"study": ["a", "a", "b", "c", "d"], "site": ["x", "x", "x", "y", "y"],
                      "arm": ["1", "2", "1", "1", "1"], "row": ["1", "2", "3", "4", "5"],
                      "alone": ["p", "q", "r", "s", "s"]})
    (name, levels, idx), = nested_levels(t, ("site",))
    assert (name, levels, idx.tolist()) == ("site", ["x", "y"], [0, 0, 0, 1, 1])
    with pytest.raises(SpecError, match="varies within study a"):
        nested_levels(t, ("row",))
    with pytest.raises(SpecError, match="one study per level"):
        nested_levels(t, ("site", "study"))
    with pytest.raises(SpecError, match="not available here; known: site$"):
        nested_levels(t, ("country",), known=["site"])
    with pytest.raises(SpecError, match="cluster column 'site' is empty for b, d$"):
        nested_levels(t.assign(site=["x", "x", None, "y", None]), ("site",))
    t2 = t.assign(inner=["1", "1", "1", "1", "2"])
    (_, outer, _), (_, inner, i2) = nested_levels(t2, ("site", "inner"))
    assert inner == ["x/1", "y/1", "y/2"] and i2.tolist() == [0, 0, 0, 1, 2]
    assert np.array_equal(nested_levels(t2, ("site",))[0][2], [0, 0, 0, 1, 1])


CLAIMS = """
claims:
  - id: ets-harms
    quote: environmental tobacco smoke raises the risk of lung cancer
    model: contrast
    outcome: change
    measure: MD
    quantity: effect
    region: [0, .inf]
  - id: ets-harms-pet
    quote: the same, adjusted for small-study effects
    model: contrast
    outcome: change
    measure: MD
    quantity: effect
    region: [0, .inf]
    small_study: pet
"""


def test_a_verdict_the_small_study_adjustment_overturns_loses_a_grade(tmp_path: Path) -> None:
    """dat.hackshaw1998 (37 studies): pooled, the harm is supported (REML 0.22, CI 0.12 to
    0.32); PET puts it at 0.02 (-0.18 to 0.22). The verdict stands, one grade lower, with
    the reason; the claim that asks for the adjustment itself is inconclusive."""
    claims = tmp_path / "h.yaml"
    claims.write_text(CLAIMS)
    res = runner.invoke(app, ["claims", str(DATA / "hackshaw1998.csv"), "--claims",
                              str(claims), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    by_id = {c["id"]: c for c in (doc["claims"] if isinstance(doc, dict) else doc)}
    plain, adjusted = by_id["ets-harms"], by_id["ets-harms-pet"]
    assert plain["verdict"] == "supported" and adjusted["verdict"] == "inconclusive"
    small = plain["certainty"]["small_study"]
    assert small["assessed"] and small["changes_verdict"]
    assert small["verdict"] == "inconclusive"
    assert small["probability"] == pytest.approx(adjusted["probability"], abs=1e-9)
    assert any(r.startswith("small-study effects") for r in plain["certainty"]["reasons"])
    assert plain["certainty"]["grade"] == "moderate"


def test_with_few_studies_the_check_says_it_was_not_run(tmp_path: Path) -> None:
    """dat.normand1999 has 9 studies: no adjustment, no grade lost, and the reason."""
    claims = tmp_path / "n.yaml"
    claims.write_text("""
claims:
  - id: shorter-stay
    quote: specialist care shortens the stay
    model: contrast
    outcome: change
    measure: MD
    quantity: effect
    region: [-.inf, 0]
""")
    res = runner.invoke(app, ["claims", str(DATA / "normand1999.csv"), "--claims",
                              str(claims), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    c = (doc["claims"] if isinstance(doc, dict) else doc)[0]
    if c["verdict"] in ("supported", "contradicted"):
        small = c["certainty"]["small_study"]
        assert small["assessed"] is False and "only 9 studies" in small["why"]
    else:
        assert "small_study" not in (c.get("certainty") or {})


def test_claims_refuse_a_bad_small_study_or_cluster_field(tmp_path: Path) -> None:
    claims = tmp_path / "bad.yaml"
    claims.write_text(CLAIMS.replace("small_study: pet", "small_study: funnel")
                      .replace("region: [0, .inf]\n  - id", "region: [0, .inf]\n"
                               "    cluster: [1, 2]\n  - id"))
    res = runner.invoke(app, ["claims", str(DATA / "hackshaw1998.csv"), "--claims",
                              str(claims)])
    assert res.exit_code == 2
    assert "small_study" in res.output and "cluster" in res.output


def test_the_sweep_has_a_small_study_cell_for_contrast_claims() -> None:
    from trialmeta.analysis.claims.spec import Claim  # noqa: F401 (the type vary takes)
    from trialmeta.analysis.families.contrast import ContrastFamily

    fam = ContrastFamily()
    assert ("bias", "pet") in fam.sweep_cells()


def test_the_pet_covariate_is_the_log_odds_ratio_se_for_counts_whatever_the_measure() -> None:
    """The arm-based model is on the log-odds scale: its PET covariate is the log OR's SE
    (Aronson 1948 in dat.bcg: 4/123 vs 11/139, sqrt(1/4 + 1/119 + 1/11 + 1/128))."""
    from trialmeta.analysis.io.records import read_records
    from trialmeta.analysis.models.contrast import Contrast
    from trialmeta.analysis.select.contrasts import select_contrasts
    from trialmeta.analysis.select.filters import Filters

    records = read_records(str(DATA / "bcg.csv"))
    for measure in ("OR", "RR", "RD"):
        data = select_contrasts(records, "events", measure, None, Filters())
        x, names, scales = Contrast(small_study="pet").terms(data)
        assert names == ["sei"]
        assert x[0, 0] / scales[0] == pytest.approx(math.sqrt(1 / 4 + 1 / 119 + 1 / 11
                                                              + 1 / 128))


def test_a_cluster_that_is_not_there_offers_the_users_columns() -> None:
    res = runner.invoke(app, ["fit", "contrast", str(DATA / "konstantopoulos2011.csv"),
                              "--outcome", "change", "--measure", "MD", "--cluster", "nope"])
    assert res.exit_code == 2
    assert "district" in res.output and "shared_var" not in res.output
