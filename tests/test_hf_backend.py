"""The hf backend against a plain full forward pass, on a tiny random Gemma-3 (sliding window 8)."""

from __future__ import annotations

import copy
import math
from collections import Counter

import pytest
import torch

from condpred.model import head
from condpred.model.base import SamplingParams, split_trailing_whitespace
from condpred.model.hf import HFModel
from tests.tiny import build_tiny_gpt2

LONG_CONTEXT = (
    "Transcript of the policy meeting. Chair: Let us begin. A global moratorium on frontier AI "
    "training has held since 2027. Question: Will the treaty be ratified before 2030? Answer:"
)
CONTINUATIONS = [" Yes", " No", " Maybe.", " The alignment paper was published in 2031.", "", "!"]


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> HFModel:
    return HFModel.from_pretrained(tiny_model_dir, device="cpu")


def reference_logprobs(model: HFModel, context_ids, continuation_ids) -> list[float]:
    """Log-probs of the continuation from one plain forward pass over the whole sequence."""
    ids = torch.tensor([list(context_ids) + list(continuation_ids)])
    with torch.no_grad():
        logprobs = model.model(input_ids=ids).logits[0].float().log_softmax(-1)
    start = len(context_ids)
    return [float(logprobs[start + j - 1, t]) for j, t in enumerate(continuation_ids)]


@pytest.mark.parametrize("max_batch_tokens", [1, 7, 16, 4096])
@pytest.mark.parametrize("context", [LONG_CONTEXT, "Abstract. We study ", ""])
def test_score_equals_full_forward_pass(model, context, max_batch_tokens):
    model.max_batch_tokens = max_batch_tokens
    scores = model.score(context, CONTINUATIONS)
    for index, (continuation, score) in enumerate(zip(CONTINUATIONS, scores, strict=True)):
        request = model._request(index, context, continuation)
        expected = reference_logprobs(model, request.context_ids, request.continuation_ids)
        assert score.token_logprobs == pytest.approx(expected, abs=1e-4)
        assert score.logprob == pytest.approx(sum(expected), abs=1e-4)
        assert "".join(score.tokens) == request.continuation
    assert len(model.tokenizer(LONG_CONTEXT).input_ids) > 3 * 8  # longer than the sliding window


