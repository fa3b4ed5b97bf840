"""performative: would the prediction change its own outcome once it is made?

Why (seeds 000 and 004): some predictions are performative: publishing a forecast, or acting on
a plan, changes what happens, and a strong enough predictor can pick the prediction that fulfils
itself. The remedy the paper gives is to predict conditional on each possible response to the
prediction and compare. Each of `conditional.responses` (e.g. "This forecast was published
widely." / "This forecast was kept secret.") is added to the premises (`world`) in turn, and the
outcome is predicted under each. Result `performative` (about the conditional): value = the largest
total variation distance between the outcome distributions of two responses (mean in evidence):
a large distance means the response to the prediction decides the outcome.

Outcome distributions: with `extra.outcomes`, each response's log-probs of the outcomes,
normalised. Without them, the samples (drawn from the conditional as given) stand for the
outcomes: under response r, sample s gets the self-normalised importance weight
P(s | with r) / P(s | as given); the weights estimate response r's distribution on the sample
set, and their TV distance is a consistent estimate of the TV distance between the two full
distributions. This assumes the samples were drawn at temperature 1 with top_p 1; the evidence
gives each response's effective sample size (Kish): when small, few samples carry the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from condpred.checks import CHECKS
from condpred.checks._probes import (
    cross_score,
    finding,
    outcomes_of,
    render_variant,
    samples_with_text,
    score_outcomes,
)
from condpred.checks.base import CheckInput, CheckResult
from condpred.condition import Conditional
from condpred.errors import InputError
from condpred.probability import (
    effective_sample_size,
    mean,
    normalise,
    pairwise,
    self_normalised_weights,
    tv_distance,
)


def responses_of(conditional: Conditional) -> list[str]:
    """The possible responses to the prediction: at least two, all different."""
    responses = conditional.responses
    if len(set(responses)) < 2:
        raise InputError(
            f"the performative check needs at least two different responses, got {len(responses)}"
            + (" (repeated)" if len(responses) >= 2 else ""),
            field="responses",
            fix="List at least two possible responses to the prediction, e.g. responses: "
            "['This forecast was published widely.', 'This forecast was kept secret.']",
        )
    return list(responses)


@dataclass(frozen=True)
@CHECKS.register("performative")
class PerformativeCheck:
    """Warn above `warn_tv` (total variation, 0 to 1). Default 0.2: a response that moves a
    fifth of the probability between outcomes decides much of the outcome. Under gemma-3-270m the
    examples stay below it: 0.04 on the forecast page (its two policy responses, P(YES) 0.69 vs
    0.64), 0.07 on the news story (reports published vs kept secret), 0.11 on its samples."""

    summary: ClassVar[str] = (
        "Whether publishing the prediction would change the outcome it predicts."
    )
    unit: ClassVar[str] = "total variation between outcome distributions (0 to 1)"
    warn_tv: float = 0.2
    fail_tv: float | None = None
    name: str = "performative"

    def run(self, given: CheckInput) -> list[CheckResult]:
        conditional = given.conditional
        responses = responses_of(conditional)
        renderings = [
            render_variant(conditional, given.cameras_dir, world=[*conditional.world, r])
            for r in responses
        ]
        if len(set(renderings)) < len(renderings):
            raise InputError(
                f"the camera '{conditional.camera}' writes the same text for every response",
                field="camera",
                fix="Use a camera that writes the premises (world) into the text",
            )
        outcomes = outcomes_of(conditional)
        if outcomes is not None:
            dists, evidence = self._on_outcomes(given, renderings, outcomes)
        else:
            dists, evidence = self._on_samples(given, renderings)
        pairs = pairwise(dists, tv_distance)
        worst = max(pairs, key=lambda p: p[2])
        evidence |= {
            "responses": responses,
            "tv": [[responses[i], responses[j], tv] for i, j, tv in pairs],
            "mean_tv": mean([tv for _, _, tv in pairs]),
        }
        message = (
            f"responses move the outcome by up to {worst[2]:.3f} in total variation "
            f"({responses[worst[0]]!r} vs {responses[worst[1]]!r}), "
            f"{evidence['mean_tv']:.3f} on average, over {evidence['method']}"
        )
        return [
            finding(
                "performative", worst[2], self.warn_tv, evidence, message, fail_above=self.fail_tv
            )
        ]

    def _on_outcomes(
        self, given: CheckInput, renderings: list[str], outcomes: list[str]
    ) -> tuple[list[list[float]], dict[str, Any]]:
        dists = [normalise(score_outcomes(given.model, r, outcomes)) for r in renderings]
        baseline = normalise(score_outcomes(given.model, given.rendered, outcomes))
        evidence = {
            "method": f"{len(outcomes)} outcomes",
            "outcomes": outcomes,
            "distributions": dists,
            "baseline": baseline,
        }
        return dists, evidence

    def _on_samples(
        self, given: CheckInput, renderings: list[str]
    ) -> tuple[list[list[float]], dict[str, Any]]:
        samples = samples_with_text(given.samples, self.name)
        rows = cross_score(given.model, [given.rendered, *renderings], samples)
        logprobs = [[score.logprob for score in row] for row in rows]
        dists = [self_normalised_weights(row, logprobs[0]) for row in logprobs[1:]]
        evidence = {
            "method": f"{len(samples)} samples (importance-weighted)",
            "sample_indices": [s.index for s in samples],
            "logprobs_given": logprobs[0],
            "logprobs": logprobs[1:],
            "effective_sample_size": [effective_sample_size(d) for d in dists],
        }
        return dists, evidence
