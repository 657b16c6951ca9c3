"""The time-course family: the effect over hours to weeks after one administration.

Class and runner; the curve machinery shared with dose-response is in ``curves``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..claims.spec import Claim
from ..errors import SpecError
from ..io.records import Records
from ..models.time_course import GRID_END_H
from ..sampling.inference import flat
from ..sampling.settings import SamplerSettings
from .base import FamilyRun
from .common import (
    DEPRESSION_SCALES,
    _contraction,
    _shown,
    check_number,
    prior_fit,
)
from .curves import CurveFamily

TIME_QUANTITIES = ("onset_h", "time_to_peak_h", "duration_h")


class TimeCourseFamily(CurveFamily):
    """Rise-and-decay (and other) curves over the hours after one dose."""

    name = kind = "time-course"
    description = "time course of the effect after one dose (Bateman, piecewise, plug-ins)"
    timed = False
    quantities = ("onset_h", "time_to_peak_h", "duration_h", "peak", "effect_at:HOURS")
    options = frozenset({"rho", "timing", "timing_group", "likelihood", "threshold", "fraction",
                         "direction"})
    prior_settings = ("peak_sd", "t_rise", "t_decay", "t_sd", "tau_scale")
    prior_cells = (("t_rise", 3.0), ("t_decay", 3.0), ("peak_sd", 2.0), ("tau_scale", 2.0))
    sbc_quantities = (("peak", "peak", None), ("t_rise", "t_rise", None),
                      ("t_decay", "t_decay", None), ("tau", "tau", None))
    RHOS = (0.2, 0.8)



    @property
    def censor_bound_h(self) -> float:  # type: ignore[override]
        """Derived times beyond the curve's grid count as never reached ("> 672 h")."""
        return GRID_END_H

    def describe_priors(self, model: str, priors: dict[str, Any], measure: str) -> str | None:
        """Describe the time-course shape priors as distributions."""
        if model != "time-course" and not {"t_rise", "t_decay"} <= set(priors):
            return None  # a plug-in time-course model with priors of its own
        g = _shown(priors)
        return (f"peak A ~ N(0, {g['peak_sd']}); log T_r ~ N(log {g['t_rise']} h, {g['t_sd']}); "
                f"log(T_d − T_r) ~ N(log {g['t_decay']} h, {g['t_sd']}); τ (log-normal "
                f"amplitude) ~ HalfNormal({g['tau_scale']})")

    def run(self, records: Records, claim: Claim, settings: SamplerSettings, *,
            documents: bool = True) -> FamilyRun:
        """Select the claim's records and fit (:func:`run_time_course`)."""
        return run_time_course(records, claim, settings, documents=documents)

    def forms(self, model: str, options: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Return the forms of the claim's model (a plug-in names its own)."""
        from .registry import get_model_class

        return tuple(get_model_class(model).gate)

    def check_quantity(self, quantity: str, options: dict[str, Any]) -> str | None:
        """Also accept ``effect_at:HOURS``."""
        head, _, rest = quantity.partition(":")
        if head == "effect_at":
            try:
                float(rest)
                return None
            except ValueError:
                pass
        return super().check_quantity(quantity, options)

    def check_options(self, options: dict[str, Any], fail: Any) -> None:
        """Check rho, the likelihood, the timing groups and the derived times' settings."""
        check_number(options, "threshold", fail)
        check_number(options, "fraction", fail, 0.0, 1.0)
        if "direction" in options and options["direction"] not in (-1, 0, 1):
            raise fail("direction", f"must be 1 (higher is better), -1 or 0, got "
                                    f"{options['direction']!r}")
        from ..claims.spec import number_problem

        if "rho" in options:
            problem = number_problem(options["rho"], 0.0, 0.99)
            if problem:
                raise fail("rho", problem)
            options["rho"] = float(options["rho"])
        for key in ("timing", "timing_group", "likelihood"):
            if key in options and not isinstance(options[key], str):
                raise fail(key, f"must be text, got {options[key]!r}")
        if options.get("likelihood", "normal") not in ("normal", "binomial"):
            raise fail("likelihood", "use normal or binomial")
        if options.get("timing", "shared") not in ("shared", "by-route", "by-treatment"):
            raise fail("timing", "use shared, by-route or by-treatment")

    def default_prior(self, claim: Claim, setting: str) -> float:
        """Return the default of a time-course prior setting."""
        from ..models.time_course import TimePriors

        return float(getattr(TimePriors(), setting))

    def sweep_cells(self) -> list[tuple[str, str]]:
        """Return the within-study correlation and count-likelihood cells."""
        return ([("rho", f"{r:g}") for r in self.RHOS]
                + [("likelihood", x) for x in ("normal", "binomial")])

    def vary(self, claim: Claim, kind: str, value: str, options: dict[str, Any]) -> bool:
        """Set rho, or the likelihood of a count outcome's log odds ratios."""
        if kind == "rho":
            if float(value) == float(options.get("rho", 0.5)):
                return False
            options["rho"] = float(value)
            return True
        if kind == "likelihood":
            if (claim.outcome == "change" or options.get("measure", "OR") != "OR"
                    or value == options.get("likelihood", "normal")):
                return False
            options["likelihood"] = value
            return True
        return False

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:
        """Select response log odds ratios over time, as the onset, peak and decay claims do.

        The claims C4-C6 judge the curve of the log OR of response (IV ketamine, depression
        scales, Hu 2016 out); calibration fits the same model to the same data shape. With
        ``outcome="change"`` it uses the change-score SMDs of ``spec.treatments`` instead.
        """
        from ..models.time_course import TimeCourse
        from ..select.contrasts import select_time_course
        from ..select.filters import Filters

        if spec.outcome == "change":  # change-score SMDs on depression scales
            data = select_time_course(records, "change", "SMD",
                                      Filters(treatment=spec.treatments,
                                              scale=DEPRESSION_SCALES,
                                              mean_type=("change",)))
        else:  # the counts' log ORs: response (C4-C6) or remission
            data = select_time_course(records, spec.outcome, "OR",
                                      Filters(treatment=("ketamine",), route=("iv",),
                                              scale=DEPRESSION_SCALES,
                                              exclude_studies=("Hu2016",)))
        return TimeCourse("bateman"), data, data.k_studies

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:
        """Undo the whitening the model observes (W y) and store the contrasts.

        Simulated log ORs replace the counts' estimates as reported contrasts with the
        counts' own variances and shared control parts, so that the fit sees the simulated
        values under the same joint normal likelihood.
        """
        from scipy.linalg import solve_triangular

        from ..models.time_course import _estimates, sampling_structure

        w = sampling_structure(data, rho).dense()
        y = solve_triangular(w, np.asarray(simulated["y"], float), lower=True,
                             unit_diagonal=True)
        if data.binary:
            _, v, vc = _estimates(data)
            return replace(data, contrasts=data.contrasts.assign(
                level="contrast", yi=y, vi=v, shared_var=vc))
        return replace(data, contrasts=data.contrasts.assign(yi=y))


def run_time_course(records: Records, claim: Claim, settings: SamplerSettings, *,
                    documents: bool = True) -> FamilyRun:
    """Fit the time course a claim asks for (onset, peak, duration, effects at times)."""
    from .curves import TimeOptions, fit_time, time_document, trial_direction

    measure = claim.option("measure", "MD" if claim.outcome == "change" else "OR")
    opts = TimeOptions(outcome=claim.outcome, measure=measure, model=claim.model,
                       form=claim.option("form", "bateman"), filters=claim.filters,
                       rho=float(claim.option("rho", 0.5)), priors=claim.option("priors", ()),
                       timing=str(claim.option("timing", "shared")),
                       likelihood=str(claim.option("likelihood", "normal")),
                       comparator=claim.option("comparator", ()),
                       threshold=float(claim.option("threshold", 0.405)),
                       fraction=float(claim.option("fraction", 0.5)),
                       direction=int(claim.option("direction", 0)))
    from ..models.time_course import TIME_GRID, time_quantity
    from ..select.contrasts import select_time_course

    probe = select_time_course(records, opts.outcome, opts.measure, opts.filters,
                               comparator=opts.comparator)
    if probe.k_studies < claim.rule.min_studies:
        return FamilyRun("time-course", None, probe.studies)
    fitted = fit_time(records, opts, settings)  # the same selection: memoised
    data, model, fit = fitted
    doc = time_document(records, opts, settings, fitted=fitted) if documents else None
    direction = trial_direction(opts.outcome, opts.direction)
    observed = sorted({float(t) for t in data.contrasts["time_h"] if float(t) > 0})
    prior = prior_fit(model, fit, settings)

    def draws_for(f: Any) -> Callable[[str, Claim], np.ndarray]:
        curves: dict[int, np.ndarray] = {}  # the curve on TIME_GRID, per timing group

        def grid(group: int) -> np.ndarray:
            if group not in curves:
                curves[group] = model.effect(f, TIME_GRID, group)
            return curves[group]

        return lambda q, c: time_quantity(model, f, q, direction,
                                          float(c.option("threshold", opts.threshold)),
                                          float(c.option("fraction", opts.fraction)),
                                          _timing_group(fit, c), grid)

    def unidentified(q: str, c: Claim) -> str | None:
        if q.startswith("effect_at:"):
            t = float(q.partition(":")[2])
            if not observed[0] <= t <= observed[-1]:
                return (f"no trial measured the effect near {t:g} h (observed "
                        f"{observed[0]:g}-{observed[-1]:g} h)")
            return None
        if q not in (*TIME_QUANTITIES, "peak"):
            return None
        for b in c.region:  # an observation at a bound informs that side
            if np.isfinite(b) and b > 0 and not observed[0] <= b <= observed[-1]:
                return (f"the region bound {b:g} h lies outside the observed times "
                        f"({', '.join(f'{t:g}' for t in observed)} h), so whether "
                        f"{q} lies below or above it is not informed by data")
        if prior is None:
            return None
        bounds = [b for b in c.region if np.isfinite(b) and b > 0]
        if q == "onset_h" and bounds and all(np.isclose(observed, b).any() for b in bounds):
            # onset <= b is "the effect had passed the threshold by b", which the
            # observations at b inform whatever the rise time's prior says
            return None
        for name, post_x, prior_x in _shape_parameters(fit, prior,
                                                       _timing_group(fit, c)):
            said = _contraction(post_x, prior_x, name, c.rule.sd_ratio)
            if said:
                return said
        return None

    times = {str(s): sorted({float(t) for t in g if float(t) > 0})
             for s, g in data.contrasts.groupby("study")["time_h"]}

    def informing(q: str, c: Claim) -> list[str]:
        """Studies whose data inform ``q`` (module docstring of :func:`studies_informing`)."""
        peak = None
        if q == "duration_h":
            peak_draws = draws_for(fit)("time_to_peak_h", c)
            finite = peak_draws[np.isfinite(peak_draws)]
            peak = float(np.quantile(finite, 0.975)) if finite.size else None
        return studies_informing(q, c.region, times, peak)

    return FamilyRun("time-course", doc, sorted(data.studies), draws_for(fit), unidentified,
                     fit.diagnostics.passed, curve_options=opts, posterior=fit.idata,
                     prior_draws=None if prior is None else draws_for(prior),
                     informing=informing, fast_refits=model.kernel(data) is not None)


def studies_informing(quantity: str, region: tuple[float, float],
                      times: dict[str, list[float]], peak_h: float | None) -> list[str]:
    """Return the studies whose time points can inform a time quantity.

    ``onset_h``: studies with a time point at or before the region's largest finite bound
    (each such point says whether the effect had passed the threshold by then);
    ``time_to_peak_h``: studies with at least two time points (one point cannot place a
    peak); ``duration_h``: studies with a time point clearly after the peak (later than the
    upper end of the 95 % interval of the time to peak, ``peak_h``): the decay is seen only
    there. Anything else: every study.
    """
    if quantity == "onset_h":
        bounds = [b for b in region if np.isfinite(b) and b > 0]
        top = max(bounds) if bounds else np.inf
        return sorted(s for s, ts in times.items() if ts and ts[0] <= top)
    if quantity == "time_to_peak_h":
        return sorted(s for s, ts in times.items() if len(ts) >= 2)
    if quantity == "duration_h":
        if peak_h is None:
            return []
        return sorted(s for s, ts in times.items() if ts and ts[-1] > peak_h)
    return sorted(times)


def _timing_group(fit: Any, claim: Claim) -> int:
    """Return the index of the timing group a claim names (the first when it names none)."""
    name = claim.option("timing_group")
    groups = getattr(fit, "timing_groups", ())
    if name is None or not groups:
        return 0
    if name not in groups:
        raise SpecError(f"claim '{claim.id}': timing_group '{name}' is not one of "
                        f"{', '.join(groups)}")
    return groups.index(name)


def _shape_parameters(fit: Any, prior: Any,
                      group: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Return the parameters setting a time curve's shape: name, posterior, prior draws."""
    from ..models.time_course import _group

    post_p, prior_p = fit.idata.posterior, prior.idata.posterior
    if "t_rise" in post_p and "t_rise" in prior_p:
        def logs(f: Any) -> tuple[np.ndarray, np.ndarray]:
            t_r, t_d = _group(f, "t_rise", group), _group(f, "t_decay", group)
            return np.log(t_r), np.log(t_d - t_r)

        (a, b), (pa, pb) = logs(fit), logs(prior)
        return [("the rise time (log T_r)", a, pa), ("the decay time (log (T_d - T_r))", b, pb)]
    if "knot_effect" in post_p and "knot_effect" in prior_p:
        post_k, prior_k = flat(fit.idata, "knot_effect"), flat(prior.idata, "knot_effect")
        return [(f"the curve at the {t:g} h knot", post_k[:, j], prior_k[:, j])
                for j, t in enumerate(fit.knots)]
    return []