@pytest.fixture
def narrow_slices(monkeypatch):
    """Force many vocabulary slices (one uneven) and several position blocks per product."""
    monkeypatch.setattr(head, "MIN_SLICE", 7)
    monkeypatch.setattr(head, "BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(head, "MAX_POSITIONS", 5)


@pytest.mark.parametrize("bias", [False, True])
def test_output_head_equals_log_softmax(narrow_slices, bias):
    generator = torch.Generator().manual_seed(0)
    hidden, weight = (
        torch.randn(23, 16, generator=generator),
        torch.randn(50, 16, generator=generator),
    )
    offset = torch.randn(50, generator=generator) if bias else None
    logprobs = torch.nn.functional.linear(hidden, weight, offset).log_softmax(-1)
    targets = torch.randint(0, 50, (23,), generator=generator)
    targets[::3] = logprobs.argmax(-1)[::3]  # some rows greedy, the others almost surely not
    chosen, greedy = head.OutputHead(weight, offset).token_logprobs(hidden, targets)
    assert chosen.tolist() == pytest.approx(
        logprobs.gather(-1, targets[:, None])[:, 0].tolist(), abs=1e-5
    )
    assert greedy.tolist() == (logprobs.argmax(-1) == targets).tolist()


@pytest.mark.parametrize("path", ["sliced head", "model's own logits"])
def test_score_exact_through_either_head(model, narrow_slices, monkeypatch, path):
    assert model.head is not None  # the tiny Gemma-3's logits are lm_head(hidden): the fast path
    if path == "model's own logits":
        monkeypatch.setattr(model, "head", None)
    model.max_batch_tokens = 16
    scores = model.score(LONG_CONTEXT, CONTINUATIONS)
    for index, continuation in enumerate(CONTINUATIONS):
        request = model._request(index, LONG_CONTEXT, continuation)
        expected = reference_logprobs(model, request.context_ids, request.continuation_ids)
        assert scores[index].token_logprobs == pytest.approx(expected, abs=1e-4)


def test_transformed_logits_fall_back_to_the_models_own(tiny_model_dir):
    """Soft-capped logits are not lm_head(hidden): the probe sees it and the head is not used."""
    capped = HFModel.from_pretrained(tiny_model_dir, device="cpu")
    capped.model.config.final_logit_softcapping = 0.5
    assert head.OutputHead.of(capped.model) is None


def test_trailing_space_moves_onto_continuation(model):
    request = model._request(0, "Abstract. We study ", "predictive models")
    assert request.continuation == " predictive models"
    assert (
        model.tokenizer.decode(request.context_ids, skip_special_tokens=True)
        == "Abstract. We study"
    )


def test_empty_context_starts_from_bos(model):
    request = model._request(0, "", "Abstract.")
    assert request.context_ids == (model.tokenizer.bos_token_id,)
    assert model.tokenizer.decode(request.continuation_ids) == "Abstract."


def test_greedy_flag_matches_argmax(model):
    greedy = model.sample(LONG_CONTEXT, 1, SamplingParams(max_new_tokens=5, temperature=0))[0]
    score = model.score(LONG_CONTEXT, [greedy.text])[0]
    assert score.greedy
    assert not model.score(LONG_CONTEXT, [" zzzz qqqq"])[0].greedy


def test_next_token_matches_forward_pass(model):
    top = model.next_token(LONG_CONTEXT, top_k=5)
    ids = torch.tensor([list(model.context_ids(LONG_CONTEXT))])
    with torch.no_grad():
        probs = model.model(input_ids=ids).logits[0, -1].softmax(-1)
    expected = probs.topk(5)
    assert [t.token_id for t in top] == expected.indices.tolist()
    assert [t.prob for t in top] == pytest.approx(expected.values.tolist(), abs=1e-5)


def test_seeded_sampling_is_reproducible_and_batch_independent(model):
    params = SamplingParams(max_new_tokens=12, temperature=1.0, seed=7)
    first = model.sample(LONG_CONTEXT, 6, params)
    again = model.sample(LONG_CONTEXT, 6, params)
    assert [s.text for s in first] == [s.text for s in again]
    model.max_batch_samples = 1
    try:
        one_at_a_time = model.sample(LONG_CONTEXT, 6, params)
    finally:
        model.max_batch_samples = 64
    assert [s.text for s in one_at_a_time] == [s.text for s in first]
    resumed = model.sample(LONG_CONTEXT, 2, params, start=4)
    assert [s.text for s in resumed] == [s.text for s in first[4:]]
    assert [s.index for s in resumed] == [4, 5]
    other_seed = model.sample(LONG_CONTEXT, 6, SamplingParams(max_new_tokens=12, seed=8))
    assert [s.text for s in other_seed] != [s.text for s in first]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampling_through_the_sliced_head_equals_the_models_own_logits(
    model, narrow_slices, monkeypatch, temperature
):
    params = SamplingParams(max_new_tokens=10, temperature=temperature, seed=5)
    sliced = model.sample(LONG_CONTEXT, 5, params)
    monkeypatch.setattr(model, "head", None)  # the path for logits transformed after the head
    own = model.sample(LONG_CONTEXT, 5, params)
    assert [s.tokens for s in sliced] == [s.tokens for s in own]
    for a, b in zip(sliced, own, strict=True):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-6)


@pytest.mark.parametrize("bias", [False, True])
def test_the_sliced_heads_logits_are_one_products_bit_for_bit(narrow_slices, bias):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(1000, 48, generator=generator)
    shift = torch.randn(1000, generator=generator) if bias else None
    hidden = torch.randn(3, 48, generator=generator)
    out = head.OutputHead(weight, shift).logits_into(hidden, torch.full((3, 1000), 9.0))
    assert torch.equal(out, torch.nn.functional.linear(hidden, weight, shift))


