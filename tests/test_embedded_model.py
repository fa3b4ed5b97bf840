"""Integration: the embedded gemma-3-270m base model through the real code path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from condpred import SamplingParams, Store, load_conditional, predict, render
from condpred.model import head
from tests.test_hf_backend import reference_logprobs

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).parents[1] / "examples"


def test_conversion_keeps_the_model_knowledgeable(default_model):
    """A known answer: a converted model that lost its weights would not put Paris on top."""
    top = default_model.next_token("The capital of France is", top_k=5)
    assert " Paris" in [t.token for t in top]
    assert default_model.spec == "gemma-3-270m"  # runs and reports name the model, not the alias


def test_scores_are_exact_on_a_rendered_conditional(default_model, monkeypatch):
    context = render(load_conditional(EXAMPLES / "alignment-paper-2031.yaml"))
    continuations = [" the reporter is trained", " we", " banana bread recipes follow."]
    # One vocabulary slice per product, then 256 narrow ones (the vocabulary walked in pieces).
    for max_batch_tokens, block in ((1, head.BLOCK_ELEMENTS), (1024, 1024)):
        default_model.max_batch_tokens = max_batch_tokens
        monkeypatch.setattr(head, "BLOCK_ELEMENTS", block)
        for index, score in enumerate(default_model.score(context, continuations)):
            request = default_model._request(index, context, continuations[index])
            expected = reference_logprobs(
                default_model, request.context_ids, request.continuation_ids
            )
            assert score.token_logprobs == pytest.approx(expected, abs=1e-4)
    assert torch.get_default_dtype() == torch.float32


def test_predict_on_an_example_is_stored_and_reproducible(default_model, tmp_path):
    conditional = load_conditional(EXAMPLES / "news-ai-moratorium.yaml")
    params = SamplingParams(max_new_tokens=16, seed=1)
    with Store(tmp_path / "runs.db") as store:
        first = predict(conditional, default_model, 2, params, store=store)
        again = predict(conditional, default_model, 2, params)
        assert [s.text for s in store.samples(first.run_id)] == [s.text for s in first.samples]
        assert store.get_run(first.run_id).status == "done"
    assert [s.text for s in first.samples] == [s.text for s in again.samples]
    assert all(s.text.strip() for s in first.samples)


def test_sliced_head_is_closer_to_float64_than_float32_log_softmax(default_model):
    """On the embedded model's own logits, the head's online log-sum-exp stays within 1e-5 of a
    float64 log-softmax, while float32 `log_softmax` (what a plain forward pass gives, and what
    lm-eval uses) is off by several times more: differences from such baselines are theirs."""
    context = render(load_conditional(EXAMPLES / "alignment-paper-2031.yaml"))
    ids = torch.tensor([list(default_model.context_ids(context))])
    with torch.no_grad():
        hidden = head.decoder_of(default_model.model)(input_ids=ids).last_hidden_state[0, :-1]
        logits = default_model.model(input_ids=ids).logits[0, :-1]
    targets = ids[0, 1:].unsqueeze(-1)
    truth = logits.double().log_softmax(-1).gather(-1, targets)[:, 0]
    float32 = logits.float().log_softmax(-1).gather(-1, targets)[:, 0].double()
    chosen, _ = default_model.head.token_logprobs(hidden, targets[:, 0])
    head_error = (chosen.double() - truth).abs().max().item()
    assert head_error < 1e-5
    assert (float32 - truth).abs().max().item() > 3 * head_error
