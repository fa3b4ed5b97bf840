"""The protocol's promises, checked the same way on every backend: `hf` on the tiny random
Gemma-3, `openai` against llama-cpp-python's server on SmolLM2 (a real server on 127.0.0.1).

A new backend is conformant when it passes this file with its own fixture added to `backend`.
"""

from __future__ import annotations

import math

import pytest

from condpred.model.base import PredictiveModel, SamplingParams
from condpred.model.hf import HFModel
from tests.test_openai_backend import LLAMA_TOL, smol, smol_path, smol_url  # noqa: F401

CONTEXTS = ["The capital of France is", "Transcript of the policy meeting. Chair:"]
CONTINUATIONS = [" Paris", " Let us begin.", " a"]


@pytest.fixture(scope="module")
def hf_tiny(tiny_model_dir) -> HFModel:
    return HFModel.from_pretrained(tiny_model_dir, device="cpu")


@pytest.fixture(params=["hf", "openai"])
def backend(request) -> tuple[PredictiveModel, float]:
    """A backend and the per-token tolerance between two of its own computations of a number."""
    if request.param == "hf":
        return request.getfixturevalue("hf_tiny"), 1e-4
    return request.getfixturevalue("smol"), LLAMA_TOL


def test_it_is_a_predictive_model(backend):
    model, _ = backend
    assert isinstance(model, PredictiveModel) and model.spec


def test_a_batch_of_mixed_contexts_scores_as_each_context_alone(backend):
    """Order kept, every pair scored under its own context, whatever the batch mixes."""
    model, tol = backend
    pairs = [(c, x) for x in CONTINUATIONS for c in CONTEXTS]  # contexts interleaved
    batched = model.score_requests(pairs)
    assert [s.continuation for s in batched] == [x for _, x in pairs]
    alone = {
        c: dict(zip(CONTINUATIONS, model.score(c, CONTINUATIONS), strict=True)) for c in CONTEXTS
    }
    for (context, continuation), score in zip(pairs, batched, strict=True):
        expected = alone[context][continuation]
        assert score.tokens == expected.tokens
        assert score.token_logprobs == pytest.approx(expected.token_logprobs, abs=tol)


def test_scores_are_log_probabilities_of_the_continuations_tokens(backend):
    model, _ = backend
    assert model.score_requests([]) == [] and model.score(CONTEXTS[0], []) == []
    for score in model.score(CONTEXTS[0], CONTINUATIONS):
        assert score.logprob == pytest.approx(sum(score.token_logprobs))
        assert all(lp <= 0 for lp in score.token_logprobs)
        assert "".join(score.tokens) == score.continuation


def test_sample_i_depends_only_on_the_seed_and_i(backend):
    model, _ = backend
    params = SamplingParams(max_new_tokens=6, seed=3)
    four = model.sample(CONTEXTS[0], 4, params)
    assert [s.index for s in four] == [0, 1, 2, 3]
    assert [s.text for s in model.sample(CONTEXTS[0], 2, params, start=2)] == [
        s.text for s in four[2:]
    ]
    for sample in four:
        assert sample.finish_reason in ("stop", "eos", "length")
        assert len(sample.token_logprobs) == len(sample.tokens) <= 6


def test_next_token_is_the_top_of_a_distribution(backend):
    model, _ = backend
    top = model.next_token(CONTEXTS[0], top_k=5)
    assert len(top) == 5
    probs = [t.prob for t in top]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    assert all(math.isclose(t.prob, math.exp(t.logprob), rel_tol=1e-6) for t in top)
