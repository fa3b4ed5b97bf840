"""The instrument both evaluations share: how much probability a model puts on each answer, and
a resumable loop that scores a grid of (model, context, answers) jobs into the run store.

The probability of an answer is its likelihood as the continuation of the context, normalised over
the answers on offer (as Perez et al. and lm-evaluation-harness score multiple choice). Answers of
different token lengths are also compared per token (`probs_norm`, lm-eval's length-normalised
variant): when the two disagree, the answers' lengths, not their content, drive the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from condpred.errors import InputError
from condpred.experiments.runner import Recorder, Row
from condpred.model.base import PredictiveModel, Score, requests_at_once
from condpred.probability import normalise
from condpred.stats import ci_list


def answer_probs(model: PredictiveModel, context: str, options: Sequence[str]) -> dict[str, Any]:
    """Log-likelihood of each answer after `context`, and its probability among the answers, both
    whole (`probs`) and per token (`probs_norm`). One `score` call: the context is run once."""
    return _answer_probs(options, model.score(context, list(options)))


def _answer_probs(options: Sequence[str], scores: Sequence[Score]) -> dict[str, Any]:
    logprobs = [s.logprob for s in scores]
    tokens = [max(len(s.tokens), 1) for s in scores]
    return {
        "options": list(options),
        "logprobs": logprobs,
        "tokens": tokens,
        "probs": normalise(logprobs),
        "probs_norm": normalise([lp / n for lp, n in zip(logprobs, tokens, strict=True)]),
    }


class AnswerRow(Row):
    """What both evaluations store for each job: the model, and each answer's log-likelihood
    after the context, its token count and its probability among the answers (whole and per
    token). A kind's row adds the job's labels and its measure."""

    model: str
    options: list[str]
    logprobs: list[float]
    tokens: list[int]
    probs: list[float]
    probs_norm: list[float]


A = TypeVar("A", bound=AnswerRow)


@dataclass(frozen=True)
class Job:
    """One scoring request in an evaluation's grid; `index` is its row in the run's table."""

    index: int
    context: str
    options: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)


def run_jobs(
    model: PredictiveModel,
    jobs: Sequence[Job],
    derive: Callable[[Job, dict[str, Any]], dict[str, Any]],
    *,
    recorder: Recorder,
    row_model: type[A],
) -> list[A]:
    """Score every job not yet stored; `derive(job, probs)` turns the answer probabilities into
    the row's measures. Jobs go to the model as one batch of requests per `concurrency` jobs (an
    `openai` backend keeps them all in flight; `hf`, which has no such attribute, takes one job at
    a time), and each row is committed as soon as its batch is done (so `--resume` computes only
    the rest). Returns the new rows."""
    by_index = {job.index: job for job in jobs}

    def rows(indices: list[int]) -> list[A]:
        batch = [by_index[i] for i in indices]
        scores = iter(model.score_requests([(j.context, o) for j in batch for o in j.options]))
        computed = []
        for job in batch:
            probs = _answer_probs(job.options, [next(scores) for _ in job.options])
            computed.append(row_model(index=job.index, **job.meta, **probs, **derive(job, probs)))
        return computed

    label = f"{row_model.table}: scoring with {model.spec}"
    batch = requests_at_once(model)
    return recorder.add_item_batches(row_model, by_index, rows, label, batch=batch)


def score_models(
    models: Sequence[PredictiveModel],
    jobs_for: Callable[[str, int], Sequence[Job]],
    derive: Callable[[Job, dict[str, Any]], dict[str, Any]],
    *,
    recorder: Recorder,
    row_model: type[A],
) -> list[A]:
    """`run_jobs` for each model in turn (`jobs_for(spec, model_index)` gives its jobs), with each
    model's scoring seconds in the run's timings (a resume records only its own)."""
    rows: list[A] = []
    for m, model in enumerate(models):
        started = time.perf_counter()
        jobs = jobs_for(model.spec, m)
        rows += run_jobs(model, jobs, derive, recorder=recorder, row_model=row_model)
        recorder.timings[f"{model.spec}_s"] = time.perf_counter() - started
    return rows


def mean_ci(values: Sequence[float], seed: int) -> tuple[float, list[float] | None]:
    """The mean and its 95% percentile-bootstrap interval (seeded: the same rows, the same CI);
    None for fewer than `MIN_CI_N` rows."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), ci_list(np.mean, array, seed=seed)


def paired_diff_ci(
    a: Sequence[float], b: Sequence[float], seed: int
) -> tuple[float, list[float] | None]:
    """Mean of a - b over paired rows (the same items), with its paired bootstrap 95% interval."""
    return mean_ci(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), seed)


def load_all(specs: Sequence[str], load: Callable[[str], PredictiveModel]) -> list[PredictiveModel]:
    """Every model before any scoring, so a bad spec fails before work is done; no duplicates."""
    if not specs:
        raise InputError("no models given", source="--models", fix="e.g. --models default")
    if len(set(specs)) < len(specs):
        raise InputError("a model is named twice", source="--models", fix="Name each model once")
    return [load(spec) for spec in specs]


ALL = "all"


def grouped(rows: list[dict[str, Any]], *keys: str) -> dict[tuple, list[dict[str, Any]]]:
    """Rows grouped by `keys`, in the order each value was first seen; when the first key (the
    category or template) takes several values, every group is repeated under 'all', last."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    pooled = len({r[keys[0]] for r in rows}) > 1
    for row in rows:
        for first in (row[keys[0]], ALL) if pooled else (row[keys[0]],):
            groups.setdefault((first, *(row[k] for k in keys[1:])), []).append(row)
    ranks = [
        {v: i for i, v in enumerate(dict.fromkeys(key[j] for key in groups))}
        for j in range(len(keys))
    ]

    def order(key: tuple) -> tuple:
        return (key[0] == ALL, *(rank[v] for rank, v in zip(ranks, key, strict=True)))

    return {key: groups[key] for key in sorted(groups, key=order)}
