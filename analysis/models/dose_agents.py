"""Multi-agent dose-response network (MBNMA; Mawdsley et al. 2016, MBNMAdose's Emax model).

Every arm is an agent at a dose, or the shared inert control (placebo, saline: dose 0 of
every agent). Arm-based, like the network model (NICE TSD2), with the relative effect of
arm k against its study's baseline arm b given by the agents' Emax curves::

    binary:      events_ik ~ Bin(n_ik, logit^-1(mu_i + delta_ik))
    continuous:  y_ik ~ Normal(mu_i + delta_ik, se_ik)
    delta_ik = f(a_k, x_k) - f(a_b, x_b) + tau (w_s u_i + w_o e_ik),  delta_ib = 0
    f(a, x) = Emax_a x / (ED50_a + x),   f(control) = 0

with the multi-arm correlation 0.5 of the network model. Doses are in each agent's own
unit. Pooling:

- ``emax="fixed"``: an independent Emax per agent (MBNMAdose's ``emax = "rel"``);
  ``emax="random"``: Emax_a ~ Normal(E, sd_emax), exchangeable across agents.
- ``ed50="per-agent"``: one ED50 per agent; ``ed50="common"``: one ED50 for all (only
  meaningful when doses are on a common, standardised scale).

Default priors: Emax (or E) ~ Normal(0, 2.5) on the log-odds scale (Normal(0, 10) for raw
mean differences); sd_emax ~ HalfNormal(1); log ED50_a ~ Normal(log of agent a's middle
observed dose, 1) (common: the middle of all doses); mu_i ~ Normal(0, 2.5); tau as
``--tau-prior``. ``ed50_prior="half-normal"`` puts ED50 ~ HalfNormal(ed50_scale) on the
natural scale instead, and ``tau_upper`` a Uniform(0, upper) prior on tau (MBNMAdose's
defaults). Sampled with PyMC's model through nutpie (no hand-written kernel yet).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..sampling.inference import (
    Diagnostics,
    flat,
    summarize_draws,
)
from ..sampling.settings import SamplerSettings
from ..stats.priors import HeterogeneityPrior
from .base import Model
from .network import Network, NetworkData, arm_likelihood, select_network

if TYPE_CHECKING:  # pragma: no cover
    from ..io.records import Records
    from ..select.filters import Filters, TimeWindow

EMAX_POOLING = ("fixed", "random")
ED50_POOLING = ("per-agent", "common")
INERT = ("placebo", "saline")


@dataclass
class AgentDoseData:
    """A connected network of arms, each an agent at a dose or the shared control."""

    network: NetworkData
    agents: list[str]
    agent_index: np.ndarray  # per arm: agent index, -1 for the control
    dose: np.ndarray  # per arm: dose in the agent's unit (0 for the control)
    units: dict[str, str]
    dropped: list[dict[str, object]] = field(default_factory=list)

    @property
    def studies(self) -> list[str]:
        """Study keys in order."""
        return self.network.studies

    @property
    def binary(self) -> bool:
        """True for response or remission counts."""
        return self.network.binary

    def observed_doses(self, agent: str) -> list[float]:
        """Return the doses of ``agent`` that some arm received."""
        j = self.agents.index(agent)
        return sorted({float(x) for x in self.dose[self.agent_index == j]})


def select_agent_doses(records: Records, outcome: str, measure: str, window: TimeWindow,
                       filters: Filters, *, inert: tuple[str, ...] = INERT
                       ) -> AgentDoseData:
    """Select arms as agent-and-dose nodes around one shared inert control.

    An arm without a dose (flexible dosing) cannot sit on a curve: it is left out, and a
    study left with one arm goes with it.
    """
    t = records.table
    present = [x for x in inert if x in set(t["treatment"])]
    if not present:
        raise SpecError(f"no arm of an inert control ({', '.join(inert)}): the agents' "
                        "curves need a shared placebo")
    data = select_network(records, outcome, measure, window, filters, reference=present[0],
                          node="treatment+dose", inert=tuple(present), dosed=True)
    arms = data.arms
    control = arms["node"] == data.reference
    agents = sorted(set(arms.loc[~control, "treatment"]))
    index = np.array([-1 if c else agents.index(a)
                      for a, c in zip(arms["treatment"], control, strict=True)])
    dose = np.where(control, 0.0, pd.to_numeric(arms["dose"], errors="coerce").fillna(0.0))
    unit_of = t.groupby("treatment")["dose_unit"].first()  # the first unit given
    units = {a: "" if pd.isna(unit_of.get(a)) else str(unit_of[a]) for a in agents}
    if (dose[index >= 0] <= 0).any():
        raise SpecError("an agent arm has dose 0: give control arms an inert treatment name "
                        f"({', '.join(inert)})")
    return AgentDoseData(data, agents, index, dose.astype(float), units, list(data.dropped))


@dataclass(frozen=True)
class AgentDosePriors:
    """Priors of the multi-agent Emax model (see the module docstring)."""

    emax_sd: float = 2.5
    emax_tau_scale: float = 1.0
    ed50_sd: float = 1.0
    baseline_sd: float = 2.5
    tau: HeterogeneityPrior = HeterogeneityPrior()
    ed50_prior: str = "lognormal"  # or "half-normal" (natural scale, ed50_scale)
    ed50_scale: float = 100.0
    tau_upper: float | None = None  # Uniform(0, tau_upper) on tau instead of ``tau``

    def as_dict(self) -> dict[str, object]:
        """Return the priors as a JSON-ready dict."""
        d = asdict(self)
        d["tau"] = self.tau.as_dict()
        return d


def default_agent_priors(measure: str) -> AgentDosePriors:
    """Log-odds scale defaults; wider ones for raw mean differences."""
    if measure == "MD":
        return AgentDosePriors(emax_sd=10.0, emax_tau_scale=5.0, baseline_sd=50.0,
                               tau=HeterogeneityPrior("half-normal", 5.0, 0.0,
                                                      "half-normal(5) on tau"))
    return AgentDosePriors()


#: a dose-response claim's prior settings, as they apply to the multi-agent model
CLAIM_PRIORS = {"amplitude_sd": "emax_sd", "tau_scale": "tau", "ed50_sd": "ed50_sd",
                "baseline_sd": "baseline_sd"}


def claim_priors(measure: str, overrides: tuple[tuple[str, float], ...] = ()
                 ) -> AgentDosePriors:
    """Return the default priors with a claim's ``priors`` settings applied."""
    pr = default_agent_priors(measure)
    for key, value in overrides:
        if key not in CLAIM_PRIORS:
            raise SpecError(f"the multi-agent Emax model has no prior setting '{key}' (it takes "
                            f"{', '.join(CLAIM_PRIORS)})")
        if key == "tau_scale":
            pr = replace(pr, tau=HeterogeneityPrior("half-normal", value, 0.0,
                                                    f"half-normal({value:g}) on tau"))
        else:
            pr = replace(pr, **{CLAIM_PRIORS[key]: value})
    return pr


