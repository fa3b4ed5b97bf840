"""The `openai` backend: any OpenAI-compatible completions server (vLLM, SGLang, llama.cpp).

Users who outgrow one machine serve their model with vLLM (or SGLang, or llama-cpp-python) and
point condpred at it: `OpenAIModel("http://host:8000", "name")`, spec `openai:URL#name`. Only
`/v1/completions` is used (chat endpoints would wrap the text in a chat template, which is not
conditioning on an observation).

How each method maps onto the API, and why:

* `score` asks the server to echo the prompt with its log-probs (`echo: true, logprobs: k,
  max_tokens: 1`; never `max_tokens: 0`, which llama.cpp reads as "unlimited"). Context and
  continuation are tokenised together, as lm-evaluation-harness does, after moving the context's
  trailing spaces onto the continuation (" Paris" is one token; "is " + "Paris" would not be).
  The continuation's tokens are those that end after the context's last character (by the
  echoed `text_offset`): a token that straddles the boundary belongs to the continuation,
  because the continuation cannot be scored without it (its log-prob then also covers the
  context characters inside it). With an empty context the server adds the model's BOS token
  itself; a model without one cannot score its first token, which is an `InputError`.
* `sample` sends one request per sample index with a seed hashed from (seed, index), not one
  request with `n`: how a server splits one seed over `n` choices is its own business (and
  changes with `n`), so only a per-index seed makes sample i depend on (seed, i) alone, and
  lets an interrupted run resume at any index. Server-side sampling defaults (llama.cpp's
  top_k 40, min_p 0.05, repeat_penalty 1.1) are switched off so samples come from the model's
  own distribution; the reported log-probs are the raw model's (vLLM's default
  `raw_logprobs`, llama.cpp's logits), i.e. at temperature 1 as `Sample` promises.
* `next_token` asks for one token with `logprobs: top_k`. The API names tokens by their text
  only, so `TokenProb.token_id` is -1 (and tokens with the same text merge into one entry).

Requests run `concurrency` at a time (64 by default, so a vLLM server has enough sequences
in flight to batch; `score_requests` sends a whole batch of (context, continuation) pairs at
once). 5xx answers and dropped connections are retried `max_retries` times with exponential
backoff, but a server that has never answered fails at once: that is a wrong URL far more often
than a restart. Every failure users can fix (unreachable, unknown model, no prompt log-probs,
HTTP 4xx) is an `InputError` naming the URL and what to check.

Known quirk handled here: llama-cpp-python's server (0.3.x), for a model that adds no BOS token
(e.g. SmolLM2), reports each echoed token's log-prob from the *next* position's distribution
(it drops one logits row for a BOS that is not there). A one-time probe on the days of the week
detects the shift; the backend then reads token i's log-prob from the top-k of position i-1 and,
for the rare token outside that top-k, asks for it directly by forcing it with `logit_bias`
(the generation path reports unshifted, unbiased log-probs).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from condpred.errors import InputError
from condpred.model.base import (
    BatchedScoring,
    Sample,
    SamplingParams,
    Score,
    ScoreRequest,
    TokenProb,
    sample_seed,
    split_trailing_whitespace,
)

T = TypeVar("T")
R = TypeVar("R")

# Text any language model predicts well: its top-1 guesses reveal which way the echo aligns.
PROBE_TEXT = "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday"
SHIFTED_TOP_K = 100  # top-k read from shifted echoes (the server sorts the whole vocab anyway)
FORCE_BIAS = 100.0  # logit_bias that makes a token the greedy choice, to read its log-prob
GREEDY_EPS = 1e-6
# Server-side sampling defaults (llama.cpp: top_k 40, min_p 0.05, repeat_penalty 1.1) would make
# samples come from a different distribution than the model's; these keys switch them off.
NEUTRAL_SAMPLING = {
    "top_k": 0,  # 0 = off in llama.cpp, vLLM (>= 0.8), SGLang
    "min_p": 0.0,
    "repeat_penalty": 1.0,
    "repetition_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError)


DEFAULT_TIMEOUT_S = 120.0  # a request that sends nothing back for this long has hung


# --- what servers answer, validated before anything reads it ----------------------------------
# Only the fields condpred reads are declared; others are ignored. A reply that does not fit
# (HTML from a proxy, a wrong shape, a log-prob that is not a number) is an InputError naming
# the server, the request and the field, never an AttributeError deep in the parsing.


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Logprobs(_Reply):
    tokens: list[str] | None = None
    token_logprobs: list[float | None] | None = None
    top_logprobs: list[dict[str, float] | None] | None = None
    text_offset: list[int] | None = None


class _Choice(_Reply):
    text: str | None = None
    logprobs: _Logprobs | None = None
    finish_reason: str | None = None
    stop_reason: str | int | None = None  # vLLM
    matched_stop: str | int | None = None  # SGLang


class _Completion(_Reply):
    choices: list[_Choice] = Field(min_length=1)


class _ModelEntry(_Reply):
    id: str


class _Models(_Reply):
    data: list[_ModelEntry | Any] | None = None


class _Tokens(_Reply):
    tokens: list[int]


@dataclass(frozen=True)
class Echo:
    """The prompt's tokens as the server echoed them, aligned to the prompt text."""

    tokens: list[str]
    offsets: list[int]
    logprobs: list[float | None]
    tops: list[dict[str, float] | None]

    def first_token_ending_after(self, boundary: int, text_len: int) -> int:
        """Index of the first token whose text ends after `boundary` (straddlers included)."""
        ends = [*self.offsets[1:], text_len]
        return next((i for i, end in enumerate(ends) if end > boundary), len(self.tokens))


