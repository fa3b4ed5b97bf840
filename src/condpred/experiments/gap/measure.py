"""The measurements: exact KL(T || B | c) per token from two full next-token distributions, the
base model's rank of each tuned token (URIAL's token distribution shift), and their aggregates
over prompts with bootstrap intervals.

On text sampled from the tuned model at temperature 1, the sum over a response's positions of
the exact per-position KL is an unbiased estimate of the KL between the two models' response
distributions (the chain rule of KL): no sampling noise within a position, only over which
prefixes occur. URIAL (Lin et al. 2023) calls a tuned token *unshifted* when it is the base
model's top-1, *marginal* at base rank 2-3 and *shifted* at rank > 3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from condpred.stats import ci_list

if TYPE_CHECKING:  # torch loads with a model, not with the CLI
    import torch

SHIFTED_ABOVE = 3  # URIAL: a base rank > 3 is a shifted token
LEVEL = 0.95


def compare(tuned: torch.Tensor, base: torch.Tensor) -> tuple[list[float], list[int]]:
    """Per position: KL(tuned || base) in nats from the two `[m, vocab]` log-softmax rows, and the
    base rank (1 = base's most probable) of the tuned model's own top token there. URIAL ranks
    the tokens of greedy tuned text, i.e. the tuned top token; ranking the sampled token instead
    would count sampling noise as shift (identical models would show "shifts"). Identical rows
    give exactly 0 and rank 1. Rounding can make a KL of nearly equal rows a hair below 0; it is
    clipped."""
    if tuned.shape[0] == 0:
        return [], []
    kl = (tuned.exp() * (tuned - base)).sum(-1).clamp_(min=0.0)
    top = tuned.argmax(-1, keepdim=True)
    ranks = (base > base.gather(-1, top)).sum(-1) + 1
    return kl.tolist(), ranks.tolist()


def token_class(text: str) -> str:
    """Where a shift falls, by kind of token: a number, a word, or whitespace / punctuation."""
    stripped = text.strip()
    if any(ch.isdigit() for ch in stripped):
        return "number"
    if any(ch.isalpha() for ch in stripped):
        return "word"
    return "space/punct"


def per_prompt(kl: list[list[float]], ranks: list[list[int]]) -> dict[str, float]:
    """One prompt's totals over its responses: summed KL, tokens, and tokens by URIAL's class."""
    flat = [r for response in ranks for r in response]
    return {
        "kl": float(sum(map(sum, kl))),
        "tokens": float(len(flat)),
        "unshifted": float(sum(r == 1 for r in flat)),
        "marginal": float(sum(1 < r <= SHIFTED_ABOVE for r in flat)),
        "shifted": float(sum(r > SHIFTED_ABOVE for r in flat)),
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> float:
    total = float(den.sum())
    return float(num.sum()) / total if total else float("nan")


def table_row(
    name: str, totals: list[dict[str, float]], baseline: list[dict[str, float]], seed: int
) -> dict:
    """A row of the `--out` table over paired prompts: KL per token (summed KL over summed tokens,
    the ratio estimator), the fraction of the bare prompt's KL it closes (1 - KL_c / KL_none on
    the same prompts and responses), the shifted-token ratio, each with a percentile bootstrap CI
    over prompts (one resample serves the numerator and the baseline: paired)."""
    kl = np.array([t["kl"] for t in totals])
    tokens = np.array([t["tokens"] for t in totals])
    shifted = np.array([t["shifted"] for t in totals])
    base_kl = np.array([b["kl"] for b in baseline])

    def closed(c: np.ndarray, b: np.ndarray) -> float:
        return 1.0 - float(c.sum()) / float(b.sum()) if b.sum() > 0 else float("nan")

    row = {
        "conditional": name,
        "kl_per_token": _ratio(kl, tokens),
        "ci": ci_list(_ratio, kl, tokens, seed=seed, level=LEVEL),
        "fraction_closed": closed(kl, base_kl),
        "fraction_closed_ci": ci_list(closed, kl, base_kl, seed=seed, level=LEVEL),
        "shifted_ratio": _ratio(shifted, tokens),
        "shifted_ci": ci_list(_ratio, shifted, tokens, seed=seed, level=LEVEL),
        "unshifted_ratio": _ratio(np.array([t["unshifted"] for t in totals]), tokens),
        "marginal_ratio": _ratio(np.array([t["marginal"] for t in totals]), tokens),
        "prompts": len(totals),
        "tokens": int(tokens.sum()),
    }
    return {k: _defined(v) for k, v in row.items()}


def _defined(value: Any) -> Any:
    """NaN (a fraction of a zero KL, e.g. for identical models) as None: JSON has no NaN."""
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, list):
        return [_defined(v) for v in value]
    return value
