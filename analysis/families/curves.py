"""Run dose-response and time-course analyses and describe them as JSON documents."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import SpecError
from ..io.files import rounded
from ..io.provenance import command_line
from ..io.records import Records
from ..models.dose_response import DoseResponse, dose_summary
from ..models.time_course import TimeCourse, TimePriors, time_summary
from ..sampling.inference import loo
from ..sampling.settings import SamplerSettings
from ..select.contrasts import select_time_course
from ..select.doses import select_dose_arms
from ..select.filters import Filters, TimeWindow
from .base import FamilyRun, Figure
from .common import BuiltinFamily
from .registry import get_model_class


@dataclass(frozen=True)
class DoseOptions:
    """What a dose-response analysis selects and reports."""

    outcome: str = "response"
    time_h: float = 24.0
    window_h: float | None = None
    form: str = "emax"
    hill: bool = False
    filters: Filters = field(default_factory=Filters)
    comparator: tuple[str, ...] = ()
    standardize: bool = False
    doses: tuple[float, ...] = ()
    compare: tuple[float, float] | None = None
    delta: float = 0.0
    threshold: float | None = None
    direction: int = 0  # 0: +1 for counts, -1 for means (lower scores are better)
    moderators: tuple[str, ...] = ()
    priors: tuple[tuple[str, float], ...] = ()  # (setting, value) pairs over the defaults


@dataclass(frozen=True)
class TimeOptions:
    """What a time-course analysis selects and reports."""

    outcome: str = "response"
    measure: str = "OR"
    model: str = "time-course"
    form: str = "bateman"
    rho: float = 0.5
    priors: tuple[tuple[str, float], ...] = ()  # (setting, value) pairs over the defaults
    timing: str = "shared"  # or by-route, by-treatment: Bateman T_r, T_d per group
    likelihood: str = "normal"  # or binomial (counts on the log-odds scale)
    filters: Filters = field(default_factory=Filters)
    comparator: tuple[str, ...] = ()
    times: tuple[float, ...] = ()
    threshold: float = 0.405
    fraction: float = 0.5
    direction: int = 0


def time_points_table(data) -> list[dict[str, Any]]:  # ContrastData
    """Observed contrasts by study and time (for plots and the report)."""
    from ..models.time_course import contrast_effects_by_time

    y, v = contrast_effects_by_time(data)
    c = data.contrasts
    return [{"study": s, "arm": a, "time_h": float(t), "yi": float(yy), "vi": float(vv)}
            for s, a, t, yy, vv in zip(c["study"], c["arm"], c["time_h"], y, v, strict=True)]


def trial_direction(outcome: str, direction: int) -> int:
    """Return +1 when higher is better (counts of responders), -1 when lower is (scores)."""
    return direction or (1 if outcome in ("response", "remission") else -1)


def options_from_mapping(kind: str, raw: dict[str, Any]) -> DoseOptions | TimeOptions:
    """Build options from a claims-file ``analyses`` entry."""
    raw = dict(raw)
    filters = Filters.from_mapping(raw.pop("selection", None))
    try:
        if kind == "dose-response":
            if "doses" in raw:
                raw["doses"] = tuple(float(x) for x in raw["doses"])
            if "compare" in raw:
                raw["compare"] = tuple(float(x) for x in raw["compare"])
            if "priors" in raw:
                raw["priors"] = _priors_option(kind, raw["priors"])
            return DoseOptions(filters=filters, **raw)
        if "times" in raw:
            raw["times"] = tuple(float(x) for x in raw["times"])
        if "priors" in raw:
            raw["priors"] = _priors_option(kind, raw["priors"])
        return TimeOptions(filters=filters, **raw)
    except TypeError as exc:
        raise SpecError(f"analyses/{kind}: {exc}") from None


def _priors_option(kind: str, raw: Any) -> tuple[tuple[str, float], ...]:
    from ..claims.spec import parse_priors

    return parse_priors(raw, kind, lambda msg: SpecError(f"analyses/{kind}: priors: {msg}"))


def _finish(doc: dict[str, Any], records: Records, settings: SamplerSettings,
            fit: Any, with_loo: bool) -> dict[str, Any]:  # DoseFit | TimeFit
    """Add what every fit document carries: diagnostics, priors, sampler, provenance, LOO."""
    doc.update({
        "diagnostics": fit.diagnostics.as_dict(), "priors": fit.priors.as_dict(),
        "sampler": settings.as_dict(),
        "provenance": {"data": records.path, "data_sha256": records.sha256,
                       "seed": settings.seed, "versions": fit.provenance["versions"],
                       "command": command_line()},
    })
    if with_loo:
        doc["loo"] = loo(fit.idata, fit.pymc_model)
    return rounded(doc)


def fit_dose(records: Records, opts: DoseOptions, settings: SamplerSettings):
    """Select the arms and fit one dose-response form; return (data, model, fit)."""
    data = select_dose_arms(records, opts.outcome, TimeWindow.around(opts.time_h, opts.window_h),
                            opts.filters, comparator=opts.comparator,
                            standardize=opts.standardize)
    model = DoseResponse(opts.form, hill=opts.hill, moderators=opts.moderators,
                         prior_overrides=opts.priors)
    return data, model, model.fit(data, settings, data_sha256=records.sha256)


def dose_document(records: Records, opts: DoseOptions, settings: SamplerSettings,
                  *, with_loo: bool = True, fitted=None) -> dict[str, Any]:
    """Fit one dose-response form (unless ``fitted``) and describe it (``--json``)."""
    data, model, fit = fitted or fit_dose(records, opts, settings)
    direction = trial_direction(opts.outcome, opts.direction)
    s = dose_summary(model, fit, doses=opts.doses, compare=opts.compare, delta=opts.delta,
                     threshold=opts.threshold, direction=direction)
    arms = data.arms.astype(object).where(data.arms.notna(), None).to_dict("records")
    doc = {
        "model": "dose-response", "form": opts.form, "hill": opts.hill,
        "outcome": opts.outcome, "treatment": data.treatment, "dose_unit": data.unit,
        "scale": "log odds" if data.binary else ("SMD" if data.standardized else "outcome"),
        "direction": "higher is better" if direction > 0 else "lower is better",
        "time_h": opts.time_h, "k": len(data.studies), "arms": len(data.arms),
        "n_total": int(data.arms["n"].sum()) if len(data.arms) else 0,
        "doses_observed": [float(x) for x in data.doses],
        **s, "data": arms, "dropped": data.dropped, "notes": data.notes,
    }
    if len(data.contrasts):
        doc["reported_contrasts"] = data.contrasts.to_dict("records")
    return _finish(doc, records, settings, fit, with_loo)


def fit_time(records: Records, opts: TimeOptions, settings: SamplerSettings):
    """Select the contrasts and fit one time-course form; return (data, model, fit)."""
    data = select_time_course(records, opts.outcome, opts.measure, opts.filters,
                              comparator=opts.comparator)
    cls = get_model_class(opts.model)
    if not (isinstance(cls, type) and issubclass(cls, TimeCourse)):
        raise SpecError(f"model '{opts.model}' is not a time-course model")
    form = opts.form if opts.form in cls.gate else next(iter(cls.gate))
    priors = replace(TimePriors(), **dict(opts.priors)) if opts.priors else None
    extra: dict[str, str] = {"timing": opts.timing} if opts.timing != "shared" else {}
    if opts.likelihood != "normal":
        extra["likelihood"] = opts.likelihood
    model = cls(form, rho=opts.rho, priors=priors, **extra)
    return data, model, model.fit(data, settings, data_sha256=records.sha256)


def time_document(records: Records, opts: TimeOptions, settings: SamplerSettings,
                  *, with_loo: bool = True, fitted=None) -> dict[str, Any]:
    """Fit one time-course form (unless ``fitted``) and describe it (``--json``)."""
    data, model, fit = fitted or fit_time(records, opts, settings)
    form = fit.form
    direction = trial_direction(opts.outcome, opts.direction)
    s = time_summary(model, fit, times=opts.times, threshold=opts.threshold,
                     fraction=opts.fraction, direction=direction)
    doc = {
        "model": opts.model, "form": form, "outcome": opts.outcome,
        "measure": opts.measure, "rho": opts.rho, "timing": opts.timing,
        "likelihood": opts.likelihood,
        "threshold": opts.threshold,
        "fraction": opts.fraction,
        "direction": "higher is better" if direction > 0 else "lower is better",
        "k": len(data.studies), "contrasts": len(data.contrasts), **s,
        "data": time_points_table(data), "dropped": data.dropped, "notes": data.notes,
    }
    return _finish(doc, records, settings, fit, with_loo)


def compare_forms(records: Records, kind: str, opts: DoseOptions | TimeOptions,
                  settings: SamplerSettings, forms: tuple[str, ...],
                  done: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Fit each form (except those in ``done``: form -> document) and rank by PSIS-LOO."""
    rows = []
    for form in forms:
        doc = (done or {}).get(form)
        if doc is None:
            o = replace(opts, form=form)
            fn = dose_document if kind == "dose-response" else time_document
            doc = fn(records, o, settings)
        loo = doc["loo"]
        k_max = loo.get("pareto_k_max")
        rows.append({"form": form, **loo, "diagnostics_passed": doc["diagnostics"]["passed"],
                     # PSIS-LOO with a Pareto k above 0.7 cannot rank this form
                     "loo_reliable": k_max is None or k_max <= 0.7})
    rows.sort(key=lambda r: -r["elpd_loo"])
    best = rows[0]["elpd_loo"]
    for r in rows:
        r["elpd_diff"] = best - r["elpd_loo"]
    return rounded({"model": kind, "comparison": rows,
                    "note": "elpd differences smaller than about 2 standard errors do not "
                            "separate the forms; Pareto-k warnings mean PSIS-LOO is unreliable "
                            "for some observations"})


class CurveFamily(BuiltinFamily):
    """A family with curve forms compared by PSIS-LOO in the report."""

    kind = ""

    def report_item(self, run: FamilyRun, fid: str, claim_ids: list[str]
                    ) -> tuple[str, dict[str, Any]]:
        """Show the curve with its plot in the family's curve section."""
        plot = "dose" if self.kind == "dose-response" else "time"
        return "curves", {"id": fid, "claims": claim_ids, "kind": self.kind, "doc": run.doc,
                          "svg": Figure(plot, {"doc": run.doc,
                                               "title": f"claims {', '.join(claim_ids)}"})}

    def form_table(self, records: Records, run: FamilyRun, settings: SamplerSettings
                   ) -> dict[str, Any] | None:
        """Fit the other forms on the run's selection and rank all by PSIS-LOO."""
        if run.curve_options is None:
            return None
        from .curves import compare_forms

        return compare_forms(records, self.kind, run.curve_options, settings,
                             self.forms(self.name), done={run.doc["form"]: run.doc})
