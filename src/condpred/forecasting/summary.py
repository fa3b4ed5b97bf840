"""Scores of a forecast run: Brier, log score, skill against the base rate and the crowd, ECE,
each with a seeded paired bootstrap 95% interval; for all questions, for those resolved after the
model's training cutoff (which it cannot have read about), and per source.

Questions without an outcome are forecast but not scored. Skill against the crowd uses the
questions that have a crowd probability, resampled jointly with the model's forecasts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from condpred import scoring
from condpred.stats import ci_list

BOOTSTRAP = 1000


def summarise(
    rows: Sequence[dict[str, Any]], cutoff: dt.date | None, seed: int = 0
) -> dict[str, Any]:
    """The summary of all scored rows (top level) and of each group (`groups`)."""
    scored = [r for r in rows if r["outcome"] is not None]
    summary: dict[str, Any] = {
        "n_questions": len(rows),
        "cutoff": cutoff.isoformat() if cutoff else None,
    }
    if not scored:
        return summary | {"n": 0, "groups": {}}
    groups = {}
    if cutoff is not None:
        groups["resolved_after_cutoff"] = [r for r in scored if r["resolved"] > cutoff.isoformat()]
    for source in sorted({r["source"] for r in scored}):
        groups[f"source:{source}"] = [r for r in scored if r["source"] == source]
    return (
        summary
        | metrics(scored, seed)
        | {"groups": {name: metrics(group, seed) for name, group in groups.items()}}
    )


def metrics(rows: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Every score of one group of scored rows, with bootstrap intervals."""
    if not rows:
        return {"n": 0}
    p = np.array([r["prob"] for r in rows], dtype=float)
    y = np.array([r["outcome"] for r in rows], dtype=float)
    result = {
        "n": len(rows),
        "base_rate": float(y.mean()),
        "brier": estimate(scoring.brier, seed, p, y),
        "log_score": estimate(scoring.log_score, seed, p, y),
        "brier_skill_base_rate": estimate(scoring.base_rate_skill, seed, p, y),
        "ece": scoring.ece(p, y),
        "base_rate_brier": scoring.brier(np.full_like(y, y.mean()), y),
    }
    with_crowd = [r for r in rows if r["crowd_prob"] is not None]
    if with_crowd:
        pc = np.array([r["prob"] for r in with_crowd], dtype=float)
        yc = np.array([r["outcome"] for r in with_crowd], dtype=float)
        crowd = np.array([r["crowd_prob"] for r in with_crowd], dtype=float)
        result["brier_skill_crowd"] = estimate(scoring.brier_skill, seed, pc, crowd, yc)
        result["crowd"] = {
            "n": len(with_crowd),
            "brier": estimate(scoring.brier, seed, crowd, yc),
            "log_score": estimate(scoring.log_score, seed, crowd, yc),
            "brier_skill_base_rate": estimate(scoring.base_rate_skill, seed, crowd, yc),
            "ece": scoring.ece(crowd, yc),
        }
    return result


def estimate(statistic: Callable[..., float], seed: int, *data: np.ndarray) -> dict[str, Any]:
    """The statistic and its paired bootstrap 95% interval (None for fewer than `MIN_CI_N` rows,
    or where every resample leaves it undefined, e.g. a skill score with one outcome only)."""
    value = statistic(*data)
    return {
        "value": None if math.isnan(value) else value,
        "ci95": ci_list(statistic, *data, n=BOOTSTRAP, seed=seed),
        "n": len(data[0]),
    }
