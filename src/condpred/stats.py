"""Small, exact statistics for evaluating checks: AUROC and a seeded bootstrap interval.

Kept to numpy so every feature that validates a detector or a forecast can share it without a
heavier dependency; `tests/test_stats.py` checks them on cases with known answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _finite(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds a NaN or an infinity")
    return array


def auroc(
    positives: Sequence[float] | np.ndarray, negatives: Sequence[float] | np.ndarray
) -> float:
    """P(score of a random positive > score of a random negative), ties counting one half.

    The Mann-Whitney U statistic, which equals the area under the ROC curve, exact with ties:
    for each positive, count the negatives below it and half of those equal to it."""
    pos = _finite(positives, "positives")
    neg = np.sort(_finite(negatives, "negatives"))
    below = np.searchsorted(neg, pos, side="left")
    at_or_below = np.searchsorted(neg, pos, side="right")
    return float((below + at_or_below).sum() / (2 * pos.size * neg.size))


def bootstrap_ci(
    statistic: Callable[..., float],
    *data: Sequence[float] | np.ndarray,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(*data)`, resampling rows of `data` jointly.

    All arrays in `data` are paired by index (e.g. the human and the AI text of each pair), so one
    index draw resamples every array alike: the paired bootstrap. Seeded, hence repeatable.
    Resamples on which the statistic is undefined (it returns NaN, e.g. a skill score on a
    resample with one outcome only) are left out: the interval is conditional on it existing."""
    if not data:
        raise ValueError("bootstrap_ci needs at least one data array")
    arrays = [np.asarray(d) for d in data]
    size = len(arrays[0])
    if size == 0 or any(len(a) != size for a in arrays):
        raise ValueError("bootstrap_ci needs non-empty data arrays of equal length (paired rows)")
    if not 0 < level < 1 or n < 1:
        raise ValueError("level must lie in (0, 1) and n must be positive")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, size, size=(n, size))
    values = np.array([statistic(*(a[rows] for a in arrays)) for rows in draws], dtype=float)
    values = values[~np.isnan(values)]  # resamples where the statistic is undefined (NaN) drop out
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)
