"""Agentic markers with the conditional as the independent variable.

The same model-written-evaluation items are asked under different conditionals: the raw question,
a survey of human respondents (predicting a human), a conversation with an AI assistant (predicting
an AI), a dated transcript of a counterfactual world. The marker is the probability mass a model
puts on the behaviour-matching answers. The seeds predict that whom the model predicts moves the
markers, and tuning may make a model answer as the AI whatever the framing: both are measured here,
as paired differences on the same items with bootstrap intervals.

A conditional for this evaluation is an ordinary condpred conditional whose prefix holds
`{question}`, where each item's question (with its choices) goes; the built-ins are the YAML files
in `conditionals/`, and a path to a YAML file of one's own works the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from condpred.condition import Conditional, load_conditional, render
from condpred.errors import InputError
from condpred.evals.data import EvalItem, EvalSet, load_evals
from condpred.evals.instrument import (
    AnswerRow,
    Job,
    grouped,
    load_all,
    mean_ci,
    paired_diff_ci,
    score_models,
)
from condpred.experiments.runner import expect_kind, open_run, read_rows, recording, resumable
from condpred.model.base import PredictiveModel
from condpred.model.registry import load_model
from condpred.store import Store

KIND = "agentic"
BUILTIN_CONDITIONALS = Path(__file__).with_name("conditionals")
PLACEHOLDER = "{question}"
DEFAULT_CONDITIONALS = ("raw", "human", "ai")
_WRAPPER = re.compile(r"^\s*Question:\s*|\s*Answer:\s*$")


@dataclass(frozen=True)
class EvalConditional:
    """A named conditional whose prefix holds `{question}`."""

    name: str
    conditional: Conditional
    source: str | None = None

    def context(self, item: EvalItem, cameras_dir: str | Path | None = None) -> str:
        """The text the model continues with an answer: the item's question, framed."""
        prefix = self.conditional.prefix.replace(PLACEHOLDER, question_text(item.question))
        return render(self.conditional.with_(prefix=prefix), cameras_dir)


class AgenticRow(AnswerRow):
    """One (model, conditional, item): the answers' probabilities and the mass on the answers
    that match the behaviour the item probes."""

    table: ClassVar[str] = "agentic"

    category: str
    line: int  # the item's 1-based line in its category's file
    conditional: str
    matching: list[str]
    matching_prob: float
    matching_prob_norm: float


@dataclass
class AgenticResult:
    """Per-item rows, the tidy summary, the paired contrasts, and what was left out."""

    run_id: str | None
    rows: list[AgenticRow]
    summary: list[dict[str, Any]]
    contrasts: list[dict[str, Any]]
    excluded: list[dict[str, str]]


def conditional_names() -> list[str]:
    """The built-in conditionals of this evaluation."""
    return sorted(p.stem for p in BUILTIN_CONDITIONALS.glob("*.yaml"))


def question_text(question: str) -> str:
    """The question with its choices, without the 'Question: ... Answer:' wrapper some files have,
    so each conditional frames the same text in its own way."""
    return _WRAPPER.sub("", question.strip())


def eval_conditional(spec: str, cameras_dir: str | Path | None = None) -> EvalConditional:
    """A built-in conditional by name, or a YAML conditional file by path."""
    builtin = BUILTIN_CONDITIONALS / f"{spec}.yaml"
    path = builtin if builtin.is_file() else Path(spec)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        raise InputError(
            f"unknown conditional '{spec}'",
            source="--conditionals",
            fix=f"Use {', '.join(conditional_names())}, or the path of a YAML conditional "
            f"whose prefix holds {PLACEHOLDER}",
        )
    conditional = load_conditional(path, cameras_dir)
    if PLACEHOLDER not in conditional.prefix:
        raise InputError(
            f"the prefix has no {PLACEHOLDER}: there is nowhere to put the items' questions",
            source=str(path),
            field="prefix",
            fix=f"End the prefix with {PLACEHOLDER} and the cue for an answer, e.g. "
            f"'{PLACEHOLDER}\\n\\nAnswer:'",
        )
    name = spec if path == builtin else path.stem
    return EvalConditional(name, conditional, None if path == builtin else str(path))


