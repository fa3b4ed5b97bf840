"""An experiment kind in one file: how P(outcomes) moves as the conditional's date moves.

    import condpred as cp
    from date_sweep import date_sweep
    page = cp.load_conditional("examples/forecast-question.yaml")
    rows = date_sweep(page, [" Yes", " No"], ["2026-01-01", "2030-01-01"], cp.load_model(),
                      store=cp.Store())

Stored as a run of kind "date-sweep": `condpred resume ID`, `runs export ID`, `report ID` work
on it as on any kind (register the module under the `condpred.experiments` entry point group
so that `condpred resume` finds it; importing it is enough in a notebook).
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import condpred as cp
from condpred.experiments import (
    ModelLoader,
    Row,
    expect_kind,
    open_run,
    read_rows,
    recording,
    resumable,
)

KIND = "date-sweep"


class SweepRow(Row):  # validated when stored and when read back; `index` comes with Row
    table: ClassVar[str] = KIND
    date: str
    probs: list[float]


def date_sweep(conditional, outcomes, dates, model, *, store=None):
    params = {"conditional": conditional.to_yaml(), "outcomes": outcomes, "dates": dates}
    run_id = open_run(store, KIND, model.spec, params, seed=None)
    return _rows(run_id, params, model, store)


@resumable(KIND, rows=[SweepRow])
def resume_date_sweep(run_id: str, store: cp.Store, load: ModelLoader):
    run = expect_kind(store.get_run(run_id), KIND)
    model = load(run.model_spec)
    store.reopen_run(run.id)
    return _rows(run.id, run.params, model, store)


def _rows(run_id, params, model, store):
    conditional = cp.Conditional.from_yaml(params["conditional"])

    def row(i: int) -> SweepRow:
        dated = conditional.with_(date=dt.date.fromisoformat(params["dates"][i]))
        dist = cp.outcomes(dated, params["outcomes"], model)
        return SweepRow(index=i, date=params["dates"][i], probs=list(dist.probs))

    with recording(store, run_id) as recorder:
        rows = recorder.add_items(SweepRow, range(len(params["dates"])), row, "dates")
    return read_rows(store, run_id, SweepRow) if store else rows
