"""Is a sampled solution's final answer right? Each verification runs in a worker process with a
time limit; a verification that runs past it kills the worker (a fresh one takes the next) and
is counted as a timeout, never silently as wrong.

Two kinds of answer: **numeric** (GSM8K's `#### 42`: the final number, exactly, commas and dollar
signs allowed) and **symbolic** (MATH's `\\boxed{...}`: equivalence by the maintained verifier
math-verify, which parses LaTeX into sympy). Verdicts: correct, wrong, unparseable (no answer found
in the text), timeout, error (the verifier failed; the detail is kept). `validate` runs the verifier
on a data set's own reference solutions, which must verify as correct.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from condpred.errors import InputError

if TYPE_CHECKING:
    from condpred.experiments.passk.data import Problem

VERDICTS = ("correct", "wrong", "unparseable", "timeout", "error")
WORKER = Path(__file__).with_name("_verify_worker.py")


@dataclass(frozen=True)
class Verdict:
    verdict: str  # one of VERDICTS
    answer: str | None = None  # the answer found in the text
    rule: str | None = None  # how it was found ("####", "boxed", "last number", "math-verify")
    detail: str | None = None

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"


class Verifier:
    """A worker process that verifies answers, `time_limit` seconds each. Use as a context
    manager (or call `close`); the worker starts on the first request."""

    def __init__(self, time_limit: float = 10.0) -> None:
        self.time_limit = time_limit
        self._process: subprocess.Popen | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, kind: str, gold: str, text: str) -> Verdict:
        """The verdict on one sampled solution `text` against the gold answer."""
        if kind not in ("numeric", "symbolic"):
            raise ValueError(f"unknown answer kind {kind!r}")
        process = self._worker()
        request = json.dumps({"kind": kind, "gold": gold, "text": text}) + "\n"
        try:
            assert process.stdin is not None
            process.stdin.write(request)
            process.stdin.flush()
            reply = self._replies.get(timeout=self.time_limit)
        except queue.Empty:
            self.close()  # the worker is still busy: kill it, a fresh one takes the next request
            return Verdict("timeout", detail=f"over {self.time_limit:g} s")
        except (BrokenPipeError, OSError) as error:
            self.close()
            return Verdict("error", detail=f"the worker died: {error}")
        if reply is None:
            self.close()
            return Verdict("error", detail="the worker died")
        return Verdict(**json.loads(reply))

    def check_all(self, kind: str, gold: str, texts: Iterable[str]) -> list[Verdict]:
        return [self.check(kind, gold, text) for text in texts]

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        self._replies = queue.Queue()

    def _worker(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self.close()
            self._process = subprocess.Popen(
                [sys.executable, "-u", str(WORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
            replies = self._replies
            threading.Thread(
                target=_pump, args=(self._process.stdout, replies), daemon=True
            ).start()
            self._warm_up()
        return self._process

    def _warm_up(self) -> None:
        """The first request imports math-verify and sympy (seconds): done once, outside the
        time limit of any real verification. A worker that cannot import it is a clear error."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(json.dumps({"kind": "symbolic", "gold": "1", "text": "1"}) + "\n")
        self._process.stdin.flush()
        try:
            reply = self._replies.get(timeout=120)
        except queue.Empty:
            reply = None
        ok = reply is not None and json.loads(reply)["verdict"] == "correct"
        if not ok:
            self.close()
            raise InputError(
                "the answer verifier (math-verify) did not start",
                fix="pip install math-verify (a dependency of condpred)",
            )


def _pump(stream: IO[str], replies: queue.Queue[str | None]) -> None:
    """Move the worker's reply lines onto a queue (None when it exits), so a read can time out."""
    for line in stream:
        replies.put(line)
    replies.put(None)


def counts(verdicts: Iterable[str]) -> dict[str, int]:
    """How many of each verdict, every verdict named (zeros included)."""
    tally = Counter(verdicts)
    return {v: tally.get(v, 0) for v in VERDICTS}


def validate(problems: Sequence[Problem], verifier: Verifier) -> dict[str, Any]:
    """Verify each problem's own reference solution against its gold answer: the rate at which
    the verifier accepts known-correct solutions, with every failure listed. For numeric answers
    also without the `####` line, which tests the fallback rules a model's free text relies on;
    and, as a negative control, each problem against the next problem's reference solution
    (whose answer differs), which must not verify."""
    with_reference = [p for p in problems if p.reference is not None]
    others = {
        p.id: q.reference
        for p, q in zip(with_reference, with_reference[1:] + with_reference[:1], strict=True)
        if q.gold.strip() != p.gold.strip()
    }
    cases: list[tuple[str, Callable[[Problem], str | None], bool]] = [
        ("reference", lambda p: p.reference, True),
        ("another problem's reference", lambda p: others.get(p.id), False),
    ]
    if any(p.kind == "numeric" for p in problems):
        cases.append(("reference without ####", _without_hash, True))
    report: dict[str, Any] = {}
    for name, text_of, expect in cases:
        verdicts, failures = [], []
        for p in with_reference:
            text = text_of(p)
            if text is None:
                continue
            v = verifier.check(p.kind, p.gold, text)
            verdicts.append(v.verdict)
            if v.correct != expect:
                failures.append(
                    {"id": p.id, "gold": p.gold, "verdict": v.verdict, "answer": v.answer}
                )
        report[name] = {
            "problems": len(verdicts),
            "expected": "correct" if expect else "not correct",
            "as_expected": len(verdicts) - len(failures),
            "rate": (len(verdicts) - len(failures)) / len(verdicts) if verdicts else None,
            "verdicts": counts(verdicts),
            "failures": failures,
        }
    return report


def _without_hash(p: Problem) -> str | None:
    if p.kind != "numeric" or p.reference is None:
        return None
    return p.reference.rsplit("####", 1)[0]
