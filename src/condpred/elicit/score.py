"""Score: how probable the model finds given continuations of a conditional, token by token."""

from __future__ import annotations

import time
from pathlib import Path

from condpred.condition import Conditional, render
from condpred.experiments.runner import open_run, recording
from condpred.model.base import PredictiveModel, Score
from condpred.store import Store


def score(
    conditional: Conditional,
    continuations: list[str],
    model: PredictiveModel,
    *,
    store: Store | None = None,
    cameras_dir: str | Path | None = None,
    source: str | Path | None = None,
) -> tuple[str | None, list[Score]]:
    """Log P(continuation | rendered conditional) for each continuation; stored when given a store.

    Returns (run id or None, scores in the order of `continuations`)."""
    rendered = render(conditional, cameras_dir)
    params = {"n": len(continuations)}
    run_id = open_run(store, "score", model.spec, params, None, [(conditional, rendered, source)])
    with recording(store, run_id) as recorder:
        started = time.perf_counter()
        scores = model.score(rendered, continuations)
        recorder.timings["score_s"] = time.perf_counter() - started
        recorder.add_scores(scores)
    return run_id, scores
