"""surprisal: how unlikely the model finds the conditional, and how much its premises drive the
predictions.

Why (seed 001, "strange and unlikely" conditionals): the more improbable the observation we
condition on, the more likely the model explains it with a strange world, e.g. one where an AI
wrote the text; the surprisal of the conditional is the warning sign. Results:

- `surprisal.rendered`: per-token surprisal (bits) of the whole rendered text, scored from the
  start of a document: value = mean, evidence = max and the token where it occurs.
- `surprisal.premises`: how unlikely the premises are given the camera. The estimator is
  log P(premise span | the rendered text before it): render with and without the premises, take
  the text only the first has (the premises plus the camera's words that introduce them, e.g.
  "Context: ") and score it as a continuation of the text the two renderings share before it.
  Value = mean surprisal in bits/token of that span. The plain difference
  log P(with) - log P(without) is not this: by the chain rule it is the span's log-prob plus
  log P(rest | with) - log P(rest | without), the PMI of the premises with the text after them
  (the prefix the premises make more or less expected). The evidence has both parts,
  `premise_bits` (= -log2 P(span | before)) and `rest_pmi_bits`, and the whole
  `shift_bits` = rest_pmi_bits - premise_bits (= log2 P(with) - log2 P(without), up to how
  tokens merge at the span's edges).
- `surprisal.pmi` (one per sample): PMI = log P(sample | with premises) - log P(sample | without),
  in bits: how much the premises, rather than the camera, explain each prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from condpred.checks import CHECKS
from condpred.checks._probes import cross_score, finding, render_variant
from condpred.checks.base import CheckInput, CheckResult
from condpred.model.base import PredictiveModel, Sample, Score
from condpred.probability import bits, mean


def split_premises(with_premises: str, without: str) -> tuple[str, str, str]:
    """(before, premise span, after) of the rendering with premises, against the one without.

    The shared beginning ends at a whitespace boundary (so a word is never cut) and the span
    ends without trailing whitespace, which the backend attaches to the next token."""
    start = _common_prefix(with_premises, without)
    while start and not with_premises[start - 1].isspace():
        start -= 1
    room = min(len(with_premises), len(without)) - start
    tail = _common_prefix(with_premises[::-1], without[::-1])
    span = with_premises[start : len(with_premises) - min(tail, room)].rstrip()
    return with_premises[:start], span, with_premises[start + len(span) :]


def _common_prefix(a: str, b: str) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def surprisal_stats(score: Score) -> dict[str, Any]:
    """Mean, max and total surprisal (bits) of a scored text, and the most surprising token."""
    surprisals = score.surprisal_bits
    worst = max(range(len(surprisals)), key=surprisals.__getitem__) if surprisals else None
    return {
        "n_tokens": len(surprisals),
        "mean_bits": mean(surprisals),
        "max_bits": surprisals[worst] if worst is not None else 0.0,
        "max_token": score.tokens[worst] if worst is not None else "",
        "total_bits": sum(surprisals),
    }


@dataclass(frozen=True)
@CHECKS.register("surprisal")
class SurprisalCheck:
    """Thresholds are mean bits per token (warn above; None: report only).

    Defaults, measured under gemma-3-270m: the example conditionals' premises score 4.5-7.0
    bits/token and their renderings 4.9-6.3. Premises describing strange worlds score 5.8 (the
    Moon replaced by an AI-run data centre, in the forum post), 6.6 (a thirty-hour day, in the news
    story, whose own premises score 5.0) and 8.8 (purple elephants in the Senate, on the forecast
    page). A model this small separates only the absurd, so the defaults warn above every example;
    a larger model earns a lower threshold. Per-sample PMI has no default threshold: a prediction
    the premises explain is what conditioning is for; it is evidence to read, not a risk alone."""

    summary: ClassVar[str] = (
        "How unlikely the model finds the conditional and its premises, and how much "
        "the premises drive each sample."
    )
    unit: ClassVar[str] = "bits per token"
    warn_premise_bits: float = 7.5
    fail_premise_bits: float | None = None
    warn_rendered_bits: float | None = 7.0
    warn_pmi_bits: float | None = None
    name: str = "surprisal"

    def run(self, given: CheckInput) -> list[CheckResult]:
        conditional, rendered = given.conditional, given.rendered
        if not conditional.world:
            return [self._rendered(given, "; no premises (world is empty)")]
        without = render_variant(conditional.without_premises(), given.cameras_dir)
        if without == rendered:
            return [self._rendered(given, "; the camera does not write the premises")]
        return [
            self._rendered(given, ""),
            *self._premises(given.model, rendered, without),
            *self._pmi(given.model, rendered, without, given.samples),
        ]

    def _rendered(self, given: CheckInput, note: str) -> CheckResult:
        stats = surprisal_stats(given.model.score("", [given.rendered])[0])
        message = (
            f"rendered conditional: {stats['mean_bits']:.2f} bits/token mean, "
            f"{stats['max_bits']:.1f} max at {stats['max_token']!r}{note}"
        )
        return finding(
            "surprisal.rendered", stats["mean_bits"], self.warn_rendered_bits, stats, message
        )

    def _premises(self, model: PredictiveModel, rendered: str, without: str) -> list[CheckResult]:
        before, span, after = split_premises(rendered, without)
        if not span:
            return []  # the camera writes nothing for the premises: nothing to measure
        stats = surprisal_stats(model.score(before, [span])[0])
        rest_with = model.score(before + span, [after])[0].logprob
        rest_without = model.score(before, [without[len(before) :]])[0].logprob
        rest_pmi = bits(rest_with - rest_without)
        evidence = {
            **stats,
            "premise_span": span,
            "premise_bits": stats["total_bits"],
            "rest_pmi_bits": rest_pmi,
            "shift_bits": rest_pmi - stats["total_bits"],
            "estimator": "log P(premise span | rendered text before it)",
        }
        value = stats["mean_bits"]
        message = (
            f"premises: {value:.2f} bits/token ({stats['total_bits']:.0f} bits in all) given "
            f"the camera; they shift the rendering's log-prob by {evidence['shift_bits']:+.0f} bits"
        )
        return [
            finding(
                "surprisal.premises",
                value,
                self.warn_premise_bits,
                evidence,
                message,
                fail_above=self.fail_premise_bits,
            )
        ]

    def _pmi(
        self, model: PredictiveModel, rendered: str, without: str, samples: Sequence[Sample]
    ) -> list[CheckResult]:
        if not samples:
            return []
        with_scores, without_scores = cross_score(model, [rendered, without], samples)
        return [
            self._pmi_result(sample, a, b)
            for sample, a, b in zip(samples, with_scores, without_scores, strict=True)
        ]

    def _pmi_result(self, sample: Sample, with_: Score, without: Score) -> CheckResult:
        pmi = bits(with_.logprob - without.logprob)
        per_token = pmi / len(with_.tokens) if with_.tokens else 0.0
        evidence = {
            "logprob_with": with_.logprob,
            "logprob_without": without.logprob,
            "n_tokens": len(with_.tokens),
            "pmi_bits_per_token": per_token,
        }
        message = (
            f"sample {sample.index}: the premises make it {pmi:+.1f} bits "
            f"({per_token:+.2f}/token) more probable"
        )
        return finding(
            "surprisal.pmi",
            pmi,
            self.warn_pmi_bits,
            evidence,
            message,
            sample_index=sample.index,
        )
