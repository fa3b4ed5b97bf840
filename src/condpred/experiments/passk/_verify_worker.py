"""The verifier's worker process: one JSON request a line on stdin, one verdict a line on stdout.

Run as a script (`python _verify_worker.py`), so it imports math-verify and nothing of condpred
(no torch): it starts in about a second and a verification that hangs can be killed with it.
The parent (`verify.Verifier`) enforces the time limit; math-verify's own timeouts are off, as
they would turn a timeout silently into "wrong".

Request: {"kind": "numeric" | "symbolic", "gold": str, "text": str}.
Reply: {"verdict": "correct" | "wrong" | "unparseable" | "error", "answer": str | None,
"rule": str | None, "detail": str | None}.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
from decimal import Decimal, InvalidOperation
from fractions import Fraction

NUMBER = r"-?\$?\s*\d[\d,]*(?:\.\d+)?|-?\$?\s*\.\d+"
HASH = re.compile(r"####\s*(" + NUMBER + ")")
BOXED = re.compile(r"\\boxed\s*\{\s*(" + NUMBER + r")\s*\}")
ANSWER_IS = re.compile(r"answer is\s*:?\s*(" + NUMBER + ")", re.IGNORECASE)
ANY_NUMBER = re.compile(NUMBER)


def number(text: str) -> Fraction | None:
    """A number as written in an answer (commas, a dollar sign, spaces allowed), exactly."""
    cleaned = re.sub(r"[,$\s]", "", text).rstrip(".")
    try:
        return Fraction(Decimal(cleaned))
    except (InvalidOperation, ValueError):
        return None


def extract_number(text: str) -> tuple[str | None, str | None]:
    """The final answer of a GSM8K-style solution, and the rule that found it: the first
    `#### X` (the dataset's own format), else the last \\boxed{X}, else the last "answer is X",
    else the last number in the text."""
    for rule, pattern, pick in (
        ("####", HASH, 0),
        ("boxed", BOXED, -1),
        ("answer is", ANSWER_IS, -1),
        ("last number", ANY_NUMBER, -1),
    ):
        found = pattern.findall(text)
        if found:
            return found[pick].strip(), rule
    return None, None


def check_numeric(gold: str, text: str) -> dict:
    answer, rule = extract_number(text)
    value = number(answer) if answer is not None else None
    if value is None:
        return {"verdict": "unparseable", "answer": answer, "rule": rule}
    target = number(gold)
    if target is None:
        return {"verdict": "error", "answer": answer, "rule": rule, "detail": f"gold {gold!r}"}
    return {"verdict": "correct" if value == target else "wrong", "answer": answer, "rule": rule}


def check_symbolic(gold: str, text: str) -> dict:
    from math_verify import LatexExtractionConfig, parse, verify

    wrapped = gold if gold.startswith("$") and gold.endswith("$") else f"${gold}$"
    gold_parsed = parse(wrapped, [LatexExtractionConfig()], parsing_timeout=None)
    if not gold_parsed:
        return {"verdict": "error", "answer": None, "rule": None, "detail": f"gold {gold!r}"}
    answer = parse(text, parsing_timeout=None)
    if not answer:
        return {"verdict": "unparseable", "answer": None, "rule": None}
    same = verify(gold_parsed, answer, timeout_seconds=None)
    shown = str(answer[-1]) if len(answer) > 1 else str(answer[0])
    return {"verdict": "correct" if same else "wrong", "answer": shown, "rule": "math-verify"}


def main() -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and ends this worker itself,
    # so an interrupted run never sees a verification fail with a dead worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # math-verify warns on every call that its own timeouts are off: the parent enforces one.
    logging.disable(logging.WARNING)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            check = check_numeric if request["kind"] == "numeric" else check_symbolic
            reply = check(request["gold"], request["text"])
        except Exception as error:  # one bad verification is a counted error, not a dead worker
            reply = {"verdict": "error", "answer": None, "rule": None, "detail": repr(error)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
