"""consistency: spot checks that predictions of a counterfactual world still behave like ours.

Why (seed 002, "plausible spot-checks"): we cannot check a prediction of a counterfactual world
against that world, but we know how any world's predictions must behave. A predictor that tracks
the world, rather than the wording of its prompt, answers the same under a paraphrase, gives a
statement and its negation probabilities that add up, and never makes a cumulative event ("by
DATE") less likely as DATE moves later. Findings are about the conditional (sample_index None):

- `consistency.paraphrase`: the conditional rendered k ways (the date in another style, the
  premises reordered, or reworded as "It is the case that ...", another camera such as `plain`).
  With outcomes (`extra.outcomes`, e.g. [" Yes", " No"]) each rendering gives a distribution over
  them (normalised); value = the largest pairwise Jensen-Shannon divergence, in bits (0 to 1).
  Without outcomes the samples are scored under each rendering; value = the mean over samples of
  the spread (max - min) of their log-probs, in bits per token.
- `consistency.coherence` (exactly two outcomes, read as [A, not A]): value = 1 - (P(A) + P(not A)),
  both unnormalised: the probability the model puts on neither answer. Near 0 means it reads the
  slot as a yes/no answer; a large deficit means the normalised answer probabilities the other
  probes use rest on little of the model's mass.
- `consistency.negation` (with `extra.negation`, the fields that negate the question, e.g.
  {title: "Will no AI system ...?"}): with p = P(A) normalised over the two outcomes, coherence
  needs p(A | question) = 1 - p(A | negated question); value = |p(A | Q) + p(A | not Q) - 1|.
- `consistency.dates` (with a deadline, `extra.by` or else `extra.resolves`): the first outcome is
  read as "the event happens by the deadline". The deadline is rewritten, wherever the rendering
  writes it, to +1, +2, +5 years (`years`); p(first outcome) must not fall. Value = the largest
  drop between an earlier and a later deadline. Set `by` to the conditional's own date to ask
  instead whether something has happened by the time of the document.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from condpred.checks import CHECKS
from condpred.checks._probes import (
    add_years,
    cross_score,
    finding,
    outcomes_of,
    render_variant,
    rewrite_date,
    samples_with_text,
    score_outcomes,
)
from condpred.checks.base import CheckInput, CheckResult
from condpred.condition import Conditional
from condpred.condition.filters import DATE_STYLES
from condpred.errors import InputError
from condpred.probability import bits, js_divergence, mean, normalise, pairwise

# Which style stands in for each in the date paraphrase: American and British order swap.
OTHER_STYLE = {
    "long": "dmy",
    "dmy": "long",
    "weekday-dmy": "long",
    "arxiv": "long",
    "forum": "long",
    "short": "dmy",
    "iso": "long",
}
# First words of a premise that stay sentence-initial only by position, so "It is the case that"
# lowercases them; other capitalised first words followed by a capitalised word look like names.
_OPENER_WORDS = (
    "a an the no it this that these those there every all some each most many several since by "
    "in on at after before last our their its"
)
OPENERS = frozenset(_OPENER_WORDS.split())


def reword(premise: str) -> str:
    """The premise as "It is the case that ...": same content, other wording."""
    first, _, rest = premise.partition(" ")
    keep = (
        first == "I"
        or any(c.isupper() for c in first[1:])  # AI, OpenAI
        or (first.lower() not in OPENERS and rest[:1].isupper())
    )
    head = first if keep else first[:1].lower() + first[1:]
    return "It is the case that " + " ".join(w for w in (head, rest) if w)


def paraphrases(
    conditional: Conditional, rendered: str, cameras_dir: Any, cameras: tuple[str, ...]
) -> dict[str, str]:
    """Renderings of the same observation, by label; the first is the original, none repeats."""
    variants = {"original": rendered}
    if conditional.date:
        day = conditional.date
        text, count = rewrite_date(rendered, day, lambda s: DATE_STYLES[OTHER_STYLE[s]](day))
        if count:
            variants["date in another style"] = text
    world = conditional.world
    if len(world) > 1:
        variants["premises reordered"] = render_variant(conditional, cameras_dir, world=world[::-1])
    if world:
        variants["premises reworded"] = render_variant(
            conditional, cameras_dir, world=[reword(p) for p in world]
        )
    for camera in cameras:
        if camera != conditional.camera:
            variants[f"camera {camera}"] = render_variant(conditional, cameras_dir, camera=camera)
    unique: dict[str, str] = {}
    for label, text in variants.items():
        if text not in unique.values():
            unique[label] = text
    return unique


def deadline_of(conditional: Conditional) -> tuple[dt.date, str] | None:
    """The cumulative question's deadline and the field it came from, if there is one."""
    for key in ("by", "resolves"):
        value = conditional.extra.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value.strip())
            except ValueError:
                value = None
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise InputError(
                "is not a date",
                field=f"extra.{key}",
                fix=f"Write {key} as an ISO date, like 2029-01-01",
            )
        return value, key
    return None


