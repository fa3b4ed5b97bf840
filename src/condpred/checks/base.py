"""What every check shares: its typed result, what it is given, and how verdicts gate samples.

A check estimates one risk of conditioning (an AI author, an unlikely conditional, inconsistent or
self-fulfilling predictions). It sees the conditional, the rendered text and the samples, and talks
to the model only through the `PredictiveModel` protocol. Each check lives in a module of its own
in this package, named after it: a class with `name` and `run`, registered with
`@CHECKS.register(name)`; its constructor's keyword arguments are the check's options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from condpred.condition import Conditional
from condpred.model.base import PredictiveModel, Sample

Verdict = Literal["pass", "warn", "fail"]
VERDICT_ORDER: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class CheckResult:
    """One check's finding, about one sample (`sample_index`) or the whole conditional (None)."""

    check: str
    value: float
    threshold: float | None
    verdict: Verdict
    evidence: dict[str, Any] = field(default_factory=dict)  # JSON-able: probes, log-probs
    sample_index: int | None = None
    message: str = ""  # one line a researcher reads in the terminal summary
    spec: str | None = None  # JSON: the check's name, arguments and condpred version


@dataclass(frozen=True)
class CheckInput:
    """Everything a check may look at."""

    model: PredictiveModel
    conditional: Conditional
    rendered: str
    samples: Sequence[Sample]
    cameras_dir: Path | None = None
    # Whether `model` itself drew the samples. False for another model's predictions or people's
    # text: checks that read style (ai_author) must weigh it differently there.
    own_samples: bool = True


class Check(Protocol):
    name: str
    summary: str  # one line for `condpred checks list`: the risk the check estimates
    unit: str  # what its values (and thresholds) measure

    def run(self, given: CheckInput) -> list[CheckResult]:
        """Results for the conditional and/or each sample."""
        ...


def verdict(value: float, warn_above: float, fail_above: float | None = None) -> Verdict:
    """The usual threshold rule: above `warn_above` warns, above `fail_above` fails."""
    if fail_above is not None and value > fail_above:
        return "fail"
    return "warn" if value > warn_above else "pass"
