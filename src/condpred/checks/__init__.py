"""Checks on predictions, one module per risk, found by name: `get_check("ai_author")`.

A check spec may carry arguments for the check's constructor: `"ai_author:warn_above=0.4"`
(values read as YAML scalars). `run_checks` runs several specs on one prediction and stamps each
result with its spec (name, arguments, condpred version), which the store keeps beside it;
`gate` keeps the samples whose checks all pass.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil
from collections.abc import Sequence
from typing import Any

import yaml

from condpred.checks.base import VERDICT_ORDER, Check, CheckInput, CheckResult, Verdict
from condpred.errors import InputError
from condpred.model.base import Sample
from condpred.store import package_version


def available_checks() -> list[str]:
    """Names of the checks in this package: every module but `base` and `_private` ones."""
    names = (m.name for m in pkgutil.iter_modules(__path__))
    return sorted(n for n in names if n != "base" and not n.startswith("_"))


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """'name:key=value:key=value' -> (name, {key: value}), values read as YAML scalars."""
    name, *pairs = spec.strip().split(":")
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(
                f"'{pair}' in the check spec '{spec}' is not key=value",
                field="--checks",
                fix="Write arguments as name:key=value, e.g. ai_author:warn_above=0.4",
            )
        args[key.strip()] = yaml.safe_load(value)
    return name.strip(), args


def get_check(spec: str) -> Check:
    """The check a spec names, built with the spec's arguments (no arguments: its defaults)."""
    name, args = parse_spec(spec)
    if name not in available_checks():
        raise InputError(
            f"unknown check '{name}'",
            field="--checks",
            fix=f"Use one or more of: {', '.join(available_checks())} (comma-separated)",
        )
    default = importlib.import_module(f"condpred.checks.{name}").CHECK
    if not args:
        return default
    accepted = list(inspect.signature(type(default)).parameters)
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        raise InputError(
            f"the check '{name}' takes no argument {', '.join(map(repr, unknown))}",
            field="--checks",
            fix=f"Its arguments are: {', '.join(accepted) or 'none'}",
        )
    try:
        return type(default)(**args)
    except InputError as error:
        raise InputError(f"'{spec}': {error.problem}", field="--checks", fix=error.fix) from error
    except (TypeError, ValueError) as error:
        raise InputError(f"'{spec}': {error}", field="--checks") from error


def spec_record(spec: str) -> str:
    """What is stored beside a check's results: its name, arguments and condpred's version."""
    name, args = parse_spec(spec)
    return json.dumps({"check": name, "args": args, "condpred": package_version()}, sort_keys=True)


def run_checks(specs: Sequence[str], given: CheckInput) -> list[CheckResult]:
    checks = [(get_check(spec), spec_record(spec)) for spec in specs]  # all validated first
    return [
        dataclasses.replace(result, spec=record)
        for check, record in checks
        for result in check.run(given)
    ]


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
    "parse_spec",
    "run_checks",
]
