"""Forecast: each question rendered as a forecasting-site page dated at its as-of date, and the
probability of "Yes" read off the model, one stored row per question.

The page shows the question, "Forecast as of <as-of date>", the background and the resolution
criteria, never the resolution date. With `reasoning`, a forecaster's comment is sampled from the
model first (sequential reasoning by a predicted human, seed 001) and the answer follows it.
Each question's row is committed at once, so `resume_forecast` computes only the missing ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from condpred.condition import Author, Conditional, render
from condpred.elicit.outcomes import (
    Distribution,
    camera_alone,
    outcome_distributions,
    phrasing_logprobs,
)
from condpred.errors import InputError
from condpred.experiments.runner import (
    Row,
    expect_kind,
    open_run,
    read_rows,
    recording,
    resumable,
)
from condpred.forecasting.questions import (
    Question,
    file_digest,
    load_questions,
    stratified_sample,
)
from condpred.model.base import PredictiveModel, SamplingParams, requests_at_once
from condpred.store import Store

KIND = "forecast"
OUTCOMES = ("Yes", "No")  # the first is the event happening
# Chosen, without looking at outcomes, as the three of seven candidate lead-ins after which
# gemma-3-270m puts the most probability on " Yes" + " No" (0.29, 0.13, 0.12 on a seeded sample of
# 8 market questions; "This question resolved {}." got under 0.001).
PHRASINGS = ("Answer: {}", "Resolved: {}", "Resolution: {}")
FORECASTER = Author(name="an experienced forecaster")
REASONING_PREFIX = "My reasoning:"
REASONING_PARAMS = dict(max_new_tokens=96, temperature=1.0, stop=("\n\n",))


class ForecastRow(Row):
    """One question's forecast: P(yes), the full distribution over phrasings, what the model
    saw, and what is known of the question (its outcome and the crowd's forecast)."""

    table: ClassVar[str] = "questions"
    version: ClassVar[int] = 2  # 2: the question's text

    id: str
    question: str = ""  # "" in rows stored by version 1
    source: str
    as_of: str  # ISO date: the page is dated then
    resolved: str | None
    outcome: int | None  # 1 = yes
    crowd_prob: float | None
    prob: float
    distribution: dict[str, Any]  # Distribution.to_dict()
    reasoning: str | None  # the forecaster's sampled comment, with `reasoning`
    rendered: str


@dataclass(frozen=True)
class ForecastRun:
    """A forecast run's id (None when not stored) and its rows, by question order."""

    run_id: str | None
    rows: list[ForecastRow]
    params: dict[str, Any]


def forecast(
    path: str | Path,
    model: PredictiveModel,
    *,
    limit: int | None = None,
    seed: int = 0,
    reasoning: bool = False,
    cutoff: dt.date | None = None,
    store: Store | None = None,
) -> ForecastRun:
    """P(yes) for the questions in a JSONL file (a seeded stratified sample of `limit`)."""
    questions = load_questions(path)
    params = {
        "questions": str(Path(path).resolve()),  # resumable from any folder
        "sha256": file_digest(path),
        "indices": stratified_sample(questions, limit, seed),
        "limit": limit,
        "reasoning": reasoning,
        "cutoff": cutoff.isoformat() if cutoff else None,
        "outcomes": list(OUTCOMES),
        "phrasings": list(PHRASINGS),
    }
    run_id = open_run(store, KIND, model.spec, params, seed)
    return _run(questions, model, params, seed, store, run_id)


@resumable(KIND, rows=[ForecastRow], one_model=True)
def resume_forecast(run_id: str, store: Store, model: PredictiveModel | None = None) -> ForecastRun:
    """Finish an interrupted forecast run: only the questions it has no row for are computed."""
    from condpred.model.registry import load_model

    run = expect_kind(store.get_run(run_id), KIND)
    path = run.params["questions"]
    if not Path(path).exists() or file_digest(path) != run.params["sha256"]:
        raise InputError(
            f"the questions file {path} is missing or changed since run {run.id} started",
            source="--resume",
            fix="Restore the file the run read, or start a new run",
        )
    questions = load_questions(path)
    model = model or load_model(run.model_spec)
    store.reopen_run(run.id)
    return _run(questions, model, run.params, run.seed or 0, store, run.id)


def stored_forecast(store: Store, run_id: str) -> ForecastRun:
    """A stored forecast run's rows, e.g. for its report."""
    run = store.get_run(run_id)
    return ForecastRun(run.id, read_rows(store, run.id, ForecastRow), run.params)


def _run(
    questions: list[Question],
    model: PredictiveModel,
    params: dict[str, Any],
    seed: int,
    store: Store | None,
    run_id: str | None,
) -> ForecastRun:
    """Forecast the selected questions not stored yet, storing each row; close the run."""
    with recording(store, run_id) as recorder:
        baseline = None
        if not params["reasoning"]:  # every page has the same bare camera: score it once
            alone = render(camera_alone(question_conditional(questions[0])))
            baseline = phrasing_logprobs(model, alone, params["outcomes"], params["phrasings"])
        rows = recorder.add_item_batches(
            ForecastRow,
            params["indices"],
            lambda batch: forecast_questions(questions, batch, model, seed, params, baseline),
            "forecasting",
            batch=requests_at_once(model),
        )
    if store is not None:
        rows = read_rows(store, run_id, ForecastRow)
    return ForecastRun(run_id, rows, params)


def question_conditional(question: Question) -> Conditional:
    """The question's page on a forecasting site, dated at its as-of date (never later)."""
    extra = {"background": question.background, "resolution_criteria": question.resolution_criteria}
    return Conditional(
        camera="forecast-question",
        date=question.as_of,
        title=question.question,
        extra={k: v for k, v in extra.items() if v},
    )


def forecast_questions(
    questions: list[Question],
    indices: list[int],
    model: PredictiveModel,
    seed: int,
    params: dict[str, Any],
    baseline: list[list[float]] | None,
) -> list[ForecastRow]:
    """The rows of questions `indices`: P(yes), the full distribution, and the forecaster's
    reasoning; every question's scoring requests go to the model in one batch."""
    pages, comments = [], []
    for index in indices:
        conditional, comment = question_conditional(questions[index]), None
        if params["reasoning"]:
            conditional, comment = with_reasoning(conditional, model, seed, index)
        pages.append(conditional)
        comments.append(comment)
    dists = outcome_distributions(
        pages, params["outcomes"], model, phrasings=params["phrasings"], baseline=baseline
    )
    return [
        _row(index, questions[index], page, comment, dist)
        for index, page, comment, dist in zip(indices, pages, comments, dists, strict=True)
    ]


def _row(
    index: int, question: Question, page: Conditional, comment: str | None, dist: Distribution
) -> ForecastRow:
    return ForecastRow(
        index=index,
        id=question.id,
        question=question.question,
        source=question.source,
        as_of=question.as_of.isoformat(),
        resolved=question.resolved.isoformat() if question.resolved else None,
        outcome=question.outcome,
        crowd_prob=question.crowd_prob,
        prob=dist.probs[0],
        distribution=dist.to_dict(),
        reasoning=comment,
        rendered=render(page),
    )


def with_reasoning(
    conditional: Conditional, model: PredictiveModel, seed: int, index: int
) -> tuple[Conditional, str]:
    """The page with a forecaster's comment sampled from the model (sample `index` of `seed`,
    so a resumed run samples the same comment); the answer phrasings follow on a new line."""
    commented = conditional.with_(authors=[FORECASTER], prefix=REASONING_PREFIX)
    params = SamplingParams(**REASONING_PARAMS, seed=seed)
    sample = model.sample(render(commented), 1, params, start=index)[0]
    text = sample.text.strip()
    return commented.with_(prefix=f"{REASONING_PREFIX} {text}\n" if text else ""), text
