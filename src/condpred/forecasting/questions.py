"""Forecasting questions from JSONL, validated line by line, and a seeded stratified sample.

One question per line: `id`, `question` (required), `background`, `resolution_criteria`,
`source`, an as-of date, `resolved` (the resolution date), `outcome` (0/1) and `crowd_prob`.
The ForecastBench files are read as they are: `crowd_prob_at_freeze` is the crowd's probability.

The as-of date is the date the model's page is written at; the model must not be told anything
later. It is the first of `as_of`, `freeze_datetime` (when ForecastBench froze the crowd's
probability: the same information as the crowd baseline), `forecast_due_date`, `created`.
A question's resolution date is never shown to the model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from condpred.errors import InputError
from condpred.validate import read_text_input

AS_OF_FIELDS = ("as_of", "freeze_datetime", "forecast_due_date", "created")
CROWD_FIELDS = ("crowd_prob", "crowd_prob_at_freeze")


@dataclass(frozen=True)
class Question:
    """A binary question as of a date; `outcome` (1 = yes) and `crowd_prob` when known."""

    id: str
    question: str
    as_of: dt.date
    background: str = ""
    resolution_criteria: str = ""
    source: str = ""
    resolved: dt.date | None = None
    outcome: int | None = None
    crowd_prob: float | None = None


def load_questions(path: str | Path) -> list[Question]:
    """Every question in a JSONL file; the first bad line is an InputError naming line and field."""
    path = Path(path)
    lines = read_text_input(
        path,
        what="a questions file",
        fix="Pass a JSONL file: one JSON object per line with id, question, as_of, outcome",
    ).splitlines()
    questions = [
        _question(_json(line, f"{path}, line {n}"), f"{path}, line {n}")
        for n, line in enumerate(lines, start=1)
        if line.strip()
    ]
    if not questions:
        raise InputError(
            "no questions", source=str(path), fix="Write one JSON object per line (JSONL)"
        )
    _unique_ids(questions, path)
    return questions


def file_digest(path: str | Path) -> str:
    """sha256 of the file: a resumed run checks it reads the same questions."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stratified_sample(questions: Sequence[Question], limit: int | None, seed: int) -> list[int]:
    """Indices of `limit` questions drawn without replacement, each source in proportion to its
    share of the file (largest remainders round), in file order; all indices without a limit."""
    if limit is None or limit >= len(questions):
        return list(range(len(questions)))
    by_source: dict[str, list[int]] = {}
    for index, q in enumerate(questions):
        by_source.setdefault(q.source, []).append(index)
    shares = {s: limit * len(ix) / len(questions) for s, ix in by_source.items()}
    counts = {s: int(share) for s, share in shares.items()}
    by_remainder = sorted(shares, key=lambda s: (counts[s] - shares[s], s))
    for source in by_remainder[: limit - sum(counts.values())]:
        counts[source] += 1
    rng = np.random.default_rng(seed)
    chosen = [
        int(i)
        for source in sorted(by_source)
        for i in rng.choice(by_source[source], counts[source], replace=False)
    ]
    return sorted(chosen)


def _json(line: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(
            f"not valid JSON ({error.msg} at column {error.colno})",
            source=where,
            fix="Write one JSON object per line",
        ) from error
    if not isinstance(data, dict):
        raise InputError("expected a JSON object", source=where, fix="Write {...} on each line")
    return data


def _question(data: dict[str, Any], where: str) -> Question:
    outcome = _outcome(data, where)
    resolved = _date(data, "resolved", where) if data.get("resolved") is not None else None
    if outcome is not None and resolved is None:
        raise InputError(
            "a question with an outcome needs its resolution date",
            source=where,
            field="resolved",
            fix="Add 'resolved': 'YYYY-MM-DD' (scores are reported apart for questions resolved "
            "after the model's training cutoff)",
        )
    as_of_field = next((f for f in AS_OF_FIELDS if data.get(f) is not None), None)
    if as_of_field is None:
        raise InputError(
            "no as-of date",
            source=where,
            field="as_of",
            fix=f"Give the date the forecast is made at, as one of {', '.join(AS_OF_FIELDS)}",
        )
    as_of = _date(data, as_of_field, where)
    if resolved is not None and as_of > resolved:
        raise InputError(
            f"the as-of date {as_of} is after the resolution date {resolved}: the page would "
            "be written after the answer was known",
            source=where,
            field=as_of_field,
            fix="Give an as-of date on or before the resolution date",
        )
    return Question(
        id=_text(data, "id", where),
        question=_text(data, "question", where),
        as_of=as_of,
        background=_text(data, "background", where, required=False),
        resolution_criteria=_text(data, "resolution_criteria", where, required=False),
        source=_text(data, "source", where, required=False),
        resolved=resolved,
        outcome=outcome,
        crowd_prob=_crowd(data, where),
    )


def _text(data: dict[str, Any], field: str, where: str, *, required: bool = True) -> str:
    value = data.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        problem = "missing" if value is None else f"must be non-empty text, got {value!r}"
        raise InputError(problem, source=where, field=field, fix=f"Give '{field}' as text")
    return value.strip()


def _date(data: dict[str, Any], field: str, where: str) -> dt.date:
    value = data[field]
    try:
        return dt.datetime.fromisoformat(str(value)).date()
    except ValueError as error:
        raise InputError(
            f"not a date: {value!r}",
            source=where,
            field=field,
            fix="Write an ISO date or datetime, e.g. 2025-03-01 or 2025-03-01T00:00:00+00:00",
        ) from error


def _outcome(data: dict[str, Any], where: str) -> int | None:
    value = data.get("outcome")
    if value is None:
        return None
    if value not in (0, 1) or isinstance(value, str):
        raise InputError(
            f"must be 0 or 1, got {value!r}",
            source=where,
            field="outcome",
            fix="Write 1 if the question resolved yes, 0 if no, or leave it out if unresolved",
        )
    return int(value)


def _crowd(data: dict[str, Any], where: str) -> float | None:
    field = next((f for f in CROWD_FIELDS if data.get(f) is not None), None)
    if field is None:
        return None
    value = data[field]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InputError(
            f"must be a probability between 0 and 1, got {value!r}",
            source=where,
            field=field,
            fix="Give the crowd's probability of yes, e.g. 0.35, or leave it out",
        )
    return float(value)


def _unique_ids(questions: Sequence[Question], path: Path) -> None:
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise InputError(
                f"the id {q.id!r} appears twice",
                source=str(path),
                field="id",
                fix="Give every question its own id",
            )
        seen.add(q.id)
