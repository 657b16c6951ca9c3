"""The evidential, directional decision rule that turns draws into a verdict.

For a claim "the quantity lies in [lo, hi]" the rule compares the posterior with the
prior, both pushed through the same derived-quantity code. With the Bayes factor for the
region BF = (posterior odds of the region) / (prior odds):

* ``insufficient data``: the data barely move the quantity: BF lies in
  [bf_low, bf_high] *and* the posterior's spread is above ``sd_ratio`` times the prior's.
  This is checked first, so no verdict is written by the prior;
* ``supported``: P_post(in region) >= support **and** BF >= bf_high: the posterior puts
  the quantity in the region and the data moved it there (a region the prior already held
  is not "supported" by data that added nothing, or took something away);
* ``contradicted``: P_post(below) >= support or P_post(above) >= support, P_post(in region)
  <= contradict, **and** BF <= bf_low: evidence against the claim, with its side named;
* ``inconclusive`` otherwise (the reason says which condition was missing).

Without prior draws (a plug-in model with no ``prior_params``) the Bayes factor is unknown
and the probabilities alone decide; the reason says so.

Spreads are measured as half the width of the central 68 % interval: the SD for a normal,
and still defined for heavy-tailed priors (half-Cauchy, log-t) and for censored times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: central interval whose half-width is the robust spread (68.27 %: +-1 SD of a normal)
SPREAD_Q = (0.158655, 0.841345)


@dataclass(frozen=True)
class DecisionRule:
    """Thresholds of the decision rule (a claims file's ``defaults``, or per claim).

    Attributes
    ----------
    support : float
        P(in region) needed for ``supported``, and P(one side) for ``contradicted``.
    contradict : float
        P(in region) must also be at most this for ``contradicted`` (implied by the side
        condition when ``support + contradict = 1``, the default).
    min_studies : int
        Fewer studies than this: ``insufficient data``.
    bf_low, bf_high : float
        Bayes factors in this range count as "the data barely moved the prior" ...
    sd_ratio : float
        ... when the posterior spread is also above this share of the prior spread.
    max_draws_factor : int
        A probability within two Monte Carlo standard errors of a threshold is resampled
        with 2x, 4x ... this many times the draws; still undecided then: ``inconclusive``.
    """

    support: float = 0.8
    contradict: float = 0.2
    min_studies: int = 2
    bf_low: float = 1 / 3
    bf_high: float = 3.0
    sd_ratio: float = 0.7
    max_draws_factor: int = 8


#: the numbers of :class:`Evidence` that results.json carries
EVIDENCE_FIELDS = ("p_prior", "p_post", "p_below", "p_above", "bayes_factor", "spread_ratio")


@dataclass(frozen=True)
class Evidence:
    """What the data did to the claim's quantity: prior and posterior side by side."""

    p_post: float
    p_below: float
    p_above: float
    p_prior: float | None
    bayes_factor: float | None
    spread_ratio: float | None
    mcse: float
    mcse_below: float
    mcse_above: float

    def as_dict(self) -> dict[str, float | None]:
        """Return the numbers as results.json carries them."""
        return {k: getattr(self, k) for k in EVIDENCE_FIELDS}


def sides(draws: np.ndarray, region: tuple[float, float]) -> tuple[np.ndarray, ...]:
    """Return indicators of draws below, inside and above the region (+inf counts as above)."""
    lo, hi = region
    x = np.asarray(draws, float)
    below, above = x < lo, x > hi
    return below, ~below & ~above, above


def spread(draws: np.ndarray) -> float:
    """Half the width of the central 68 % interval (inf when its top is censored)."""
    x = np.asarray(draws, float)
    x = x[~np.isnan(x)]
    if x.size < 2:
        return float("nan")
    lo, hi = censored_quantiles(x, SPREAD_Q)
    return float((hi - lo) / 2) if np.isfinite(hi - lo) else float("inf")


def censored_quantiles(x: np.ndarray, qs: tuple[float, ...] | list[float]) -> np.ndarray:
    """Quantiles of draws that may hold +inf (never-reached events): inf where they fall."""
    with np.errstate(invalid="ignore"):
        out = np.quantile(np.asarray(x, float), qs)
    return np.where(np.isnan(out), np.inf, out)


def bayes_factor(p_post: float, p_prior: float, n_post: int, n_prior: int) -> float:
    """Posterior odds over prior odds for the region, probabilities kept off 0 and 1.

    A probability estimated as 0 or 1 from n draws is taken as 0.5/n or 1 - 0.5/n, so
    the factor stays finite and says "at least this much".
    """
    def odds(p: float, n: int) -> float:
        p = min(max(p, 0.5 / n), 1 - 0.5 / n)
        return p / (1 - p)

    return odds(p_post, n_post) / odds(p_prior, n_prior)


def monte_carlo_se(values: np.ndarray, batches: int = 40) -> float:
    """Monte Carlo standard error of the mean of MCMC draws, by batch means.

    ``values`` are draws with chains one after another (as ``flat`` gives them); with
    4 chains of 1,000 draws each batch of 100 lies inside one chain. Batch means
    (Flegal & Jones 2010) account for autocorrelation without a spectral estimate.
    """
    x = np.asarray(values, dtype=float).ravel()
    size = x.size // batches
    if size < 2:
        return float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")
    means = x[:size * batches].reshape(batches, size).mean(axis=1)
    return float(means.std(ddof=1) / np.sqrt(batches))


def weigh(draws: np.ndarray, prior: np.ndarray | None,
          region: tuple[float, float]) -> Evidence:
    """Compare posterior and prior draws of a quantity against a region."""
    below, inside, above = sides(draws, region)
    p_post = float(inside.mean())
    p_prior = bf = ratio = None
    if prior is not None and len(prior):
        p_prior = float(sides(prior, region)[1].mean())
        bf = bayes_factor(p_post, p_prior, inside.size, len(prior))
        prior_spread = spread(prior)
        post_spread = spread(draws)
        if np.isfinite(prior_spread) and prior_spread > 0 and not np.isnan(post_spread):
            ratio = post_spread / prior_spread
        elif not np.isfinite(prior_spread) and np.isfinite(post_spread):
            ratio = 0.0
    return Evidence(p_post, float(below.mean()), float(above.mean()), p_prior, bf, ratio,
                    monte_carlo_se(inside), monte_carlo_se(below), monte_carlo_se(above))


def barely_moved(ev: Evidence, rule: DecisionRule) -> bool:
    """Whether the data left the claim's quantity where the prior put it."""
    if ev.bayes_factor is None or ev.spread_ratio is None:
        return False
    return rule.bf_low <= ev.bayes_factor <= rule.bf_high and ev.spread_ratio > rule.sd_ratio


def verdict(ev: Evidence, rule: DecisionRule) -> tuple[str, str]:
    """Return the verdict and which condition gave it.

    The second value is ``"moved"`` (insufficient data), ``"in"``, ``"below"`` or
    ``"above"`` (supported, contradicted on that side), ``"weak-in"``, ``"weak-below"`` or
    ``"weak-above"`` (the probability was there but the Bayes factor was not), or ``""``.
    """
    if barely_moved(ev, rule):
        return "insufficient data", "moved"
    bf = ev.bayes_factor
    if ev.p_post >= rule.support:
        return ("supported", "in") if bf is None or bf >= rule.bf_high \
            else ("inconclusive", "weak-in")
    if ev.p_post <= rule.contradict:
        for side, p in (("below", ev.p_below), ("above", ev.p_above)):
            if p >= rule.support:
                return ("contradicted", side) if bf is None or bf <= rule.bf_low \
                    else ("inconclusive", f"weak-{side}")
    return "inconclusive", ""


def near_thresholds(ev: Evidence, rule: DecisionRule) -> list[str]:
    """Thresholds the verdict hangs on that lie within two Monte Carlo SEs of a probability.

    The Bayes-factor bounds are thresholds on P_post(in region) too (for a fixed prior
    probability), so they are checked with the same standard error.
    """
    near = []

    def close(p: float, t: float, se: float) -> bool:
        return abs(p - t) < 2 * se

    if close(ev.p_post, rule.support, ev.mcse):
        near.append(f"P(in region) {ev.p_post:.3f} vs {rule.support:g}")
    if ev.p_post <= rule.contradict + 2 * ev.mcse:
        for name, p, se in (("below", ev.p_below, ev.mcse_below),
                            ("above", ev.p_above, ev.mcse_above)):
            if close(p, rule.support, se):
                near.append(f"P({name} region) {p:.3f} vs {rule.support:g}")
    if close(ev.p_post, rule.contradict, ev.mcse) and max(ev.p_below, ev.p_above) >= \
            rule.support - 2 * max(ev.mcse_below, ev.mcse_above):
        near.append(f"P(in region) {ev.p_post:.3f} vs {rule.contradict:g}")
    if ev.p_prior is not None and 0 < ev.p_prior < 1:  # the BF bounds decide verdicts too
        prior_odds = ev.p_prior / (1 - ev.p_prior)
        for bf in (rule.bf_low, rule.bf_high):
            t = prior_odds * bf / (1 + prior_odds * bf)
            if close(ev.p_post, t, ev.mcse):
                near.append(f"P(in region) {ev.p_post:.3f} vs {t:.3f} (Bayes factor {bf:.3g})")
    return near