def test_sample_logprobs_are_the_models(model):
    sample = model.sample(LONG_CONTEXT, 1, SamplingParams(max_new_tokens=8, seed=3))[0]
    generated = model.encode("".join(sample.tokens))
    assert len(generated) == len(sample.token_logprobs)  # this sample re-encodes token for token
    expected = reference_logprobs(model, model.context_ids(LONG_CONTEXT), generated)
    assert sample.token_logprobs == pytest.approx(expected, abs=1e-4)
    assert sample.logprob == pytest.approx(sum(sample.token_logprobs))


def test_sampler_draws_from_the_predicted_distribution(model):
    """Empirical first-token frequencies match next_token probabilities (a known answer)."""
    n = 400
    samples = model.sample(LONG_CONTEXT, n, SamplingParams(max_new_tokens=1, seed=11))
    counts = Counter(s.tokens[0] for s in samples)
    for candidate in model.next_token(LONG_CONTEXT, top_k=3):
        p = candidate.prob
        sigma = math.sqrt(p * (1 - p) / n)
        assert abs(counts[candidate.token] / n - p) < 4 * sigma + 1e-9


def test_top_p_and_temperature_zero_pick_the_top_token(model):
    top = model.next_token(LONG_CONTEXT, top_k=1)[0]
    for params in (
        SamplingParams(max_new_tokens=1, top_p=1e-6),
        SamplingParams(max_new_tokens=1, temperature=0),
    ):
        samples = model.sample(LONG_CONTEXT, 5, params)
        assert {s.tokens[0] for s in samples} == {top.token}


def test_stop_strings_cut_the_text(model):
    params = SamplingParams(max_new_tokens=40, seed=0)
    full = model.sample(LONG_CONTEXT, 8, params)
    stop_char = next(c for s in full for c in s.text[1:] if c.strip())
    stopped = model.sample(
        LONG_CONTEXT, 8, SamplingParams(max_new_tokens=40, seed=0, stop=(stop_char,))
    )
    for before, after in zip(full, stopped, strict=True):
        if stop_char in before.text:
            assert after.finish_reason == "stop"
            assert after.text == before.text[: before.text.index(stop_char)]
        else:
            assert after.text == before.text


def test_nucleus_sampling_renormalises_over_the_top_set(model):
    """top_p keeps the smallest most-probable set with mass >= top_p, renormalised. top_p lies
    between the top token's mass and the top two's, so the nucleus is exactly those two."""
    first, second, third = model.next_token(LONG_CONTEXT, top_k=3)
    top_p = first.prob + second.prob / 2
    nucleus, mass = [first, second], first.prob + second.prob
    n = 400
    params = SamplingParams(max_new_tokens=1, top_p=top_p, seed=5)
    counts = Counter(s.tokens[0] for s in model.sample(LONG_CONTEXT, n, params))
    assert set(counts) <= {c.token for c in nucleus} and third.token not in counts
    for candidate in nucleus:
        p = candidate.prob / mass
        assert abs(counts[candidate.token] / n - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-9


# -- one start-of-document convention: the tokenizer's own encoding -------------------------------


@pytest.fixture(scope="module", params=["gpt2-style, no BOS", "gemma-style, BOS"])
def any_convention(request, tiny_model_dir, tmp_path_factory) -> HFModel:
    if request.param.startswith("gemma"):
        return HFModel.from_pretrained(tiny_model_dir, device="cpu")
    folder = build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))
    return HFModel.from_pretrained(folder, device="cpu")


def own_encoding_logprobs(model: HFModel, context: str, continuation: str) -> list[float]:
    """The continuation's log-probs from one forward pass of the tokenizer's own encoding of the
    whole text (`add_special_tokens=True`), split where its own encoding of the context ends."""
    context, continuation = split_trailing_whitespace(context, continuation)
    whole = model.tokenizer(context + continuation).input_ids
    start = len(model.tokenizer(context).input_ids)
    with torch.no_grad():
        logprobs = model.model(input_ids=torch.tensor([whole])).logits[0].float().log_softmax(-1)
    return [float(logprobs[start + j - 1, t]) for j, t in enumerate(whole[start:])]


