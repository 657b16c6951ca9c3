"""The model-family protocol: what a family implements to be claimed, swept and reported.

A family turns records and a claim into a :class:`FamilyRun` (the fit's JSON document,
posterior and prior draws of named quantities, the studies used, and an identifiability
check) and says which claim fields, quantities, prior settings, curve forms and sweep
cells it offers, how the report shows it, and how to simulate its data for
simulation-based calibration. The claims engine, ``sweep``, ``calibrate`` and the report
only ever call these methods, so a plug-in family works everywhere a built-in one does.

Families (and model classes) are found by name in the one registry,
:mod:`trialmeta.analysis.families.registry`. See ``docs/extending.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from ..claims.spec import Claim
    from ..io.records import Records
    from ..sampling.settings import SamplerSettings


@dataclass
class FamilyRun:
    """One fit behind one or more claims.

    Attributes
    ----------
    family : str
        The family's name.
    doc : dict or None
        The fit's JSON document (None when too few studies were selected or documents were
        off).
    studies : list of str
        The studies the fit used.
    draws : callable, optional
        ``draws(quantity, claim)``: posterior draws (None: the fit cannot express the
        quantity, and ``unidentified`` says why).
    unidentified : callable
        ``unidentified(quantity, claim)``: why the data cannot inform a quantity, or None.
    diagnostics_passed : bool or None
        Whether the fit passed its convergence gate (None: no sampler ran).
    prior_draws : callable, optional
        ``prior_draws(quantity, claim)``: the same quantity under the prior.
    posterior : object, optional
        The posterior (InferenceData or stored draws) the report saves under ``fits/``.
    reason : str, optional
        Why nothing was fitted (the selection failed), shown before the verdict's reason.
    curve_options : object, optional
        A curve family's options (``DoseOptions`` or ``TimeOptions``): the report fits the
        other forms on the same selection for its PSIS-LOO table.
    pooled_run : object, optional
        The pooled-rate run behind the report's forest plot.
    agents : tuple of str, optional
        The agents of a multi-agent dose-response network (shown in a section of its own).
    informing : callable, optional
        ``informing(quantity, claim)``: the studies whose data inform that quantity (a time
        to peak needs a study with more than one time point; a decay, data after the peak).
        ``min_studies`` counts these, not every study in the fit. None: all of ``studies``.
    fast_refits : bool
        The model has a precompiled kernel for these data, so refitting it without one
        study takes well under a second: the evaluator then checks each directional
        verdict's fragility by leaving every study out in turn.
    doubt : callable, optional
        ``doubt(quantity, claim)``: ``(qualifier, why)`` when the data contradict themselves
        about the quantity (a network's direct and indirect evidence disagree), which caps
        a supported or contradicted verdict at ``inconclusive (qualifier)``; else None.
    """

    family: str
    doc: dict[str, Any] | None
    studies: list[str]
    draws: Callable[[str, Claim], np.ndarray | None] | None = None
    unidentified: Callable[[str, Claim], str | None] = lambda q, c: None
    diagnostics_passed: bool | None = None
    prior_draws: Callable[[str, Claim], np.ndarray | None] | None = None
    posterior: Any = None
    reason: str | None = None
    curve_options: Any = None
    pooled_run: Any = None
    agents: tuple[str, ...] | None = None
    informing: Callable[[str, Claim], list[str]] | None = None
    doubt: Callable[[str, Claim], tuple[str, str] | None] | None = None
    fast_refits: bool = False


@dataclass(frozen=True)
class Figure:
    """A figure a family asks the report to draw: the plot's name and its inputs (data).

    Families hand the report data, never drawings: the report looks ``plot`` up among its
    drawing functions (``forest``, ``dose``, ``time``; see ``report.plots.FIGURES``) and
    draws ``plot(**inputs)``, cached by the inputs.
    """

    plot: str
    inputs: dict[str, Any]


class Family(ABC):
    """A model family. Subclass it and override what your family offers.

    Attributes
    ----------
    name, description
        The name claims use in ``model:`` and a one-line description.
    outcomes
        The outcomes a claim may name.
    timed
        Whether a claim gives ``time_h`` (a time window); a time course spans all times.
    time_optional
        A timed family whose claims may leave ``time_h`` out: then every row is used,
        unwindowed (records without time points, such as metafor's data sets).
    quantities
        The quantities a claim may judge; a pattern with a ``:NAME`` part is checked by
        :meth:`check_quantity`.
    options
        Claim fields this family takes beyond the common ones (``measure``, ``priors``,
        ``tau_prior``...).
    prior_settings
        Keys a claim's ``priors:`` mapping may change (scales must be positive).
    prior_cells
        ``(setting, factor)`` pairs the sweep divides and multiplies by.
    tau_prior
        Whether the sweep's ``prior`` cells (tau's half-normal scale) apply.
    """

    name = ""
    description = ""
    outcomes: tuple[str, ...] = ("response", "remission", "events", "change")
    timed = True
    time_optional = False
    quantities: tuple[str, ...] = ()
    options: frozenset[str] = frozenset()
    prior_settings: tuple[str, ...] = ()
    prior_cells: tuple[tuple[str, float], ...] = ()
    tau_prior = False
    #: SBC: (label, posterior variable, flat index or None) checked by ``calibrate``
    sbc_quantities: tuple[tuple[str, str, int | None], ...] = ()

    def forms(self, model: str, options: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Return the curve forms a claim's ``form`` may name (none: no curve)."""
        return ()

    def check_quantity(self, quantity: str, options: dict[str, Any]) -> str | None:
        """Return a message if ``quantity`` is not one this family can compute."""
        if quantity in self.quantities:
            return None
        return (f"model {self.name} has no quantity '{quantity}'; known: "
                f"{', '.join(self.quantities)}")

    def check_options(self, options: dict[str, Any], fail: Callable[[str, str], Exception]
                      ) -> None:
        """Check and normalise this family's own claim fields in place (default: none)."""
        return None

    @abstractmethod
    def run(self, records: Records, claim: Claim, settings: SamplerSettings, *,
            documents: bool = True) -> FamilyRun:
        """Select the claim's records, fit, and return the run (``doc`` None: too few)."""

    #: a time that derived quantities count as "never reached" beyond (``> bound h``)
    censor_bound_h: float | None = None

    def measure(self, claim: Claim) -> str | None:
        """Return the effect measure a claim is judged on (None: the family has none)."""
        return claim.option("measure")

    def describe_priors(self, model: str, priors: dict[str, Any], measure: str) -> str | None:
        """Write a fit's priors out as distributions for the report (None: list the values)."""
        return None

    def default_prior(self, claim: Claim, setting: str) -> float:
        """Return the value a fit uses for a prior setting the claim does not set."""
        raise SpecError(f"family {self.name} has no prior setting '{setting}'")

    def sweep_cells(self) -> list[tuple[str, str]]:
        """``(kind, value)`` sweep cells of this family beyond the common ones."""
        return []

    def vary(self, claim: Claim, kind: str, value: str, options: dict[str, Any]) -> bool:
        """Apply one of this family's own sweep cells to ``options``; False: no change."""
        return False

    def report_item(self, run: FamilyRun, fid: str, claim_ids: list[str]
                    ) -> tuple[str, dict[str, Any]] | None:
        """Where the report shows a run and what: ``(section, item)``, or None.

        ``section`` is ``fits``, ``curves`` or ``sections``. The item is data: a figure is a
        :class:`Figure` under ``svg``, and a section the report builds itself names its
        ``renderer`` (``agents``, ``network``) and hands it ``doc``, ``id`` and ``claims``.
        The default is a generic section: a table of the document's ``estimates``.
        """
        rows = [{"quantity": q, **e} for q, e in (run.doc or {}).get("estimates", {}).items()
                if isinstance(e, dict) and e]
        table = {"caption": "Posterior estimates", "columns":
                 ["quantity", "median", "ci_low", "ci_high"], "rows": rows}
        return "sections", {"id": fid, "claims": claim_ids, "family": self.name,
                            "heading": f"{self.name} (claims {', '.join(claim_ids)})",
                            "text": self.description, "svg": None, "tables": [table]}

    def form_table(self, records: Records, run: FamilyRun, settings: SamplerSettings
                   ) -> dict[str, Any] | None:
        """Return the report's PSIS-LOO table of the run's other forms (None: no forms)."""
        return None

    def sbc_build(self, spec: Any, records: Records) -> tuple[Any, Any, int]:
        """SBC: return (a model object with ``build``/``fit``, its data, number of studies)."""
        raise SpecError(f"calibrate has no simulator for the {self.name} family")

    def sbc_observe(self, data: Any, simulated: dict[str, np.ndarray], rho: float = 0.5
                    ) -> Any:
        """SBC: return ``data`` carrying the observations simulated by the PyMC model."""
        raise SpecError(f"calibrate has no simulator for the {self.name} family")