def claim_prior_value(measure: str, setting: str) -> float:
    """Return the default value behind a claim's prior setting (what the sweep scales)."""
    pr = default_agent_priors(measure)
    if setting == "tau_scale":
        return pr.tau.scale
    if setting not in CLAIM_PRIORS:
        raise SpecError(f"the multi-agent Emax model has no prior setting '{setting}'")
    return float(getattr(pr, CLAIM_PRIORS[setting]))


@dataclass
class AgentDoseFit:
    """A fitted multi-agent dose-response network."""

    idata: Any
    data: AgentDoseData
    priors: AgentDosePriors
    settings: SamplerSettings
    diagnostics: Diagnostics
    ed50: str
    emax: str
    provenance: dict[str, Any]


class AgentDose(Model):
    """Emax curve per agent over a network of trials sharing an inert control."""

    name = "dose-response-agents"

    def __init__(self, priors: AgentDosePriors | None = None, *, ed50: str = "per-agent",
                 emax: str = "fixed"):
        if ed50 not in ED50_POOLING:
            raise SpecError(f"--ed50 takes {' or '.join(ED50_POOLING)}, not '{ed50}'")
        if emax not in EMAX_POOLING:
            raise SpecError(f"--emax takes {' or '.join(EMAX_POOLING)}, not '{emax}'")
        self.priors, self.ed50, self.emax = priors, ed50, emax

    def priors_for(self, data: AgentDoseData) -> AgentDosePriors:
        """Return the priors used on ``data``."""
        return self.priors or default_agent_priors(data.network.measure)

    def _middle_doses(self, data: AgentDoseData) -> np.ndarray:
        """Return the middle observed dose of each ED50: per agent, or of all doses (common)."""
        if self.ed50 == "common":
            return np.array([np.median(data.dose[data.agent_index >= 0])])
        return np.array([np.median(data.observed_doses(a)) for a in data.agents])

    def _ed50_index(self, data: AgentDoseData) -> np.ndarray:
        """Return each agent's ED50 parameter: its own, or the common one (index 0)."""
        n = len(data.agents)
        return np.zeros(n, dtype=int) if self.ed50 == "common" else np.arange(n)

    def prior_draws(self, data: AgentDoseData, n: int, rng: np.random.Generator
                    ) -> CurveDraws:
        """Draw Emax, ED50 and tau from their priors (the densities :meth:`build` uses)."""
        from ..stats.priors import sample_tau

        pr = self.priors_for(data)
        centre = np.log(self._middle_doses(data))
        n_a, n_e = len(data.agents), len(centre)
        if self.emax == "random":
            emax = (rng.normal(0, pr.emax_sd, (n, 1))
                    + np.abs(rng.normal(0, pr.emax_tau_scale, (n, 1)))
                    * rng.normal(0, 1, (n, n_a)))
        else:
            emax = rng.normal(0, pr.emax_sd, (n, n_a))
        if pr.ed50_prior == "half-normal":
            ed50 = np.abs(rng.normal(0, pr.ed50_scale, (n, n_e)))
        else:
            ed50 = np.exp(rng.normal(centre, pr.ed50_sd, (n, n_e)))
        tau = (rng.uniform(0, pr.tau_upper, n) if pr.tau_upper is not None
               else sample_tau(pr.tau, n, rng))
        return CurveDraws(data.agents, emax, ed50, tau)

    def build(self, data: AgentDoseData):  # a PyMC model
        """Build the PyMC model (no sampling)."""
        import pymc as pm
        import pytensor.tensor as pt

        net = data.network
        st = Network._structure(net)
        pr = self.priors_for(data)
        arms = net.arms
        labels = [f"{s} {n}" for s, n in zip(arms["study"], arms["node"], strict=True)]
        coords = {"study": net.studies, "agent": data.agents, "arm": labels}
        middle = self._middle_doses(data)
        of_agent = self._ed50_index(data)
        with pm.Model(coords=coords) as model:
            if self.emax == "random":  # non-centred, exchangeable across agents
                centre = pm.Normal("emax_mean", 0.0, pr.emax_sd)
                spread = pm.HalfNormal("emax_sd", pr.emax_tau_scale)
                z = pm.Normal("emax_z", 0.0, 1.0, dims="agent")
                emax = pm.Deterministic("emax", centre + spread * z, dims="agent")
            if pr.ed50_prior == "half-normal":
                ed50 = pm.HalfNormal("ed50", pr.ed50_scale, shape=len(middle))
            else:
                log_ed50 = pm.Normal("log_ed50", np.log(middle), pr.ed50_sd,
                                     shape=len(middle))
                ed50 = pm.Deterministic("ed50", pt.exp(log_ed50))
            if self.emax == "fixed":
                # sampled as each agent's effect at its middle dose m (Emax and ED50 are
                # strongly correlated, that effect much less): Emax = E_m (ED50 + m) / m,
                # with Emax's own Normal prior and the Jacobian (ED50 + m) / m
                m = middle[of_agent]
                mid = pm.Flat("effect_mid", dims="agent")
                scale = (ed50[of_agent] + m) / m
                emax = pm.Deterministic("emax", mid * scale, dims="agent")
                pm.Potential("emax_prior", pm.logp(pm.Normal.dist(0.0, pr.emax_sd), emax).sum()
                             + pt.log(scale).sum())
            agent = np.maximum(data.agent_index, 0)
            dose = data.dose
            ed50_arm = ed50[of_agent[agent]]
            curve = pt.where(data.agent_index >= 0, emax[agent] * dose / (ed50_arm + dose), 0.0)
            base_arm = np.flatnonzero(st["base"])[st["s_idx"]]  # each arm's study baseline
            if pr.tau_upper is not None:
                tau = pm.Uniform("tau", 0.0, pr.tau_upper)
            else:
                tau = pr.tau.build("tau")
            arm_likelihood(net, st, curve - curve[base_arm], tau, pr.baseline_sd)
        return model

    def cache_token(self, data: AgentDoseData) -> str:
        """Return the ED50 and Emax pooling, outcome, priors, agents and arms."""
        return "|".join([self.name, self.ed50, self.emax, data.network.outcome,
                         repr(self.priors_for(data).as_dict()), repr(data.agents),
                         data.network.arms.to_csv(index=False)])

    def gate_names(self, data: AgentDoseData) -> list[str]:
        """Return Emax, ED50 and tau."""
        return ["emax", "ed50", "tau"]

    def fit_result(self, data: AgentDoseData, idata: Any, settings: SamplerSettings,
                   diagnostics: Diagnostics, provenance: dict[str, Any],
                   built: Any) -> AgentDoseFit:
        """Return the multi-agent fit."""
        return AgentDoseFit(idata, data, self.priors_for(data), settings, diagnostics,
                            self.ed50, self.emax, provenance)


