"""Figures as inline SVG (matplotlib, deterministic output)."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from ..io.cache import Cache
from .numbers import ptext

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

_SVG_CACHE: list[Path | None] = [None]


def use_svg_cache(folder: Path | None) -> None:
    """Keep rendered figures in ``folder`` (the report's cache), or in none."""
    _SVG_CACHE[0] = None if folder is None else Path(folder)


def _canonical(obj: Any) -> Any:
    """Plain JSON values for hashing: 0.5 as a NumPy or a Python float hashes alike.

    A document's ``provenance`` (the command line, versions) is never drawn: left out, so
    the same figure made by another command is found again.
    """
    import pandas as pd

    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in obj.items() if k != "provenance"}
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return _canonical(obj.to_dict("split"))
    if isinstance(obj, np.ndarray):
        return _canonical(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return repr(obj)


def _svg_key(plot: Callable[..., Figure], inputs: dict[str, Any]) -> str:
    """Hash of the figure's inputs, this module's source and matplotlib's version."""
    import json
    from importlib.metadata import version

    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(version("matplotlib").encode())
    h.update(json.dumps([plot.__name__, _canonical(inputs)], sort_keys=True,
                        allow_nan=True).encode())
    return h.hexdigest()


def svg(plot: Callable[..., Figure], **inputs: Any) -> str:
    """Render ``plot(**inputs)`` as SVG, or read it back when the same inputs were drawn.

    Drawing is most of a warm report's time (about 60 ms a figure); the figures are a
    deterministic function of their inputs, so they are cached like the posteriors.
    """
    folder = _SVG_CACHE[0]
    cache = Cache(folder) if folder is not None else None
    key = _svg_key(plot, inputs) if cache is not None else None
    if cache is not None and key is not None:
        cached = cache.read_figure(key)
        if cached is not None:
            return cached
    text = to_svg(plot(**inputs))
    if cache is not None and key is not None:
        cache.write_figure(key, text)
    return text


def clopper_pearson(events: np.ndarray, n: np.ndarray, prob: float = 0.95) -> tuple:
    """Exact binomial interval of each observed proportion."""
    a = (1 - prob) / 2
    lo = np.where(events > 0, stats.beta.ppf(a, events, n - events + 1), 0.0)
    hi = np.where(events < n, stats.beta.ppf(1 - a, events + 1, n - events), 1.0)
    return lo, hi


def forest_plot(*, arms: pd.DataFrame, estimates: dict, outcome: str, title: str) -> Figure:
    """Per-arm observed and shrunken rates with the pooled and predictive intervals."""
    est = estimates
    k = len(arms)
    fig = _figure(figsize=(7.5, 1.2 + 0.42 * (k + 2)))
    ax = fig.add_subplot()
    y = np.arange(k, 0, -1) + 1.0
    ev, n = arms["events"].to_numpy(int), arms["n"].to_numpy(int)
    lo, hi = clopper_pearson(ev, n)
    obs = ev / n
    ax.errorbar(obs, y + 0.12, xerr=[obs - lo, hi - obs], fmt="o", color="0.6", ms=4,
                capsize=2, label="observed (exact 95% CI)")
    med = arms["shrunken_median"].to_numpy(float)
    ax.errorbar(med, y - 0.12, xerr=[med - arms["shrunken_ci_low"].to_numpy(float),
                                     arms["shrunken_ci_high"].to_numpy(float) - med],
                fmt="s", color="black", ms=4, capsize=2, label="shrunken (95% CrI)")
    p = est["pooled_rate"]
    moderated = any(k.startswith("beta:") for k in est)
    ax.fill([p["ci_low"], p["median"], p["ci_high"], p["median"]], [1, 1.25, 1, 0.75],
            color="tab:blue",
            label="pooled rate at the moderators' reference level (95% CrI)" if moderated
            else "pooled rate (95% CrI)")
    q = est["predictive_rate"]
    ax.plot([q["ci_low"], q["ci_high"]], [0.45, 0.45], color="tab:orange", lw=3,
            label="new-study prediction (95%)")
    labels = [f"{s} {a} ({e}/{m}, " + ("no time point)" if t != t else f"{t:g} h)")
              for s, a, e, m, t in zip(arms["study"], arms["arm"], ev, n, arms["time_h"],
                                       strict=True)]
    ax.set_yticks(list(y) + [1.0, 0.45],
                  labels + ["pooled (reference level)" if moderated else "pooled",
                            "predictive"], parse_math=False)
    ax.set_xlim(0, 1)
    ax.set_ylim(0.1, k + 1.7)
    ax.set_xlabel(f"{outcome} rate")
    ax.set_title(title, fontsize=10, parse_math=False)
    ax.grid(axis="x", color="0.9")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=2, fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def _figure(**kwargs: Any) -> Figure:
    """Return a new figure.

    Mathtext stays on (matplotlib's own log-axis ticks are mathtext); text that comes from
    the user's data (study and arm names, titles, legend entries) is drawn with
    ``parse_math=False`` or through :func:`literal`, so a "$" in a study name stays a "$".
    """
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def literal(text: object) -> str:
    """Escape the dollar signs of user text for a label matplotlib may parse as mathtext."""
    return str(text).replace("$", r"\$")


def to_svg(fig: Figure) -> str:
    """Render a figure to an SVG string with no date and fixed element ids."""
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "trialmeta"
    matplotlib.rcParams["svg.fonttype"] = "none"
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"\s*<!--.*?-->", "", svg, flags=re.S)  # the source text of each label
    return svg[svg.index("<svg"):]


