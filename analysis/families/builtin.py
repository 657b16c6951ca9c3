"""The five built-in model families, each implementing :class:`~.family.Family`.

Fitting code lives in the model modules and :mod:`runners`; these classes say what each
family offers to claims, the sweep, the report and ``calibrate``. Heavy imports stay
inside methods so that parsing a claims file stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SpecError
from .base import Family, FamilyRun, Figure

if TYPE_CHECKING:  # pragma: no cover
    from ..claims.spec import Claim
    from ..io.records import Records
    from ..sampling.settings import SamplerSettings

#: depression scales of the bundled data (dose-response and time-course SBC selections)
DEPRESSION_SCALES = ("MADRS", "HDRS", "HDRS17", "HDRS21", "HDRS24", "HDRS25", "HDRS28",
                     "HAMD6", "QIDS_SR16")


def _moderated(quantity: str, options: dict[str, Any]) -> bool:
    return quantity.startswith("beta:") and bool(options.get("moderators"))


def _events_into_arms(data: Any, simulated: dict[str, np.ndarray]) -> Any:  # noqa: ANN401
    """Return ``data`` whose arms hold the events the PyMC model simulated (SBC)."""
    from dataclasses import replace

    return replace(data, arms=data.arms.assign(events=np.asarray(simulated["events"], int)))




def _agent_quantity_problem(quantity: str, known: tuple[str, ...]) -> str | None:
    """Say what is wrong with a multi-agent quantity, or None."""
    parts = quantity.split(":")
    shapes = {"effect_at": 3, "ed50": 2, "emax": 2, "equivalent": 4}
    if quantity == "tau":
        return None
    if parts[0] in shapes and len(parts) == shapes[parts[0]] and all(parts):
        if parts[0] in ("effect_at", "equivalent"):
            try:
                if float(parts[2]) <= 0:
                    return f"the dose in '{quantity}' must be positive"
            except ValueError:
                return f"'{parts[2]}' in '{quantity}' is not a dose"
        return None
    return (f"multi-agent dose-response has no quantity '{quantity}'; known: "
            f"{', '.join(known)}")


class _Builtin(Family):
    """A built-in family: ``run`` calls the runner named ``runner`` in :mod:`runners`."""

    runner = ""

    def run(self, records: Records, claim: Claim, settings: SamplerSettings, *,
            documents: bool = True) -> FamilyRun:
        """Select the claim's records and fit (see the runner in :mod:`runners`)."""
        from . import runners

        return getattr(runners, self.runner)(records, claim, settings, documents=documents)


class _Moderated(_Builtin):
    """A family whose claims may judge moderator coefficients ``beta:NAME``."""

    def check_quantity(self, quantity: str, options: dict[str, Any]) -> str | None:
        """Also accept ``beta:NAME`` when the claim has moderators."""
        said = super().check_quantity(quantity, options)
        if said is None or _moderated(quantity, options):
            return None
        return f"{said} (beta:NAME needs moderators)"


class PooledRateFamily(_Moderated):
    """Random-effects logistic pooling of one arm type's response or remission rate."""

    name = "pooled-rate"
    runner = "run_pooled_rate"
    description = "hierarchical logistic pooling of single-arm response/remission rates"
    outcomes = ("response", "remission")
    quantities = ("pooled_rate", "predictive_rate", "tau", "mu_logit")
    prior_settings = ("mu_mean", "mu_sd", "tau_scale")
    prior_cells = (("mu_sd", 2.0),)
    tau_prior = True
    sbc_quantities = (("mu", "mu", None), ("tau", "tau", None),
                      ("pooled_rate", "pooled_rate", None), ("theta[first arm]", "theta", 0))

    def default_prior(self, claim: Claim, setting: str) -> float:
        """Return the default of a pooled-rate prior setting."""
        from ..models.pooled_rate import PooledRatePriors

        return float(getattr(PooledRatePriors(), setting))

    def report_item(self, run: FamilyRun, fid: str, claim_ids: list[str]
                    ) -> tuple[str, dict[str, Any]]:
        """Show the fit in "Pooled rates" with a forest plot."""
        r = run.extra["run"]
        label = f"claims {', '.join(claim_ids)}"
        image = Figure("forest", {"arms": r.summary.arms, "estimates": r.summary.estimates,
                                  "outcome": r.outcome,
                                  "title": f"{r.outcome} at {r.window.target_h:g} h ({label})"})
        return "fits", {"id": fid, "claims": claim_ids, "doc": run.doc, "svg": image}

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:  # noqa: ANN401
        """Select the response arms of the spec's treatments."""
        from ..models.pooled_rate import PooledRate
        from ..select.filters import Filters, TimeWindow, select_binary_arms

        model = PooledRate()
        data = model.prepare(select_binary_arms(records, spec.outcome,
                                                TimeWindow.around(spec.time_h),
                                                Filters(treatment=spec.treatments)))
        return model, data, data.k_studies

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:  # noqa: ANN401
        """Put the simulated events into the arms."""
        from ..select.filters import BinaryArms

        t = data.table.assign(events=np.asarray(simulated["events"], int))
        return BinaryArms(data.outcome, t, list(data.dropped))


