"""Heterogeneity priors: half-normal on tau, or the published informative priors on tau².

Informative priors (from Cochrane meta-analyses):

- Turner et al. (2015), *Stat Med* 34(6):984–998, Table IV: log-normal priors for
  tau² of log odds ratios, by outcome type and comparison type.
- Rhodes et al. (2015), *J Clin Epidemiol* 68(1):52–60, Table 3: log-t(5) priors
  for tau² of standardised mean differences.

The numbers are those tabulated in R bayesmeta's ``TurnerEtAlPrior`` and
``RhodesEtAlPrior``; only the mental-health rows are carried here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import SpecError

# (outcome, comparison) -> (mean, sd) of log(tau^2); Turner 2015 Table IV.
TURNER_2015 = {
    ("mental health indicators", "pharmacological vs placebo/control"): (-2.12, 1.53),
    ("mental health indicators", "pharmacological vs pharmacological"): (-2.35, 1.60),
    ("any", "any"): (-2.56, 1.74),
}
# (outcome, comparison) -> (location, scale) of log(tau^2) ~ t_5; Rhodes 2015 Table 3.
RHODES_2015 = {
    ("mental health outcome", "pharmacological vs placebo/control"): (-2.99, 2.16),
    ("mental health outcome", "pharmacological vs pharmacological"): (-3.27, 2.14),
    ("any", "any"): (-3.44, 2.59),
}
KINDS = ("half-normal", "half-cauchy", "turner2015", "rhodes2015")


@dataclass(frozen=True)
class HeterogeneityPrior:
    """Prior on the between-study standard deviation tau.

    Attributes
    ----------
    kind : {"half-normal", "half-cauchy", "turner2015", "rhodes2015"}
        ``half-normal``: tau ~ HalfNormal(scale); ``half-cauchy`` likewise.
        ``turner2015``: log tau² ~ Normal(location, scale).
        ``rhodes2015``: log tau² ~ Student-t(5, location, scale).
    scale : float
        Half-normal scale, or the scale of log tau².
    location : float
        Location of log tau² (informative priors only).
    label : str
        Where the numbers come from.
    """

    kind: str = "half-normal"
    scale: float = 0.5
    location: float = 0.0
    label: str = "half-normal(0.5) on tau"

    def as_dict(self) -> dict[str, object]:
        """Return the prior as a JSON-ready dict."""
        return asdict(self)

    def build(self, name: str = "tau"):  # returns a PyMC variable
        """Create the tau variable inside the current PyMC model."""
        import pymc as pm

        if self.kind == "half-normal":
            return pm.HalfNormal(name, self.scale)
        if self.kind == "half-cauchy":
            return pm.HalfCauchy(name, self.scale)
        if self.kind == "turner2015":
            log_tau2 = pm.Normal(f"log_{name}2", self.location, self.scale)
        elif self.kind == "rhodes2015":
            log_tau2 = pm.StudentT(f"log_{name}2", nu=5, mu=self.location, sigma=self.scale)
        else:  # pragma: no cover - guarded by heterogeneity_prior()
            raise SpecError(f"unknown prior kind {self.kind}")
        return pm.Deterministic(name, pm.math.exp(0.5 * log_tau2))


def heterogeneity_prior(spec: str) -> HeterogeneityPrior:
    """Parse a prior given on the command line.

    ``half-normal`` or ``half-normal:0.5`` (scale), ``turner2015`` (log OR, mental
    health), ``rhodes2015`` (SMD, mental health); add ``:active`` to the informative
    ones for an active (pharmacological) comparator instead of placebo/control.
    """
    name, _, arg = spec.partition(":")
    if name in ("turner2015", "rhodes2015") and arg not in ("", "active"):
        raise SpecError(f"'{spec}': the only option of {name} is ':active'")
    comparison = ("pharmacological vs pharmacological" if arg == "active"
                  else "pharmacological vs placebo/control")
    if name in ("half-normal", "half-cauchy"):
        try:
            scale = float(arg) if arg else 0.5
        except ValueError:
            raise SpecError(f"{name} scale must be a number, got '{arg}'") from None
        if not 1e-6 <= scale <= 1e6:
            raise SpecError(f"{name} scale must lie between 1e-6 and 1e6 (got {arg}); a "
                            "scale outside that range leaves no chain a point to start from")
        label = "half-normal" if name == "half-normal" else "half-Cauchy"
        return HeterogeneityPrior(name, scale, 0.0, f"{label}({scale:g}) on tau")
    if name == "turner2015":
        loc, sd = TURNER_2015[("mental health indicators", comparison)]
        return HeterogeneityPrior("turner2015", sd, loc,
                                  f"Turner 2015 Table IV, mental health indicators, {comparison}: "
                                  f"log tau^2 ~ N({loc}, {sd}^2)")
    if name == "rhodes2015":
        loc, sc = RHODES_2015[("mental health outcome", comparison)]
        return HeterogeneityPrior("rhodes2015", sc, loc,
                                  f"Rhodes 2015 Table 3, mental health outcome, {comparison}: "
                                  f"log tau^2 ~ t5({loc}, {sc})")
    raise SpecError(f"unknown heterogeneity prior '{spec}'; use one of {', '.join(KINDS)} "
                    "(half-normal:SCALE or half-cauchy:SCALE for another scale)")


def sample_tau(prior: HeterogeneityPrior, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` values of tau from its prior (the same densities as :meth:`build`)."""
    if prior.kind == "half-normal":
        return np.abs(rng.normal(0.0, prior.scale, n))
    if prior.kind == "half-cauchy":
        return np.abs(prior.scale * rng.standard_cauchy(n))
    if prior.kind == "turner2015":
        log_tau2 = rng.normal(prior.location, prior.scale, n)
    elif prior.kind == "rhodes2015":
        log_tau2 = prior.location + prior.scale * rng.standard_t(5, n)
    else:  # pragma: no cover - guarded by heterogeneity_prior()
        raise SpecError(f"unknown prior kind {prior.kind}")
    return np.exp(0.5 * log_tau2)


