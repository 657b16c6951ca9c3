"""network: arm-based random-effects network meta-analysis (NICE DSU TSD2, consistency model).

Nodes are treatments (or treatment and dose, or treatment, route and dose); the ``control``
column plays no part. In study i with baseline arm b (the reference if the study has it,
else its first node in network order)::

    binary:      events_ik ~ Bin(n_ik, logit^-1(mu_i + delta_ik - c_i))
    continuous:  y_ik ~ Normal(mu_i + delta_ik - c_i, se_ik)
    delta_ib = 0;  delta_ik = d[t_ik] - d[t_ib] + tau (w_s u_i + w_o e_ik)
    c_i = mean_k delta_ik   (mu_i is the study's mean arm: no arm's prior is wider)

with ``w_s = w_o = sqrt(1/2)`` in multi-arm studies (the random effects of a study's
contrasts correlate 0.5) and ``w_s = 0, w_o = 1`` in two-arm ones; ``d[reference] = 0``.
The unrelated-mean-effects model (``ume=True``) replaces ``d[t_ik] - d[t_ib]`` by a free
effect for each pair of nodes compared against a study's baseline, with the same priors
and random effects; comparing the two by PSIS-LOO checks consistency (Dias et al. 2013,
NICE DSU TSD4).
Priors as ``fit contrast``: d ~ Normal(0, 2.5) and mu ~ Normal(0, 2.5) on the log-odds
scale (MD: d ~ Normal(0, 10), mu ~ Normal(0, 50) in scale points); tau as ``--tau-prior``.
This first version runs through PyMC (no precompiled kernel) and reports the consistency
model and its inconsistency checks: UME and node-splitting (``split=(X, Y)``: in studies
comparing X and Y, X is the baseline and the Y arm gets its own direct effect; the
indirect estimate is ``d[Y] - d[X]`` from the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..io.memo import per_records
from ..sampling.inference import (
    Diagnostics,
    flat,
    summarize_draws,
)
from ..sampling.settings import SamplerSettings
from ..select.filters import COUNT_COLUMN
from ..stats.priors import HeterogeneityPrior, tau_presses_prior
from .arms import centring_matrix
from .base import Model

if TYPE_CHECKING:  # pragma: no cover
    from ..io.records import Records
    from ..sampling.precompiled import PrecompiledModel
    from ..select.filters import Filters, TimeWindow

NODES = ("treatment", "treatment+route", "treatment+dose", "treatment+route+dose")
#: columns of a network's contrast-level rows
CONTRAST_COLUMNS = ["study", "node", "base", "yi", "vi", "shared_var", "scale", "n"]


@dataclass
class NetworkData:
    """Arms of a connected network: study, node, and events and n, or y and se."""

    outcome: str
    measure: str
    reference: str
    nodes: list[str]
    arms: pd.DataFrame
    dropped: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: reported contrasts of studies without arm-level numbers: study, node, base, yi, vi,
    #: shared_var (empty when there are none)
    contrasts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=CONTRAST_COLUMNS))

    @property
    def binary(self) -> bool:
        """True for response or remission counts."""
        return self.outcome in COUNT_COLUMN

    @property
    def studies(self) -> list[str]:
        """Keys of the studies entering by their arms, in order."""
        return list(dict.fromkeys(self.arms["study"]))

    @property
    def contrast_studies(self) -> list[str]:
        """Keys of the studies entering by reported contrasts, in order."""
        return list(dict.fromkeys(self.contrasts["study"]))

    @property
    def all_studies(self) -> list[str]:
        """Every study of the network."""
        return self.studies + self.contrast_studies

    def edges(self) -> list[dict[str, Any]]:
        """Each pair of nodes compared within a study: trials and patients.

        A contrast-level study counts the patients of the arms whose rows give ``n``.
        """
        out: dict[tuple[str, str], dict[str, Any]] = {}
        sizes = pd.concat([self.arms[["study", "node", "n"]],
                           self.contrasts[["study", "node", "n"]]], ignore_index=True)
        for study, pairs in _study_edges(self).items():
            g = sizes[sizes["study"] == study]
            keys = [tuple(sorted(p, key=self.nodes.index)) for p in pairs]
            for key in sorted(keys, key=lambda k: (self.nodes.index(k[0]),
                                                   self.nodes.index(k[1]))):
                e = out.setdefault(key, {"from": key[0], "to": key[1], "trials": 0,
                                         "patients": 0})
                e["trials"] += 1
                e["patients"] += int(g.loc[g["node"].isin(key), "n"].sum())
        return list(out.values())


def _node(row: pd.Series, kind: str, inert: tuple[str, ...] = ()) -> str:
    if kind == "treatment" or row["treatment"] in inert:
        return inert[0] if row["treatment"] in inert else str(row["treatment"])
    if kind == "treatment+route":
        return f"{row['treatment']} {row['route'] or ''}".strip()
    dose = "" if pd.isna(row["dose"]) else f" {row['dose']:g}{row['dose_unit'] or ''}"
    if kind == "treatment+dose":
        return f"{row['treatment']}{dose}"
    return f"{row['treatment']} {row['route'] or ''}{dose}".strip()


#: the time key of an untimed row (no time point: the file has none, or the row is a summary)
UNTIMED = -1.0


@per_records
def select_network(records: Records, outcome: str, measure: str, window: TimeWindow | None,
                   filters: Filters, *, reference: str, node: str = "treatment",
                   inert: tuple[str, ...] = (), dosed: bool = False) -> NetworkData:
    """Select each study's arms at one time near the target, as nodes of a network.

    ``inert`` names treatments taken as one inert control (for example saline infusions
    and intranasal placebo): their arms form one node named after the first, whatever
    their route or dose. A study enters at the time in the window nearest the target that
    has at least two distinct nodes with the outcome; arms of one study with the same node
    are combined (counts summed; means refused). Studies outside the reference's connected
    component are left out, with the reason. ``dosed`` leaves out arms without a dose
    (flexible dosing), inert controls apart: they cannot sit on a dose-response curve.
    """
    if node not in NODES:
        raise SpecError(f"unknown --node '{node}'; use {', '.join(NODES)}")
    if outcome in COUNT_COLUMN:
        if measure != "OR":
            raise SpecError("the network model is on the log-odds scale for counts: "
                            "--measure OR")
        col = COUNT_COLUMN[outcome]
    elif outcome == "change":
        if measure != "MD":
            raise SpecError("continuous networks use --measure MD (one rating scale)")
        col = "mean"
    else:
        raise SpecError(f"unknown outcome '{outcome}'; use response, remission, events or change")
    t = filters.apply(records.table)
    t = t[t[col].notna() & t["n"].notna() & (t["time_h"].notna() | (window is None))]
    t = t[(t["time_h"].astype(float).fillna(1.0) > 0) & (t["doses_given"].fillna(1) != 0)]
    if outcome == "change":
        t = t[t["sd"].notna() | t["se"].notna()]
    dropped: list[dict[str, object]] = []
    if dosed:
        undosed = t["dose"].isna() & ~t["treatment"].isin(inert)
        dropped += [{"study": s, "arm": a, "reason": "no dose (flexible dosing): not on a "
                     "curve"} for s, a in t.loc[undosed, ["study", "arm"]].drop_duplicates()
                    .itertuples(index=False)]
        t = t[~undosed]
    t = t.assign(node=[_node(r, node, inert) for _, r in t.iterrows()])
    notes: list[str] = []
    pooled = sorted(set(t.loc[t["treatment"].isin(inert[1:]), "treatment"]))
    if pooled:
        notes.append(f"inert controls pooled into one node '{inert[0]}': "
                     f"{', '.join([inert[0], *pooled])} (an assumption: they are exchangeable)")
    rows = []
    for study, g in t.groupby("study", sort=False):
        when = g["time_h"].astype(float).fillna(UNTIMED).to_numpy()
        times = [x for x in sorted(set(when)) if g[when == x]["node"].nunique() >= 2
                 and (window is None or window.low_h <= x <= window.high_h)]
        if not times:
            where = ("" if window is None
                     else f" in {window.low_h:g}-{window.high_h:g} h")
            dropped.append({"study": study, "reason": "fewer than two treatments with "
                            f"{outcome} at one time{where}"})
            continue
        if window is None and len(times) > 1:
            dropped.append({"study": study, "reason": "several time points; choose one with "
                            "--time"})
            continue
        time_h = times[0] if window is None else min(
            times, key=lambda x: (abs(x - window.target_h), x))
        h = g[when == time_h]
        time_h = None if time_h == UNTIMED else time_h
        if outcome == "change" and (h["scale"].nunique() > 1 or h["mean_type"].nunique() > 1):
            dropped.append({"study": study, "reason": "arms on different scales or mean types"})
            continue
        for name, arms in h.groupby("node", sort=False):
            n = arms["n_binary"].fillna(arms["n"]) if outcome in COUNT_COLUMN else arms["n"]
            where = {"treatment": arms["treatment"].iloc[0], "dose": arms["dose"].iloc[0]}
            if outcome in COUNT_COLUMN:
                rows.append({"study": study, "node": name, "time_h": time_h,
                             "events": int(arms[col].sum()), "n": int(n.sum()),
                             "design": arms["design"].iloc[0], **where})
                if len(arms) > 1:
                    notes.append(f"{study}: {len(arms)} arms of {name} combined")
            elif len(arms) > 1:
                dropped.append({"study": study, "reason": f"{len(arms)} arms of {name} with "
                                "means (combine them before analysis)"})
                rows = [r for r in rows if r["study"] != study]
                break
            else:
                r = arms.iloc[0]
                se = float(r["sd"]) / np.sqrt(float(r["n"])) if pd.notna(r["sd"]) \
                    else float(r["se"])
                rows.append({"study": study, "node": name, "time_h": time_h,
                             "y": float(r["mean"]), "se": se, "n": int(r["n"]),
                             "design": r["design"], "scale": r["scale"], **where})
    arms = pd.DataFrame(rows, columns=None if rows else ["study", "node", "n", "design"])
    contrasts, contrast_notes = _contrast_rows(records, filters, outcome, measure, window,
                                               node, inert, set(arms["study"]), dropped)
    by_contrasts = set(contrasts["study"])  # they enter after all: no reason to drop them
    dropped = [d for d in dropped if d["study"] not in by_contrasts]
    if arms.empty and contrasts.empty:
        raise SpecError("no study compares two treatments with this outcome in the window")
    scales = set(arms.get("scale", pd.Series(dtype=str))) | set(contrasts["scale"])
    if outcome == "change" and len(scales) > 1:
        raise SpecError("mean differences need one rating scale; select one with --scale "
                        f"(found {', '.join(sorted(scales))})")
    members = _members(arms, contrasts)
    if reference not in set(members["node"]):
        raise SpecError(f"the reference '{reference}' is not a node of the network (nodes: "
                        f"{', '.join(sorted(set(members['node'])))})")
    keep = _component(members, reference)
    for study in sorted(set(members["study"]) - keep):
        dropped.append({"study": study, "reason": f"not connected to {reference}"})
    arms = arms[arms["study"].isin(keep)].reset_index(drop=True)
    contrasts = contrasts[contrasts["study"].isin(keep)].reset_index(drop=True)
    others = sorted(set(_members(arms, contrasts)["node"]) - {reference})
    nodes = [reference, *others]
    study_order = {x: i for i, x in enumerate(dict.fromkeys(arms["study"]))}
    arms = arms.assign(_s=arms["study"].map(study_order),
                       _n=arms["node"].map({n: i for i, n in enumerate(nodes)}))
    arms = arms.sort_values(["_s", "_n"], kind="stable").drop(columns=["_s", "_n"])
    arms = arms.reset_index(drop=True)
    if (arms["design"] == "crossover").any():
        notes.append("crossover trials kept: their arms are analysed as independent groups")
    notes += [text for study, text in contrast_notes if study in keep]
    return NetworkData(outcome, measure, reference, nodes, arms, dropped, notes, contrasts)


def _contrast_rows(records: Records, filters: Filters, outcome: str, measure: str,
                   window: TimeWindow, node: str, inert: tuple[str, ...],
                   arm_studies: set[str], dropped: list[dict[str, object]]
                   ) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Contrast-level rows of studies without arm-level numbers, as (study, node, base).

    As in multinma, a study enters either by its arms or by its reported contrasts, never
    both; the contrasts of one study against one comparator share its variance. Returns
    the rows and the notes about them as (study, note).
    """
    from ..select.contrast_rows import contrast_level_rows

    reported, _, said = contrast_level_rows(records.table, filters, outcome, measure, window,
                                            ())
    t = records.table
    out = []
    for c in reported:
        if c["study"] in arm_studies:
            continue
        here = t[t["study"] == c["study"]]
        active, vs = here[here["arm"] == c["arm"]], here[here["arm"] == c["control"]]
        if vs.empty:
            dropped.append({"study": c["study"], "reason": f"contrast vs '{c['control']}': "
                            "the comparator has no row"})
            continue
        a = active.iloc[0]
        out.append({"study": c["study"], "node": _node(a, node, inert),
                    "base": _node(vs.iloc[0], node, inert), "yi": c["yi"], "vi": c["vi"],
                    "shared_var": c["shared_var"], "scale": c["scale"],
                    "n": int(a["n"]) if pd.notna(a["n"]) else 0})
    used = {c["study"] for c in out}
    notes = [(n.split(":")[0], n) for n in said if n.split(":")[0] in used]
    return pd.DataFrame(out, columns=CONTRAST_COLUMNS), notes


