"""Predict: sample what a conditional's camera would show next, storing every sample as it exists.

A run is a conditional, a model and sampling parameters. Samples are drawn in small chunks and each
is committed to the store at once, so an interrupted run keeps what it finished; `resume` draws the
missing indices, and because sample i depends only on (seed, i), a resumed run ends with exactly the
samples an uninterrupted run gives. The checks named with the run run inside it: the run is done
only once their results are stored, and a run killed or failed while checking says so.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from condpred.condition import Conditional, render
from condpred.experiments.runner import (
    Recorder,
    expect_kind,
    open_run,
    recording,
    resumable,
)
from condpred.model.base import PredictiveModel, Sample, SamplingParams
from condpred.progress import progress_bar
from condpred.store import Store

if TYPE_CHECKING:
    from condpred.checks import CheckResult

CHUNK = 8  # samples per model call: batching gains against what an interruption can lose


@dataclass(frozen=True)
class Prediction:
    """The samples of one run under one conditional, and the exact text the model saw."""

    run_id: str | None
    model_spec: str
    conditional: Conditional
    rendered: str
    samples: list[Sample]
    checks: list[CheckResult] = field(default_factory=list)


def predict(
    conditional: Conditional,
    model: PredictiveModel,
    n: int = 8,
    params: SamplingParams | None = None,
    *,
    store: Store | None = None,
    cameras_dir: str | Path | None = None,
    source: str | Path | None = None,
    checks: Sequence[str] = (),
) -> Prediction:
    """Sample n continuations of the rendered conditional, then run `checks` (names or specs)
    on them; with a store, record the run."""
    params = params or SamplingParams()
    rendered = render(conditional, cameras_dir)
    run_params = {
        "n": n,
        "sampling": {**asdict(params), "stop": list(params.stop)},
        "checks": list(checks),
        "cameras": str(Path(cameras_dir).resolve()) if cameras_dir else None,
    }
    sources = [(conditional, rendered, source)]
    if check_context := getattr(model, "check_context", None):  # before the run is stored
        check_context(rendered, params.max_new_tokens)
    run_id = open_run(store, "predict", model.spec, run_params, params.seed, sources)
    with recording(store, run_id) as recorder:
        samples = _sample_missing(model, rendered, n, params, set(), recorder)
        prediction = Prediction(run_id, model.spec, conditional, rendered, samples)
        return _checked(prediction, model, checks, store, cameras_dir, recorder)


@resumable("predict", one_model=True)
def resume(run_id: str, store: Store, model: PredictiveModel | None = None) -> Prediction:
    """Finish an interrupted predict run: draw only the samples it does not have yet."""
    from condpred.model.registry import load_model

    run = expect_kind(store.get_run(run_id), "predict")
    if run.status == "done":  # nothing to sample or check again
        return stored_prediction(store, run.id)
    sampling = run.params["sampling"]
    params = SamplingParams(**{**sampling, "stop": tuple(sampling["stop"])})
    record = store.conditionals(run.id)[0]
    model = model or load_model(run.model_spec)
    done = store.sample_indices(run.id, 0)
    with recording(store, store.reopen_run(run.id)) as recorder:
        _sample_missing(model, record.rendered, run.params["n"], params, done, recorder)
        checks, cameras = run.params.get("checks", []), run.params.get("cameras")
        return _checked(stored_prediction(store, run.id), model, checks, store, cameras, recorder)


def _checked(
    prediction: Prediction,
    model: PredictiveModel,
    checks: Sequence[str],
    store: Store | None,
    cameras_dir: str | Path | None,
    recorder: Recorder,
) -> Prediction:
    """The prediction with what its checks found, stored with its run (inside the run: a run
    is done only once its checks are)."""
    from condpred.elicit.check import check

    if not checks:
        return prediction
    started = time.perf_counter()
    results = check(prediction, model, checks, store=store, cameras_dir=cameras_dir)
    recorder.timings["check_s"] = time.perf_counter() - started
    return Prediction(**{**vars(prediction), "checks": results})


def stored_prediction(store: Store, run_id: str) -> Prediction:
    """A stored predict run as a Prediction, e.g. to check it again without sampling."""
    run = store.get_run(run_id)
    record = store.conditionals(run.id)[0]
    conditional = Conditional.from_yaml(record.yaml_text, source=f"run {run.id}")
    samples = store.samples(run.id, 0)
    checks = store.check_results(run.id, 0)
    return Prediction(run.id, run.model_spec, conditional, record.rendered, samples, checks)


def _sample_missing(
    model: PredictiveModel,
    rendered: str,
    n: int,
    params: SamplingParams,
    done: set[int],
    recorder: Recorder,
) -> list[Sample]:
    """Draw the samples whose indices are not in `done`, in contiguous chunks, storing each."""
    samples: list[Sample] = []
    started = time.perf_counter()
    with progress_bar(n - len(done), "sampling") as advance:
        for start, count in _missing_ranges(n, done):
            for sample in model.sample(rendered, count, params, start=start):
                recorder.add_sample(sample)
                samples.append(sample)
            advance(count)
    recorder.timings["sample_s"] = time.perf_counter() - started
    recorder.timings["new_tokens"] = sum(len(s.tokens) for s in samples)
    return samples


def _missing_ranges(n: int, done: set[int]) -> list[tuple[int, int]]:
    """(start, count) runs of missing indices, each at most CHUNK long."""
    ranges: list[tuple[int, int]] = []
    index = 0
    while index < n:
        if index in done:
            index += 1
            continue
        start = index
        while index < n and index not in done and index - start < CHUNK:
            index += 1
        ranges.append((start, index - start))
    return ranges