#: prior presets: ``default`` (weakly informative) and ``vague`` (NICE TSD2 and multinma's
#: defaults: effects and baselines N(0, 100²), tau half-normal(5); Dias et al. 2011/2013)
PRESETS = ("default", "vague")
#: vague preset, on the log-odds scale or in units of the outcome's SD for mean differences
VAGUE_SD = 100.0
VAGUE_TAU_SCALE = 5.0
#: mean differences, in units of the outcome's SD: effects N(0, (2.5 SD)^2) as the SMD prior,
#: tau half-normal(1 SD): a heterogeneity of two SDs between trials is in its 5 % tail
MD_EFFECT_UNITS = 2.5
MD_TAU_UNITS = 1.0


def outcome_unit(sds) -> float | None:
    """Return the outcome's spread that scales mean-difference priors: the median arm SD.

    Returns None when no arm gives a finite SD > 0 (contrast-level rows only).
    """
    x = np.asarray([s for s in np.asarray(sds, dtype=float).ravel()
                    if np.isfinite(s) and s > 0])
    return float(np.median(x)) if len(x) else None


def tau_presses_prior(tau_draws, prior: HeterogeneityPrior, *, rng_seed: int = 0,
                      quantile: float = 0.75) -> str | None:
    """Warn when tau's posterior median lies beyond its prior's 75th percentile.

    The data then ask for more heterogeneity than the prior readily gives, and the prior
    pulls tau (and the pooled interval) towards zero heterogeneity: say so, with the numbers.
    """
    draws = np.asarray(tau_draws, float).ravel()
    if not len(draws):
        return None
    prior_q = float(np.quantile(sample_tau(prior, 20_000, np.random.default_rng(rng_seed)),
                                quantile))
    median = float(np.median(draws))
    if median <= prior_q:
        return None
    return (f"tau's posterior presses against its prior: posterior median {median:.3g} is "
            f"beyond the prior's {quantile:.0%} point {prior_q:.3g} ({prior.label}); the prior "
            "may be shrinking heterogeneity and narrowing the pooled interval. Refit with a "
            "wider prior (--tau-prior half-normal:SCALE or --priors vague) and compare")