def contrast_forest(*, bayes: dict, freq: dict, title: str) -> Figure:
    """Observed and shrunken contrasts, pooled Bayesian and frequentist estimates, prediction."""
    studies = freq["studies"]
    k = len(studies)
    fig = _figure(figsize=(7.5, 1.6 + 0.4 * (k + 3)))
    ax = fig.add_subplot()
    y = np.arange(k, 0, -1) + 2.0
    yi = np.array([s["yi"] for s in studies])
    se = np.sqrt([s["vi"] for s in studies])
    ax.errorbar(yi, y + 0.12, xerr=1.959964 * se, fmt="o", color="0.6", ms=4, capsize=2,
                label="observed (95% CI)")
    shr = bayes["per_study"]
    med = np.array([s["shrunken_median"] for s in shr])
    lo = np.array([s["shrunken_ci_low"] for s in shr])
    hi = np.array([s["shrunken_ci_high"] for s in shr])
    ax.errorbar(med, y - 0.12, xerr=[med - lo, hi - med], fmt="s", color="black", ms=4,
                capsize=2, label="Bayesian shrunken (95% CrI)")
    b = bayes["estimates"]["effect"]
    ax.fill([b["ci_low"], b["median"], b["ci_high"], b["median"]], [2, 2.25, 2, 1.75],
            color="tab:blue", label="Bayesian pooled (95% CrI)")
    ax.fill([freq["ci_low"], freq["estimate"], freq["ci_high"], freq["estimate"]],
            [1.2, 1.45, 1.2, 0.95], color="tab:green",
            label=f"{freq['method']} pooled (95% CI)")
    p = bayes["estimates"]["predictive_effect"]
    ax.plot([p["ci_low"], p["ci_high"]], [0.5, 0.5], color="tab:orange", lw=3,
            label="new-study prediction (95%)")
    ax.axvline(0.0, color="0.3", lw=0.8)
    labels = [s["contrast"] for s in studies]
    ax.set_yticks(list(y) + [2.0, 1.2, 0.5],
                  labels + ["Bayesian", freq["method"], "prediction"], parse_math=False)
    ax.set_ylim(0.1, k + 2.8)
    unit = ("log " if freq["scale"] == "log" else "") + freq["measure"]
    ax.set_xlabel(f"{unit} (active - control)")
    ax.set_title(title, fontsize=10, parse_math=False)
    ax.grid(axis="x", color="0.9")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=2, fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def funnel_plot(*, freq: dict, title: str) -> Figure:
    """Effects against their standard errors with the pooled estimate's 95% funnel.

    When the document carries a trim-and-fill analysis, its filled studies are drawn as
    open circles and its adjusted estimate as a dashed line.
    """
    yi = np.array([s["yi"] for s in freq["studies"]])
    se = np.sqrt([s["vi"] for s in freq["studies"]])
    fill = (freq.get("bias") or {}).get("trimfill") or {}
    filled = fill.get("filled") or [] if "error" not in fill else []
    fig = _figure(figsize=(5.0, 3.6))
    ax = fig.add_subplot()
    top = float(se.max()) * 1.1
    grid = np.linspace(0, top, 50)
    est = freq["estimate"]
    ax.plot(est - 1.959964 * grid, grid, color="0.5", lw=0.8, ls="--")
    ax.plot(est + 1.959964 * grid, grid, color="0.5", lw=0.8, ls="--")
    ax.axvline(est, color="tab:green", lw=1, label=literal(f"{freq['method']} estimate"))
    ax.scatter(yi, se, color="black", s=14, label="studies")
    if filled:
        ax.scatter([f["yi"] for f in filled], np.sqrt([f["vi"] for f in filled]),
                   facecolors="white", edgecolors="black", s=14,
                   label=f"filled by trim-and-fill ({len(filled)})")
        ax.axvline(fill["estimate"], color="tab:orange", lw=1, ls="--",
                   label="trim-and-fill estimate")
    ax.set_ylim(top, 0)
    unit = ("log " if freq["scale"] == "log" else "") + freq["measure"]
    ax.set_xlabel(unit)
    ax.set_ylabel("standard error")
    ax.set_title(title, fontsize=10, parse_math=False)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