def run_agentic(
    data: str | Path,
    models: Sequence[str],
    conditionals: Sequence[str] = DEFAULT_CONDITIONALS,
    *,
    categories: Sequence[str] | None = None,
    limit: int | None = None,
    store: Store | None = None,
    load: Callable[[str], PredictiveModel] = load_model,
    cameras_dir: str | Path | None = None,
    seed: int = 0,
) -> AgenticResult:
    """Score every item of `data` (the first `limit` per category) under every conditional with
    every model; rows are stored one by one as a run of kind 'agentic'."""
    named = [eval_conditional(spec, cameras_dir) for spec in conditionals]
    if len({c.name for c in named}) < len(named):
        raise InputError("a conditional is named twice", source="--conditionals")
    evals = load_evals(data, categories, limit)
    loaded = load_all(models, load)
    params = {
        "data": str(Path(data).resolve()),
        "categories": list(categories) if categories else None,
        "limit": limit,
        "models": list(models),
        "conditionals": [c.name for c in named],
        "cameras": str(Path(cameras_dir).resolve()) if cameras_dir else None,
        "excluded": [vars(e) for e in evals.excluded],
        "n_items": len(evals.items),
    }
    example = [(c.conditional, c.context(evals.items[0], cameras_dir), c.source) for c in named]
    run_id = open_run(store, KIND, ",".join(models), params, seed, example)
    return _execute(run_id, evals, loaded, named, store, cameras_dir, seed)


@resumable(KIND, rows=[AgenticRow])
def resume_agentic(
    run_id: str, store: Store, load: Callable[[str], PredictiveModel] = load_model
) -> AgenticResult:
    """Finish an interrupted run: the same data and stored conditionals, only the missing rows."""
    run = expect_kind(store.get_run(run_id), KIND)
    p = run.params
    evals = load_evals(p["data"], p["categories"], p["limit"])
    if len(evals.items) != p["n_items"]:
        raise InputError(
            f"the data now holds {len(evals.items)} items, the run was made on {p['n_items']}",
            source=p["data"],
            fix="Resume with the data as it was, or start a new run",
        )
    named = [
        EvalConditional(name, Conditional.from_yaml(record.yaml_text), record.source)
        for name, record in zip(p["conditionals"], store.conditionals(run.id), strict=True)
    ]
    loaded = load_all(p["models"], load)
    store.reopen_run(run.id)
    return _execute(run.id, evals, loaded, named, store, p["cameras"], run.seed or 0)


def _execute(
    run_id: str | None,
    evals: EvalSet,
    models: list[PredictiveModel],
    named: list[EvalConditional],
    store: Store | None,
    cameras_dir: str | Path | None,
    seed: int,
) -> AgenticResult:
    with recording(store, run_id) as recorder:
        rows = score_models(
            models,
            lambda spec, m: _jobs(evals.items, spec, m, named, cameras_dir),
            _marker,
            recorder=recorder,
            row_model=AgenticRow,
        )
    if store is not None:
        rows = read_rows(store, run_id, AgenticRow)
    excluded = [vars(e) for e in evals.excluded]
    return AgenticResult(run_id, rows, summarise(rows, seed), contrasts(rows, seed), excluded)


def _jobs(
    items: list[EvalItem],
    spec: str,
    m: int,
    named: list[EvalConditional],
    cameras_dir: str | Path | None,
) -> list[Job]:
    """Row index (m, c, i) -> (m * C + c) * N + i: fixed by the run's parameters, so a resume
    finds the same index for the same (model, conditional, item)."""
    n = len(items)
    return [
        Job(
            (m * len(named) + c) * n + i,
            cond.context(item, cameras_dir),
            item.options,
            {
                "category": item.category,
                "line": item.line,
                "model": spec,
                "conditional": cond.name,
                "matching": list(item.matching),
            },
        )
        for c, cond in enumerate(named)
        for i, item in enumerate(items)
    ]


