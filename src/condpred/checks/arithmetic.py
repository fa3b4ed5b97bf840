"""arithmetic: does every calculation a sample writes out ("16 - 3 - 4 = 9") hold?

Why (seed 001, sequential reasoning by a predicted human): a chain of thought is only as good as
each step it builds on, and in worked solutions the commonest checkable error is a wrong
calculation. A careful human expert's page has right arithmetic; a step that writes `12 * 3 = 38`
is not what that expert would write, and the next step should not build on it. This is the
consistency of the running answer that can be checked exactly: each written equation's left side
is evaluated (exact rationals) and compared with the number after the `=`.

One result per sample: value = the share of its equations that are wrong (0 when it writes none);
evidence lists every equation found with what it evaluates to. A result that writes a rounded
number ("10 / 3 = 3.33") holds when the left side rounds to it (half a unit in its last decimal
place). Validated on GSM8K's own calculator annotations (README: "Sequential reasoning").
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from condpred.checks import CHECKS
from condpred.checks.base import CheckInput, CheckResult, verdict

_NUM = r"\$?\s*\d(?:[\d,]*\d)?(?:\.\d+)?"
_OPERAND = rf"\(*\s*{_NUM}\s*\)*"
_OPERATOR = r"[-+*/\u00d7\u00f7x]"  # \u00d7 and \u00f7: the multiplication and division signs
EQUATION = re.compile(
    rf"(?<![\w.])((?:{_OPERAND}\s*{_OPERATOR}\s*)+{_OPERAND})\s*=\s*(-?{_NUM})(?![\d])"
)
_SYMBOLS = str.maketrans({"\u00d7": "*", "x": "*", "\u00f7": "/", "$": None, ",": None})


def _value(node: ast.AST) -> Fraction:
    """An arithmetic expression tree evaluated exactly; anything else is refused."""
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Fraction(Decimal(str(node.value)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right  # ZeroDivisionError: the caller skips the equation
    raise ValueError("not arithmetic")


def evaluate(expression: str) -> Fraction | None:
    """The exact value of `12 x $3.50 + 4` as written: x and the multiplication and division
    signs, dollar signs and thousands commas are read."""
    try:
        return _value(ast.parse(expression.translate(_SYMBOLS).strip(), mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, InvalidOperation, RecursionError):
        return None


def holds(value: Fraction, written: str) -> bool:
    """Whether the number written after `=` is the value, up to the rounding it shows."""
    cleaned = written.translate(_SYMBOLS).replace(" ", "")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return True  # not a number we can read: not counted against the text
    decimals = max(0, -number.as_tuple().exponent)  # type: ignore[operator]
    return abs(value - Fraction(number)) <= Fraction(1, 2 * 10**decimals)


def _partial(text: str, start: int, end: int) -> bool:
    """Whether a match is only part of a calculation, so its value says nothing: an operator or
    a number just before it (`60g * 4/5 = ...`, the mixed number `3 1/2 - 2 = ...`), or after
    its result an operator, a percent sign or more digits (`= 240g/5`, `= 50%`, `= $12 000`)."""
    before, after = text[:start].rstrip(), text[end:].lstrip()
    return bool(
        (before and (before[-1].isdigit() or before[-1] in _BEFORE))
        or (after and (after[0].isdigit() or after[0] in _AFTER))
    )


_BEFORE = "+-*/\u00d7\u00f7x(=\u2013"
_AFTER = "+-*/\u00d7\u00f7%\u2013"


def equations(text: str) -> list[dict[str, Any]]:
    """Every whole `expression = number` in `text` with its exact value and whether it holds
    (parts of longer calculations left out: `_partial`)."""
    found = []
    for match in EQUATION.finditer(text):
        if _partial(text, match.start(), match.end()):
            continue
        expression, written = match.group(1), match.group(2)
        value = evaluate(expression)
        if value is None:
            continue
        found.append(
            {
                "equation": match.group(0).strip(),
                "value": float(value),
                "written": written.strip(),
                "holds": holds(value, written),
            }
        )
    return found


@CHECKS.register("arithmetic")
class ArithmeticCheck:
    """Fails a sample with a wrong calculation: value = share of its equations that are wrong,
    failing above `fail_above` (0: any wrong equation fails) and warning above `warn_above`."""

    name = "arithmetic"
    summary = "Whether every calculation a sample writes (expression = number) holds."
    unit = "share of the sample's calculations that are wrong (0 to 1)"

    def __init__(self, warn_above: float = 0.0, fail_above: float = 0.0) -> None:
        self.warn_above = warn_above
        self.fail_above = fail_above

    def run(self, given: CheckInput) -> list[CheckResult]:
        return [self._result(sample.index, sample.text) for sample in given.samples]

    def _result(self, index: int, text: str) -> CheckResult:
        found = equations(text)
        wrong = [e for e in found if not e["holds"]]
        value = len(wrong) / len(found) if found else 0.0
        message = (
            f"{len(wrong)} of {len(found)} calculations wrong"
            + (f": {wrong[0]['equation']} (is {wrong[0]['value']:g})" if wrong else "")
            if found
            else "no calculations written"
        )
        return CheckResult(
            check=self.name,
            value=value,
            threshold=self.fail_above,
            verdict=verdict(value, self.warn_above, self.fail_above),
            evidence={"equations": found, "wrong": len(wrong)},
            sample_index=index,
            message=message,
        )
