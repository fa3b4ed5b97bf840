"""pass@k from n samples per problem: the unbiased estimator, bootstrap intervals over problems,
the paired difference of two curves and where they cross.

pass@k of one problem with c correct among n samples is the probability that k samples drawn
without replacement from those n include a correct one: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021,
"Evaluating Large Language Models Trained on Code"), unbiased for 1 - (1-p)^k. It is computed as
the product 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms the huge binomial coefficients.
A curve is the mean over problems; its interval resamples problems (the source of the
uncertainty that matters when n is large), and two curves on the same problems are compared
paired: one resample of problems serves both.

The crossover: the first k at which tuned - base takes the opposite sign to its sign at k = 1
(the tuned model ahead at pass@1 and the base model strictly ahead at k, in the case the seeds
discuss; two curves that only meet, e.g. both at 1 when every problem is solved, do not cross).
Its interval is the percentile interval of the same statistic over resamples, with "no crossover
up to n" counted as beyond n, so an upper end beyond n is reported as such (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from condpred.stats import MIN_CI_N, SMALL_N

LEVEL = 0.95


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem: 1 - C(n-c, k)/C(n, k), in the stable product form."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_matrix(n: int, correct: Sequence[int]) -> np.ndarray:
    """pass@k for every problem (rows) and every k = 1..n (columns), vectorised: the product for
    each c is a cumulative product over i of (1 - k/i), read at the right length."""
    counts = np.asarray(correct, dtype=int)
    if counts.size and (counts.min() < 0 or counts.max() > n):
        raise ValueError(f"correct counts must lie in 0..{n}")
    ks = np.arange(1, n + 1, dtype=float)
    # fail[c, k-1] = prod_{i=n-c+1}^{n} (1 - k/i) = C(n-c, k)/C(n, k); zero once n - c < k.
    i = np.arange(n, 0, -1, dtype=float)  # n, n-1, ..., 1: the factors for c = 1, 2, ..., n
    factors = np.clip(1.0 - ks[None, :] / i[:, None], 0.0, None)
    fail = np.vstack([np.ones((1, n)), np.cumprod(factors, axis=0)])
    return 1.0 - fail[counts]


@dataclass(frozen=True)
class Curve:
    """A pass@k curve over problems: the mean at every k = 1..n and its bootstrap interval."""

    n: int
    problems: int
    mean: np.ndarray  # (n,) pass@k for k = 1..n
    low: np.ndarray
    high: np.ndarray

    def at(self, k: int) -> tuple[float, list[float] | None]:
        """pass@k and its interval (None for fewer than `MIN_CI_N` problems)."""
        if self.problems < MIN_CI_N:
            return float(self.mean[k - 1]), None
        return float(self.mean[k - 1]), [float(self.low[k - 1]), float(self.high[k - 1])]


def resample_weights(problems: int, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap resamples of problems as counts (resamples x problems), seeded: the same seed
    gives the same resamples, so paired curves share them."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, problems, size=(resamples, problems))
    weights = np.zeros((resamples, problems))
    np.add.at(weights, (np.arange(resamples)[:, None], draws), 1.0)
    return weights / problems


def curve(
    n: int, correct: Sequence[int], *, resamples: int = 1000, seed: int = 0, level: float = LEVEL
) -> Curve:
    """The mean pass@k over problems at every k <= n, with percentile bootstrap intervals."""
    per_problem = pass_at_k_matrix(n, correct)
    boot = resample_weights(len(per_problem), resamples, seed) @ per_problem
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail], axis=0)
    return Curve(n, len(per_problem), per_problem.mean(axis=0), low, high)


@dataclass(frozen=True)
class Comparison:
    """Tuned minus base on the same problems: the paired difference at every k with its interval,
    and the crossover k with its interval."""

    n: int
    problems: int
    diff: np.ndarray  # (n,) tuned - base at k = 1..n
    low: np.ndarray
    high: np.ndarray
    crossover: int | None  # the first k where the sign is opposite to k = 1's; None: none up to n
    crossover_ci: tuple[int | None, int | None]  # None at the upper end: beyond n
    crossover_share: float  # share of resamples that cross at some k <= n
    sign_at_1: int  # +1 tuned ahead at k = 1, -1 base ahead, 0 level

    def diff_at(self, k: int) -> dict:
        """The paired difference at k and its interval (None for fewer than `MIN_CI_N`)."""
        ci = [float(self.low[k - 1]), float(self.high[k - 1])]
        return {
            "k": k,
            "diff": float(self.diff[k - 1]),
            "ci": ci if self.problems >= MIN_CI_N else None,
        }

    def to_json(self) -> dict:
        lo, hi = self.crossover_ci
        if self.sign_at_1 == 0:
            status = "undefined: the curves are level at k = 1"
        elif self.crossover is None:
            status = f"no crossover up to n = {self.n}"
        else:
            status = f"crossover at k = {self.crossover}"
        return {
            "k": self.crossover,
            "ci": [lo, hi] if self.problems >= MIN_CI_N else None,
            "status": status,
            "leader_at_k1": {1: "tuned", -1: "base", 0: "level"}[self.sign_at_1],
            "share_of_resamples_crossing": self.crossover_share,
            "n": self.n,
            "problems": self.problems,
        }


def crossover_ci(crossover: dict) -> str:
    """The crossover's interval as text, from `Comparison.to_json()`: None at the upper end is
    beyond n; no interval at all below `MIN_CI_N` problems."""
    if crossover["ci"] is None:
        return SMALL_N
    lo, hi = crossover["ci"]
    upper = hi if hi is not None else f"beyond n = {crossover['n']}"
    return f"[{lo if lo is not None else '-'}, {upper}]"


def first_crossing(diff: np.ndarray) -> np.ndarray:
    """For each row of tuned - base differences over k = 1..n: the first k whose sign is opposite
    to the sign at k = 1 (strictly: level is not overtaken), n + 1 where none is, 0 where the
    curves are level at k = 1 (no leader, no crossover defined)."""
    diff = np.atleast_2d(diff)
    n = diff.shape[1]
    sign = np.sign(diff[:, :1])
    flipped = diff * sign < 0
    first = np.where(flipped.any(axis=1), flipped.argmax(axis=1) + 1, n + 1)
    return np.where(sign[:, 0] == 0, 0, first)


def compare(
    n: int,
    base_correct: Sequence[int],
    tuned_correct: Sequence[int],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
) -> Comparison:
    """Paired comparison of two models' curves on the same problems (correct counts in the same
    problem order)."""
    if len(base_correct) != len(tuned_correct):
        raise ValueError("the two models must be compared on the same problems")
    delta = pass_at_k_matrix(n, tuned_correct) - pass_at_k_matrix(n, base_correct)
    weights = resample_weights(len(delta), resamples, seed)
    boot = weights @ delta
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail], axis=0)
    mean = delta.mean(axis=0)
    point = int(first_crossing(mean)[0])
    sign_at_1 = int(np.sign(mean[0]))
    crossings = first_crossing(boot)
    defined = crossings[crossings > 0]
    if sign_at_1 == 0 or defined.size == 0:
        ci: tuple[int | None, int | None] = (None, None)
    else:
        lo, hi = np.percentile(defined, [tail, 100 - tail], method="inverted_cdf")
        ci = (int(lo) if lo <= n else None, int(hi) if hi <= n else None)
    share = float(((crossings > 0) & (crossings <= n)).mean())
    crossover = point if 0 < point <= n else None
    return Comparison(n, len(delta), mean, low, high, crossover, ci, share, sign_at_1)


def k_grid(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself: the k a table shows (every k <= n is computed)."""
    ks = [1 << i for i in range(n.bit_length()) if 1 << i <= n]
    return ks if ks[-1] == n else [*ks, n]
