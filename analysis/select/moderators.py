"""Moderators for meta-regression: a design matrix from record columns.

A moderator is written as

- ``COLUMN`` — numeric columns enter centred at their mean (one coefficient per unit);
  text columns enter as indicators against their most common level;
- ``COLUMN:categorical`` — indicators even for a numeric column;
- ``COLUMN>VALUE`` — one indicator, 1 where the column exceeds VALUE (e.g.
  ``doses_given>1``: repeated vs single administration).

Rows missing a moderator are dropped by the model that uses them, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import SpecError

SPEC = re.compile(r"^(?P<col>[A-Za-z_][A-Za-z0-9_]*)"
                  r"(?::(?P<kind>categorical)|>(?P<cut>-?[\d.]+))?$")


@dataclass(frozen=True)
class Design:
    """Covariate matrix with one named column per coefficient."""

    x: np.ndarray
    names: list[str]
    missing: np.ndarray
    description: list[str]


def design_matrix(table: pd.DataFrame, specs: tuple[str, ...],
                  known: list[str] | None = None, *, coding: str = "bayesian") -> Design:
    """Build the covariate matrix of ``table`` for the moderator ``specs``.

    ``known`` lists the columns a message offers when a moderator names no column (by
    default every column of ``table``). ``coding="bayesian"`` (the Bayesian models) centres
    numeric columns (the intercept is the effect at the mean, which its prior is about) and
    takes the most common level of a text column as reference; ``coding="metafor"`` keeps
    numbers as they are and takes the first level in sorted order, as R's ``factor`` does, so
    that coefficients equal ``rma(mods = ~ COL + factor(TEXT))``.
    """
    centre = coding == "bayesian"
    cols: list[np.ndarray] = []
    names: list[str] = []
    desc: list[str] = []
    missing = np.zeros(len(table), dtype=bool)
    for spec in specs:
        m = SPEC.match(spec.strip())
        if not m:
            raise SpecError(f"moderator '{spec}' is not COLUMN, COLUMN:categorical or "
                            "COLUMN>VALUE")
        col = m["col"]
        if col not in table.columns:
            offered = known if known is not None else list(map(str, table.columns))
            raise SpecError(f"moderator column '{col}' is not available here; known: "
                            f"{', '.join(sorted(offered))}")
        raw = table[col]
        missing |= raw.isna().to_numpy()
        if m["cut"] is not None:
            values = pd.to_numeric(raw, errors="coerce").to_numpy(float)
            cols.append((values > float(m["cut"])).astype(float))
            names.append(spec)
            desc.append(f"{spec}: indicator, 1 where {col} > {m['cut']}")
            continue
        numeric = pd.to_numeric(raw, errors="coerce")
        is_numeric = m["kind"] is None and numeric.notna().sum() == raw.notna().sum()
        if is_numeric:
            v = numeric.to_numpy(float)
            mean = float(np.nanmean(v)) if np.isfinite(v).any() and centre else 0.0
            cols.append(np.nan_to_num(v - mean))
            names.append(col)
            desc.append(f"{col}: numeric, centred at {mean:g}" if centre else f"{col}: numeric")
            continue
        levels = raw.dropna().astype(str)
        counts = levels.value_counts()
        if len(counts) < 2:
            raise SpecError(f"moderator '{col}' has a single level here "
                            f"({', '.join(counts.index)}): it cannot explain anything")
        order = level_order(list(counts.index))
        ref = (sorted(counts.index, key=lambda k: (-counts[k], k))[0] if centre
               else order[0])
        for level in [lv for lv in order if lv != ref]:
            cols.append((raw.astype(str) == level).to_numpy(float))
            names.append(f"{col}={level}")
        desc.append(f"{col}: indicators against '{ref}'")
    x = np.column_stack(cols) if cols else np.zeros((len(table), 0))
    return Design(x, names, missing, desc)


def level_order(levels: list[str]) -> list[str]:
    """Levels in R's ``factor`` order: numerically when every level is a number."""
    numbers = pd.to_numeric(pd.Series(levels), errors="coerce")
    if numbers.notna().all():
        return [lv for _, lv in sorted(zip(numbers, levels, strict=True))]
    return sorted(levels)


def subgroup_levels(table: pd.DataFrame, column: str, known: list[str]
                    ) -> tuple[list[str], np.ndarray]:
    """Return the levels of a subgroup column (R's order) and each row's level (text).

    Rows without a value get None. A column that is missing, or has one level, is a
    SpecError that says so (and, for a missing one, which columns there are).
    """
    if column not in table.columns:
        raise SpecError(f"subgroup column '{column}' is not available here; known: "
                        f"{', '.join(sorted(known))}")
    values = table[column]
    present = values.notna().to_numpy()
    levels = level_order(sorted({str(v) for v in values[present]}))
    if len(levels) < 2:
        raise SpecError(f"subgroup column '{column}' has a single level here "
                        f"({', '.join(levels)}): there is nothing to compare")
    text = np.where(present, values.astype(str).to_numpy(), None)
    return levels, text


def term_rows(table: pd.DataFrame, term: str) -> np.ndarray | None:
    """Rows at a moderator term's non-reference level (None: a numeric term, every row).

    ``COLUMN>VALUE``: rows where the column exceeds VALUE; ``COLUMN=LEVEL`` (an indicator
    of a text column): rows at that level.
    """
    m = SPEC.match(term.strip())
    if m and m["cut"] is not None and m["col"] in table:
        values = pd.to_numeric(table[m["col"]], errors="coerce").to_numpy(float)
        return values > float(m["cut"])
    col, eq, level = term.partition("=")
    if eq and col in table:
        return (table[col].astype(str) == level).to_numpy()
    return None


def nested_levels(table: pd.DataFrame, columns: tuple[str, ...],
                  known: list[str] | None = None) -> list[tuple[str, list[str], np.ndarray]]:
    """Return each cluster column's levels and every row's level index, outer first.

    Levels are nested: an inner column's level is named by its path from the outermost
    (``district 1/school 3``), so that equal inner labels in two outer levels stay apart.
    A cluster must hold whole studies and group more than one of them: a column that varies
    within a study, or has one study per level (the study level is already in the model),
    is refused; so is an empty value (the studies are named). ``known`` lists the columns a
    message offers for a name that is not there (by default every column).
    """
    out = []
    path = pd.Series([""] * len(table), index=table.index)
    studies = table["study"].nunique()
    for col in columns:
        if col not in table.columns:
            offered = known if known is not None else list(map(str, table.columns))
            raise SpecError(f"cluster column '{col}' is not available here; known: "
                            f"{', '.join(sorted(offered))}")
        if table[col].isna().any():
            empty = sorted(set(table.loc[table[col].isna(), "study"].astype(str)))
            raise SpecError(f"cluster column '{col}' is empty for "
                            f"{', '.join(empty[:10])}"
                            + (f" and {len(empty) - 10} more" if len(empty) > 10 else ""))
        path = path + "/" + table[col].astype(str)
        per_study = path.groupby(table["study"]).nunique()
        if (per_study > 1).any():
            raise SpecError(f"cluster '{col}' varies within study "
                            f"{per_study[per_study > 1].index[0]}: clusters sit above studies")
        levels = list(dict.fromkeys(path))
        if len(levels) == studies:
            raise SpecError(f"cluster '{col}' has one study per level: the study level is "
                            "already in the model; leave it out")
        index = {lv: i for i, lv in enumerate(levels)}
        out.append((col, [lv.lstrip("/") for lv in levels], path.map(index).to_numpy()))
    return out
