"""The working document a reasoning chain continues, and the problems it is written for.

The input is a conditional (YAML, any camera) for a named human's working document: a lab
notebook, a worked-solutions page, a referee report. Its `extra.problem` (one text) or
`extra.problems` (a list: texts, or `{question, answer}` with a gold answer to verify against)
are the problems; `--data FILE.jsonl` (GSM8K, MATH-500: the pass@k loader) replaces them. Each
problem is written into the document as `Problem. <question>` before the conditional's prefix
(where the solution starts); steps follow, one line each: `Step 1. ...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from condpred.condition import Conditional, load_conditional, render
from condpred.errors import InputError
from condpred.experiments.passk.data import Problem, load_problems, problem_from

PROBLEM_FIX = (
    "Give the problem under extra as 'problem: <text>' or as a list, 'problems: [<text>, ...]' "
    "(each may be {question: ..., answer: ...} with the gold answer), or pass --data FILE.jsonl"
)


@dataclass(frozen=True)
class ReasonInput:
    """The document's conditional (without its problems) and the problems to reason about."""

    conditional: Conditional
    problems: list[Problem]
    source: str
    data_sha256: str | None = None


def load_reason_input(
    path: str | Path,
    data: str | Path | None = None,
    limit: int | None = None,
    cameras_dir: str | Path | None = None,
) -> ReasonInput:
    """The conditional of `path` and its problems (or those of `data`, the first `limit`); every
    problem in the file is reported at once."""
    conditional = load_conditional(path, cameras_dir)
    extra = dict(conditional.extra)
    given = [extra.pop(key) for key in ("problem", "problems") if key in extra]
    document = conditional.model_copy(update={"extra": extra})
    if data is not None:
        problems, sha256 = load_problems(data, limit)
        return ReasonInput(document, problems, str(path), sha256)
    if len(given) != 1:
        raise InputError(
            "no problem given" if not given else "both 'problem' and 'problems' are given",
            source=str(path),
            field="extra.problem",
            fix=PROBLEM_FIX,
        )
    raw = given[0] if isinstance(given[0], list) else [given[0]]
    problems, errors = [], []
    for number, entry in enumerate(raw[:limit] if limit else raw):
        problem = _problem(entry, number, str(path))
        if isinstance(problem, str):
            errors.append(problem)
        else:
            problems.append(problem)
    if errors or not problems:
        raise InputError(
            "; ".join(errors) or "the problem list is empty",
            source=str(path),
            field="extra.problems",
            fix=PROBLEM_FIX,
        )
    return ReasonInput(document, problems, str(path))


def _problem(entry: Any, number: int, source: str) -> Problem | str:
    """One problem of the file, or what is wrong with it."""
    if isinstance(entry, str) and entry.strip():
        return Problem(f"problem {number}", entry.strip(), "", "numeric", None)
    if isinstance(entry, dict) and set(entry) <= {"question", "answer", "id"}:
        question, answer = entry.get("question"), entry.get("answer")
        if isinstance(question, str) and question.strip():
            if answer is None:
                return Problem(
                    str(entry.get("id", f"problem {number}")), question.strip(), "", "numeric", None
                )
            record = {"id": f"problem {number}", **entry, "answer": str(answer)}
            gold = str(answer) if "####" in str(answer) else f"#### {answer}"
            numeric = _is_number(str(answer))
            return problem_from(
                {**record, "answer": gold if numeric else str(answer)}, number, source
            )
    return f"item {number} must be a text or {{question: ..., answer: ...}} (got {entry!r:.60})"


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").replace("$", "").strip())
    except ValueError:
        return False
    return True


def with_problem(conditional: Conditional, problem: Problem) -> Conditional:
    """The document's conditional with the problem written before its prefix."""
    lead = conditional.prefix.strip()
    return conditional.with_(
        prefix=f"Problem. {problem.question}" + (f"\n\n{lead}" if lead else "")
    )


def document(conditional: Conditional, problem: Problem, cameras_dir: str | Path | None) -> str:
    """The working document up to where the solution's first step starts."""
    return render(with_problem(conditional, problem), cameras_dir)