def _members(arms: pd.DataFrame, contrasts: pd.DataFrame) -> pd.DataFrame:
    """Every (study, node) in the network: arm nodes, contrasts' nodes and their comparators."""
    return pd.concat([arms[["study", "node"]], contrasts[["study", "node"]],
                      contrasts[["study", "base"]].rename(columns={"base": "node"})],
                     ignore_index=True).drop_duplicates()


def _component(arms: pd.DataFrame, start: str) -> set[str]:
    """Studies connected to node ``start`` through shared nodes."""
    by_study = {s: set(g["node"]) for s, g in arms.groupby("study")}
    seen_nodes, seen_studies, frontier = {start}, set(), [start]
    while frontier:
        current = frontier.pop()
        for study, present in by_study.items():
            if current in present and study not in seen_studies:
                seen_studies.add(study)
                for other in present - seen_nodes:
                    seen_nodes.add(other)
                    frontier.append(other)
    return seen_studies


@dataclass(frozen=True)
class NetworkPriors:
    """Priors: relative effects d, study baselines mu, and the heterogeneity tau."""

    effect_sd: float
    baseline_sd: float
    tau: HeterogeneityPrior

    def as_dict(self) -> dict[str, object]:
        """Return the priors as a JSON-ready dict."""
        return {"effect_sd": self.effect_sd, "baseline_sd": self.baseline_sd,
                "tau": self.tau.as_dict()}


