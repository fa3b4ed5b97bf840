"""Outcome probabilities: checked against plain forward passes on the tiny model, and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from condpred import Conditional, InputError, render
from condpred.elicit.outcomes import camera_alone, outcomes
from condpred.model.hf import HFModel

NAMES = ["Yes", "No", "Maybe"]
PHRASINGS = ["Answer: {}.", " {}"]
QUESTION = Conditional(
    camera="forecast-question",
    date="2029-01-01",
    title="Will the treaty be ratified before 2030?",
    extra={"background": "A global moratorium on frontier AI training has held since 2027."},
    prefix="Question:",
)


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> HFModel:
    return HFModel.from_pretrained(tiny_model_dir, device="cpu")


def rest_logprob(model: HFModel, stem: str, rest: str) -> float:
    """log P(rest | stem) from one plain forward pass over the whole text: the sum of the
    log-probs of the tokens after the stem's own tokens."""
    ids = model.context_ids(stem + rest)
    cut = len(model.context_ids(stem))
    assert ids[:cut] == model.context_ids(stem)  # the stem's tokens begin the whole text's
    with torch.no_grad():
        logits = model.model(input_ids=torch.tensor([ids])).logits[0].float()
    logprobs = logits.log_softmax(-1)
    return sum(float(logprobs[i - 1, ids[i]]) for i in range(cut, len(ids)))


def expected(model: HFModel, context: str, phrasing: str) -> list[float]:
    """Per outcome, log P(outcome | context + the phrasing's lead-in), by forward passes."""
    lead, tail = phrasing.split("{}")
    stem = (context + lead).rstrip()
    return [rest_logprob(model, stem, (context + lead)[len(stem) :] + n + tail) for n in NAMES]


def test_probabilities_equal_forward_passes(model):
    got = outcomes(QUESTION, NAMES, model, phrasings=PHRASINGS)
    context = render(QUESTION)
    alone = render(camera_alone(QUESTION))
    for p, phrasing in enumerate(PHRASINGS):
        logprobs = expected(model, context, phrasing)
        assert got.logprobs[p] == pytest.approx(logprobs, abs=1e-4)
        total = math.log(sum(math.exp(x) for x in logprobs))
        assert got.by_phrasing[p] == pytest.approx([math.exp(x - total) for x in logprobs], 1e-4)
        assert got.baseline[p] == pytest.approx(expected(model, alone, phrasing), abs=1e-4)
    means = [sum(row[o] for row in got.by_phrasing) / 2 for o in range(3)]
    assert got.probs == pytest.approx(means) and sum(got.probs) == pytest.approx(1.0)
    assert got["No"] == got.probs[1]
    assert got.phrasings == tuple(PHRASINGS) and got.outcomes == tuple(NAMES)


def test_shift_is_the_mean_log_ratio_and_zero_for_the_camera_alone(model):
    got = outcomes(QUESTION, NAMES, model, phrasings=PHRASINGS)
    for o in range(3):
        ratios = [got.logprobs[p][o] - got.baseline[p][o] for p in range(2)]
        assert got.shift[o] == pytest.approx(sum(ratios) / 2)
    assert any(abs(s) > 1e-3 for s in got.shift)  # the content moved something
    bare = Conditional(camera="forecast-question", prefix="Question:")
    assert outcomes(bare, NAMES, model, phrasings=PHRASINGS).shift == pytest.approx((0, 0, 0))


def test_reused_baseline_and_the_stored_form(model):
    first = outcomes(QUESTION, NAMES, model, phrasings=PHRASINGS)
    again = outcomes(QUESTION, NAMES, model, phrasings=PHRASINGS, baseline=first.baseline)
    assert again == first
    assert first.to_dict()["shift"] == list(first.shift)
    assert outcomes(QUESTION, NAMES, model, phrasings=PHRASINGS, shift=False).shift == ()
    assert all(0 < m <= 1 for m in first.mass)
    assert first.spread == tuple(
        max(r[o] for r in first.by_phrasing) - min(r[o] for r in first.by_phrasing)
        for o in range(3)
    )


@pytest.mark.parametrize(
    ("names", "phrasings", "field", "words"),
    [
        (["Yes"], [" {}"], "outcomes", "at least two"),
        (["Yes", "Yes"], [" {}"], "outcomes", "at least two"),
        (["Yes", " "], [" {}"], "outcomes", "empty"),
        (["Yes", "No"], ["Answer:"], "phrasings", "exactly once"),
        (["Yes", "No"], [], "phrasings", "no answer phrasings"),
        (["Yes", "Yes sir"], [" {}"], "outcomes", "is the start of"),
    ],
)
def test_bad_outcomes_and_phrasings_are_input_errors(model, names, phrasings, field, words):
    with pytest.raises(InputError, match=words) as caught:
        outcomes(QUESTION, names, model, phrasings=phrasings)
    assert caught.value.field == field


@pytest.mark.slow
def test_a_known_answer_on_the_embedded_model(default_model):
    """The instrument on a question the model knows: Paris, over two phrasings, and a positive
    shift (the question makes Paris more likely than the bare answer format does)."""
    question = Conditional(title="Geography quiz", prefix="Q: What is the capital of France?")
    got = outcomes(
        question, ["Paris", "London", "Berlin"], default_model, phrasings=["\nA: {}", " A: {}."]
    )
    assert got["Paris"] > 0.8 and all(row[0] > 0.6 for row in got.by_phrasing)
    assert got.shift[0] > 1.0