@pytest.mark.parametrize("max_batch_tokens", [1, 4096])
@pytest.mark.parametrize("context", [LONG_CONTEXT, "Abstract. We study ", "A"])
def test_scores_equal_a_forward_pass_of_the_tokenizers_own_encoding(
    any_convention, context, max_batch_tokens
):
    any_convention.max_batch_tokens = max_batch_tokens
    continuations = [c for c in CONTINUATIONS if c]
    scores = any_convention.score(context, continuations)
    for continuation, score in zip(continuations, scores, strict=True):
        expected = own_encoding_logprobs(any_convention, context, continuation)
        assert score.token_logprobs == pytest.approx(expected, abs=1e-4)


def test_samples_and_next_token_start_from_the_same_encoding(any_convention):
    ids = torch.tensor([any_convention.tokenizer(LONG_CONTEXT).input_ids])
    with torch.no_grad():
        logprobs = any_convention.model(input_ids=ids).logits[0, -1].float().log_softmax(-1)
    top = any_convention.next_token(LONG_CONTEXT, top_k=3)
    assert [t.token_id for t in top] == logprobs.topk(3).indices.tolist()
    sample = any_convention.sample(LONG_CONTEXT, 1, SamplingParams(max_new_tokens=1, seed=1))[0]
    first = any_convention.encode(sample.tokens[0])[0]
    assert sample.token_logprobs[0] == pytest.approx(float(logprobs[first]), abs=1e-4)


def test_a_context_starts_with_what_the_tokenizer_adds_and_an_empty_one_with_bos_else_eos(
    any_convention,
):
    tokenizer = any_convention.tokenizer
    assert any_convention.context_ids("Abstract.") == tuple(tokenizer("Abstract.").input_ids)
    empty = any_convention.context_ids("")
    if tokenizer.bos_token_id is not None:
        assert empty == (tokenizer.bos_token_id,)
    else:  # GPT-2-style without a BOS token: end-of-text starts the document, as in lm-eval
        assert tokenizer("").input_ids == [] and empty == (tokenizer.eos_token_id,)
    whole = any_convention.score("", ["Abstract. We study"])[0]
    context, continuation = empty, any_convention.encode("Abstract. We study")
    expected = reference_logprobs(any_convention, context, continuation)
    assert whole.token_logprobs == pytest.approx(expected, abs=1e-4)


def test_a_deprecated_transformers_call_from_condpred_fails_the_suite(model, monkeypatch):
    """The guard in conftest.py is live: the cache argument's old name, where transformers
    deprecates it, raises instead of warning."""
    if model.cache_name == "past_key_values":
        pytest.skip("this transformers still takes `past_key_values` without a warning")
    monkeypatch.setattr(model, "cache_name", "past_key_values")
    with pytest.raises(FutureWarning, match="past_key_values"):
        model.score(LONG_CONTEXT, [" Yes"])


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["gemma-3-270m", "smollm2-135m-instruct"])
def test_embedded_models_follow_their_gguf_metadata_and_their_own_encoding(spec):
    """A GGUF's `add_bos_token` decides the start: gemma-3 gets <bos>; SmolLM2-Instruct gets
    nothing, in particular not `<|im_start|>`, a chat-role token that would make every plain-text
    context a malformed chat turn."""
    from gguf import GGUFReader

    from condpred import load_model
    from condpred.model.registry import embedded_model

    model = load_model(spec, device="cpu")
    fields = GGUFReader(embedded_model(spec).gguf()).fields
    field = fields["tokenizer.ggml.add_bos_token"]
    adds_bos = bool(field.parts[field.data[0]][0])
    assert model.start_ids == ((model.tokenizer.bos_token_id,) if adds_bos else ())
    context = "The capital of France is"
    assert model.tokenizer.decode(model.context_ids(context)[:1]) in ("<bos>", "The")
    continuations = [" Paris", " a city of light"]
    for continuation, score in zip(continuations, model.score(context, continuations), strict=True):
        expected = own_encoding_logprobs(model, context, continuation)
        assert score.token_logprobs == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("vocab", [1, 300, 1024, 5000])
