"""Simulation-based calibration (Talts et al. 2018) and parameter recovery.

For simulation ``s``: draw every parameter from the model's prior and simulate the observed
counts or effects for the same studies, arms and sample sizes as the selected records, with
the family's PyMC model (written independently of the kernels); put the simulated data into
the family's data object and fit it exactly as the report does (``Family.fit``: the
precompiled numba kernels sampled by nutpie, at the report's settings, with its convergence
gate and divergence refit). For each quantity record (a) the rank of the true value among
``L = 99`` thinned posterior draws and (b) whether the central 50, 80 and 95 % intervals
contain it. If the sampler and model are right, the ranks are uniform on 0..99 and the
coverages match their nominal levels up to binomial error. Fits that fail the report's
convergence gate are counted and reported.

Families: pooled-rate, contrast (binary), dose-response (Emax, binary) and time-course
(Bateman, on continuous contrasts, whose sampling covariance is kept fixed).

Parameter recovery fixes some parameters at planted values (``pm.do``) and simulates the
rest, so bias and coverage are measured at a chosen truth, not averaged over the prior.

Each simulation is one engine task with its own seed (``SeedSequence([seed, s])``), so the
result does not depend on how simulations are split among workers. A worker keeps the
selected data and the compiled simulator between tasks.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from ..errors import SpecError
from ..families.registry import get_family, registry
from ..io.provenance import package_versions
from ..io.records import Records
from ..sampling.settings import SamplerSettings
from ..stats.sbc import N_RANK_DRAWS, RANK_BINS
from .engine import Task, task_key

LEVELS = (0.5, 0.8, 0.95)
#: coverage verdicts use 99 % Clopper-Pearson intervals: 3 levels x 3-4 quantities are
#: checked per model, so 95 % intervals would flag a well-calibrated model about half the time
VERDICT_PROB = 0.99
#: below this many simulations a 99 % interval cannot tell 95 % coverage from 85 %
MIN_SIMS_FOR_VERDICT = 40
#: planted values for parameter recovery (close to the bundled data's posterior)
PLANTED = {"pooled-rate": {"mu": -0.4, "tau": 0.5}, "contrast": {"d": 1.0, "tau": 0.3}}


@dataclass(frozen=True)
class CalibrationSpec:
    """What to calibrate: the model family, the data shape and the fit settings."""

    family: str
    outcome: str = "response"
    measure: str = "OR"
    time_h: float = 24.0
    treatments: tuple[str, ...] = ("ketamine", "esketamine")
    draws: int = SamplerSettings.draws
    tune: int = SamplerSettings.tune
    chains: int = SamplerSettings.chains
    seed: int = SamplerSettings.seed
    sampler: str = SamplerSettings.sampler
    planted: tuple[tuple[str, float], ...] = ()

    def settings(self, sim: int) -> SamplerSettings:
        """Sampler settings of simulation ``sim`` (its own seed, no posterior cache)."""
        return SamplerSettings(draws=self.draws, tune=self.tune, chains=self.chains,
                               seed=int(_seeds(self.seed, sim)[1]), sampler=self.sampler)


def _seeds(seed: int, sim: int) -> np.ndarray:
    return np.random.SeedSequence([seed, sim]).generate_state(2)


def quantities(family: str) -> tuple[tuple[str, str, int | None], ...]:
    """Return what SBC checks for a family: (label, posterior variable, flat index)."""
    return get_family(family).sbc_quantities


def calibrated_families() -> list[str]:
    """Return the registered families that offer a simulator for calibration."""
    return [name for name in registry() if _offers_sbc(name)]


def _offers_sbc(name: str) -> bool:
    try:
        return bool(get_family(name).sbc_quantities)
    except SpecError:
        return False


def build(spec: CalibrationSpec, records: Records):
    """Select the records; return (the family's model object, its data, number of studies)."""
    if not _offers_sbc(spec.family):
        raise SpecError(f"calibrate supports {', '.join(calibrated_families())}, not "
                        f"'{spec.family}'")
    return get_family(spec.family).sbc_build(spec, records)


@dataclass
class _Context:
    family: Any
    data: Any
    forward: Any  # compiled prior simulation: () -> [quantities..., observed...]
    rngs: list
    observed: list[str]


_CONTEXTS: dict[str, _Context] = {}


def _context(spec: CalibrationSpec, records: Records) -> _Context:
    """Return the data and the prior simulator, built once per worker process and spec."""
    key = task_key(asdict(spec), records.sha256)
    if key in _CONTEXTS:
        return _CONTEXTS[key]
    import pymc as pm
    from pymc.pytensorf import compile as compile_pymc
    from pytensor.tensor.random.type import RandomGeneratorType

    family, data, _ = build(spec, records)
    model = family.build(data)
    source = pm.do(model, dict(spec.planted)) if spec.planted else model
    outputs = [source[name] for _, name, _ in quantities(spec.family)
               if name not in dict(spec.planted)]
    with source:
        forward = compile_pymc([], outputs + list(source.observed_RVs), random_seed=0)
    rngs = [v for v in forward.get_shared() if isinstance(v.type, RandomGeneratorType)]
    ctx = _Context(family, data, forward, rngs, [rv.name for rv in model.observed_RVs])
    _CONTEXTS[key] = ctx
    return ctx


def with_simulated(family_name: str, data: Any, simulated: dict[str, np.ndarray],
                   rho: float = 0.5) -> Any:
    """Return a copy of ``data`` carrying the simulated observations of the PyMC model."""
    return get_family(family_name).sbc_observe(data, simulated, rho)


def simulate_and_fit(spec: CalibrationSpec, records: Records, sim: int) -> dict[str, Any]:
    """One simulation: prior draw (or planted values), simulated data, fit, ranks, coverage."""
    from pymc.pytensorf import reseed_rngs

    ctx = _context(spec, records)
    reseed_rngs(ctx.rngs, int(_seeds(spec.seed, sim)[0]))
    values = ctx.forward()
    planted = dict(spec.planted)
    truth: dict[str, float] = {}
    k = 0
    for label, name, index in quantities(spec.family):
        if name in planted:
            truth[label] = float(planted[name])
            continue
        v = np.asarray(values[k])
        k += 1
        truth[label] = float(v.ravel()[index] if index is not None else v)
    simulated = dict(zip(ctx.observed, values[k:], strict=True))
    data = with_simulated(spec.family, ctx.data, simulated,
                          getattr(ctx.family, "rho", 0.5))
    fit = ctx.family.fit(data, spec.settings(sim))
    out: dict[str, Any] = {"sim": sim, "quantities": {}}
    post = fit.idata.posterior
    for label, name, index in quantities(spec.family):
        x = np.asarray(post[name].values)
        x = x.reshape(x.shape[0] * x.shape[1], -1)
        draws = x[:, index] if index is not None else x[:, 0]
        thinned = draws[np.linspace(0, len(draws) - 1, N_RANK_DRAWS).round().astype(int)]
        t = truth[label]
        covered = {}
        for level in LEVELS:
            lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
            covered[str(level)] = bool(lo <= t <= hi)
        out["quantities"][label] = {"truth": t, "rank": int(np.sum(thinned < t)),
                                    "mean": float(draws.mean()), "covered": covered}
    diag = fit.diagnostics
    out["diagnostics"] = {"divergences": diag.divergences, "r_hat_max": diag.r_hat_max,
                          "passed": diag.passed}
    return out


def _selected_digest(data: Any) -> str:
    """Identify the selected data (a change of selection must not reuse cached results)."""
    from ..models.network import NetworkData
    from ..select.doses import DoseData
    from ..select.filters import BinaryArms

    table = (data.table if isinstance(data, BinaryArms) else
             data.arms if isinstance(data, DoseData | NetworkData) else data.contrasts)
    return hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()


def tasks(spec: CalibrationSpec, records: Records, sims: int) -> list[Task]:
    """One engine task per simulation, keyed by everything that decides its result."""
    _, data, _ = build(spec, records)
    base = task_key("calibrate", asdict(spec), records.sha256, _selected_digest(data),
                    package_versions())
    return [Task(task_key(base, s), simulate_and_fit, (spec, records, s)) for s in range(sims)]


@dataclass
class CoverageRow:
    """Coverage of one quantity at one level, with its binomial uncertainty."""

    quantity: str
    level: float
    covered: int
    sims: int
    coverage: float
    ci_low: float
    ci_high: float
    verdict: str


@dataclass
class CalibrationSummary:
    """Everything ``trialmeta calibrate`` prints and writes."""

    spec: dict[str, Any]
    sims: int
    coverage: list[CoverageRow]
    ranks: dict[str, list[int]]
    rank_uniformity_p: dict[str, float | None]
    recovery: dict[str, dict[str, float]]
    verdicts: dict[str, str]
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``--json`` document)."""
        d = asdict(self)
        d["coverage"] = [asdict(r) for r in self.coverage]
        return d


def clopper_pearson(k: int, n: int, prob: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for a proportion ``k / n``."""
    a = (1 - prob) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def summarize(spec: CalibrationSpec, results: list[dict[str, Any]]) -> CalibrationSummary:
    """Coverage with Clopper-Pearson intervals, rank histograms, a verdict per quantity."""
    n = len(results)
    labels = [label for label, _, _ in quantities(spec.family)]
    planted = {lbl for lbl, name, _ in quantities(spec.family) if name in dict(spec.planted)}
    coverage, ranks, pvals, recovery, verdicts = [], {}, {}, {}, {}
    for label in labels:
        rows = [r["quantities"][label] for r in results]
        bad_levels = []
        for level in LEVELS:
            k = sum(r["covered"][str(level)] for r in rows)
            lo, hi = clopper_pearson(k, n, VERDICT_PROB)
            ok = lo <= level <= hi
            direction = "" if ok else (" (under-covers)" if k / n < level else " (over-covers)")
            coverage.append(CoverageRow(label, level, k, n, k / n, lo, hi,
                                        "within binomial error" if ok else
                                        "outside binomial error" + direction))
            if not ok:
                bad_levels.append(level)
        r = np.array([x["rank"] for x in rows])
        hist = np.bincount(r * RANK_BINS // (N_RANK_DRAWS + 1), minlength=RANK_BINS)
        ranks[label] = hist.tolist()
        # the chi-square test needs about 2 simulations per bin; below that: no p-value
        pvals[label] = float(stats.chisquare(hist).pvalue) if n >= 2 * RANK_BINS else None
        truth = np.array([x["truth"] for x in rows])
        mean = np.array([x["mean"] for x in rows])
        recovery[label] = {"mean_truth": float(truth.mean()), "mean_posterior_mean":
                           float(mean.mean()), "bias": float((mean - truth).mean()),
                           "rmse": float(np.sqrt(((mean - truth) ** 2).mean()))}
        if label in planted or pvals[label] is None:
            uniform = True  # ranks of a planted (fixed) value are not an SBC statistic
        else:
            uniform = pvals[label] > 0.01
        if n < MIN_SIMS_FOR_VERDICT:
            verdicts[label] = (f"too few simulations to judge ({n} < "
                               f"{MIN_SIMS_FOR_VERDICT})" + ("; coverage outside binomial error"
                                                            if bad_levels else ""))
        elif not bad_levels and uniform:
            verdicts[label] = "calibrated"
        else:
            why = [f"coverage at {', '.join(f'{lv:.0%}' for lv in bad_levels)} outside "
                   "binomial error"] if bad_levels else []
            why += [] if uniform else [f"ranks not uniform (chi-square p = {pvals[label]:.3g})"]
            verdicts[label] = "miscalibrated: " + "; ".join(why)
    diag = [r["diagnostics"] for r in results]
    diagnostics = {"fits": n, "with_divergences": sum(d["divergences"] > 0 for d in diag),
                   "failed_gate": sum(not d["passed"] for d in diag)}
    return CalibrationSummary(asdict(spec), n, coverage, ranks, pvals, recovery, verdicts,
                              diagnostics)
