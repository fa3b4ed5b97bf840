"""What the probing checks (surprisal, consistency, performative) share: the outcome set, scoring
it or the samples under a variant of the conditional, and rewriting a date wherever it is written.

A probe is a variant of the conditional (a paraphrase, another deadline, a response to the
prediction) rendered through its camera; a check compares what the model predicts under each.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from condpred.checks.base import CheckResult, verdict
from condpred.condition import Conditional, render
from condpred.condition.filters import DATE_STYLES
from condpred.elicit.outcomes import phrasing_logprobs, validate_exclusive, validate_outcomes
from condpred.errors import InputError
from condpred.model.base import PredictiveModel, Sample, Score

OUTCOMES_FIELD = "extra.outcomes"
WHOLE = "{}"  # the phrasing of an outcome written exactly as given
OUTCOMES_FIX = (
    "Write 'outcomes' under 'extra' as a list of at least two different continuations of the "
    "prefix, each starting with the space that separates it, e.g. outcomes: [' Yes', ' No']"
)
# Styles that write a whole date; "year" and "yymm" are left out: replacing them would also
# rewrite numbers that are not this date.
FULL_DATE_STYLES = ("weekday-dmy", "long", "dmy", "forum", "arxiv", "short", "iso")


def outcomes_of(conditional: Conditional) -> list[str] | None:
    """The named outcomes to score (`extra.outcomes`), validated as every outcome set is (at
    least two, different, none the start of another); None when not given."""
    raw = conditional.extra.get("outcomes")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
        raise InputError("outcomes must be a list of texts", field=OUTCOMES_FIELD, fix=OUTCOMES_FIX)
    with _in_extra_outcomes(OUTCOMES_FIX):
        names = validate_outcomes(raw)
    with _in_extra_outcomes():  # its own fix: "end each outcome so that none starts another"
        validate_exclusive(names, [WHOLE])
    return names


def score_outcomes(model: PredictiveModel, rendered: str, outcomes: Sequence[str]) -> list[float]:
    """log P(outcome | rendered) for each outcome (nats), each outcome text written as given."""
    with _in_extra_outcomes():
        return phrasing_logprobs(model, rendered, outcomes, [WHOLE])[0]


@contextmanager
def _in_extra_outcomes(fix: str | None = None) -> Iterator[None]:
    """Outcome-set errors, named after where a conditional gives its outcomes."""
    try:
        yield
    except InputError as error:
        raise InputError(error.problem, field=OUTCOMES_FIELD, fix=fix or error.fix) from error


def samples_with_text(samples: Sequence[Sample], check: str) -> list[Sample]:
    """The samples a check can cross-score; none at all is bad input for that check."""
    usable = [s for s in samples if s.text]
    if not usable:
        raise InputError(
            f"the {check} check needs outcomes to score or samples to cross-score, and got "
            + ("only empty samples" if samples else "neither"),
            field=OUTCOMES_FIELD,
            fix="Give extra.outcomes in the conditional (e.g. [' Yes', ' No']), or check a "
            "prediction that has samples (condpred predict FILE --checks ..., or condpred check "
            "FILE --samples RUN_ID)",
        )
    return usable


def cross_score(
    model: PredictiveModel, renderings: Sequence[str], samples: Sequence[Sample]
) -> list[list[Score]]:
    """Each sample scored as a continuation of each rendering: rows renderings, columns samples."""
    texts = [s.text for s in samples]
    return [model.score(rendering, texts) for rendering in renderings]


def render_variant(conditional: Conditional, cameras_dir: str | Path | None, **changes: Any) -> str:
    """The text of the conditional with some fields changed (validated like any conditional)."""
    return render(conditional.with_(**changes) if changes else conditional, cameras_dir)


def written_forms(day: dt.date) -> dict[str, str]:
    """Every way a camera writes this whole date, by style name."""
    return {style: DATE_STYLES[style](day) for style in FULL_DATE_STYLES}


def rewrite_date(text: str, day: dt.date, new: Callable[[str], str]) -> tuple[str, int]:
    """Replace every written form of `day` in text with `new(style)`; returns (text, count).

    Longer forms are matched first ("Monday 3 March 2031" before "3 March 2031"), and only as
    whole words, so "2031-03-031" or "13 March 2031" are left alone."""
    forms = written_forms(day)
    by_text = {written: style for style, written in forms.items()}
    alternatives = "|".join(re.escape(w) for w in sorted(by_text, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    return pattern.subn(lambda m: new(by_text[m.group(0)]), text)


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day `years` later (29 February becomes 28 February in other years)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def finding(
    check: str,
    value: float,
    warn_above: float | None,
    evidence: dict[str, Any],
    message: str,
    *,
    fail_above: float | None = None,
    sample_index: int | None = None,
) -> CheckResult:
    """A result judged by the usual threshold rule; no threshold means reported, never gated."""
    judged = "pass" if warn_above is None else verdict(value, warn_above, fail_above)
    return CheckResult(check, value, warn_above, judged, evidence, sample_index, message)