def test_inverse_cdf_picks_what_a_float64_running_sum_picks(vocab):
    """The two-level float64 CDF of sampling against the plain one, blocks uneven or not."""
    from condpred.model.hf import _inverse_cdf

    generator = torch.Generator().manual_seed(vocab)
    weights = torch.rand(16, vocab, generator=generator) ** 8
    draws = torch.rand(16, generator=generator, dtype=torch.float64)
    cdf = weights.double().cumsum(-1)
    expected = torch.searchsorted(cdf, (draws * cdf[:, -1]).unsqueeze(-1)).squeeze(-1)
    assert _inverse_cdf(weights, draws).tolist() == expected.clamp(max=vocab - 1).tolist()
    # A reused buffer holding an earlier batch's numbers (wider rows too) picks the same.
    padded = -(-vocab // 1024) * 1024
    dirty = torch.full((20, padded), 7.0, dtype=torch.float64)[:16]
    assert _inverse_cdf(weights, draws, dirty).tolist() == expected.clamp(max=vocab - 1).tolist()


def _nucleus_by_full_sort(probs: torch.Tensor, top_p: float, u: float) -> int:
    """The reference: sort the whole vocabulary, keep the smallest prefix with mass >= top_p."""
    sorted_probs, order = probs.sort(descending=True, stable=True)
    cumulative = sorted_probs.cumsum(0)
    kept = cumulative[: int((cumulative < top_p).sum()) + 1]
    position = int(torch.searchsorted(kept, torch.tensor(u * float(kept[-1]))))
    return int(order[min(position, len(kept) - 1)])


def _distribution(shape: str, generator: torch.Generator) -> torch.Tensor:
    if shape != "tied at the edge":
        return torch.randn(5000, generator=generator) * (0.5 if shape == "flat" else 6.0)
    # 1,000 equal tokens, then 200 more tied a little lower: the candidates' edge falls among
    # them, and a nucleus of 0.86-0.95 reaches into them.
    logits = torch.full((5000,), -30.0)
    order = torch.randperm(5000, generator=generator)
    logits[order[:1000]], logits[order[1000:1200]] = 0.0, -0.5
    return logits


@pytest.mark.parametrize("shape", ["peaked", "flat", "tied at the edge"])
def test_nucleus_among_the_top_candidates_is_the_full_sorts(shape):
    """The nucleus drawn from the most probable tokens only equals the whole vocabulary's sort,
    where the nucleus lies among them (peaked), where it does not (flat: the fallback) and with
    a tie across the candidates' edge (ties are ordered by token id, as a stable sort does)."""
    from condpred.model.hf import NUCLEUS_CANDIDATES, _nucleus_pick

    generator = torch.Generator().manual_seed(1)
    among_candidates = []
    for _ in range(10):
        probs = torch.softmax(_distribution(shape, generator), -1)
        for top_p in (0.5, 0.86, 0.9, 0.95, 0.999):
            for u in torch.rand(20, generator=generator).tolist():
                assert _nucleus_pick(probs, top_p, u) == _nucleus_by_full_sort(probs, top_p, u)
            among_candidates.append(float(probs.topk(NUCLEUS_CANDIDATES).values.sum()) >= top_p)
    assert any(among_candidates) if shape != "flat" else not all(among_candidates)


@pytest.mark.parametrize("shared", [True, False])
def test_shared_prefix_and_per_row_caches_are_both_exact(model, shared):
    """Gemma-3 takes the shared-prefix attention; the per-row cache (other models) stays exact."""
    assert model.shared_prefix  # the tiny Gemma-3 passes the check HFModel makes once per model
    model.shared_prefix, model.max_batch_tokens = shared, 16
    try:
        scores = model.score(LONG_CONTEXT, CONTINUATIONS)
        samples = model.sample(LONG_CONTEXT, 3, SamplingParams(max_new_tokens=12, seed=1))
    finally:
        model.shared_prefix, model.max_batch_tokens = True, 1024
    for index, (continuation, score) in enumerate(zip(CONTINUATIONS, scores, strict=True)):
        request = model._request(index, LONG_CONTEXT, continuation)
        expected = reference_logprobs(model, request.context_ids, request.continuation_ids)
        assert score.token_logprobs == pytest.approx(expected, abs=1e-4)
    context_ids = model.context_ids(LONG_CONTEXT)
    for sample in samples:
        ids = model.encode("".join(sample.tokens))
        if len(ids) == len(sample.token_logprobs):  # re-encodes token for token
            expected = reference_logprobs(model, context_ids, ids)
            assert sample.token_logprobs == pytest.approx(expected, abs=1e-4)


def test_rows_own_keys_grow_in_place_and_equal_concatenation():
    """Each row's new keys and values: appended in buffers that grow past their first capacity,
    with rows leaving the batch on the way, they equal the plain concatenation of every step."""
    from types import SimpleNamespace

    from condpred.model.shared_prefix import SharedPrefix

    torch.manual_seed(0)
    layers = [SimpleNamespace(keys=torch.randn(1, 2, 5, 4), values=torch.randn(1, 2, 5, 4))] * 2
    shared = SharedPrefix(SimpleNamespace(layers=layers), prefix_length=5, rows=3)
    expected: list[list[torch.Tensor]] = [[], []]
    for step in range(40):  # past 16 and 32: the buffers are regrown and copied twice
        new = 3 if step == 0 else 1  # the first call brings several tokens
        if step == 20:  # row 1 finished: it leaves the batch
            keep = torch.tensor([0, 2])
            shared.batch_select_indices(keep)
            expected = [[t[:, keep] for t in layer] for layer in expected]
        rows = shared.rows
        for layer in range(2):
            keys, values = torch.randn(rows, 2, new, 4), torch.randn(rows, 2, new, 4)
            expected[layer].append(torch.stack([keys, values]))
            got_keys, got_values = shared.update(keys, values, layer)
            want = torch.cat(expected[layer], dim=-2)
            assert torch.equal(got_keys, want[0]) and torch.equal(got_values, want[1])
        assert shared.get_seq_length() == 5 + 3 + step


BRANCHING = [
    " The model predicts",
    " The model predicts a world",
    " The model agrees",
    " The model predicts",  # the same continuation twice
    " The",
    " An answer that runs well past the sliding window of eight tokens, and then some more",
    "",
]


@pytest.mark.parametrize("max_batch_tokens", [8, 4096])
@pytest.mark.parametrize("shared", [True, False])
def test_branching_continuations_score_exactly(model, monkeypatch, shared, max_batch_tokens):
    """Continuations sharing their first tokens share states (rows of branches, narrower than
    the longest continuation, over several batches): every token's log-probability and greedy
    flag still equal a plain forward pass of its own sequence."""
    from condpred.model import hf

    assert model.shared_prefix  # the tiny Gemma-3 passes the tree check HFModel makes
    monkeypatch.setattr(hf, "TREE_WIDTH", 6)
    monkeypatch.setattr(model, "shared_prefix", shared)
    monkeypatch.setattr(model, "max_batch_tokens", max_batch_tokens)
    scores = model.score(LONG_CONTEXT, BRANCHING)
    for index, score in enumerate(scores):
        request = model._request(index, LONG_CONTEXT, BRANCHING[index])
        ids = torch.tensor([[*request.context_ids, *request.continuation_ids]])
        with torch.no_grad():
            logprobs = model.model(input_ids=ids).logits[0].float().log_softmax(-1)
        start = len(request.context_ids)
        rows = logprobs[start - 1 : start - 1 + len(request.continuation_ids)]
        wanted = torch.tensor(request.continuation_ids, dtype=torch.long)
        expected = rows.gather(-1, wanted[:, None])[:, 0] if len(wanted) else rows[:, 0]
        assert score.token_logprobs == pytest.approx(expected.tolist(), abs=1e-4)
        assert score.greedy == bool((rows.argmax(-1) == wanted).all())


def test_lay_out_runs_each_shared_prefix_once():
    """In a tree layout every distinct prefix is one slot whose ancestors spell it, at its own
    place after the context; a sequence layout gives each continuation a row of its own."""
    from condpred.model._trie import CONTEXT, lay_out

    continuations = [[1, 2, 3], [1, 2, 4], [1, 2, 3], [5, 6], [7], [], [1, 2, 3, 9, 9]]
    prefixes = {tuple(c[:k]) for c in continuations for k in range(1, len(c))}
    tree = lay_out(continuations, width=64, tree=True)
    assert sum(len(row) for row in tree.rows) == len(prefixes)
    offsets = tree.offsets(range(len(tree.rows)), 64)
    for continuation, reads in zip(continuations, tree.reads, strict=True):
        assert len(reads) == len(continuation) and reads[:1] in ([], [CONTEXT])
        for k, (row, slot) in enumerate(reads[1:], start=1):
            spelled, at = [], slot
            while at >= 0:
                spelled.insert(0, tree.rows[row][at])
                at = tree.parents[row][at]
            assert spelled == continuation[:k] and offsets[row, slot] == k - 1
            visible = tree.visible([row], 64)[0, slot].nonzero().squeeze(-1).tolist()
            assert len(visible) == k  # itself and its ancestors, nothing else
    narrow = lay_out(continuations, width=3, tree=True)
    assert all(len(row) <= 4 for row in narrow.rows)  # width 3, or one path of 4 alone
    sequences = lay_out(continuations, width=64, tree=False)
    assert sorted(sequences.rows) == sorted(c[:-1] for c in continuations if len(c) > 1)


@pytest.mark.parametrize("rows", [1, 7, 64, 300])
@pytest.mark.parametrize("bias", [False, True])
def test_packed_weights_give_the_plain_product(rows, bias):
    """MKL's packed product equals F.linear within float32 rounding at any row count, and a
    weight changed in place is packed again."""
    from condpred.model._packed import PackedWeight, can_pack

    generator = torch.Generator().manual_seed(rows)
    weight = torch.randn(300, 96, generator=generator)
    shift = torch.randn(300, generator=generator) if bias else None
    if not can_pack([weight]):
        pytest.skip("this torch has no MKL packed product")
    packed, x = PackedWeight(weight), torch.randn(rows, 96, generator=generator)
    with torch.no_grad():
        for _ in range(2):
            expected = torch.nn.functional.linear(x, weight, shift)
            assert torch.allclose(packed.product(x, bias=shift), expected, rtol=1e-5, atol=1e-4)
            weight.mul_(-0.5)  # the optimiser's kind of change: the next product sees it
        other = torch.randn(300, 96, generator=generator)  # a replaced weight: packed anew
        expected = torch.nn.functional.linear(x, other, shift)
        assert torch.allclose(packed.product(x, other, shift), expected, rtol=1e-5, atol=1e-4)


def test_packed_layers_and_head_serve_the_model_and_leave_gradients_alone(model):
    """The tiny model runs packed (CPU, float32); with gradients on, its layers take the plain
    product, so a soft prompt still trains."""
    assert model.packed and model.head.packed is not None
    twin = copy.deepcopy(model.model)  # the packed copies are dropped, and made again on use
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(twin(input_ids=ids).logits, model.model(input_ids=ids).logits)
    layer = model.decoder.layers[0].mlp.down_proj
    x = torch.randn(5, layer.in_features, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.no_grad():
        hidden = torch.randn(4, model.head.weight.shape[1])
        out = torch.empty(4, model.head.weight.shape[0])
        expected = torch.nn.functional.linear(hidden, model.head.weight, model.head.bias)
        assert torch.allclose(model.head.logits_into(hidden, out), expected, atol=1e-4)


@pytest.mark.parametrize("tree", [True, False])
def test_row_batches_are_sized_by_their_own_rows(model, monkeypatch, tree):
    """One long continuation does not shrink the batches of the short ones: each batch is under
    the token budget by its own rows (padded to its longest, or one after another)."""
    from condpred.model._trie import lay_out

    monkeypatch.setattr(model, "max_batch_tokens", 300)
    continuations = [list(range(1, 301))] + [[7, i, 8, 9, 10] for i in range(600)]
    layout = lay_out(continuations, width=64, tree=tree)
    batches = model._row_batches(layout, tree)
    assert sorted(r for batch in batches for r in batch) == list(range(len(layout.rows)))
    for batch in batches:
        widths = [len(layout.rows[r]) for r in batch]
        cost = sum(widths) if tree else len(batch) * max(widths)
        assert cost <= 300 or len(batch) == 1
    assert len(batches) <= 1 + -(-sum(len(row) for row in layout.rows[1:]) // 280)
