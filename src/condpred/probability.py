"""Pure arithmetic over small distributions: log-sum-exp, distributions over named outcomes,
divergences. Shared by outcomes, checks and evaluations.

Log-probabilities are natural logs (as `Score.logprob`); divergences and surprisals are reported in
bits, the unit researchers read. Plain Python floats: the vectors are a handful of outcomes long,
and exact small-number arithmetic is easier to check by hand than array code.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

LN2 = math.log(2.0)


def bits(nats: float) -> float:
    """Nats to bits."""
    return nats / LN2


def logsumexp(logs: Sequence[float]) -> float:
    """log(sum(exp(x))) without overflow; -inf for no terms or all -inf."""
    if not logs:
        return -math.inf
    top = max(logs)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(x - top) for x in logs))


def normalise(logprobs: Sequence[float]) -> list[float]:
    """Probabilities proportional to exp(logprobs): a distribution restricted to these outcomes."""
    total = logsumexp(logprobs)
    if total == -math.inf:
        raise ValueError("every outcome has probability zero")
    return [math.exp(x - total) for x in logprobs]


def _check_pair(p: Sequence[float], q: Sequence[float]) -> None:
    if len(p) != len(q) or not p:
        raise ValueError(f"distributions over different outcome sets ({len(p)} vs {len(q)})")
    for dist in (p, q):
        if min(dist) < 0 or not math.isclose(sum(dist), 1.0, abs_tol=1e-9):
            raise ValueError(f"not a probability distribution: {list(dist)}")


def kl_bits(p: Sequence[float], q: Sequence[float]) -> float:
    """KL(p || q) in bits (infinite where p has mass that q lacks)."""
    _check_pair(p, q)
    total = 0.0
    for a, b in zip(p, q, strict=True):
        if a > 0:
            total += math.inf if b == 0 else a * math.log2(a / b)
    return total


def js_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence in bits: 0 for equal distributions, 1 for disjoint ones."""
    _check_pair(p, q)
    mid = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    return max(0.0, (kl_bits(p, mid) + kl_bits(q, mid)) / 2)


def tv_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Total variation distance: the most probability any event can differ by (0 to 1)."""
    _check_pair(p, q)
    return sum(abs(a - b) for a, b in zip(p, q, strict=True)) / 2


def pairwise(
    items: Sequence[Sequence[float]], distance: Callable[[Sequence[float], Sequence[float]], float]
) -> list[tuple[int, int, float]]:
    """`distance` for every unordered pair (i < j)."""
    return [
        (i, j, distance(items[i], items[j]))
        for i, j in itertools.combinations(range(len(items)), 2)
    ]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def self_normalised_weights(target: Sequence[float], proposal: Sequence[float]) -> list[float]:
    """Importance weights w_s ∝ P_target(s) / P_proposal(s), summing to 1 (from log-probs).

    With samples drawn from the proposal, sum_s w_s f(s) estimates E_target[f] (consistently,
    though with bias for few samples); over the sample set the weights are an estimate of the
    target distribution itself, which is what the divergence checks compare."""
    return normalise([t - p for t, p in zip(target, proposal, strict=True)])


def effective_sample_size(weights: Sequence[float]) -> float:
    """Kish's effective sample size of normalised weights: n when uniform, 1 when one dominates."""
    return 1.0 / sum(w * w for w in weights) if weights else 0.0
