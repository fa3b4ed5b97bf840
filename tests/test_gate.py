"""Gating samples on check verdicts: pure logic, checked on hand-made results."""

from __future__ import annotations

import pytest

from condpred.checks import available_checks, gate, get_check
from condpred.checks.base import CheckResult, verdict
from condpred.errors import InputError
from condpred.model.base import Sample


def sample(index: int) -> Sample:
    return Sample(
        text=f"s{index}", token_logprobs=[-1.0], tokens=["x"], finish_reason="length", index=index
    )


def result(verdict_: str, index: int | None) -> CheckResult:
    return CheckResult("c", 1.0, 0.5, verdict_, {}, index)


def test_gate_drops_samples_with_a_failing_or_warning_result():
    samples = [sample(i) for i in range(4)]
    results = [result("pass", 0), result("warn", 1), result("fail", 2), result("pass", 3)]
    kept, dropped = gate(samples, results)
    assert [s.index for s in kept] == [0, 3]
    assert sorted(dropped) == [1, 2]
    kept, dropped = gate(samples, results, worst="warn")
    assert [s.index for s in kept] == [0, 1, 3]


def test_a_conditional_level_failure_drops_every_sample():
    samples = [sample(i) for i in range(3)]
    kept, dropped = gate(samples, [result("fail", None), result("pass", 1)])
    assert kept == [] and sorted(dropped) == [0, 1, 2]


def test_verdict_thresholds():
    assert verdict(0.4, 0.5, 0.8) == "pass"
    assert verdict(0.6, 0.5, 0.8) == "warn"
    assert verdict(0.9, 0.5, 0.8) == "fail"
    assert verdict(0.9, 0.5) == "warn"


def test_unknown_check_lists_the_available_ones():
    with pytest.raises(InputError) as error:
        get_check("no_such_check")
    assert all(name in str(error.value) for name in available_checks())
    assert "base" not in available_checks()