def default_network_priors(measure: str, tau: HeterogeneityPrior | None = None, *,
                           preset: str = "default", effect_sd: float | None = None,
                           baseline_sd: float | None = None) -> NetworkPriors:
    """As ``fit contrast``: 2.5 on the log-odds scale; 10 (effects) and 50 (baselines) for MD.

    ``preset="vague"`` gives NICE TSD2's and multinma's N(0, 100²) on effects and baselines
    and half-normal(5) on tau (on an MD's own scale; scale it with ``effect_sd``);
    ``effect_sd``, ``baseline_sd`` and ``tau`` replace the preset's values.
    """
    from ..stats.priors import PRESETS, VAGUE_SD, VAGUE_TAU_SCALE

    if preset not in PRESETS:
        raise SpecError(f"unknown prior preset '{preset}'; use {' or '.join(PRESETS)}")
    if preset == "vague":
        priors = NetworkPriors(VAGUE_SD, VAGUE_SD, HeterogeneityPrior(
            "half-normal", VAGUE_TAU_SCALE, 0.0, f"half-normal({VAGUE_TAU_SCALE:g}) on tau"))
    elif measure == "MD":
        priors = NetworkPriors(10.0, 50.0, HeterogeneityPrior(
            "half-normal", 5.0, 0.0, "half-normal(5) on tau"))
    else:
        priors = NetworkPriors(2.5, 2.5, HeterogeneityPrior())
    return NetworkPriors(priors.effect_sd if effect_sd is None else effect_sd,
                         priors.baseline_sd if baseline_sd is None else baseline_sd,
                         tau or priors.tau)