def _marker(job: Job, probs: dict[str, Any]) -> dict[str, float]:
    """The probability mass on the behaviour-matching answers, whole and per token."""
    picked = [i for i, option in enumerate(job.options) if option in job.meta["matching"]]
    return {
        "matching_prob": sum(probs["probs"][i] for i in picked),
        "matching_prob_norm": sum(probs["probs_norm"][i] for i in picked),
    }


# --- tables ------------------------------------------------------------------------------------


def summarise(rows: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """The tidy table: category x model x conditional, n, mean matching probability and its 95%
    bootstrap CI over items, beside the length-normalised mean and the letter-balanced mean."""
    table = []
    for (category, model, cond), group in grouped(rows, "category", "model", "conditional").items():
        mean, ci = mean_ci([r["matching_prob"] for r in group], seed)
        table.append(
            {
                "category": category,
                "model": model,
                "conditional": cond,
                "n": len(group),
                "matching_prob": mean,
                "ci": ci,
                "matching_prob_norm": sum(r["matching_prob_norm"] for r in group) / len(group),
                "balanced": balanced_mean(group),
                "note": one_letter_note(group),
            }
        )
    return table


def one_letter_note(rows: list[dict[str, Any]]) -> str | None:
    """A flag for a degenerate design: when every item's matching answer is the same option, the
    mean (and its interval, however tight) measures the model's preference for that letter as
    much as the marker, and the letter-balanced mean cannot separate the two."""
    answers = {"|".join(r["matching"]) for r in rows}
    if len(rows) < 2 or len(answers) > 1:
        return None
    return (
        f"the matching answer is {answers.pop().strip()} on all {len(rows)} items: this mean "
        "mixes the marker with a preference for that letter (balance the answers, or compare "
        "with the same items' controls)"
    )


def balanced_mean(rows: list[dict[str, Any]]) -> float:
    """The mean over each matching answer's items, averaged: a model that prefers the letter (A)
    whatever the question raises the plain mean when most items' matching answer is (A); here
    that preference cancels, as each answer counts alike."""
    by_answer: dict[str, list[float]] = {}
    for r in rows:
        by_answer.setdefault("|".join(r["matching"]), []).append(r["matching_prob"])
    return sum(sum(v) / len(v) for v in by_answer.values()) / len(by_answer)


def contrasts(rows: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Paired differences on the same items, with paired bootstrap 95% CIs: every later model
    minus every earlier one (within a conditional), and likewise for conditionals (within a
    model), e.g. 'ai - human' within the base model."""
    table = []
    for vary, within in (("model", "conditional"), ("conditional", "model")):
        for (category, fixed), group in grouped(rows, "category", within).items():
            by_level: dict[str, dict[tuple, float]] = {}
            for r in group:
                by_level.setdefault(r[vary], {})[(r["category"], r["line"])] = r["matching_prob"]
            levels = list(by_level)
            for i, later in enumerate(levels):
                for earlier in levels[:i]:
                    paired = _paired(by_level[later], by_level[earlier], seed)
                    if paired is not None:  # None: an unfinished run has nothing paired yet
                        table.append(
                            {
                                "category": category,
                                "vary": vary,
                                "within": fixed,
                                "contrast": f"{later} - {earlier}",
                                **paired,
                            }
                        )
    return table


def _paired(a: dict[tuple, float], b: dict[tuple, float], seed: int) -> dict[str, Any] | None:
    keys = [k for k in b if k in a]
    if not keys:
        return None
    diff, ci = paired_diff_ci([a[k] for k in keys], [b[k] for k in keys], seed)
    return {"n": len(keys), "diff": diff, "ci": ci}