def parse_echo(choice: dict[str, Any], text: str) -> Echo:
    """The prompt part of an echoed choice: drop a leading BOS the server shows but the text lacks,
    and the generated token(s) after the prompt."""
    lp = choice.get("logprobs") or {}
    tokens = list(lp.get("tokens") or [])
    offsets = list(lp.get("text_offset") or [])
    logprobs = list(lp.get("token_logprobs") or [])
    tops = list(lp.get("top_logprobs") or [None] * len(tokens))
    if not tokens or len({len(tokens), len(offsets), len(logprobs), len(tops)}) != 1:
        return Echo([], [], [], [])
    start = 0
    while (
        start < len(tokens) - 1 and logprobs[start] is None and not text.startswith(tokens[start])
    ):
        start += 1  # e.g. vLLM echoes the BOS it added ("<s>"), which the prompt text lacks
    base = offsets[start]
    rel = [o - base for o in offsets[start:]]
    keep = [i for i, o in enumerate(rel) if o < len(text)]
    return Echo(
        [tokens[start + i] for i in keep],
        [rel[i] for i in keep],
        [logprobs[start + i] for i in keep],
        [tops[start + i] for i in keep],
    )


def is_greedy(logprob: float, top: dict[str, float] | None) -> bool:
    """Whether `logprob` is the best in its position's top-k (False when the server gave none)."""
    return bool(top) and logprob >= max(top.values()) - GREEDY_EPS


def finish_reason(choice: dict[str, Any], text: str, tokens: list[str], stops: bool) -> str:
    """Map the server's finish_reason onto "stop" (a stop string), "eos" or "length"."""
    if choice.get("finish_reason") == "length":
        return "length"
    if "stop_reason" in choice:  # vLLM: None after EOS, the stop string or token id otherwise
        return "stop" if isinstance(choice["stop_reason"], str) else "eos"
    if "matched_stop" in choice:  # SGLang: the EOS token id, or the matched stop string
        return "stop" if isinstance(choice["matched_stop"], str) else "eos"
    # llama.cpp says "stop" for both; a cut stop string leaves tokens beyond the text.
    return "stop" if stops and len("".join(tokens)) > len(text) else "eos"


def trim_to_text(tokens: list[str], logprobs: list[float], text: str) -> tuple[list, list]:
    """Keep the tokens that start inside `text`: those after it spell a stop string the server
    cut off (or an end-of-text token); `text` is what the sample is."""
    keep, start = 0, 0
    while keep < len(tokens) and start < len(text):
        start += len(tokens[keep])
        keep += 1
    return tokens[:keep], logprobs[:keep]