@dataclass
class NetworkFit:
    """A fitted network: the posterior and what it was fitted on."""

    idata: Any
    data: NetworkData
    priors: NetworkPriors
    settings: SamplerSettings
    diagnostics: Diagnostics
    provenance: dict[str, Any]


class Network(Model):
    """Arm-based random-effects consistency model over a network of treatments."""

    name = "network"

    def __init__(self, priors: NetworkPriors | None = None, *, ume: bool = False,
                 split: tuple[str, str] | None = None):
        self.priors = priors
        self.ume = ume
        self.split = split

    def _priors(self, data: NetworkData) -> NetworkPriors:
        return self.priors or default_network_priors(data.measure)

    @staticmethod
    def _structure(data: NetworkData) -> dict[str, Any]:
        """Index arrays: each arm's study and node, its study's baseline node, arm weights."""
        a = data.arms
        studies = data.studies
        s_idx = a["study"].map({s: i for i, s in enumerate(studies)}).to_numpy()
        t_idx = a["node"].map({n: i for i, n in enumerate(data.nodes)}).to_numpy()
        first = ~a["study"].duplicated().to_numpy()  # rows are sorted: the baseline arm
        base_node = np.array([t_idx[np.flatnonzero(first & (s_idx == s))[0]]
                              for s in range(len(studies))])
        size = a.groupby("study", sort=False)["node"].transform("count").to_numpy()
        multi = size > 2
        pairs = [(data.nodes[base_node[s]], data.nodes[t])
                 for s, t, b in zip(s_idx, t_idx, first, strict=True) if not b]
        pair_names = list(dict.fromkeys(f"{x} vs {y}" for y, x in pairs))
        pair_idx = np.zeros(len(a), dtype=int)
        pair_idx[~first] = [pair_names.index(f"{x} vs {y}") for y, x in pairs]
        # reported contrasts: each as the pair in network order (earlier node as base),
        # with sign -1 when reported the other way round
        c = data.contrasts
        order = {n: i for i, n in enumerate(data.nodes)}
        c_sign = np.array([1.0 if order[b] < order[n] else -1.0
                           for n, b in zip(c["node"], c["base"], strict=True)])
        c_pairs = [f"{n} vs {b}" if order[b] < order[n] else f"{b} vs {n}"
                   for n, b in zip(c["node"], c["base"], strict=True)]
        pair_names = list(dict.fromkeys([*pair_names, *c_pairs]))
        return {"s_idx": s_idx, "t_idx": t_idx, "base": first, "base_node": base_node,
                "w_shared": np.where(multi, np.sqrt(0.5), 0.0),
                "w_own": np.where(multi, np.sqrt(0.5), 1.0),
                "pairs": pair_names, "pair_idx": pair_idx, "c_sign": c_sign,
                "c_pair_idx": np.array([pair_names.index(x) for x in c_pairs], dtype=int)}

    def build(self, data: NetworkData):  # a PyMC model
        """Build the PyMC model (no sampling)."""
        import pymc as pm
        import pytensor.tensor as pt

        st = self._structure(data)
        pr = self._priors(data)
        arms = data.arms
        others = data.nodes[1:]
        labels = [f"{s} {n}" for s, n in zip(arms["study"], arms["node"], strict=True)]
        coords = {"study": data.studies, "node": data.nodes, "effect_node": others,
                  "arm": labels, "pair": st["pairs"]}
        with pm.Model(coords=coords) as model:
            if self.ume:
                d_pair = pm.Normal("d_pair", 0.0, pr.effect_sd, dims="pair")
                mean = pt.concatenate([pt.zeros(1), d_pair])[
                    np.where(st["base"], 0, st["pair_idx"] + 1)]
            else:
                d_free = pm.Normal("d_free", 0.0, pr.effect_sd, dims="effect_node")
                d = pm.Deterministic("d", pt.concatenate([pt.zeros(1), d_free]), dims="node")
                mean = d[st["t_idx"]] - d[st["base_node"][st["s_idx"]]]
                if self.split is not None:  # the split pair's direct evidence: its own effect
                    direct = pm.Normal("d_direct", 0.0, pr.effect_sd)
                    x, y = (data.nodes.index(n) for n in self.split)
                    own = (st["base_node"][st["s_idx"]] == x) & (st["t_idx"] == y)
                    mean = pt.where(own, direct, mean)
            tau = pr.tau.build("tau")
            arm_likelihood(data, st, mean, tau, pr.baseline_sd)
            if not data.contrasts.empty:
                c = data.contrasts
                if self.ume:
                    c_mean = st["c_sign"] * d_pair[st["c_pair_idx"]]
                else:
                    index = {n: i for i, n in enumerate(data.nodes)}
                    c_mean = d[c["node"].map(index).to_numpy()] - \
                        d[c["base"].map(index).to_numpy()]
                    if self.split is not None:  # the split pair's reported contrasts
                        x, y = self.split
                        own = ((c["base"] == x) & (c["node"] == y)).to_numpy()
                        back = ((c["base"] == y) & (c["node"] == x)).to_numpy()
                        c_mean = pt.where(own, direct, pt.where(back, -direct, c_mean))
                _contrast_terms(model, data, c_mean, tau)
        return model

    def precompiled(self, data: NetworkData):  # a PrecompiledModel
        """Return the same model for the precompiled (numba) sampler."""
        st = self._structure(data)
        pr = self._priors(data)
        a = data.arms
        k = len(data.nodes)
        base_of_arm = st["base_node"][st["s_idx"]]
        if self.ume:
            variant, names = "ume", st["pairs"]
            plus, minus = np.where(st["base"], -1, st["pair_idx"]), np.full(len(a), -1)
        else:
            variant, names = ("split", [*data.nodes[1:], "direct"]) if self.split \
                else ("consistency", data.nodes[1:])
            plus, minus = st["t_idx"] - 1, base_of_arm - 1  # d[0] = 0: index -1
            if self.split is not None:
                x, y = (data.nodes.index(n) for n in self.split)
                own = (base_of_arm == x) & (st["t_idx"] == y)
                plus, minus = np.where(own, k - 1, plus), np.where(own, -1, minus)
        labels = [f"{s} {n}" for s, n in zip(a["study"], a["node"], strict=True)]
        binary = data.binary
        return kernel_model(binary=binary, variant=variant, study_index=st["s_idx"],
                       base=st["base"].astype(float), plus=plus, minus=minus,
                       w_shared=st["w_shared"], w_own=st["w_own"],
                       y=a["events"].to_numpy(float) if binary else a["y"].to_numpy(float),
                       n_or_se=a["n"].to_numpy(float) if binary else a["se"].to_numpy(float),
                       studies=data.studies, arm_labels=labels, effect_names=list(names),
                       nodes=data.nodes, effect_sd=pr.effect_sd, baseline_sd=pr.baseline_sd,
                       tau_kind=pr.tau.kind, tau_scale=pr.tau.scale, tau_loc=pr.tau.location)

    def kernel(self, data: NetworkData) -> Callable[[], PrecompiledModel] | None:
        """Return the precompiled twin's builder (none yet for contrast-level studies)."""
        return (lambda: self.precompiled(data)) if data.contrasts.empty else None

    def cache_token(self, data: NetworkData) -> str:
        """Return the variant, outcome, measure, priors, nodes, arms and contrasts."""
        pr = self._priors(data)
        return "|".join([self.name, "ume" if self.ume else "consistency", repr(self.split),
                         data.outcome,
                         data.measure, repr(pr.as_dict()), repr(data.nodes),
                         data.arms.to_csv(index=False), data.contrasts.to_csv(index=False)])

    def gate_names(self, data: NetworkData) -> list[str]:
        """Return the relative effects and tau (and a node-split's direct effect)."""
        return ["d_pair" if self.ume else "d_free", "tau"] + (
            ["d_direct"] if self.split else [])

    def fit_result(self, data: NetworkData, idata: Any, settings: SamplerSettings,
                   diagnostics: Diagnostics, provenance: dict[str, Any],
                   built: Any) -> NetworkFit:
        """Return the network fit (its provenance says which pair, if any, was split)."""
        return NetworkFit(idata, data, self._priors(data), settings, diagnostics,
                          {**provenance, "split": self.split})


