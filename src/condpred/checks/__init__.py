"""Checks on predictions, one module per risk, found by name: `get_check("ai_author")`.

`run_checks` runs several on one prediction; `gate` keeps the samples whose checks all pass.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence

from condpred.checks.base import VERDICT_ORDER, Check, CheckInput, CheckResult, Verdict
from condpred.errors import InputError
from condpred.model.base import Sample


def available_checks() -> list[str]:
    """Names of the checks in this package: every module but `base` and `_private` ones."""
    names = (m.name for m in pkgutil.iter_modules(__path__))
    return sorted(n for n in names if n != "base" and not n.startswith("_"))


def get_check(name: str) -> Check:
    if name not in available_checks():
        raise InputError(
            f"unknown check '{name}'",
            field="--checks",
            fix=f"Use one or more of: {', '.join(available_checks())} (comma-separated)",
        )
    return importlib.import_module(f"condpred.checks.{name}").CHECK


def run_checks(names: Sequence[str], given: CheckInput) -> list[CheckResult]:
    checks = [get_check(name) for name in names]  # every name is validated before any work
    return [result for check in checks for result in check.run(given)]


def gate(
    samples: Sequence[Sample], results: Sequence[CheckResult], worst: Verdict = "pass"
) -> tuple[list[Sample], dict[int, list[CheckResult]]]:
    """Keep samples whose results (their own and the conditional's) are no worse than `worst`.

    Returns the kept samples and, for each dropped sample index, the results that dropped it."""
    limit = VERDICT_ORDER[worst]
    failing = [r for r in results if VERDICT_ORDER[r.verdict] > limit]
    dropped: dict[int, list[CheckResult]] = {}
    for sample in samples:
        reasons = [r for r in failing if r.sample_index in (None, sample.index)]
        if reasons:
            dropped[sample.index] = reasons
    kept = [s for s in samples if s.index not in dropped]
    return kept, dropped


__all__ = [
    "Check",
    "CheckInput",
    "CheckResult",
    "available_checks",
    "gate",
    "get_check",
    "run_checks",
]