def dose_plot(*, doc: dict, title: str) -> Figure:
    """Dose-response curve with its 95% band over the arms' observed contrasts."""
    fig = _figure(figsize=(6.0, 3.8))
    ax = fig.add_subplot()
    c = doc["curve"]
    d = np.asarray(c["dose"])
    ax.fill_between(d, c["ci_low"], c["ci_high"], color="tab:blue", alpha=0.2, lw=0,
                    label="95% CrI")
    ax.plot(d, c["median"], color="tab:blue", label=f"{doc['form']} (median)")
    arms = doc["data"]
    by_study: dict[str, list[dict]] = {}
    for a in arms:
        by_study.setdefault(a["study"], []).append(a)
    for rows in by_study.values():
        ctl = [r for r in rows if r["dose"] == 0]
        if not ctl:
            continue
        if "events" in ctl[0]:
            c0 = np.log((ctl[0]["events"] + 0.5) / (ctl[0]["n"] - ctl[0]["events"] + 0.5))
            for r in rows:
                if r["dose"] > 0:
                    y = np.log((r["events"] + 0.5) / (r["n"] - r["events"] + 0.5)) - c0
                    ax.scatter(r["dose"], y, s=8 + r["n"] / 2, color="0.3", alpha=0.7)
        else:
            for r in rows:
                if r["dose"] > 0:
                    ax.scatter(r["dose"], r["y"] - ctl[0]["y"], s=8 + r["n"] / 2,
                               color="0.3", alpha=0.7)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel(f"dose ({doc['dose_unit']})")
    ax.set_ylabel(f"effect vs control ({doc['scale']})")
    ax.set_title(title, fontsize=10, parse_math=False)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


#: hour ticks of a log time axis, written out (1 h, 1 day, 3 days, 1 week, 2 weeks ...)
HOUR_TICKS = (0.5, 1, 2, 4, 8, 24, 72, 168, 336, 672, 1344)