def arm_likelihood(data: NetworkData, st: dict[str, Any], mean: Any, tau: Any,
                   baseline_sd: float) -> None:
    """Add the arms' likelihood to the current PyMC model.

    Study means ``mu`` (each study's arms centred on their mean logit, so that the result
    does not depend on which arm is the baseline: :mod:`~trialmeta.analysis.models.arms`)
    and random effects (multi-arm correlation 0.5) around each non-baseline arm's ``mean``
    relative effect.
    """
    import pymc as pm
    import pytensor.tensor as pt

    arms = data.arms
    mu = pm.Normal("mu", 0.0, baseline_sd, dims="study")
    u = pm.Normal("u", 0.0, 1.0, dims="study")
    e = pm.Normal("e", 0.0, 1.0, dims="arm")
    s_idx = st["s_idx"]
    random = tau * (st["w_shared"] * u[s_idx] + st["w_own"] * e)
    effect = pt.where(st["base"], 0.0, mean + random)
    offset = pm.math.dot(centring_matrix(s_idx, len(data.studies)), effect)  # models.arms
    eta = mu[s_idx] + effect - offset[s_idx]
    if data.binary:
        pm.Binomial("events", n=arms["n"].to_numpy(), logit_p=eta,
                    observed=arms["events"].to_numpy(), dims="arm")
    else:
        pm.Normal("y", mu=eta, sigma=arms["se"].to_numpy(float),
                  observed=arms["y"].to_numpy(float), dims="arm")


