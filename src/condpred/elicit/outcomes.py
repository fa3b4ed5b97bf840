"""Outcomes: the probability of each named outcome under a conditional, and how far the
conditional moved it.

A predictive model gives no probabilities for "yes" or "no" by itself; it gives probabilities of
text. We write each outcome into the document in a few answer phrasings ("Answer: {}",
"Resolved: {}"), score every outcome's text under the rendered conditional, and normalise over the
named outcomes within each phrasing; averaging over phrasings keeps one wording from deciding.

All phrasings of a conditional are scored in ONE batch of requests (`outcome_distributions` sends
those of many conditionals together, so a server keeps them in flight): the rendered conditional is
the context (prefix-cached: its KV cache is computed once) and each continuation is a phrasing's
lead-in plus an outcome. The lead-in's own probability is scored in the same call and taken out,
so each number is log P(outcome | conditional + lead-in); the lead-in's tokens are checked to be a
prefix of every outcome's, so that subtraction is exact.

The conditioning shift is log P(outcome | conditional) - log P(outcome | camera alone), in nats,
where "camera alone" is the same camera and prefix with no content (no title, date, authors,
premises or extra fields): lm-evaluation-harness's `acc_mutual_info`. A positive shift means the
conditional made the outcome more likely than the bare answer format does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from condpred.condition import Conditional, render
from condpred.errors import InputError
from condpred.model.base import PredictiveModel, Score, ScoreRequest
from condpred.probability import logsumexp, normalise

DEFAULT_PHRASINGS = (" {}",)  # the outcome straight after the conditional's prefix


@dataclass(frozen=True)
class Distribution:
    """Probabilities over named outcomes, averaged over answer phrasings, with their evidence.

    `logprobs[p][o]` is log P(outcome o | conditional, lead-in of phrasing p) in nats;
    `baseline[p][o]` the same under the camera alone (empty when the shift was not computed)."""

    outcomes: tuple[str, ...]
    probs: tuple[float, ...]
    phrasings: tuple[str, ...]
    by_phrasing: tuple[tuple[float, ...], ...]
    logprobs: tuple[tuple[float, ...], ...]
    baseline: tuple[tuple[float, ...], ...] = ()

    def __getitem__(self, outcome: str) -> float:
        return self.probs[self.outcomes.index(outcome)]

    @property
    def shift(self) -> tuple[float, ...]:
        """Mean over phrasings of log P(o | conditional) - log P(o | camera alone), in nats."""
        if not self.baseline:
            return ()
        pairs = zip(self.logprobs, self.baseline, strict=True)
        per_phrasing = [[a - b for a, b in zip(lp, base, strict=True)] for lp, base in pairs]
        return tuple(sum(column) / len(column) for column in zip(*per_phrasing, strict=True))

    @property
    def spread(self) -> tuple[float, ...]:
        """Per outcome, the largest minus the smallest probability over phrasings."""
        columns = zip(*self.by_phrasing, strict=True)
        return tuple(max(column) - min(column) for column in columns)

    @property
    def mass(self) -> tuple[float, ...]:
        """Per phrasing, the probability the named outcomes hold together: a small mass means the
        model expected some other answer, and the normalised probabilities say less."""
        return tuple(math.exp(logsumexp(row)) for row in self.logprobs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"shift": list(self.shift), "mass": list(self.mass)}


def outcomes(
    conditional: Conditional,
    names: Sequence[str],
    model: PredictiveModel,
    *,
    phrasings: Sequence[str] = DEFAULT_PHRASINGS,
    cameras_dir: str | Path | None = None,
    shift: bool = True,
    baseline: Sequence[Sequence[float]] | None = None,
) -> Distribution:
    """P(each named outcome | conditional), averaged over phrasings (templates with one `{}`).

    With `shift`, the same is scored under the camera alone; pass `baseline` (from
    `phrasing_logprobs` on `render(camera_alone(conditional))`) to reuse it across many
    conditionals with the same camera and prefix."""
    return outcome_distributions(
        [conditional],
        names,
        model,
        phrasings=phrasings,
        cameras_dir=cameras_dir,
        shift=shift,
        baseline=baseline,
    )[0]


def outcome_distributions(
    conditionals: Sequence[Conditional],
    names: Sequence[str],
    model: PredictiveModel,
    *,
    phrasings: Sequence[str] = DEFAULT_PHRASINGS,
    cameras_dir: str | Path | None = None,
    shift: bool = True,
    baseline: Sequence[Sequence[float]] | None = None,
) -> list[Distribution]:
    """`outcomes` for many conditionals, every request sent to the model in one batch (a server
    keeps them all in flight; `hf` still computes each context's prefix once)."""
    names = validate_outcomes(names)
    phrasings = validate_phrasings(phrasings)
    validate_exclusive(names, phrasings)
    contexts = [render(c, cameras_dir) for c in conditionals]
    if shift and baseline is None:
        contexts += [render(camera_alone(c), cameras_dir) for c in conditionals]
    batches = [phrasing_requests(context, names, phrasings) for context in contexts]
    scores = iter(model.score_requests([r for batch in batches for r in batch]))
    tables = [
        _phrasing_rows([next(scores) for _ in batch], names, phrasings, model.spec)
        for batch in batches
    ]
    baselines = tables[len(conditionals) :] or [baseline] * len(conditionals)
    return [
        _distribution(names, phrasings, logprobs, base if shift else None)
        for logprobs, base in zip(tables[: len(conditionals)], baselines, strict=True)
    ]


def _distribution(
    names: Sequence[str],
    phrasings: Sequence[str],
    logprobs: Sequence[Sequence[float]],
    baseline: Sequence[Sequence[float]] | None,
) -> Distribution:
    by_phrasing = tuple(tuple(normalise(row)) for row in logprobs)
    probs = tuple(sum(column) / len(column) for column in zip(*by_phrasing, strict=True))
    return Distribution(
        tuple(names),
        probs,
        tuple(phrasings),
        by_phrasing,
        tuple(tuple(row) for row in logprobs),
        tuple(tuple(row) for row in baseline) if baseline is not None else (),
    )


def camera_alone(conditional: Conditional) -> Conditional:
    """The conditional without its content: its camera and prefix (the answer format) only.

    Built without validation, since a conditional with neither title nor prefix is refused as
    input but is exactly the bare camera we need here."""
    return Conditional.model_construct(camera=conditional.camera, prefix=conditional.prefix)


def phrasing_logprobs(
    model: PredictiveModel, context: str, names: Sequence[str], phrasings: Sequence[str]
) -> list[list[float]]:
    """log P(outcome | context + lead-in) per phrasing (rows) and outcome (columns), one call."""
    scores = model.score_requests(phrasing_requests(context, names, phrasings))
    return _phrasing_rows(scores, names, phrasings, model.spec)


def phrasing_requests(
    context: str, names: Sequence[str], phrasings: Sequence[str]
) -> list[ScoreRequest]:
    """Every phrased outcome after `context`, then each phrasing's non-empty lead-in."""
    texts = [p.replace("{}", name) for p in phrasings for name in names]
    leads = [lead for p in phrasings if (lead := p.split("{}")[0].rstrip())]
    return [(context, text) for text in texts + leads]


def _phrasing_rows(
    scores: Sequence[Score], names: Sequence[str], phrasings: Sequence[str], spec: str
) -> list[list[float]]:
    """The scores of `phrasing_requests` as log P(outcome | lead-in) by phrasing and outcome."""
    n = len(phrasings) * len(names)
    by_outcome, lead_scores = scores[:n], iter(scores[n:])
    rows = []
    for p, phrasing in enumerate(phrasings):
        lead_score = next(lead_scores) if phrasing.split("{}")[0].rstrip() else None
        row = by_outcome[p * len(names) : (p + 1) * len(names)]
        rows.append([_after_lead(score, lead_score, spec) for score in row])
    return rows


def _after_lead(score: Score, lead: Score | None, spec: str) -> float:
    """log P(outcome | lead-in) = log P(lead-in + outcome) - log P(lead-in), exact when the
    lead-in's tokens begin the outcome's text's tokens."""
    if not score.tokens:
        raise InputError(
            f"the outcome text {score.continuation!r} tokenises to nothing for {spec}",
            field="outcomes",
            fix="Use outcomes written in characters the model's tokenizer knows, e.g. 'Yes'",
        )
    if lead is None:
        return score.logprob
    if score.tokens[: len(lead.tokens)] != lead.tokens:
        raise InputError(
            f"the phrasing's lead-in {lead.continuation!r} is tokenised differently inside "
            f"{score.continuation!r}, so its probability cannot be taken out exactly",
            field="phrasings",
            fix="End the text before '{}' with a space or punctuation, e.g. 'Answer: {}'",
        )
    return score.logprob - lead.logprob


def validate_outcomes(names: Sequence[str]) -> list[str]:
    """At least two different, non-blank outcome names."""
    names = list(names)
    if any(not isinstance(n, str) or not n.strip() for n in names):
        raise InputError(
            f"an outcome is empty or not text: {names!r}",
            field="outcomes",
            fix="Name each outcome as the text it is written as, e.g. ['Yes', 'No']",
        )
    if len(names) < 2 or len(set(names)) < len(names):
        raise InputError(
            f"needs at least two different outcomes, got {names!r}",
            field="outcomes",
            fix="List each possible outcome once, e.g. ['Yes', 'No']",
        )
    return names


def validate_phrasings(phrasings: Sequence[str]) -> list[str]:
    """Templates with exactly one `{}`, none of which makes one outcome the start of another."""
    phrasings = list(phrasings)
    if not phrasings:
        raise InputError("no answer phrasings given", field="phrasings", fix="Give e.g. [' {}']")
    for phrasing in phrasings:
        if not isinstance(phrasing, str) or phrasing.count("{}") != 1:
            raise InputError(
                f"a phrasing must contain '{{}}' exactly once, where the outcome goes: "
                f"{phrasing!r}",
                field="phrasings",
                fix="Write e.g. 'Answer: {}' or 'The question resolved {}.'",
            )
    return phrasings


def validate_exclusive(names: Sequence[str], phrasings: Sequence[str]) -> None:
    """No phrased outcome may be the start of another: their probabilities would overlap."""
    for phrasing in phrasings:
        texts = [phrasing.replace("{}", n) for n in names]
        for a, b in itertools.permutations(texts, 2):
            if b.startswith(a):
                where = "" if phrasing == "{}" else f"in the phrasing {phrasing!r} "
                raise InputError(
                    f"{where}the outcome text {a!r} is the start of {b!r}, "
                    "so their probabilities overlap",
                    field="outcomes",
                    fix="Write what ends each outcome, e.g. ' 5%' and ' 50%'"
                    if phrasing == "{}"
                    else "End each phrasing after the outcome (e.g. 'Answer: {}.'), or name "
                    "outcomes that do not start one another",
                )
