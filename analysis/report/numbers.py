"""How p-values are written everywhere (report, figures, command line): one rule."""

from __future__ import annotations


def pfmt(p: float | None) -> str:
    """Format a p-value as people write it: "< 0.001" below a thousandth, else 3 decimals."""
    if p is None or p != p:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def ptext(p: float | None) -> str:
    """Write "p = 0.123" or "p < 0.001"."""
    text = pfmt(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"
