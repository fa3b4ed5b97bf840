"""Checks on predictions, one module per risk, registered by name in `CHECKS`:
`get_check("ai_author")`. A check class registers itself with `@CHECKS.register("name")`; a
user's package adds one through the entry-point group `condpred.checks` (see `condpred.registry`).

A check spec may carry arguments for the check's constructor: `"ai_author:warn_above=0.4"`
(values read as YAML scalars). `run_checks` runs several specs on one prediction and stamps each
result with its spec (name, arguments, condpred version), which the store keeps beside it;
`gate` keeps the samples whose checks all pass.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
from collections.abc import Sequence
from typing import Any

import yaml

from condpred.checks.base import VERDICT_ORDER, Check, CheckInput, CheckResult, Verdict
from condpred.errors import InputError
from condpred.model.base import Sample
from condpred.registry import Registry
from condpred.store import package_version

BUILTIN_CHECKS = ("ai_author", "arithmetic", "consistency", "performative", "surprisal")
CHECKS: Registry[type[Check]] = Registry(
    "check",
    "condpred.checks",
    builtins=[f"condpred.checks.{name}" for name in BUILTIN_CHECKS],
)


def available_checks() -> list[str]:
    """Names of the registered checks: condpred's own and those packages add."""
    return CHECKS.names()


def describe_check(name: str) -> dict[str, Any]:
    """A registered check's name, summary, unit and constructor arguments with their defaults."""
    check_class = CHECKS.get(name)
    arguments = {
        parameter.name: parameter.default
        for parameter in inspect.signature(check_class).parameters.values()
        if parameter.name != "name"  # a dataclass field, not an option
    }
    measured = getattr(check_class, "measured_defaults", None)  # defaults read from a fit
    arguments.update(measured() if measured else {})
    return {
        "name": name,
        "summary": getattr(check_class, "summary", ""),
        "unit": getattr(check_class, "unit", ""),
        "arguments": arguments,
    }


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
    """The check a spec names, built with the spec's arguments (no arguments: its defaults);
    built once per name and arguments, since checks run on every prediction."""
    name, args = parse_spec(spec)
    check_class = CHECKS.get(name, field="--checks")
    accepted = list(inspect.signature(check_class).parameters)
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        raise InputError(
            f"the check '{name}' takes no argument {', '.join(map(repr, unknown))}",
            field="--checks",
            fix=f"Its arguments are: {', '.join(accepted) or 'none'}",
        )
    try:
        return _built(name, json.dumps(args, sort_keys=True))
    except InputError as error:
        raise InputError(f"'{spec}': {error.problem}", field="--checks", fix=error.fix) from error
    except (TypeError, ValueError) as error:
        raise InputError(f"'{spec}': {error}", field="--checks") from error


@functools.cache
def _built(name: str, args_json: str) -> Check:
    return CHECKS.get(name)(**json.loads(args_json))


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
    "CHECKS",
    "Check",
    "CheckInput",
    "CheckResult",
    "available_checks",
    "gate",
    "get_check",
    "parse_spec",
    "run_checks",
]