class CurveDraws:
    """Draws of the curve parameters, posterior or prior, read the same way.

    ``emax`` is draws x agents, ``ed50`` draws x 1 when shared (else x agents), ``tau`` draws.
    """

    def __init__(self, agents: list[str], emax: np.ndarray, ed50: np.ndarray,
                 tau: np.ndarray):
        self.agents, self.emax, self.tau = agents, emax, tau
        self.ed50_all = ed50.reshape(len(tau), -1)

    @classmethod
    def posterior(cls, fit: AgentDoseFit) -> CurveDraws:
        """Return the posterior draws of a fit."""
        return cls(fit.data.agents, flat(fit.idata, "emax"), flat(fit.idata, "ed50"),
                   flat(fit.idata, "tau"))

    def emax_of(self, agent: str) -> np.ndarray:
        """Return draws of ``agent``'s Emax."""
        return self.emax[:, self.agents.index(agent)]

    def ed50_of(self, agent: str) -> np.ndarray:
        """Return draws of ``agent``'s ED50 (the common one when ED50 is shared)."""
        e = self.ed50_all
        return e[:, 0] if e.shape[1] == 1 else e[:, self.agents.index(agent)]

    def curve(self, agent: str, doses: np.ndarray) -> np.ndarray:
        """Return draws of ``agent``'s effect against the control at each dose (x doses)."""
        x = np.asarray(doses, float)[None, :]
        return self.emax_of(agent)[:, None] * x / (self.ed50_of(agent)[:, None] + x)

    def equivalent(self, agent: str, dose: float, other: str) -> np.ndarray:
        """Return draws of the dose of ``other`` with the effect of ``agent`` at ``dose``.

        Solves Emax_o y / (ED50_o + y) = f: y = ED50_o f / (Emax_o - f); infinite when
        ``other``'s Emax cannot reach f (or f and Emax_o differ in sign).
        """
        f = self.curve(agent, np.array([dose]))[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            y = self.ed50_of(other) * f / (self.emax_of(other) - f)
        return np.where((y >= 0) & np.isfinite(y), y, np.inf)

    def quantity(self, q: str) -> np.ndarray:
        """Return draws of a claim quantity.

        ``effect_at:A:DOSE``, ``ed50:A``, ``emax:A``, ``equivalent:A:DOSE:B`` or ``tau``.
        """
        parts = q.split(":")
        if q == "tau":
            return self.tau
        if parts[0] == "ed50":
            return self.ed50_of(parts[1])
        if parts[0] == "emax":
            return self.emax_of(parts[1])
        if parts[0] == "effect_at":
            return self.curve(parts[1], np.array([float(parts[2])]))[:, 0]
        return self.equivalent(parts[1], float(parts[2]), parts[3])


def agent_dose_document(fit: AgentDoseFit, grid_points: int = 41) -> dict[str, Any]:
    """Each agent's Emax, ED50 and curve; equivalent doses at each agent's middle dose."""
    from ..sampling.inference import summarize_censored

    data = fit.data
    draws = CurveDraws.posterior(fit)
    agents: dict[str, Any] = {}
    for a in data.agents:
        observed = data.observed_doses(a)
        grid = np.linspace(0.0, max(observed), grid_points)
        c = draws.curve(a, grid)
        q = np.quantile(c, [0.025, 0.5, 0.975], axis=0)
        agents[a] = {
            "unit": data.units.get(a, ""), "observed_doses": observed,
            "emax": summarize_draws(draws.emax_of(a)),
            "ed50": summarize_draws(draws.ed50_of(a)),
            "curve": {"dose": grid.tolist(), "median": q[1].tolist(),
                      "ci_low": q[0].tolist(), "ci_high": q[2].tolist()},
        }
    equivalents = []
    for a in data.agents:
        mid = float(np.median(data.observed_doses(a)))
        for b in data.agents:
            if b != a:
                y = draws.equivalent(a, mid, b)
                top = max(data.observed_doses(b))
                summary = {k: (v if np.isfinite(v) else None)  # None: no dose of b reaches it
                           for k, v in (summarize_censored(y) or {}).items()}
                equivalents.append({"agent": a, "dose": mid, "other": b, **summary,
                                    "p_beyond_observed": float(np.mean(y > top)),
                                    "other_max_observed": top})
    return {
        "model": "dose-response", "agents_model": "multi-agent Emax network",
        "ed50_pooling": fit.ed50, "emax_pooling": fit.emax,
        "outcome": data.network.outcome, "measure": data.network.measure,
        "control": data.network.reference, "agents": agents,
        "equivalent_doses": equivalents,
        "estimates": {"tau": summarize_draws(flat(fit.idata, "tau"))},
        "k": len(data.studies), "arms": len(data.network.arms),
        "priors": fit.priors.as_dict(), "diagnostics": fit.diagnostics.as_dict(),
        "dropped": data.dropped, "notes": data.network.notes,
        "provenance": fit.provenance,
    }


def fit_agents(records: Records, outcome: str, window: TimeWindow, filters: Filters,
               settings: SamplerSettings, *, agents: tuple[str, ...] = (), ed50: str = "per-agent",
               emax: str = "fixed", inert: tuple[str, ...] = INERT,
               priors: AgentDosePriors | None = None
               ) -> tuple[AgentDoseData, AgentDose, AgentDoseFit]:
    """Select the arms (``agents``: these only; empty: all) and fit the network of curves."""
    measure = "MD" if outcome == "change" else "OR"
    known = set(records.table["treatment"])
    unknown = [a for a in agents if a not in known]
    if unknown:
        raise SpecError(f"no arm of {', '.join(unknown)} in the records (treatments: "
                        f"{', '.join(sorted(known))})")
    if agents:
        filters = replace(filters, treatment=tuple(dict.fromkeys([*agents, *inert])))
    data = select_agent_doses(records, outcome, measure, window, filters, inert=inert)
    missing = sorted(set(agents) - set(data.agents))
    if missing:
        raise SpecError(f"no dosed arm of {', '.join(missing)} connected to the control "
                        f"(agents found: {', '.join(data.agents) or 'none'})")
    model = AgentDose(priors, ed50=ed50, emax=emax)
    return data, model, model.fit(data, settings, data_sha256=records.sha256)


def format_agents(doc: dict[str, Any]) -> str:
    """Each agent's Emax and ED50, then the equivalent doses."""
    def ci(e: dict[str, float]) -> str:
        return f"{e['median']:.3g} ({e['ci_low']:.3g} to {e['ci_high']:.3g})"

    lines = [f"multi-agent Emax ({doc['outcome']}, {doc['measure']}; ED50 {doc['ed50_pooling']},"
             f" Emax {doc['emax_pooling']}): {doc['arms']} arms in {doc['k']} studies, "
             f"control '{doc['control']}'"]
    for a, d in doc["agents"].items():
        lines.append(f"  {a:<16} Emax {ci(d['emax'])}; ED50 {ci(d['ed50'])} {d['unit']}; "
                     f"doses {', '.join(f'{x:g}' for x in d['observed_doses'])}")
    lines.append(f"  tau {ci(doc['estimates']['tau'])}")
    for e in doc["equivalent_doses"]:
        med = e.get("median")
        med = "no dose" if med is None or not np.isfinite(med) else f"{med:.3g}"
        beyond = e["p_beyond_observed"]
        note = (f" (P {beyond:.2f} beyond its highest observed dose "
                f"{e['other_max_observed']:g}: extrapolated)") if beyond > 0.5 else ""
        lines.append(f"  {e['dose']:g} of {e['agent']} ~ {med} of {e['other']}{note}")
    return "\n".join(lines)