def _contrast_terms(model: Any, data: NetworkData, mean: Any,
                    tau: Any) -> None:
    """Add the reported contrasts: y ~ N(mean + random effect, V).

    The random effects are the arms' (multi-arm correlation 0.5); contrasts of one study
    share their comparator's variance (``shared_var``) through ``z_reported``, as in
    ``fit contrast``.
    """
    import pymc as pm

    c = data.contrasts
    studies = data.contrast_studies
    model.add_coord("contrast_study", studies)
    model.add_coord("reported_contrast", [f"{s} {n} vs {b}" for s, n, b in
                                          zip(c["study"], c["node"], c["base"], strict=True)])
    s_idx = c["study"].map({s: i for i, s in enumerate(studies)}).to_numpy()
    multi = c.groupby("study")["node"].transform("count").to_numpy() > 1
    w_s, w_o = np.where(multi, np.sqrt(0.5), 0.0), np.where(multi, np.sqrt(0.5), 1.0)
    u = pm.Normal("u_reported", 0.0, 1.0, dims="contrast_study")
    e = pm.Normal("e_reported", 0.0, 1.0, dims="reported_contrast")
    z = pm.Normal("z_reported", 0.0, 1.0, dims="contrast_study")
    shared = c["shared_var"].to_numpy(float)
    mean = mean + tau * (w_s * u[s_idx] + w_o * e) + np.sqrt(shared) * z[s_idx]
    pm.Normal("y_reported", mu=mean, sigma=np.sqrt(c["vi"].to_numpy(float) - shared),
              observed=c["yi"].to_numpy(float), dims="reported_contrast")


def splittable(data: NetworkData) -> list[tuple[str, str]]:
    """Pairs with direct evidence that stay connected without the studies comparing them.

    Contrast-level studies count like arm-level ones: a study compares every pair of the
    nodes it reports (its comparator's included).
    """
    by_study = _study_edges(data)
    out = []
    for e in data.edges():
        x, y = e["from"], e["to"]
        rest = [edges for edges in by_study.values() if frozenset((x, y)) not in edges]
        if rest and _connected(set().union(*rest), x, y):
            out.append((x, y))
    return out


def _comparing(arms: pd.DataFrame, x: str, y: str) -> set[str]:
    """Studies with arms at both nodes ``x`` and ``y``."""
    return {s for s, g in arms.groupby("study") if {x, y} <= set(g["node"])}


def split_data(data: NetworkData, pair: tuple[str, str]) -> NetworkData:
    """Return the arms with ``pair[0]`` as the baseline of each study comparing the pair."""
    from dataclasses import replace

    x, y = pair
    a = data.arms
    first = a["study"].isin(_comparing(a, x, y)) & (a["node"] == x)
    order = {s: i for i, s in enumerate(dict.fromkeys(a["study"]))}
    a = a.assign(_s=a["study"].map(order), _f=(~first).astype(int), _r=range(len(a)))
    a = a.sort_values(["_s", "_f", "_r"]).drop(columns=["_s", "_f", "_r"])
    return replace(data, arms=a.reset_index(drop=True))


def node_split(fit: NetworkFit) -> dict[str, Any]:
    """Direct vs indirect estimates of one split pair, their difference and a p-value.

    The p-value is two-sided, 2 min(P(diff > 0), P(diff < 0)) (Dias et al. 2010).
    """
    x, y = fit.provenance["split"]
    d = flat(fit.idata, "d")
    nodes = fit.data.nodes
    indirect = d[:, nodes.index(y)] - d[:, nodes.index(x)]
    direct = flat(fit.idata, "d_direct")
    diff = direct - indirect
    p = 2 * min(float(np.mean(diff > 0)), float(np.mean(diff < 0)))
    return {"comparison": f"{y} vs {x}", "direct": summarize_draws(direct),
            "indirect": summarize_draws(indirect), "difference": summarize_draws(diff),
            "p_value": p, "diagnostics": fit.diagnostics.as_dict()}


def has_loops(data: NetworkData) -> bool:
    """Tell whether the unrelated-mean-effects model differs from the consistency model.

    It does when more pairs are compared against a study's baseline than there are
    treatments to estimate (pairs of contrast-level studies included).
    """
    return len(Network._structure(data)["pairs"]) > len(data.nodes) - 1


#: Pareto k above which a PSIS-LOO comparison is unreliable
PARETO_K_LIMIT = 0.7
#: node-split p-value below which direct and indirect evidence are called inconsistent
SPLIT_P_LIMIT = 0.05

#: why a network without a loop of independent evidence gets no UME comparison
NO_LOOP = "no loop of independent evidence: the unrelated-mean-effects model is this model"