class OpenAIModel(BatchedScoring):
    """A `PredictiveModel` served over HTTP by an OpenAI-compatible completions server."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        concurrency: int = 64,
        api_key: str | None = None,
        shifted_echo: bool | None = None,
    ) -> None:
        """`shifted_echo`: None probes the server once; True/False skips the probe."""
        self.spec = f"openai:{base_url}#{model}"
        self.timeout = timeout
        self.base_url = base_url
        self.model = model
        self.max_retries = max_retries
        self.backoff = backoff
        self.concurrency = max(1, concurrency)
        self._root = base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency + 1)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout), headers=headers, limits=limits
        )
        self._lock = threading.Lock()
        self._answered = False  # has the server ever answered? (retry connection errors only then)
        self._checked = False
        self._shifted = shifted_echo
        self._tokenized: dict[str, list[int]] = {}

    # -- the protocol ------------------------------------------------------------------------

    def score_requests(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Log P(continuation | context) from the server's echoed prompt log-probs, one request
        per pair, `concurrency` in flight."""
        if not requests:
            return []
        self._prepare(scoring=True)
        return self._map(lambda r: self._score_one(*r), list(requests))

    def sample(self, context: str, n: int, params: SamplingParams, start: int = 0) -> list[Sample]:
        """Samples start..start+n-1, one request each, seeded by `sample_seed(seed, i)`."""
        self._prepare()
        return self._map(lambda i: self._sample_one(context, params, i), range(start, start + n))

    def next_token(self, context: str, top_k: int = 10) -> list[TokenProb]:
        """The server's top_k next tokens, most probable first (`token_id` -1: see above)."""
        self._prepare()
        body = {"prompt": context, "max_tokens": 1, "temperature": 0.0, "logprobs": top_k}
        choice = self._complete(body, "the next token's top log-probs")
        tops = (choice.get("logprobs") or {}).get("top_logprobs") or [None]
        ranked = sorted((tops[0] or {}).items(), key=lambda kv: -kv[1])[:top_k]
        return [TokenProb(tok, -1, math.exp(lp), lp) for tok, lp in ranked]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scoring -----------------------------------------------------------------------------

    def _score_one(self, context: str, continuation: str) -> Score:
        ctx, cont = split_trailing_whitespace(context, continuation)
        text = ctx + cont
        if not cont:
            return Score(continuation, 0.0, [], [], True)
        echo = self._echo(text, SHIFTED_TOP_K if self._shifted else 1)
        first = echo.first_token_ending_after(len(ctx), len(text)) if ctx else 0
        logprobs, greedy = [], True
        for i in range(first, len(echo.tokens)):
            lp, top = self._token_logprob(echo, text, i)
            logprobs.append(lp)
            greedy = greedy and is_greedy(lp, top)
        return Score(continuation, float(sum(logprobs)), logprobs, echo.tokens[first:], greedy)

    def _echo(self, text: str, k: int) -> Echo:
        body = {"prompt": text, "max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": k}
        echo = parse_echo(self._complete(body, f"the log-probs of {_quote(text)}"), text)
        if not echo.tokens:
            raise InputError(
                f"the server at {self.base_url} returned no prompt log-probs for model "
                f"'{self.model}' (it ignores `echo: true` or `logprobs`), so it cannot score text",
                source=self.spec,
                fix="Serve the model with vLLM (echo and prompt_logprobs work out of the box) or "
                "with llama-cpp-python started with `--logits_all true`; llama.cpp's own "
                "llama-server does not return prompt log-probs",
            )
        return echo

    def _token_logprob(self, echo: Echo, text: str, i: int) -> tuple[float, dict | None]:
        """Log-prob of echoed token i and the top-k of its position, undoing a shifted echo."""
        if self._shifted and i > 0:
            top = echo.tops[i - 1]
            lp = (top or {}).get(echo.tokens[i])
            return (lp if lp is not None else self._forced_logprob(echo, text, i)), top
        lp = None if self._shifted else echo.logprobs[i]
        if lp is None:
            raise self._no_logprob_error(i)
        return float(lp), echo.tops[i]

    def _no_logprob_error(self, i: int) -> InputError:
        if i == 0:
            return InputError(
                "the server gives no log-prob for the first token of a prompt (OpenAI's echo "
                "convention, or a model without a BOS token), so a continuation with an empty "
                "context cannot be scored",
                source=self.spec,
                fix="Give a non-empty context (a newline or your document separator)",
            )
        return InputError(
            f"the server at {self.base_url} returned a null log-prob for prompt token {i}",
            source=self.spec,
            fix="Check that the server computes logits for every prompt position "
            "(llama-cpp-python: `--logits_all true`)",
        )

    def _forced_logprob(self, echo: Echo, text: str, i: int) -> float:
        """Log-prob of token i read from the generation path: prompt = text before it, the token
        forced by `logit_bias` (reported log-probs are unbiased). llama-cpp-python only, which is
        where shifted echoes come from; its `/extras/tokenize` gives the token ids."""
        ids = self._tokenize(text)
        prefix = text[: echo.offsets[i]]
        if len(ids) != len(echo.tokens) or self._tokenize(prefix) != ids[:i]:
            raise InputError(
                f"cannot read the log-prob of token {i} ({echo.tokens[i]!r}) exactly: the server "
                "shifts echoed log-probs and the prompt does not split cleanly before this token",
                source=self.spec,
                fix="Serve the model with vLLM, or change the continuation's first characters",
            )
        body = {
            "prompt": prefix,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": 1,
            "logit_bias": {str(ids[i]): FORCE_BIAS},
        }
        got = self._complete(body, f"the log-prob of token {i} ({echo.tokens[i]!r})")
        got = got.get("logprobs") or {}
        tokens, logprobs = got.get("tokens") or [None], got.get("token_logprobs") or [None]
        if tokens[0] != echo.tokens[i] or logprobs[0] is None:
            raise InputError(
                f"the server at {self.base_url} did not generate the forced token "
                f"{echo.tokens[i]!r} (got {tokens[0]!r}), so its log-prob cannot be read",
                source=self.spec,
                fix="Check that the server honours `logit_bias`, or serve the model with vLLM",
            )
        return float(logprobs[0])

    def _tokenize(self, text: str) -> list[int]:
        """Token ids from llama-cpp-python's `/extras/tokenize`, cached (boundedly) per text."""
        ids = self._tokenized.get(text)
        if ids is None:  # one local value: other threads may clear the cache meanwhile
            data = self._request("POST", "/extras/tokenize", {"input": text}, "token ids")
            ids = list(self._validated(_Tokens, data, "/extras/tokenize").tokens)
            if len(self._tokenized) > 256:
                self._tokenized.clear()
            self._tokenized[text] = ids
        return ids

    def _probe_shift(self) -> bool:
        """True when echoed log-probs come one position late (see the module docstring): the
        top-1 guesses on the days of the week then match the *next* token, not the current one."""
        echo = self._echo(PROBE_TEXT, 1)
        aligned = shifted = 0
        for i, top in enumerate(echo.tops):
            if not top:
                continue
            best = max(top, key=top.__getitem__)
            aligned += best == echo.tokens[i]
            shifted += i + 1 < len(echo.tokens) and best == echo.tokens[i + 1]
        return shifted > aligned

    # -- sampling ----------------------------------------------------------------------------

    def _sample_one(self, context: str, params: SamplingParams, index: int) -> Sample:
        body = {
            **NEUTRAL_SAMPLING,
            "prompt": context,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stop": list(params.stop),
            "seed": sample_seed(params.seed, index, bits=31),
            "logprobs": 1,
        }
        choice = self._complete(body, f"sample {index}")
        text = choice.get("text") or ""
        lp = choice.get("logprobs") or {}
        all_tokens = list(lp.get("tokens") or [])
        tokens, logprobs = trim_to_text(all_tokens, list(lp.get("token_logprobs") or []), text)
        reason = finish_reason(choice, text, all_tokens, bool(params.stop))
        if None in logprobs or len(logprobs) != len(tokens):
            raise InputError(
                f"the server at {self.base_url} returned a null log-prob for a generated token "
                f"of sample {index}",
                source=self.spec,
                fix="Check that the server returns `logprobs` for generated tokens",
            )
        return Sample(text, [float(x) for x in logprobs], tokens, reason, index)

    # -- plumbing ----------------------------------------------------------------------------

    def _prepare(self, scoring: bool = False) -> None:
        """Once per model: check the model name; before scoring, probe for a shifted echo."""
        with self._lock:
            if not self._checked:
                self._check_model()
                self._checked = True
            if scoring and self._shifted is None:
                self._shifted = self._probe_shift()

    def _check_model(self) -> None:
        """Fail early with the names the server does serve (servers without /v1/models pass)."""
        try:
            data = self._request("GET", "/v1/models", None, "the list of models")
        except InputError:
            if not self._answered:
                raise
            return
        listed = self._validated(_Models, data, "/v1/models").data or []
        names = [m.id for m in listed if isinstance(m, _ModelEntry)]
        if names and self.model not in names:
            raise InputError(
                f"the server at {self.base_url} does not serve a model named '{self.model}'",
                source=self.spec,
                fix=f"Use one of: {', '.join(map(str, names))} (the name after '#' in the spec)",
            )

    def _complete(self, body: dict[str, Any], what: str) -> dict[str, Any]:
        """The first choice of a completions request, validated (see `_Completion`)."""
        data = self._request("POST", "/v1/completions", {"model": self.model, **body}, what)
        reply = self._validated(_Completion, data, f"/v1/completions ({what})")
        return reply.choices[0].model_dump(exclude_unset=True)

    def _validated(self, shape: type[BaseModel], data: Any, request: str) -> Any:
        try:
            return shape.model_validate(data)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            field = ".".join(str(part) for part in first["loc"]) or "the body"
            raise InputError(
                f"the server at {self.base_url} gave an answer to {request} that is not an "
                f"OpenAI completions reply: {field}: {first['msg']} "
                f"({len(error.errors())} problem(s))",
                source=self.spec,
                fix="Check that the URL is an OpenAI-compatible completions server (vLLM, "
                "SGLang, llama-cpp-python) and not a proxy or another service",
            ) from None

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, what: str = ""
    ) -> Any:
        """One HTTP call, retried with exponential backoff on 5xx and dropped connections."""
        url = self._root + path
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._client.request(method, url, json=body)
            except RETRYABLE as exc:
                if last or not self._answered:
                    raise self._unreachable(url, exc) from exc
                time.sleep(self.backoff * 2**attempt)
                continue
            except httpx.TimeoutException as exc:
                phase = "connect" if isinstance(exc, httpx.ConnectTimeout) else "answer"
                raise InputError(
                    f"{method} {url}{f' ({what})' if what else ''} timed out: the server did "
                    f"not {phase} within {self.timeout:g} s",
                    source=self.spec,
                    fix="Check that the server is not stuck; if it is only slow, raise --timeout "
                    "(seconds; `timeout=` in Python) or ask for fewer tokens",
                ) from exc
            except httpx.HTTPError as exc:  # e.g. too many redirects, a malformed reply
                raise InputError(
                    f"{method} {url} failed ({type(exc).__name__}: {exc})",
                    source=self.spec,
                    fix="Check the URL: it should be the completions server's root",
                ) from exc
            self._answered = True
            if response.status_code >= 500 and not last:
                time.sleep(self.backoff * 2**attempt)
                continue
            return self._json(response, url)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _unreachable(self, url: str, exc: Exception) -> InputError:
        return InputError(
            f"cannot reach the completions server at {url} ({type(exc).__name__}: {exc})",
            source=self.spec,
            fix="Check that the server is running, that host and port are right, and that "
            "base_url is the server root (e.g. http://127.0.0.1:8000, with or without /v1)",
        )

    def _json(self, response: httpx.Response, url: str) -> Any:
        if response.status_code < 400:
            try:
                return response.json()
            except ValueError as error:  # HTML from a proxy, a truncated body, bad bytes
                start = response.text[:80].strip()
                raise InputError(
                    f"{url} answered {response.status_code} with a body that is not JSON "
                    f"(it starts {start!r})",
                    source=self.spec,
                    fix="Check that the URL is an OpenAI-compatible completions server, not a "
                    "web page or a proxy's error page",
                ) from error
        message = _error_message(response)
        code = response.status_code
        if code == 404 and "model" in message.lower():
            fix = f"Check the model name '{self.model}' (the part after '#' in the spec)"
        elif code == 404:
            fix = "Check base_url: it should be the server root, e.g. http://127.0.0.1:8000"
        elif code in (401, 403):
            fix = "Pass api_key= (the server requires one)"
        elif "logits_all" in message:
            fix = "Start llama-cpp-python's server with `--logits_all true` (needed for log-probs)"
        elif code >= 500:
            fix = f"The server failed after {self.max_retries} retries; check its log"
        else:
            fix = "Check the request parameters against what this server supports"
        raise InputError(f"{url} answered {code}: {message}", source=self.spec, fix=fix)

    def _map(self, fn: Callable[[T], R], items: Sequence[T] | range) -> list[R]:
        """Run requests `concurrency` at a time, so a batching server (vLLM) can batch them."""
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(fn, items))


def _quote(text: str, limit: int = 40) -> str:
    """Text for an error message: its start, quoted."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _error_message(response: httpx.Response) -> str:
    """The server's own words: OpenAI-style {"error": {"message"}}, {"detail"}, or raw text."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))[:300]
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])[:300]
    return str(data)[:300]
