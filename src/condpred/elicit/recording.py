"""The life of a stored run: created with its conditional, written as it goes, closed with how it
ended (done, failed, or interrupted), so the store always tells the truth about every run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from condpred.condition import Conditional
from condpred.model.base import Sample, Score
from condpred.progress import progress_bar
from condpred.store import Store


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
        compute: Callable[[int], dict[str, Any]],
        label: str,
    ) -> list[dict[str, Any]]:
        """Compute the experiment row of each index not yet in `table`, committing each as it
        exists (so a resumed run computes only the rest), behind a progress bar. Returns the new
        rows."""
        done = self.store.item_indices(self.run_id, table) if self.store is not None else set()
        todo = [i for i in indices if i not in done]
        rows = []
        with progress_bar(len(todo), label) as advance:
            for index in todo:
                row = compute(index)
                if self.store is not None:
                    self.store.add_item(self.run_id, table, index, row)
                rows.append(row)
                advance(1)
        return rows


def start_run(
    store: Store | None,
    kind: str,
    model_spec: str,
    params: dict[str, Any],
    seed: int | None,
    conditional: Conditional,
    rendered: str,
    source: str | Path | None = None,
) -> str | None:
    """Create the run and store its conditional (YAML and the exact rendered text)."""
    if store is None:
        return None
    run_id = store.create_run(kind, model_spec, params, seed)
    store.add_conditional(run_id, 0, conditional.to_yaml(), rendered, source)
    return run_id


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