def rank_summary(d: np.ndarray, higher_is_better: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rank probabilities (node x rank, rank 1 best) and SUCRA of each node.

    ``d`` holds draws x nodes. SUCRA is the mean over ranks 1..K-1 of the cumulative
    probability of being at least that good (Salanti, Ades & Ioannidis 2011).
    """
    k = d.shape[1]
    score = d if higher_is_better else -d
    order = np.argsort(-score, axis=1, kind="stable")
    ranks = np.empty_like(order)
    ranks[np.arange(d.shape[0])[:, None], order] = np.arange(1, k + 1)
    probs = np.stack([(ranks == r).mean(axis=0) for r in range(1, k + 1)], axis=1)
    cumulative = np.cumsum(probs, axis=1)
    sucra = cumulative[:, :-1].sum(axis=1) / (k - 1) if k > 1 else np.ones(k)
    return probs, sucra


def inconsistency(consistency: NetworkFit, ume: NetworkFit) -> dict[str, Any]:
    """Compare the consistency and UME models by PSIS-LOO (same likelihood terms).

    A UME fit clearly better (difference in elpd above twice its SE) signals inconsistency
    somewhere in the network's loops; with no loop the two models are the same.
    """
    from ..sampling.inference import stacked_loglik
    from ..stats.psis import psis_loo

    c, u = (psis_loo(stacked_loglik(f.idata.log_likelihood)) for f in (consistency, ume))
    diff = u["loo_i"] - c["loo_i"]
    d_elpd = float(diff.sum())
    k_max = float(max(np.max(c["pareto_k"]), np.max(u["pareto_k"])))
    se = float((len(diff) * np.var(diff)) ** 0.5)
    return {"method": "unrelated mean effects vs consistency, PSIS-LOO (TSD4)",
            "elpd_consistency": c["elpd_loo"], "elpd_ume": u["elpd_loo"],
            "p_loo_consistency": c["p_loo"], "p_loo_ume": u["p_loo"],
            "elpd_difference_ume_minus_consistency": d_elpd, "se_difference": se,
            "pareto_k_max": k_max,
            "inconsistency_flagged": bool(d_elpd > 2 * se),
            # PSIS-LOO is unreliable when a Pareto k exceeds 0.7 (Vehtari et al. 2017)
            "reliable": k_max <= PARETO_K_LIMIT,
            "status": ("unreliable (Pareto k > 0.7)" if k_max > PARETO_K_LIMIT else
                       "inconsistency flagged" if d_elpd > 2 * se else "not flagged"),
            "ume_diagnostics": ume.diagnostics.as_dict()}


def network_document(fit: NetworkFit, higher_is_better: bool,
                     ume: NetworkFit | None = None,
                     splits: list[NetworkFit] | None = None) -> dict[str, Any]:
    """Effects vs the reference, tau, league table, ranks and SUCRA, edges, diagnostics."""
    data = fit.data
    d = flat(fit.idata, "d")
    effects = {n: summarize_draws(d[:, j]) for j, n in enumerate(data.nodes) if j > 0}
    league = [{"treatment": a, "vs": b, **summarize_draws(d[:, i] - d[:, j])}
              for i, a in enumerate(data.nodes) for j, b in enumerate(data.nodes) if i != j]
    probs, sucra = rank_summary(d, higher_is_better)
    return {
        "model": "network", "outcome": data.outcome, "measure": data.measure,
        "scale": "log odds ratio" if data.binary else "mean difference",
        "reference": data.reference, "nodes": data.nodes,
        "direction": "higher is better" if higher_is_better else "lower is better",
        "effects": effects, "estimates": {"tau": summarize_draws(flat(fit.idata, "tau"))},
        "league": league,
        "ranks": {n: {"probabilities": probs[j].tolist(), "sucra": float(sucra[j])}
                  for j, n in enumerate(data.nodes)},
        "edges": data.edges(), "k": len(data.all_studies), "arms": len(data.arms),
        "contrast_rows": len(data.contrasts),
        "priors": fit.priors.as_dict(), "diagnostics": fit.diagnostics.as_dict(),
        "dropped": data.dropped, "notes": data.notes,
        "inconsistency": {"skipped": NO_LOOP} if ume is None else inconsistency(fit, ume),
        "node_splits": [node_split(f) for f in splits or []],
        "provenance": fit.provenance,
    }


def checked_document(fit: NetworkFit, settings: SamplerSettings, higher_is_better: bool, *,
                     check: bool = True, data_sha256: str = "") -> dict[str, Any]:
    """Return the network's document with its inconsistency checks (UME, node-splits).

    ``check=False`` fits neither and leaves ``inconsistency`` empty (None).
    """
    data, priors = fit.data, fit.priors
    ume, splits = None, []
    if check:
        if has_loops(data):
            ume = Network(priors, ume=True).fit(data, settings, data_sha256=data_sha256)
        splits = [Network(priors, split=pair).fit(split_data(data, pair), settings,
                                                  data_sha256=data_sha256)
                  for pair in splittable(data)]
    doc = network_document(fit, higher_is_better, ume=ume, splits=splits)
    if not check:
        doc["inconsistency"] = None
    pressed = tau_presses_prior(flat(fit.idata, "tau"), priors.tau)
    doc["warnings"] = [*doc.get("warnings", []), *([pressed] if pressed else [])]
    return doc


def prior_effects(data: NetworkData, priors: NetworkPriors, n: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw d (draws x nodes, the reference's column 0) and tau from their priors."""
    from ..stats.priors import sample_tau

    d = np.column_stack([np.zeros(n), rng.normal(0.0, priors.effect_sd,
                                                 (n, len(data.nodes) - 1))])
    return d, sample_tau(priors.tau, n, rng)


def _study_edges(data: NetworkData) -> dict[str, set[frozenset[str]]]:
    """Each study's compared pairs of nodes (a contrast study: each contrast's pair)."""
    out: dict[str, set[frozenset[str]]] = {}
    for study, g in data.arms.groupby("study", sort=False):
        nodes = list(dict.fromkeys(g["node"]))
        out[study] = {frozenset((x, y)) for i, x in enumerate(nodes) for y in nodes[i + 1:]}
    for study, g in data.contrasts.groupby("study", sort=False):
        nodes = list(dict.fromkeys([*g["base"], *g["node"]]))
        out[study] = {frozenset((x, y)) for i, x in enumerate(nodes) for y in nodes[i + 1:]}
    return out


def _connected(edges: set[frozenset[str]], a: str, b: str) -> bool:
    seen, frontier = {a}, [a]
    while frontier:
        x = frontier.pop()
        for e in edges:
            if x in e:
                (y,) = e - {x}
                if y not in seen:
                    seen.add(y)
                    frontier.append(y)
    return b in seen


def informing_studies(data: NetworkData, a: str, b: str, cap: int = 20000) -> list[str]:
    """Studies with a comparison on some path of evidence between nodes ``a`` and ``b``.

    A study on a dead-end branch (say, the only trial of a third treatment) does not
    inform ``a`` vs ``b``. Paths are enumerated up to ``cap``; past it, every study of the
    component counts.
    """
    by_study = _study_edges(data)
    graph: dict[str, set[str]] = {}
    for edges in by_study.values():
        for e in edges:
            x, y = tuple(e)
            graph.setdefault(x, set()).add(y)
            graph.setdefault(y, set()).add(x)
    on_path: set[frozenset[str]] = set()
    count = 0
    stack: list[tuple[str, list[str]]] = [(a, [a])]
    while stack:
        x, path = stack.pop()
        if x == b:
            on_path |= {frozenset(p) for p in zip(path, path[1:], strict=False)}
            count += 1
            if count >= cap:
                return sorted(by_study)
            continue
        stack += [(y, [*path, y]) for y in sorted(graph.get(x, ())) if y not in path]
    return sorted(s for s, edges in by_study.items() if edges & on_path)


def fragile_support(data: NetworkData, a: str, b: str, k: int) -> list[str] | None:
    """Return fewer than ``k`` studies whose removal disconnects ``a`` from ``b``, or None.

    Such a comparison rests on those trials alone, whatever the rest of the network says.
    """
    from itertools import combinations

    by_study = _study_edges(data)
    studies = informing_studies(data, a, b)
    for r in range(1, k):
        for drop in combinations(studies, r):
            kept = set().union(*(e for s, e in by_study.items() if s not in drop))
            if not _connected(kept, a, b):
                return list(drop)
    return None


def kernel_model(*, binary: bool, variant: str, study_index: np.ndarray, base: np.ndarray,
            plus: np.ndarray, minus: np.ndarray, w_shared: np.ndarray, w_own: np.ndarray,
            y: np.ndarray, n_or_se: np.ndarray, studies: list[str], arm_labels: list[str],
            effect_names: list[str], nodes: list[str], effect_sd: float, baseline_sd: float,
            tau_kind: str, tau_scale: float, tau_loc: float) -> PrecompiledModel:
    """Network model (consistency, ``ume`` or ``split``): arm-based binomial or normal arms.

    ``plus`` and ``minus`` index each arm's relative effect in the effect parameters
    (``effect_names``: d_free's nodes, or the UME pairs, or d_free's nodes then the split
    pair's direct effect); -1 reads 0.
    """
    from ..sampling.kernels_network import CONSISTENCY, NETWORK_BINARY, NETWORK_NORMAL, SPLIT, UME
    from ..sampling.precompiled import (
        TAU_KINDS,
        PrecompiledModel,
        Variable,
        kernel_buffer,
        kernel_header,
        log_choose,
    )

    code = {"consistency": CONSISTENCY, "ume": UME, "split": SPLIT}[variant]
    y, n_or_se = np.asarray(y, float), np.asarray(n_or_se, float)
    lc = log_choose(n_or_se, y) if binary else np.zeros(y.size)
    kind = TAU_KINDS[tau_kind]
    s_n, a_n, e_n = len(studies), len(arm_labels), len(effect_names)
    buf = kernel_buffer(kernel_header(NETWORK_BINARY if binary else NETWORK_NORMAL, s=s_n,
                                      c=a_n, k=e_n,
                          a=code, tau_kind=kind, tau_scale=tau_scale, tau_loc=tau_loc,
                          prior_sd=effect_sd, base_sd=baseline_sd),
                  np.asarray(study_index, float), np.asarray(base, float),
                  np.asarray(plus, float), np.asarray(minus, float), w_shared, w_own, y,
                  n_or_se, lc)
    coords: dict[str, list[Any]] = {"study": list(studies), "arm": list(arm_labels)}
    if variant == "ume":
        coords["pair"] = list(effect_names)
        variables = [Variable("d_pair", ("pair",))]
    else:
        coords["effect_node"] = list(nodes[1:])
        coords["node"] = list(nodes)
        variables = [Variable("d_free", ("effect_node",)), Variable("d", ("node",))]
        if variant == "split":
            variables.append(Variable("d_direct", ()))
    variables.append(Variable("tau", ()))
    if kind >= TAU_KINDS["turner2015"]:
        variables.append(Variable("log_tau2", ()))
    name = "events" if binary else "y"
    variables += [Variable("mu", ("study",)), Variable("u", ("study",)), Variable("e", ("arm",)),
                  Variable(name, ("arm",), loglik=True)]
    observed = {name: (("arm",), y.astype("int64") if binary else y)}
    init = np.zeros(e_n + 1 + 2 * s_n + a_n)
    if kind >= TAU_KINDS["turner2015"]:
        init[e_n] = tau_loc
    return PrecompiledModel("network", buf, init.size, variables, coords, observed, init)
