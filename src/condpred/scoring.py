"""Proper scoring rules for probability forecasts of binary outcomes, and calibration.

Conventions (numpy arrays of probabilities of "yes" and outcomes in {0, 1}):
- Brier score: mean squared error, 0 is perfect, lower is better; always predicting 0.5 scores 0.25.
- Log score: mean natural log of the probability given to what happened, 0 is perfect, higher is
  better (scikit-learn's `log_loss` is its negative). Probabilities are clipped to
  [EPS, 1 - EPS] first, so a forecast of exactly 0 or 1 that misses costs log(EPS), not infinity.
- Brier skill score against a reference forecast: 1 - Brier / Brier(reference); 0 means no better
  than the reference, 1 perfect, negative worse. The base-rate reference predicts the outcomes' own
  mean for every question (known only in hindsight, so a slightly generous bar).
- Expected calibration error (ECE): the count-weighted mean |observed frequency - mean forecast|
  over equal-width probability bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EPS = 1e-4  # the largest log-score penalty is log(1e-4) = -9.2 nats


def _check(probs: Sequence[float] | np.ndarray, outcomes: Sequence[int] | np.ndarray):
    p = np.asarray(probs, dtype=float)
    y = np.asarray(outcomes, dtype=float)
    if p.shape != y.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"need equally long, non-empty 1-d arrays, got {p.shape} and {y.shape}")
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError("probabilities must lie in [0, 1]")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("outcomes must be 0 or 1")
    return p, y


def brier(probs: Sequence[float] | np.ndarray, outcomes: Sequence[int] | np.ndarray) -> float:
    p, y = _check(probs, outcomes)
    return float(np.mean((p - y) ** 2))


def log_score(probs: Sequence[float] | np.ndarray, outcomes: Sequence[int] | np.ndarray) -> float:
    p, y = _check(probs, outcomes)
    p = np.clip(p, EPS, 1 - EPS)
    return float(np.mean(np.where(y == 1, np.log(p), np.log1p(-p))))


def brier_skill(
    probs: Sequence[float] | np.ndarray,
    reference: Sequence[float] | np.ndarray,
    outcomes: Sequence[int] | np.ndarray,
) -> float:
    """1 - Brier(probs) / Brier(reference); NaN where the reference is perfect (Brier 0)."""
    ref = brier(reference, outcomes)
    return float("nan") if ref == 0 else 1 - brier(probs, outcomes) / ref


def base_rate_skill(
    probs: Sequence[float] | np.ndarray, outcomes: Sequence[int] | np.ndarray
) -> float:
    """Brier skill against always forecasting the outcomes' own mean (the base rate)."""
    y = np.asarray(outcomes, dtype=float)
    return brier_skill(probs, np.full_like(y, y.mean()), y)


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram's data: per bin [lower, upper), the forecasts' count and mean, and how
    often the outcome happened. Empty bins have count 0 and NaN means."""

    edges: tuple[float, ...]
    count: tuple[int, ...]
    mean_prob: tuple[float, ...]
    frequency: tuple[float, ...]

    @property
    def ece(self) -> float:
        total = sum(self.count)
        gaps = [
            n * abs(f - m)
            for n, f, m in zip(self.count, self.frequency, self.mean_prob, strict=True)
            if n
        ]
        return float(sum(gaps) / total)


def reliability(
    probs: Sequence[float] | np.ndarray, outcomes: Sequence[int] | np.ndarray, bins: int = 10
) -> Reliability:
    """Equal-width bins over [0, 1]; a forecast of exactly 1 falls in the last bin."""
    p, y = _check(probs, outcomes)
    edges = np.linspace(0, 1, bins + 1)
    which = np.minimum(np.digitize(p, edges[1:-1], right=False), bins - 1)
    count, mean_prob, frequency = [], [], []
    for b in range(bins):
        inside = which == b
        count.append(int(inside.sum()))
        mean_prob.append(float(p[inside].mean()) if inside.any() else float("nan"))
        frequency.append(float(y[inside].mean()) if inside.any() else float("nan"))
    return Reliability(tuple(edges.tolist()), tuple(count), tuple(mean_prob), tuple(frequency))


def ece(
    probs: Sequence[float] | np.ndarray, outcomes: Sequence[int] | np.ndarray, bins: int = 10
) -> float:
    return reliability(probs, outcomes, bins).ece