def _hour_ticks(ax: Any, times: np.ndarray) -> None:
    """Put written-out hour ticks on a log time axis (no 10^x)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = float(np.min(times)), float(np.max(times))
    ticks = [t for t in HOUR_TICKS if lo / 1.5 <= t <= hi * 1.5] or [24.0]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def time_plot(*, doc: dict, title: str) -> Figure:
    """Time-course curve with its 95% band over the per-study contrasts (log time)."""
    fig = _figure(figsize=(6.0, 3.8))
    ax = fig.add_subplot()
    c = doc["curve"]
    t = np.asarray(c["time_h"])
    ax.fill_between(t, c["ci_low"], c["ci_high"], color="tab:purple", alpha=0.2, lw=0,
                    label="95% CrI")
    ax.plot(t, c["median"], color="tab:purple", label=f"{doc['form']} (median)")
    for row in doc["data"]:
        se = np.sqrt(row["vi"])
        ax.errorbar(row["time_h"], row["yi"], yerr=1.959964 * se, fmt="o", ms=3,
                    color="0.4", alpha=0.6, lw=0.8)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xscale("log")
    _hour_ticks(ax, t)
    ax.set_xlabel("hours after the dose")
    log = doc["measure"] in ("OR", "RR")  # ratio measures are modelled as log ratios
    ax.set_ylabel(f"{'log ' if log else ''}{doc['measure']} vs control")
    ax.set_title(title, fontsize=10, parse_math=False)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def agents_plot(*, agents: dict, scale: str, title: str) -> Figure:
    """Draw each agent's Emax curve (median and 95% band) against its own doses."""
    fig = _figure(figsize=(6.0, 3.8))
    ax = fig.add_subplot()
    for a, d in agents.items():
        c = d["curve"]
        x = np.asarray(c["dose"]) / max(d["observed_doses"])
        line, = ax.plot(x, c["median"], label=literal(
            f"{a} (max {max(d['observed_doses']):g} {d['unit']})"))
        ax.fill_between(x, c["ci_low"], c["ci_high"], color=line.get_color(), alpha=0.12,
                        lw=0)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("dose / the agent's highest observed dose")
    ax.set_ylabel(f"effect vs control ({scale})")
    ax.set_title(title, fontsize=10, parse_math=False)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def network_plot(*, nodes: list[str], edges: list[dict], title: str) -> Figure:
    """Draw the network: nodes on a circle, edges as wide as their number of trials.

    Node sizes follow the patients on the node's edges (area, capped so that one large
    trial does not hide the rest); labels sit outside the circle, aligned away from it, at a
    size that stays readable when the figure is scaled to the page.
    """
    fig = _figure(figsize=(7.5, 6.0))
    ax = fig.add_subplot()
    angle = np.pi / 2 - 2 * np.pi * np.arange(len(nodes)) / max(len(nodes), 1)
    xy = {n: (np.cos(a), np.sin(a)) for n, a in zip(nodes, angle, strict=True)}
    widest = max([e["trials"] for e in edges] or [1])
    for e in edges:
        (x0, y0), (x1, y1) = xy[e["from"]], xy[e["to"]]
        ax.plot([x0, x1], [y0, y1], color="tab:blue", alpha=0.55,
                lw=1.5 + 8.0 * e["trials"] / widest, solid_capstyle="round")
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, str(e["trials"]), fontsize=10, ha="center",
                va="center", bbox={"boxstyle": "round", "fc": "white", "ec": "none"})
    patients = {n: 0 for n in nodes}
    for e in edges:  # a node's patients, counted once per edge it is on: a size cue only
        patients[e["from"]] += e["patients"] // 2
        patients[e["to"]] += e["patients"] // 2
    most = max(patients.values() or [1]) or 1
    for n, (x, y) in xy.items():
        ax.scatter(x, y, s=120 + 700 * np.sqrt(patients[n] / most), color="0.25", zorder=3)
        ha = "center" if abs(x) < 0.3 else ("left" if x > 0 else "right")
        ax.text(1.14 * x, 1.14 * y, n.replace("_", " "), fontsize=12, ha=ha, va="center",
                parse_math=False)
    ax.set_xlim(-2.1, 2.1)
    ax.set_ylim(-1.35, 1.35)
    ax.set_axis_off()
    ax.set_title(title, fontsize=12, parse_math=False)
    fig.tight_layout()
    return fig


