"""What the viewer's pages show beyond the store's own records: tokens shaded by surprisal, the
word diff of two texts, and the empirical distributions two sets of samples are compared by.

Every string that reaches a page goes through Jinja2's autoescaping or `markupsafe.escape`; this
module returns plain data for the templates (never HTML), so nothing here can inject markup.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from condpred.checks.base import CheckResult
from condpred.model.base import Sample

LN2 = math.log(2)
SHADES = 8  # surprisal classes s0..s7, drawn by the stylesheet (no inline styles under the CSP)
TOP_BITS = 16.0  # surprisal at or above this many bits gets the darkest shade
WORDS = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True)
class Token:
    """One token as the page shows it: its text, surprisal in bits and its shade class."""

    text: str
    bits: float
    shade: int


def shaded(tokens: Sequence[str], logprobs: Sequence[float]) -> list[Token]:
    """Each token with its surprisal (bits) and a shade from 0 (expected) to SHADES - 1."""
    out = []
    for text, logprob in zip(tokens, logprobs, strict=True):
        bits = -logprob / LN2
        shade = min(SHADES - 1, max(0, int(bits / TOP_BITS * SHADES)))
        out.append(Token(text, bits, shade))
    return out


@dataclass(frozen=True)
class Badge:
    """One check's finding on a sample, with its evidence as text for the hover and details."""

    check: str
    verdict: str
    value: float
    message: str
    evidence: str


def badges(results: Sequence[CheckResult]) -> dict[int | None, list[Badge]]:
    """Check results grouped by the sample they are about (None: the conditional as a whole)."""
    grouped: dict[int | None, list[Badge]] = {}
    for r in results:
        evidence = json.dumps(r.evidence, indent=1, ensure_ascii=False, default=str)
        badge = Badge(r.check, r.verdict, r.value, r.message, evidence)
        grouped.setdefault(r.sample_index, []).append(badge)
    return grouped


def word_diff(a: str, b: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Two texts as (op, piece) runs, op one of "same", "del" (only in a), "ins" (only in b):
    a word-level diff, so one changed date or name stands out in a long conditional."""
    left, right = WORDS.findall(a), WORDS.findall(b)
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    out_a: list[tuple[str, str]] = []
    out_b: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out_a.append(("same", "".join(left[i1:i2])))
            out_b.append(("same", "".join(right[j1:j2])))
            continue
        if i2 > i1:
            out_a.append(("del", "".join(left[i1:i2])))
        if j2 > j1:
            out_b.append(("ins", "".join(right[j1:j2])))
    return out_a, out_b


def first_words(samples: Sequence[Sample]) -> Counter[str]:
    """How often each first word opens a sample: the empirical distribution of where the
    model's continuations begin."""
    counts: Counter[str] = Counter()
    for s in samples:
        words = [w for w in WORDS.findall(s.text) if not w.isspace()]
        counts[words[0] if words else "(empty)"] += 1
    return counts


def total_variation(p: dict[str, float], q: dict[str, float]) -> float:
    """Total variation distance between two distributions given as {outcome: probability}
    (outcomes missing from one have probability 0 there)."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in p.keys() | q.keys())


def by_larger_share(p: dict[str, float], q: dict[str, float]) -> list[str]:
    """The outcomes of two distributions, the most probable (under either) first."""
    return sorted(p.keys() | q.keys(), key=lambda k: -max(p.get(k, 0.0), q.get(k, 0.0)))


def sample_summary(samples: Sequence[Sample]) -> dict[str, Any]:
    """What a set of samples says about the model's predictions: how many, how long, how
    surprising per token (bits), how they ended, and how their first words are distributed."""
    tokens = sum(len(s.tokens) for s in samples)
    bits = sum(-s.logprob for s in samples) / LN2
    counts = first_words(samples)
    n = len(samples)
    return {
        "n": n,
        "mean_tokens": tokens / n if n else None,
        "bits_per_token": bits / tokens if tokens else None,
        "ended": dict(Counter(s.finish_reason for s in samples)),
        "first_words": {w: c / n for w, c in counts.most_common()} if n else {},
    }
