"""The one run lifecycle every kind of run shares.

A run is created with its parameters (and conditionals), written item by item as it goes, and
closed with how it ended (done, failed, interrupted), so the store always tells the truth. Each
item's row is committed **in one transaction with its side records** (its conditional, samples
and check results): a process killed at any point leaves either the whole item or none of it, and
a resume computes exactly the missing items.

A kind's rows are a pydantic model (a `Row` subclass naming its table and version): validated when
they are stored and when they are read back (`read_rows`), so reports, exports and the CLI read
typed rows, and a row written by a newer condpred is refused rather than misread. A kind registers
itself, with how to resume its runs and its row models, by `@resumable("kind", rows=[...])` in
the `EXPERIMENTS` registry; `resume(run_id, store)` finishes a run of any kind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from condpred.errors import InputError
from condpred.model.base import PredictiveModel, Sample, Score
from condpred.progress import notice, progress_bar
from condpred.registry import Registry
from condpred.store import RunRecord, Store, refuse_if_live

if TYPE_CHECKING:
    from condpred.checks.base import CheckResult
    from condpred.condition import Conditional

ModelLoader = Callable[[str], PredictiveModel]
Resume = Callable[[str, Store, ModelLoader], Any]


class Row(BaseModel):
    """One experiment item's result. A kind subclasses it with its fields, its `table` and a
    `version` it raises when the fields change (with `upgrade` reading the older rows)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: ClassVar[str]
    version: ClassVar[int] = 1

    index: int

    def __getitem__(self, key: str) -> Any:
        """`row["prob"]` is `row.prob`: rows read like the JSON objects they are stored as."""
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """A row stored by an older `version` of this model, in the current shape."""
        return data


R = TypeVar("R", bound=Row)


@dataclass(frozen=True)
class Kind:
    """An experiment kind as registered: how to finish its runs, and the rows it stores."""

    name: str
    resume: Resume
    rows: tuple[type[Row], ...] = ()


EXPERIMENTS: Registry[Kind] = Registry(
    "experiment kind",
    "condpred.experiments",
    builtins=(
        "condpred.elicit.predict",
        "condpred.forecasting.run",
        "condpred.planning.run",
        "condpred.evals.agentic",
        "condpred.evals.zero_one",
        "condpred.experiments.passk.run",
        "condpred.experiments.tree",
        "condpred.experiments.gap.run",
        "condpred.experiments.reason.run",
        "condpred.experiments.assistant.run",
    ),
)


@dataclass(frozen=True)
class Item:
    """One experiment item: its row and what is stored beside it, committed together."""

    row: Row
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
        row_model: type[R],
        indices: Iterable[int],
        compute: Callable[[int], R | Item],
        label: str,
    ) -> list[R]:
        """Compute each index not yet in the row model's table and commit it, with its side
        records, in one transaction (so a resumed run computes only the rest), behind a
        progress bar. Returns the new rows."""
        return self.add_item_batches(row_model, indices, lambda batch: map(compute, batch), label)

    def add_item_batches(
        self,
        row_model: type[R],
        indices: Iterable[int],
        compute: Callable[[list[int]], Iterable[R | Item]],
        label: str,
        batch: int = 1,
    ) -> list[R]:
        """`add_items` for items computed `batch` at a time (one batch of model requests, so a
        server has them all in flight); each item still commits on its own, as soon as its
        batch is done."""
        table = row_model.table
        done = self.store.item_indices(self.run_id, table) if self.store is not None else set()
        todo = [i for i in indices if i not in done]
        rows = []
        step = max(1, batch)
        with progress_bar(len(todo), label) as advance:
            for start in range(0, len(todo), step):
                chunk = todo[start : start + step]
                for index, item in zip(chunk, compute(chunk), strict=True):
                    rows.append(self._commit(row_model, index, item))
                advance(len(chunk))
        return rows

    def add_item(self, row_model: type[R], item: R | Item) -> R:
        """Commit one item now, with its side records: an interactive kind's single addition
        (a tree's new node), where there is no list of indices to work through."""
        row = item.row if isinstance(item, Item) else item
        return self._commit(row_model, row.index, item)

    def _commit(self, row_model: type[R], index: int, item: R | Item) -> R:
        item = item if isinstance(item, Item) else Item(item)
        if not isinstance(item.row, row_model) or item.row.index != index:
            raise TypeError(f"item {index} must be a {row_model.__name__} with index {index}")
        if self.store is not None:
            self.store.add_item(
                self.run_id,
                row_model.table,
                index,
                item.row.model_dump(mode="json"),
                version=row_model.version,
                conditional=item.conditional,
                samples=item.samples,
                check_results=item.check_results,
            )
        return item.row