class ContrastFamily(_Moderated):
    """Random-effects pooling of active-vs-control contrasts (arm-based for counts)."""

    name = "contrast"
    runner = "run_contrast"
    description = "random-effects meta-analysis of active-vs-control contrasts"
    quantities = ("effect", "predictive_effect", "tau", "or", "rr", "rd", "control_rate")
    prior_settings = ("effect_sd", "baseline_sd")
    prior_cells = (("effect_sd", 2.0), ("baseline_sd", 2.0))
    tau_prior = True
    sbc_quantities = (("d", "d", None), ("tau", "tau", None),
                      ("delta[first contrast]", "delta", 0))

    def default_prior(self, claim: Claim, setting: str) -> float:
        """Return the default of a contrast prior setting for the claim's measure."""
        from ..models.contrast import default_priors

        measure = claim.option("measure", "SMD" if claim.outcome == "change" else "OR")
        return float(getattr(default_priors(measure), setting))

    def report_item(self, run: FamilyRun, fid: str, claim_ids: list[str]) -> None:
        """No section of its own: the report's contrast section shows these pools."""
        return None

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:  # noqa: ANN401
        """Select the contrasts of the spec's treatments."""
        from ..models.contrast import Contrast
        from ..select.contrasts import select_contrasts
        from ..select.filters import Filters, TimeWindow

        data = select_contrasts(records, spec.outcome, spec.measure,
                                TimeWindow.around(spec.time_h),
                                Filters(treatment=spec.treatments))
        return Contrast(), data, data.k_studies

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:  # noqa: ANN401
        """Put the simulated active and control events into the 2x2 tables."""
        from dataclasses import replace

        c = data.contrasts
        s_idx = c["study"].map({s: i for i, s in enumerate(data.studies)}).to_numpy()
        y_c = np.asarray(simulated["events_control"], int)[s_idx]
        a = np.asarray(simulated["events_active"], int)
        c = c.assign(a=a, b=(c["a"] + c["b"]).to_numpy() - a, c=y_c,
                     d=(c["c"] + c["d"]).to_numpy() - y_c)
        return replace(data, contrasts=c)


class _CurveFamily(_Builtin):
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
        if "opts" not in run.extra:
            return None
        from .curves import compare_forms

        return compare_forms(records, self.kind, run.extra["opts"], settings,
                             self.forms(self.name), done={run.doc["form"]: run.doc})


