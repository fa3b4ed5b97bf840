"""condpred.stats on cases whose answers are known: by construction, by hand, or by simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from condpred.stats import MIN_CI_N, auroc, bootstrap_ci, format_ci


def pairwise_auroc(pos, neg) -> float:
    """The definition, pair by pair: P(pos > neg) + P(pos == neg) / 2."""
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_perfect_separation_is_one_and_reversed_is_zero():
    assert auroc([3.0, 4.0, 5.0], [0.0, 1.0, 2.0]) == 1.0
    assert auroc([0.0, 1.0, 2.0], [3.0, 4.0, 5.0]) == 0.0


def test_ties_count_one_half():
    assert auroc([1.0, 1.0], [1.0, 1.0, 1.0]) == 0.5


def test_small_case_computed_by_hand():
    # 0.8 beats all 3; 0.4 beats 0.1, ties 0.4, loses to 0.5 (1.5); 0.6 beats all 3: 7.5 of 9.
    assert auroc([0.8, 0.4, 0.6], [0.5, 0.4, 0.1]) == pytest.approx(7.5 / 9)


def test_agrees_with_the_pairwise_definition_with_many_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        pos = rng.integers(0, 5, rng.integers(1, 30)).astype(float)
        neg = rng.integers(0, 5, rng.integers(1, 30)).astype(float)
        assert auroc(pos, neg) == pytest.approx(pairwise_auroc(pos, neg), abs=1e-12)


@pytest.mark.parametrize(("pos", "neg"), [([], [1.0]), ([1.0], []), ([math.nan], [1.0])])
def test_auroc_refuses_empty_or_nan(pos, neg):
    with pytest.raises(ValueError):
        auroc(pos, neg)


def test_bootstrap_is_deterministic_under_a_seed():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(1.0, size=40)

    def stat(a, b):
        return auroc(b, a)

    assert bootstrap_ci(stat, x, y, n=300, seed=7) == bootstrap_ci(stat, x, y, n=300, seed=7)
    assert bootstrap_ci(stat, x, y, n=300, seed=7) != bootstrap_ci(stat, x, y, n=300, seed=8)


def test_bootstrap_resamples_paired_rows_together():
    x = np.arange(30.0)
    y = 2 * x

    def stat(a, b):
        assert np.array_equal(b, 2 * a)  # pairs stay aligned in every resample
        return float(a.mean())

    low, high = bootstrap_ci(stat, x, y, n=200, seed=0)
    assert low < x.mean() < high


def test_narrower_level_gives_a_narrower_interval():
    x = np.random.default_rng(3).normal(size=50)
    wide = bootstrap_ci(np.mean, x, n=500, seed=0, level=0.95)
    narrow = bootstrap_ci(np.mean, x, n=500, seed=0, level=0.5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_interval_covers_the_true_auroc_about_95_percent_of_the_time():
    """Positives N(1, 1), negatives N(0, 1): the true AUROC is Phi(1 / sqrt 2) = 0.7602."""
    true = 0.5 * (1 + math.erf(0.5))  # Phi(1/sqrt(2)) = (1 + erf(1/2)) / 2
    rng = np.random.default_rng(42)
    covered, widths, trials = 0, [], 80
    for trial in range(trials):
        neg, pos = rng.normal(0, 1, 60), rng.normal(1, 1, 60)
        low, high = bootstrap_ci(lambda n, p: auroc(p, n), neg, pos, n=150, seed=trial)
        covered += low <= true <= high
        widths.append(high - low)
    assert 0.85 <= covered / trials < 1.0
    assert 0.1 < float(np.mean(widths)) < 0.25  # about 4 standard errors of 0.045, not [0, 1]


@pytest.mark.parametrize("data", [(), ([1.0, 2.0], [1.0]), ([],)], ids=["none", "unequal", "empty"])
def test_bootstrap_refuses_bad_data(data):
    with pytest.raises(ValueError):
        bootstrap_ci(lambda *a: 0.0, *data)


def coverage(n: int, draw, truth: float, trials: int = 400) -> float:
    rng = np.random.default_rng(n)
    hits = 0
    for trial in range(trials):
        low, high = bootstrap_ci(np.mean, draw(rng, n), n=400, seed=trial, min_n=1)
        hits += low <= truth <= high
    return hits / trials


def test_min_ci_n_is_where_a_95_percent_interval_starts_to_cover():
    """Why no interval is reported below MIN_CI_N: measured coverage of the nominal 95% interval
    of a mean (the README quotes these numbers)."""
    normal = lambda rng, n: rng.normal(size=n)  # noqa: E731
    coin = lambda rng, n: (rng.random(n) < 0.3).astype(float)  # noqa: E731
    assert coverage(3, normal, 0.0) < 0.8 and coverage(3, coin, 0.3) < 0.8
    assert coverage(MIN_CI_N, normal, 0.0) >= 0.88 and coverage(MIN_CI_N, coin, 0.3) >= 0.88


def test_too_few_rows_get_no_interval_and_say_why():
    x = np.arange(float(MIN_CI_N))
    assert bootstrap_ci(np.mean, x[:-1]) is None
    assert bootstrap_ci(np.mean, x) is not None
    assert format_ci(None, MIN_CI_N - 1) == f"n/a (n < {MIN_CI_N})"
    assert format_ci(None, 50) == "n/a (undefined on every resample)"
    assert format_ci([0.1234, 0.5]) == "[0.123, 0.500]"
