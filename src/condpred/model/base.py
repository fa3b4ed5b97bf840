"""The predictive-model protocol: the only way the rest of condpred talks to a model.

A backend knows tokens and tensors, nothing of cameras or checks. Three methods cover every use:
`score` (log-probabilities of given continuations), `sample` (continuations drawn from the model)
and `next_token` (the top of the next-token distribution). `score_requests` takes a whole batch
of (context, continuation) pairs at once, as lm-evaluation-harness's `loglikelihood` does, so a
backend can order it for its hardware: `hf` groups it by context and reuses each context's KV
cache across the batch; `openai` keeps many requests in flight for a batching server (vLLM).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Score:
    """Log-probability of one continuation given a context (natural log)."""

    continuation: str
    logprob: float
    token_logprobs: list[float]
    tokens: list[str]
    greedy: bool = False  # every continuation token was the model's argmax

    @property
    def surprisal_bits(self) -> list[float]:
        """Per-token surprisal in bits, the unit researchers read."""
        return [-lp / 0.6931471805599453 for lp in self.token_logprobs]


@dataclass(frozen=True)
class Sample:
    """One sampled continuation. `token_logprobs` are under the model itself (temperature 1)."""

    text: str
    token_logprobs: list[float]
    tokens: list[str]
    finish_reason: str  # "stop" (a stop string), "eos" (end of document) or "length"
    index: int = 0  # position in the run; sample i depends only on (seed, i)

    @property
    def logprob(self) -> float:
        return float(sum(self.token_logprobs))


@dataclass(frozen=True)
class TokenProb:
    """One candidate next token and its probability."""

    token: str
    token_id: int
    prob: float
    logprob: float


@dataclass(frozen=True)
class SamplingParams:
    """How to draw samples; stored with every run so a run can be repeated or resumed."""

    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int = 0


def split_trailing_whitespace(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing whitespace onto the continuation, as lm-evaluation-harness
    does: tokenizers attach a space to the word after it (" Paris" is one token)."""
    stripped = context.rstrip()
    return stripped, context[len(stripped) :] + continuation


ScoreRequest = tuple[str, str]  # (context, continuation)


def sample_seed(seed: int, index: int, bits: int = 63) -> int:
    """The seed of sample `index` on every backend: a hash, so sample i is the same however a
    run is batched, split or resumed, and nearby (seed, index) pairs are unrelated. `bits`
    narrows it for servers (31 fits llama.cpp's uint32, vLLM's int64 and others' int32)."""
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**bits - 1)


@runtime_checkable
class PredictiveModel(Protocol):
    """A model of observations: maps a context to a distribution over what comes next."""

    spec: str  # how it was loaded, e.g. "default", "gpt2", "gguf:/p/m.gguf", "openai:URL#name"

    def score(self, context: str, continuations: Sequence[str]) -> list[Score]:
        """Log P(continuation | context) for each continuation, with per-token detail."""
        ...

    def score_requests(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Log P(continuation | context) for each (context, continuation) pair, in order."""
        ...

    def sample(self, context: str, n: int, params: SamplingParams, start: int = 0) -> list[Sample]:
        """Samples with indices start..start+n-1; sample i depends only on (params.seed, i)."""
        ...

    def next_token(self, context: str, top_k: int = 10) -> list[TokenProb]:
        """The top_k most probable next tokens after context."""
        ...


def requests_at_once(model: PredictiveModel) -> int:
    """How many items' requests an experiment sends `model` in one batch: a backend's
    `concurrency` (a server batches what is in flight), else 1 (a local model batches the
    requests of one item by itself, and a smaller batch commits items sooner)."""
    return max(1, int(getattr(model, "concurrency", 1)))


class BatchedScoring:
    """What every backend shares: `score` is a batch of requests under one context."""

    def score(self, context: str, continuations: Sequence[str]) -> list[Score]:
        """Log P(continuation | context) for each continuation, with per-token detail."""
        return self.score_requests([(context, c) for c in continuations])

    def score_requests(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        raise NotImplementedError
