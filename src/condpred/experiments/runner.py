"""The one run lifecycle every kind of run shares.

A run is created with its parameters (and conditionals), written item by item as it goes, and
closed with how it ended (done, failed, interrupted), so the store always tells the truth. Each
item's row is committed **in one transaction with its side records** (its conditional, samples
and check results): a process killed at any point leaves either the whole item or none of it, and
a resume computes exactly the missing items. A kind registers how to resume its runs with
`@resumable("kind")`, and `resume(run_id, store)` finishes a run of any kind.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from condpred.errors import InputError
from condpred.model.base import PredictiveModel, Sample, Score
from condpred.progress import progress_bar
from condpred.store import RunRecord, Store

if TYPE_CHECKING:
    from condpred.checks.base import CheckResult
    from condpred.condition import Conditional

ModelLoader = Callable[[str], PredictiveModel]
Resume = Callable[[str, Store, ModelLoader], Any]
RESUMERS: dict[str, Resume] = {}
# Modules whose import registers the built-in kinds; a user's package adds its own kinds through
# the `condpred.experiments` entry-point group (each entry point names a module to import).
BUILTIN_KINDS = (
    "condpred.elicit.predict",
    "condpred.forecasting.run",
    "condpred.planning.run",
    "condpred.evals.agentic",
    "condpred.evals.zero_one",
)
ENTRY_POINT_GROUP = "condpred.experiments"


@dataclass(frozen=True)
class Item:
    """One experiment item: its row and what is stored beside it, committed together."""

    row: dict[str, Any]
    conditional: tuple[str, str, str | None] | None = None  # (yaml, rendered text, source)
    samples: Sequence[Sample] = ()
    check_results: Sequence[CheckResult] = ()


@dataclass
class Recorder:
    """Writes one run's results; without a store it records nothing (a notebook's quick call)."""

    store: Store | None
    run_id: str | None
    timings: dict[str, Any] = field(default_factory=dict)

    def add_sample(self, sample: Sample, cond_index: int = 0) -> None:
        if self.store is not None:
            self.store.add_sample(self.run_id, cond_index, sample)

    def add_scores(self, scores: list[Score], cond_index: int = 0) -> None:
        if self.store is not None:
            self.store.add_scores(self.run_id, cond_index, scores)

    def add_items(
        self,
        table: str,
        indices: Iterable[int],
        compute: Callable[[int], dict[str, Any] | Item],
        label: str,
    ) -> list[dict[str, Any]]:
        """Compute each index not yet in `table` and commit it, with its side records, in one
        transaction (so a resumed run computes only the rest), behind a progress bar. Returns
        the new rows."""
        return self.add_item_batches(table, indices, lambda batch: map(compute, batch), label)

    def add_item_batches(
        self,
        table: str,
        indices: Iterable[int],
        compute: Callable[[list[int]], Iterable[dict[str, Any] | Item]],
        label: str,
        batch: int = 1,
    ) -> list[dict[str, Any]]:
        """`add_items` for items computed `batch` at a time (one batch of model requests, so a
        server has them all in flight); each item still commits on its own, as soon as its
        batch is done."""
        done = self.store.item_indices(self.run_id, table) if self.store is not None else set()
        todo = [i for i in indices if i not in done]
        rows = []
        step = max(1, batch)
        with progress_bar(len(todo), label) as advance:
            for start in range(0, len(todo), step):
                chunk = todo[start : start + step]
                for index, item in zip(chunk, compute(chunk), strict=True):
                    rows.append(self._commit(table, index, item))
                advance(len(chunk))
        return rows

    def _commit(self, table: str, index: int, item: dict[str, Any] | Item) -> dict[str, Any]:
        item = item if isinstance(item, Item) else Item(item)
        if self.store is not None:
            self.store.add_item(
                self.run_id,
                table,
                index,
                item.row,
                conditional=item.conditional,
                samples=item.samples,
                check_results=item.check_results,
            )
        return item.row


def open_run(
    store: Store | None,
    kind: str,
    model_spec: str,
    params: dict[str, Any],
    seed: int | None,
    conditionals: Sequence[tuple[Conditional, str, str | Path | None]] = (),
) -> str | None:
    """Create the run with the conditionals known up front (YAML, the rendered text, where it
    came from); None without a store."""
    if store is None:
        return None
    run_id = store.create_run(kind, model_spec, params, seed)
    for index, (conditional, rendered, source) in enumerate(conditionals):
        store.add_conditional(run_id, index, conditional.to_yaml(), rendered, source)
    return run_id


def expect_kind(run: RunRecord, kind: str) -> RunRecord:
    """The run itself, when it is of `kind`: checked before any model is loaded. A resume then
    loads what it needs and marks the run running (`store.reopen_run`) only when it starts work,
    so a resume that fails to start leaves the run as it was."""
    if run.kind != kind:
        raise InputError(
            f"run {run.id} is a '{run.kind}' run, not '{kind}'",
            source="--resume",
            fix=f"Pass the id of a {kind} run (condpred runs list --kind {kind}), "
            f"or resume any run with: condpred resume {run.id}",
        )
    return run


@contextmanager
def recording(store: Store | None, run_id: str | None) -> Iterator[Recorder]:
    """Close the run as done, failed or interrupted, whichever way the block ends."""
    recorder = Recorder(store, run_id)
    try:
        yield recorder
    except KeyboardInterrupt:
        if store is not None:
            store.finish_run(run_id, "interrupted", error="interrupted by the user")
        raise
    except Exception as error:
        if store is not None:
            store.finish_run(run_id, "failed", error=f"{type(error).__name__}: {error}")
        raise
    if store is not None:
        store.finish_run(run_id, timings=recorder.timings)


def resumable(kind: str, *, one_model: bool = False) -> Callable[[Callable], Callable]:
    """Register `fn(run_id, store, load)` as the way to finish an interrupted run of `kind`;
    with `one_model`, `fn(run_id, store, model)` for a kind run by the one model its run names."""

    def register(fn: Callable) -> Callable:
        RESUMERS[kind] = (
            (lambda run_id, store, load: fn(run_id, store, load(store.get_run(run_id).model_spec)))
            if one_model
            else fn
        )
        return fn

    return register


def resume(run_id: str, store: Store, load: ModelLoader | None = None) -> Any:
    """Finish a run of any kind: only its missing items are computed, with the parameters,
    seed and models stored with it. Returns what the kind's own run function returns, or None
    for a run that is already done (it is left as it is)."""
    from condpred.model.registry import load_model

    _load_kinds()
    run = store.get_run(run_id)
    if run.kind not in RESUMERS:
        raise InputError(
            f"run {run.id} is a '{run.kind}' run, which cannot be resumed",
            source=str(store.path),
            fix=f"Resumable kinds: {', '.join(sorted(RESUMERS))}",
        )
    if run.status == "done":
        return None
    return RESUMERS[run.kind](run.id, store, load or load_model)


def _load_kinds() -> None:
    for module in BUILTIN_KINDS:
        importlib.import_module(module)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()
