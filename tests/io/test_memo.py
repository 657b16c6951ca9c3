"""Selections memoised by the records' content hash, and the sweep's lean evaluation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from trialmeta.analysis.evaluate.claims import load_claims
from trialmeta.analysis.evaluate.evaluation import evaluate
from trialmeta.analysis.io.memo import per_records
from trialmeta.analysis.io.records import read_records
from trialmeta.analysis.sampling.settings import SamplerSettings
from trialmeta.analysis.select.filters import Filters, TimeWindow, select_binary_arms

RECORDS = read_records()


def test_a_caller_editing_its_selection_does_not_edit_the_next_one() -> None:
    first = select_binary_arms(RECORDS, "response", TimeWindow.around(24.0), Filters())
    kept = first.table.copy()
    first.table.loc[first.table.index[0], "events"] = 10_000
    first.dropped.append({"study": "x", "arm": "y", "reason": "edited"})
    again = select_binary_arms(RECORDS, "response", TimeWindow.around(24.0), Filters())
    assert again.table.equals(kept)
    assert {"study": "x", "arm": "y", "reason": "edited"} not in again.dropped


def test_records_with_other_content_are_selected_afresh() -> None:
    calls = []

    @per_records
    def count_rows(records, outcome: str) -> int:
        calls.append(outcome)
        return len(records.table)

    fewer = replace(RECORDS, table=RECORDS.table.iloc[:10], sha256=RECORDS.sha256 + "-head")
    assert count_rows(RECORDS, "response") == len(RECORDS.table)
    assert count_rows(RECORDS, "response") == len(RECORDS.table)  # from the cache
    assert count_rows(fewer, "response") == 10  # another hash: computed
    assert count_rows(RECORDS, outcome="remission") == len(RECORDS.table)
    assert calls == ["response", "response", "remission"]


def test_unhashable_arguments_are_computed_every_time() -> None:
    calls = []

    @per_records
    def first_of(records, items: list[str]) -> str:
        calls.append(1)
        return items[0]

    assert first_of(RECORDS, ["a"]) == "a" and first_of(RECORDS, ["a"]) == "a"
    assert len(calls) == 2


def test_evaluation_without_documents_gives_the_same_verdicts() -> None:
    """The sweep skips each fit's document; what it keeps must not change."""
    claims = load_claims()
    chosen = [c for c in claims.claims if c.id in ("C3", "C4", "C6", "C7b")]
    small = replace(claims, claims=chosen)
    settings = SamplerSettings(draws=300, tune=300, chains=2, seed=3)
    full = evaluate(RECORDS, small, settings)
    lean = evaluate(RECORDS, small, settings, documents=False)
    assert all(run.doc is None for run in lean.runs.values())
    assert any(run.doc is not None for run in full.runs.values())
    for a, b in zip(full.results, lean.results, strict=True):
        da, db = a.as_dict(), b.as_dict()
        assert da == db, (a.claim.id, da, db)
    assert np.isfinite([r.probability for r in lean.results if r.probability is not None]).all()
