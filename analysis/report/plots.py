"""Figures as inline SVG (matplotlib, deterministic output)."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..results import PooledRateRun


def clopper_pearson(events: np.ndarray, n: np.ndarray, prob: float = 0.95) -> tuple:
    """Exact binomial interval of each observed proportion."""
    a = (1 - prob) / 2
    lo = np.where(events > 0, stats.beta.ppf(a, events, n - events + 1), 0.0)
    hi = np.where(events < n, stats.beta.ppf(1 - a, events + 1, n - events), 1.0)
    return lo, hi


def forest_plot(*, run: PooledRateRun, title: str) -> Figure:
    """Per-arm observed and shrunken rates with the pooled and predictive intervals."""
    from matplotlib.figure import Figure

    arms = run.summary.arms
    est = run.summary.estimates
    k = len(arms)
    fig = Figure(figsize=(7.5, 1.2 + 0.42 * (k + 2)))
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
    ax.fill([p["ci_low"], p["median"], p["ci_high"], p["median"]], [1, 1.25, 1, 0.75],
            color="tab:blue", label="pooled rate (95% CrI)")
    q = est["predictive_rate"]
    ax.plot([q["ci_low"], q["ci_high"]], [0.45, 0.45], color="tab:orange", lw=3,
            label="new-study prediction (95%)")
    labels = [f"{s} {a} ({e}/{m}, {t:g} h)" for s, a, e, m, t in
              zip(arms["study"], arms["arm"], ev, n, arms["time_h"], strict=True)]
    ax.set_yticks(list(y) + [1.0, 0.45], labels + ["pooled", "predictive"])
    ax.set_xlim(0, 1)
    ax.set_ylim(0.1, k + 1.7)
    ax.set_xlabel(f"{run.outcome} rate")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", color="0.9")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=2, fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def to_svg(fig: Figure) -> str:
    """Render a figure to an SVG string with no date and fixed element ids."""
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "trialmeta"
    matplotlib.rcParams["svg.fonttype"] = "none"
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    return svg[svg.index("<svg"):]