class DoseResponseFamily(_CurveFamily):
    """Emax (and other forms) dose-response over arms at several doses."""

    name = kind = "dose-response"
    runner = "run_dose_response"
    description = ("dose-response curve (Emax, log-linear, linear, piecewise) across doses, "
                   "or Emax curves of several agents (agents:)")
    quantities = ("ed50", "theta", "tau", "effect_at:DOSE", "difference:LOW:HIGH")
    prior_settings = ("amplitude_sd", "tau_scale", "ed50_sd", "hill_sd", "baseline_sd")
    prior_cells = (("ed50_sd", 2.0), ("amplitude_sd", 2.0), ("tau_scale", 2.0))
    sbc_quantities = (("theta", "theta", None), ("tau", "tau", None), ("ed50", "ed50", None))

    options = frozenset({"agents", "ed50", "emax", "inert"})
    AGENT_QUANTITIES = ("effect_at:AGENT:DOSE", "ed50:AGENT", "emax:AGENT",
                        "equivalent:AGENT:DOSE:OTHER", "tau")

    def forms(self, model: str, options: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Return the dose-response forms (none for the multi-agent Emax network)."""
        from ..models.dose_response import FORMS

        return () if (options or {}).get("agents") else tuple(FORMS)

    def check_options(self, options: dict[str, Any], fail: Any) -> None:  # noqa: ANN401
        """Check the multi-agent fields: agents, ED50 and Emax pooling, inert controls."""
        from ..models.dose_agents import ED50_POOLING, EMAX_POOLING

        if "agents" not in options:
            for key in ("ed50", "emax", "inert"):
                if key in options:
                    raise fail(key, "only multi-agent claims (with 'agents') take it")
            return
        v = options["agents"]
        names = v if isinstance(v, list) else [v]
        if not names or not all(isinstance(x, str) for x in names):
            raise fail("agents", "must be 'all' or a list of agent names")
        options["agents"] = "all" if names == ["all"] else tuple(names)
        for key, allowed in (("ed50", ED50_POOLING), ("emax", EMAX_POOLING)):
            if options.get(key, allowed[0]) not in allowed:
                raise fail(key, f"use {' or '.join(allowed)}")
        if "inert" in options:
            inert = options["inert"] if isinstance(options["inert"], list) \
                else [options["inert"]]
            if not all(isinstance(x, str) for x in inert):
                raise fail("inert", "must be a name or a list of names")
            options["inert"] = tuple(inert)
        if "form" in options or "hill" in options:
            raise fail("form", "the multi-agent network fits Emax curves (no form or hill)")

    def check_quantity(self, quantity: str, options: dict[str, Any]) -> str | None:
        """Also accept ``effect_at:DOSE``, ``difference:LOW:HIGH`` and moderators' ``beta``.

        A multi-agent claim names the agent: ``effect_at:AGENT:DOSE``, ``ed50:AGENT``,
        ``emax:AGENT``, ``equivalent:AGENT:DOSE:OTHER`` or ``tau``.
        """
        if options.get("agents"):
            return _agent_quantity_problem(quantity, self.AGENT_QUANTITIES)
        head, _, rest = quantity.partition(":")
        try:
            if head == "effect_at":
                float(rest)
                return None
            if head == "difference":
                lo, hi = (float(x) for x in rest.split(":"))
                return None if lo < hi else "difference:LOW:HIGH needs LOW < HIGH"
        except ValueError:
            pass
        if _moderated(quantity, options):
            return None
        return super().check_quantity(quantity, options)

    def run(self, records: Records, claim: Claim, settings: SamplerSettings, *,
            documents: bool = True) -> FamilyRun:
        """Fit the curve, or the multi-agent network (:mod:`runners`)."""
        from .runners import run_agent_doses, run_dose_response

        if claim.option("agents"):
            return run_agent_doses(records, claim, settings, documents=documents)
        return run_dose_response(records, claim, settings, documents=documents)

    def report_item(self, run: FamilyRun, fid: str, claim_ids: list[str]
                    ) -> tuple[str, dict[str, Any]]:
        """Show the curve; a multi-agent network gets a section of its own."""
        if "agents" in run.extra:
            return "sections", {"renderer": "agents", "doc": run.doc, "id": fid,
                                "claims": claim_ids}
        return super().report_item(run, fid, claim_ids)

    def default_prior(self, claim: Claim, setting: str) -> float:
        """Return the default (unscaled: claims fit counts or SMDs) of a prior setting."""
        from ..models.dose_response import DosePriors

        if claim.option("agents"):
            from ..models.dose_agents import claim_prior_value

            return claim_prior_value("MD" if claim.outcome == "change" else "OR", setting)

        return float(getattr(DosePriors(), setting))

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:  # noqa: ANN401
        """Select IV arms of the first treatment at several doses, depression scales."""
        from ..models.dose_response import DoseResponse
        from ..select.doses import select_dose_arms
        from ..select.filters import Filters, TimeWindow

        data = select_dose_arms(records, spec.outcome, TimeWindow.around(spec.time_h),
                                Filters(treatment=spec.treatments[:1], route=("iv",),
                                        scale=DEPRESSION_SCALES))
        return DoseResponse("emax"), data, len(data.studies)

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:  # noqa: ANN401
        """Put the simulated events into the arms."""
        return _events_into_arms(data, simulated)


class TimeCourseFamily(_CurveFamily):
    """Rise-and-decay (and other) curves over the hours after one dose."""

    name = kind = "time-course"
    runner = "run_time_course"
    description = "time course of the effect after one dose (Bateman, piecewise, plug-ins)"
    timed = False
    quantities = ("onset_h", "time_to_peak_h", "duration_h", "peak", "effect_at:HOURS")
    options = frozenset({"rho", "timing", "timing_group", "likelihood"})
    prior_settings = ("peak_sd", "t_rise", "t_decay", "t_sd", "tau_scale")
    prior_cells = (("t_rise", 3.0), ("t_decay", 3.0), ("peak_sd", 2.0), ("tau_scale", 2.0))
    sbc_quantities = (("peak", "peak", None), ("t_rise", "t_rise", None),
                      ("t_decay", "t_decay", None), ("tau", "tau", None))
    RHOS = (0.2, 0.8)

    def forms(self, model: str, options: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Return the forms of the claim's model (a plug-in names its own)."""
        from ..models import get_model_class

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

    def check_options(self, options: dict[str, Any], fail: Any) -> None:  # noqa: ANN401
        """Check rho, the likelihood and the timing groups."""
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

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:  # noqa: ANN401
        """Select change-score SMD contrasts on depression scales."""
        from ..models.time_course import TimeCourse
        from ..select.contrasts import select_time_course
        from ..select.filters import Filters

        data = select_time_course(records, "change", "SMD",
                                  Filters(treatment=spec.treatments, scale=DEPRESSION_SCALES,
                                          mean_type=("change",)))
        return TimeCourse("bateman"), data, data.k_studies

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:  # noqa: ANN401
        """Undo the whitening the model observes (W y) and store the contrasts."""
        from dataclasses import replace

        from scipy.linalg import solve_triangular

        from ..models.time_course import sampling_structure

        w = sampling_structure(data, rho).dense()
        y = solve_triangular(w, np.asarray(simulated["y"], float), lower=True,
                             unit_diagonal=True)
        return replace(data, contrasts=data.contrasts.assign(yi=y))


class NetworkFamily(_Builtin):
    """Arm-based random-effects network meta-analysis (NICE TSD2)."""

    name = "network"
    runner = "run_network"
    description = "network meta-analysis: every treatment against every other"
    quantities = ("effect:A", "effect:A:B", "tau", "sucra:A")
    options = frozenset({"reference", "node", "inert"})
    prior_settings = ("effect_sd", "baseline_sd")
    prior_cells = (("effect_sd", 2.0), ("baseline_sd", 2.0))
    tau_prior = True

    def check_quantity(self, quantity: str, options: dict[str, Any]) -> str | None:
        """Accept ``effect:A`` (vs the reference), ``effect:A:B``, ``sucra:A`` and tau."""
        head, _, rest = quantity.partition(":")
        parts = rest.split(":") if rest else []
        if quantity == "tau" or (head == "sucra" and len(parts) == 1) or (
                head == "effect" and len(parts) in (1, 2) and len(set(parts)) == len(parts)):
            return None
        return super().check_quantity(quantity, options)

    def check_options(self, options: dict[str, Any], fail: Any) -> None:  # noqa: ANN401
        """Check the reference, the node kind and the inert controls."""
        from ..models.network import NODES

        for key in ("reference", "node"):
            if key in options and not isinstance(options[key], str):
                raise fail(key, f"must be text, got {options[key]!r}")
        if options.get("node", "treatment") not in NODES:
            raise fail("node", f"use one of {', '.join(NODES)}")
        if "inert" in options:
            v = options["inert"]
            names = v if isinstance(v, list) else [v]
            if len(names) < 2 or not all(isinstance(x, str) for x in names):
                raise fail("inert", "must be a list of two or more treatment names")
            options["inert"] = tuple(names)
        if options.get("measure", "OR") not in ("OR", "MD"):
            raise fail("measure", "network claims use OR (counts) or MD (change)")

    def default_prior(self, claim: Claim, setting: str) -> float:
        """Return the default of a network prior setting for the claim's measure."""
        from ..models.network import default_network_priors

        measure = claim.option("measure", "MD" if claim.outcome == "change" else "OR")
        return float(getattr(default_network_priors(measure), setting))

    sbc_quantities = (("d[first treatment]", "d_free", 0), ("tau", "tau", None),
                      ("mu[first study]", "mu", 0))

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:  # noqa: ANN401
        """Select the depression network: treatments as nodes, inert controls pooled."""
        from ..models.network import Network, select_network
        from ..select.filters import Filters, TimeWindow

        data = select_network(records, spec.outcome, "OR", TimeWindow.around(spec.time_h),
                              Filters(domain=("depression",)), reference="placebo",
                              node="treatment", inert=("placebo", "saline"))
        return Network(), data, len(data.studies)

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:  # noqa: ANN401
        """Put the simulated events into the arms."""
        return _events_into_arms(data, simulated)

    def report_item(self, run: FamilyRun, fid: str, claim_ids: list[str]
                    ) -> tuple[str, dict[str, Any]]:
        """Graph, effects with SUCRA, league table and the inconsistency checks."""
        return "sections", {"renderer": "network", "doc": run.doc, "id": fid,
                            "claims": claim_ids}


def claim_options() -> dict[str, tuple[str, ...]]:
    """Map each family-specific claim field to the families that take it."""
    from .base import get_family, registry

    out: dict[str, list[str]] = {}
    for name in registry():
        try:
            fam = get_family(name)
        except SpecError:
            continue  # a broken plug-in is reported when a claim names it
        for key in fam.options:
            out.setdefault(key, []).append(name)
    return {k: tuple(v) for k, v in out.items()}
