"""Reference log-probs for the `openai` backend tests: plain full forward passes, in process.

`LlamaReference` runs llama-cpp-python's `Llama(logits_all=True)` on the GGUF the llama server
serves; `HFReference` runs transformers on the float32 folder vLLM serves. Log-softmax in float64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from condpred.model.base import split_trailing_whitespace


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows - np.logaddexp.reduce(rows, axis=-1, keepdims=True)


class Reference:
    """Per-token log P(token | tokens before it) for a text, tokenised as the server does."""

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def logits(self, ids: list[int]) -> np.ndarray:
        raise NotImplementedError

    def decode(self, token: int, before: list[int]) -> str:
        raise NotImplementedError

    def token_logprobs(self, text: str) -> tuple[list[str], list[float]]:
        """Each token of `text` after the first, with log P(token | the tokens before it)."""
        ids = self.encode(text)
        logsm = _log_softmax(self.logits(ids))
        tokens = [self.decode(t, ids[:j]) for j, t in enumerate(ids)]
        return tokens[1:], [float(logsm[j - 1, ids[j]]) for j in range(1, len(ids))]

    def continuation(self, context: str, continuation: str) -> tuple[list[str], list[float]]:
        """The continuation's tokens and log-probs (for a continuation no token straddles)."""
        ctx, cont = split_trailing_whitespace(context, continuation)
        tokens, logprobs = self.token_logprobs(ctx + cont)
        n_ctx = len(self.encode(ctx))
        return tokens[n_ctx - 1 :], logprobs[n_ctx - 1 :]

    def top(self, context: str, k: int) -> list[tuple[str, float]]:
        """The k most probable next tokens after `context`."""
        ids = self.encode(context)
        logsm = _log_softmax(self.logits(ids)[-1])
        best = np.argsort(-logsm)[:k]
        return [(self.decode(int(i), ids), float(logsm[i])) for i in best]


class LlamaReference(Reference):
    def __init__(self, gguf: Path) -> None:
        from llama_cpp import Llama

        self.llm = Llama(str(gguf), logits_all=True, n_ctx=512, n_threads=2, verbose=False)
        self.add_bos = self.llm._model.add_bos_token()

    def encode(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=self.add_bos, special=False)

    def logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[: len(ids)])

    def decode(self, token: int, before: list[int]) -> str:
        return self.llm.detokenize([token], prev_tokens=before).decode()


class HFReference(Reference):
    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text).input_ids

    def logits(self, ids: list[int]) -> np.ndarray:
        with self.torch.no_grad():
            return self.model(self.torch.tensor([ids])).logits[0].double().numpy()

    def decode(self, token: int, before: list[int]) -> str:
        return self.tokenizer.decode([token])