def item_seed(kind: str, seed: int, *where: int) -> int:
    """The sampling seed of one item of a run (`where`: its index, and a part within it): hashed
    with the kind's name, so items and kinds draw unrelated streams whatever the run's order;
    31 bits, which every backend's seed takes."""
    key = ":".join([kind, str(seed), *map(str, where)])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") & 0x7FFFFFFF


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
    notice(f"run {run_id} ({kind}) started in {store.path}; if it stops: condpred resume {run_id}")
    return run_id


def expect_kind(run: RunRecord, kind: str) -> RunRecord:
    """The run itself, when it is of `kind` and no other live process is running it: checked
    before any model is loaded. A resume then loads what it needs and marks the run running
    (`store.reopen_run`) only when it starts work, so a resume that fails to start leaves the
    run as it was."""
    refuse_if_live(run, "--resume")
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


def read_rows(
    store: Store, run_id: str, row_model: type[R], *, offset: int = 0, limit: int | None = None
) -> list[R]:
    """A run's stored rows of one table as typed rows, by index; older row versions upgraded,
    a newer one (written by a newer condpred) refused. `offset`/`limit`: one page of them."""
    rows = []
    for version, data in store.item_data(run_id, row_model.table, offset=offset, limit=limit):
        where = f"row {data.get('index')} of table '{row_model.table}' in run {run_id}"
        if version > row_model.version:
            raise InputError(
                f"{where} was written by a newer condpred (row version {version}; this one "
                f"reads up to {row_model.version})",
                source=str(store.path),
                fix="Upgrade condpred: pip install -U condpred",
            )
        try:
            rows.append(row_model.model_validate(row_model.upgrade(data, version)))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
            )
            raise InputError(f"{where} is damaged ({problems})", source=str(store.path)) from None
    return rows


def resumable(
    kind: str, *, rows: Sequence[type[Row]] = (), one_model: bool = False
) -> Callable[[Callable], Callable]:
    """Register the kind `kind` with `fn(run_id, store, load)` as the way to finish its
    interrupted runs (with `one_model`, `fn(run_id, store, model)` for a kind run by the one
    model its run names) and the row models it stores."""

    def register(fn: Callable) -> Callable:
        finish = (
            (lambda run_id, store, load: fn(run_id, store, load(store.get_run(run_id).model_spec)))
            if one_model
            else fn
        )
        EXPERIMENTS.register(kind)(Kind(kind, finish, tuple(rows)))
        return fn

    return register


def resume(run_id: str, store: Store, load: ModelLoader | None = None) -> Any:
    """Finish a run of any kind: only its missing items are computed, with the parameters,
    seed and models stored with it. Returns what the kind's own run function returns, or None
    for a run that is already done (it is left as it is)."""
    from condpred.model.registry import load_model

    run = store.get_run(run_id)
    if run.kind not in EXPERIMENTS:
        raise InputError(
            f"run {run.id} is a '{run.kind}' run, which cannot be resumed",
            source=str(store.path),
            fix=f"Resumable kinds: {', '.join(EXPERIMENTS.names())}",
        )
    if run.status == "done":
        return None
    notice(f"resuming run {run.id} ({run.kind}, {run.status}) in {store.path}")
    return EXPERIMENTS.get(run.kind).resume(run.id, store, load or load_model)