def calibration_plot(summary: dict) -> Figure:
    """SBC rank histograms (with the 99 % band of a uniform histogram) and coverage."""
    from ..stats.sbc import N_RANK_DRAWS, RANK_BINS

    labels = list(summary["ranks"])
    n = summary["sims"]
    fig = _figure(figsize=(2.4 * (len(labels) + 1), 2.6))
    expected = n / RANK_BINS
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / RANK_BINS)
    for i, label in enumerate(labels):
        ax = fig.add_subplot(1, len(labels) + 1, i + 1)
        ax.axhspan(lo, hi, color="0.9")
        ax.axhline(expected, color="0.6", lw=0.8)
        ax.bar(np.arange(RANK_BINS), summary["ranks"][label], width=1.0, color="tab:blue",
               edgecolor="white")
        ax.set_title(label, fontsize=8, parse_math=False)
        ax.set_xticks([0, RANK_BINS - 1], ["0", str(N_RANK_DRAWS)])
        ax.set_xlabel("rank of the truth", fontsize=7)
        ax.tick_params(labelsize=7)
    ax = fig.add_subplot(1, len(labels) + 1, len(labels) + 1)
    for j, label in enumerate(labels):
        rows = [r for r in summary["coverage"] if r["quantity"] == label]
        x = np.array([r["level"] for r in rows]) + (j - len(labels) / 2) * 0.01
        y = np.array([r["coverage"] for r in rows])
        ax.errorbar(x, y, yerr=[y - [r["ci_low"] for r in rows], [r["ci_high"] for r in rows] - y],
                    fmt="o", ms=3, capsize=2, label=label)
    ax.plot([0.4, 1], [0.4, 1], color="0.6", lw=0.8)
    ax.set_xlabel("nominal", fontsize=7)
    ax.set_ylabel("observed coverage", fontsize=7)
    ax.set_title("coverage (99% CI)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False)
    fig.tight_layout()
    return fig


#: the figures a family may ask for by name (:class:`~trialmeta.analysis.families.base.Figure`)
FIGURES: dict[str, Callable[..., Figure]] = {"forest": forest_plot, "dose": dose_plot,
                                              "time": time_plot}


#: ratio ticks of a forest plot's log axis (written out, never as 10^x)
RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
Z975 = 1.959963984540054


def study_forest(*, doc: dict, title: str) -> Figure:
    """Draw the classic forest plot of a frequentist document (``trialmeta forest``).

    One row per study: its label, a square sized by its random-effects weight with the 95 % CI,
    and the estimate, CI and weight written at the right; the pooled diamond, the prediction
    interval, and per-subgroup diamonds when ``doc`` has ``subgroups``. Ratio measures (log
    scale in ``doc``) are drawn as ratios on a log axis with written-out ticks.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ratio = doc["scale"] == "log"
    tr = np.exp if ratio else (lambda v: v)
    studies = doc["studies"]
    yi = np.array([s["yi"] for s in studies], float)
    se = np.sqrt([s["vi"] for s in studies])
    w = 1.0 / (np.array([s["vi"] for s in studies]) + doc["tau2"])
    weight = 100 * w / w.sum()
    labels = [s["contrast"] for s in studies]
    groups = doc.get("subgroups")
    # rows from the top: (kind, payload); a subgroup gets a heading and its own diamond
    rows: list[tuple[str, Any]] = []
    if groups:
        index = {lab: i for i, lab in enumerate(labels)}
        for g in groups["groups"]:
            rows.append(("heading", f"{groups['column']} = {g['level']}"))
            rows += [("study", index[c]) for c in g["contrasts"]]
            rows.append(("diamond", (f"subtotal (k = {g['k']})", g["estimate"], g["ci_low"],
                                     g["ci_high"], "tab:gray")))
        rows.append(("gap", None))
    else:
        rows += [("study", i) for i in range(len(studies))]
    rows.append(("diamond", (f"{doc['method']} pooled (k = {doc['k']})", doc["estimate"],
                             doc["ci_low"], doc["ci_high"], "black")))
    rows.append(("prediction", None))
    n = len(rows)
    fig = _figure(figsize=(9.0, 1.4 + 0.3 * n))
    ax = fig.add_axes((0.34, 0.9 / (1.4 + 0.3 * n), 0.36, 1 - 1.3 / (1.4 + 0.3 * n)))
    text_x = 1.04
    lo_all = [yi - Z975 * se, [doc["pi_low"]]]
    hi_all = [yi + Z975 * se, [doc["pi_high"]]]
    for pos, (kind, item) in zip(range(n, 0, -1), rows, strict=True):
        if kind == "heading":
            ax.text(-0.02, pos, item, transform=ax.get_yaxis_transform(), ha="right",
                    va="center", fontsize=8, fontweight="bold", parse_math=False)
        elif kind == "study":
            i = item
            lo, hi = yi[i] - Z975 * se[i], yi[i] + Z975 * se[i]
            ax.plot([tr(lo), tr(hi)], [pos, pos], color="black", lw=0.9)
            size = 3 + 9 * np.sqrt(weight[i] / weight.max())
            ax.plot([tr(yi[i])], [pos], marker="s", color="black", ms=size, ls="none")
            ax.text(-0.02, pos, labels[i], transform=ax.get_yaxis_transform(), ha="right",
                    va="center", fontsize=8, parse_math=False)
            ax.text(text_x, pos, f"{tr(yi[i]):.2f} [{tr(lo):.2f}, {tr(hi):.2f}]",
                    transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=8)
            ax.text(text_x + 0.62, pos, f"{weight[i]:.1f}%",
                    transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=8)
        elif kind == "diamond":
            label, est, lo, hi, colour = item
            ax.fill([tr(lo), tr(est), tr(hi), tr(est)], [pos, pos + 0.3, pos, pos - 0.3],
                    color=colour)
            ax.text(-0.02, pos, label, transform=ax.get_yaxis_transform(), ha="right",
                    va="center", fontsize=8, fontweight="bold")
            ax.text(text_x, pos, f"{tr(est):.2f} [{tr(lo):.2f}, {tr(hi):.2f}]",
                    transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=8,
                    fontweight="bold")
        elif kind == "prediction":
            ax.plot([tr(doc["pi_low"]), tr(doc["pi_high"])], [pos, pos], color="tab:orange",
                    lw=3)
            ax.text(-0.02, pos, "prediction interval", transform=ax.get_yaxis_transform(),
                    ha="right", va="center", fontsize=8)
            ax.text(text_x, pos, f"[{tr(doc['pi_low']):.2f}, {tr(doc['pi_high']):.2f}]",
                    transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=8)
    ax.text(text_x, n + 0.9, "estimate [95% CI]", transform=ax.get_yaxis_transform(),
            ha="left", va="center", fontsize=8, fontweight="bold")
    ax.text(text_x + 0.62, n + 0.9, "weight", transform=ax.get_yaxis_transform(), ha="right",
            va="center", fontsize=8, fontweight="bold")
    ax.axvline(tr(0.0), color="0.3", lw=0.8)
    ax.set_ylim(0.3, n + 1.3)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    name = doc["measure"]
    if ratio:
        lo = float(np.exp(np.min(np.concatenate(lo_all))))
        hi = float(np.exp(np.max(np.concatenate(hi_all))))
        ax.set_xscale("log")
        ticks = [t for t in RATIO_TICKS if lo / 1.5 <= t <= hi * 1.5] or [1.0]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlim(min(lo, min(ticks)) / 1.1, max(hi, max(ticks)) * 1.1)
        ax.set_xlabel(f"{name} (log scale)", fontsize=9)
    else:
        ax.set_xlabel(name, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    better = doc.get("lower_is_better")
    if better is not None:
        left, right = ("favours treatment", "favours control") if better else (
            "favours control", "favours treatment")
        ax.annotate(left, (0.0, 0.0), xycoords="axes fraction", xytext=(0, -28),
                    textcoords="offset points", ha="left", fontsize=7, color="0.35")
        ax.annotate(right, (1.0, 0.0), xycoords="axes fraction", xytext=(0, -28),
                    textcoords="offset points", ha="right", fontsize=7, color="0.35")
    fig.suptitle(title, fontsize=10, x=0.02, ha="left", parse_math=False)
    if groups:
        fig.text(0.02, 0.01, f"test for subgroup differences: Q = {groups['Q_between']:.2f}, "
                 f"df = {groups['Q_between_df']}, {ptext(groups['Q_between_p'])}",
                 fontsize=8)
    return fig


def figure_bytes(fig: Figure, kind: str) -> bytes:
    """Render a figure as SVG (deterministic, as :func:`to_svg`), PNG or PDF bytes."""
    if kind == "svg":
        return to_svg(fig).encode()
    buf = io.BytesIO()
    meta = {"CreationDate": None} if kind == "pdf" else {}
    fig.savefig(buf, format=kind, dpi=150, metadata=meta)
    return buf.getvalue()