def date_drops(probabilities: list[float]) -> list[tuple[int, int, float]]:
    """(earlier, later, drop) for every pair of deadlines where the later one is less probable."""
    pairs = itertools.combinations(range(len(probabilities)), 2)
    return [
        (i, j, probabilities[i] - probabilities[j])
        for i, j in pairs
        if probabilities[j] < probabilities[i]
    ]


@dataclass(frozen=True)
@CHECKS.register("consistency")
class ConsistencyCheck:
    """Thresholds (warn above), with values measured under gemma-3-270m on the examples:

    - `warn_js_bits` 0.1: paraphrases of the forecast page and the news story moved the answer
      by at most 0.09 bits (forecast page vs the plain camera); 0.1 bits is e.g. 50/50 vs 80/20.
    - `warn_spread_bits` 0.5 bits/token: four samples of the news story spread 0.17 bits/token
      across its five renderings; 0.5 is 15 bits (a factor 30,000) over a 30-token sample.
    - `warn_mass_deficit` 0.5: " YES"/" NO" after "I think this question will resolve" hold 0.62
      of the mass (pass); " yes"/" no" after "the director answered" 0.03 (warn): with less than
      half the mass on the two answers, their normalised probabilities say little.
    - `warn_negation_gap` 0.2: the model gives YES 0.65 for the question and 0.63 for its
      negation (gap 0.28, warn): it does not read the negation.
    - `warn_date_drop` 0.05: the forecast page's P(YES) moves from 0.647 to 0.641 as the deadline
      moves from 2029 to 2034, small drops within noise.
    `years` are the deadline's offsets; `cameras` the cameras the paraphrase also renders through.
    """

    summary: ClassVar[str] = (
        "Whether the predictions survive paraphrase, negation and later deadlines, "
        "as any world's predictions must."
    )
    unit: ClassVar[str] = "bits (paraphrase) or probability gap (coherence, negation, dates)"
    warn_js_bits: float = 0.1
    warn_spread_bits: float = 0.5
    warn_mass_deficit: float = 0.5
    warn_negation_gap: float = 0.2
    warn_date_drop: float = 0.05
    years: tuple[int, ...] = (1, 2, 5)
    cameras: tuple[str, ...] = ("plain",)
    name: str = "consistency"

    def run(self, given: CheckInput) -> list[CheckResult]:
        outcomes = outcomes_of(given.conditional)
        if outcomes is None:
            return [self._paraphrase_samples(given)]
        base = score_outcomes(given.model, given.rendered, outcomes)
        results = [self._paraphrase_outcomes(given, outcomes, base)]
        if len(outcomes) == 2:
            results.append(self._coherence(outcomes, base))
            if "negation" in given.conditional.extra:
                results.append(self._negation(given, outcomes, base))
        if (deadline := deadline_of(given.conditional)) is not None:
            results += self._dates(given, outcomes, base, *deadline)
        return results

    # --- paraphrase invariance ----------------------------------------------------------------

    def _variants(self, given: CheckInput) -> dict[str, str]:
        return paraphrases(given.conditional, given.rendered, given.cameras_dir, self.cameras)

    def _paraphrase_outcomes(
        self, given: CheckInput, outcomes: list[str], base: list[float]
    ) -> CheckResult:
        variants = self._variants(given)
        logprobs = [base] + [
            score_outcomes(given.model, text, outcomes) for text in list(variants.values())[1:]
        ]
        dists = [normalise(lp) for lp in logprobs]
        labels = list(variants)
        pairs = pairwise(dists, js_divergence)
        worst = max(pairs, key=lambda p: p[2], default=(0, 0, 0.0))
        spread = [max(col) - min(col) for col in zip(*logprobs, strict=True)]
        evidence = {
            "outcomes": outcomes,
            "renderings": variants,
            "distributions": dict(zip(labels, dists, strict=True)),
            "logprobs": dict(zip(labels, logprobs, strict=True)),
            "js_bits": [[labels[i], labels[j], js] for i, j, js in pairs],
            "mean_js_bits": mean([js for _, _, js in pairs]),
            "logprob_spread_nats": dict(zip(outcomes, spread, strict=True)),
        }
        return finding(
            "consistency.paraphrase",
            worst[2],
            self.warn_js_bits,
            evidence,
            _paraphrase_message(labels, worst, f"JS divergence {worst[2]:.3f} bits"),
        )

    def _paraphrase_samples(self, given: CheckInput) -> CheckResult:
        variants = self._variants(given)
        if len(variants) == 1:
            return finding(
                "consistency.paraphrase",
                0.0,
                self.warn_spread_bits,
                {},
                _paraphrase_message(list(variants), None, ""),
            )
        samples = samples_with_text(given.samples, self.name)
        rows = cross_score(given.model, list(variants.values()), samples)
        per_sample = []
        for column in zip(*rows, strict=True):
            n = max(len(column[0].tokens), 1)
            per_sample.append(
                bits(max(s.logprob for s in column) - min(s.logprob for s in column)) / n
            )
        value = mean(per_sample)
        evidence = {
            "renderings": variants,
            "logprobs": {
                label: {s.index: score.logprob for s, score in zip(samples, row, strict=True)}
                for label, row in zip(variants, rows, strict=True)
            },
            "spread_bits_per_token": {s.index: v for s, v in zip(samples, per_sample, strict=True)},
        }
        message = _paraphrase_message(
            list(variants), None, f"samples' log-probs spread {value:.2f} bits/token on average"
        )
        return finding("consistency.paraphrase", value, self.warn_spread_bits, evidence, message)

    # --- coherence ----------------------------------------------------------------------------

    def _coherence(self, outcomes: list[str], base: list[float]) -> CheckResult:
        mass = math.exp(base[0]) + math.exp(base[1])
        evidence = {"outcomes": outcomes, "p_unnormalised": [math.exp(x) for x in base]}
        message = (
            f"P({outcomes[0]!r}) + P({outcomes[1]!r}) = {mass:.3f}: "
            f"{1 - mass:.3f} of the mass is on neither answer"
        )
        return finding("consistency.coherence", 1 - mass, self.warn_mass_deficit, evidence, message)

    def _negation(self, given: CheckInput, outcomes: list[str], base: list[float]) -> CheckResult:
        changes = given.conditional.extra["negation"]
        if not isinstance(changes, dict) or not changes:
            raise InputError(
                "must map fields to their negated values",
                field="extra.negation",
                fix="Write e.g. negation: {title: 'Will no AI system ...?'}",
            )
        negated = render_variant(given.conditional, given.cameras_dir, **changes)
        p_q = normalise(base)[0]
        p_not_q = normalise(score_outcomes(given.model, negated, outcomes))[0]
        gap = abs(p_q + p_not_q - 1)
        evidence = {"outcomes": outcomes, "p_a": p_q, "p_a_negated": p_not_q, "negated": negated}
        message = (
            f"P({outcomes[0]!r}) is {p_q:.3f} for the question and {p_not_q:.3f} for its "
            f"negation; coherence needs them to add up to 1 (gap {gap:.3f})"
        )
        return finding("consistency.negation", gap, self.warn_negation_gap, evidence, message)

    # --- consistency over dates ---------------------------------------------------------------

    def _dates(
        self,
        given: CheckInput,
        outcomes: list[str],
        base: list[float],
        deadline: dt.date,
        key: str,
    ) -> list[CheckResult]:
        days = [deadline, *(add_years(deadline, k) for k in sorted(set(self.years)) if k > 0)]
        texts = [rewrite_date(given.rendered, deadline, _written(day)) for day in days]
        if texts[0][1] == 0:
            if key == "resolves":
                return []  # a resolution date the camera does not write: nothing to vary
            raise InputError(
                f"the deadline {deadline.isoformat()} is not written in the rendered conditional",
                field="extra.by",
                fix="Write the deadline in the title or prefix as the camera writes dates "
                "(e.g. 'by January 1, 2029'), or leave 'by' out",
            )
        later = [normalise(score_outcomes(given.model, t, outcomes))[0] for t, _ in texts[1:]]
        probabilities = [normalise(base)[0], *later]  # texts[0] is the rendering as given
        drops = date_drops(probabilities)
        worst = max((d for _, _, d in drops), default=0.0)
        evidence = {
            "outcome": outcomes[0],
            "deadlines": [d.isoformat() for d in days],
            "p": probabilities,
            "violations": [[days[i].isoformat(), days[j].isoformat(), d] for i, j, d in drops],
            "rewritten": texts[0][1],
        }
        trend = ", ".join(f"{d.year}: {p:.3f}" for d, p in zip(days, probabilities, strict=True))
        message = f"P({outcomes[0]!r}) by deadline ({trend}); " + (
            f"{len(drops)} later deadline(s) less probable, largest drop {worst:.3f}"
            if drops
            else "never falls"
        )
        return [finding("consistency.dates", worst, self.warn_date_drop, evidence, message)]


def _written(day: dt.date) -> Callable[[str], str]:
    return lambda style: DATE_STYLES[style](day)


def _paraphrase_message(labels: list[str], worst: tuple[int, int, float] | None, what: str) -> str:
    if len(labels) == 1:
        return "no paraphrase applies (no date, no premises, camera already among the others)"
    where = f" ({labels[worst[0]]} vs {labels[worst[1]]})" if worst else ""
    return f"{len(labels)} renderings: {what}{where}"
