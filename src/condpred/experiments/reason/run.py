"""The reason experiment kind: a chain of steps, each a prediction of the next line a careful
human expert writes in their working document, checked before the next step builds on it.

Per problem (one item, one typed row, committed with every sample and check result): step k is
sampled as the first non-blank line after `Step k.` (`samples` candidates), the step checks
(`ai_author`, `surprisal`, `arithmetic` from the CHECKS registry by default) run on each
candidate with the document so far as its context. Without the gate the first candidate is kept
whatever the checks say; with it, the first candidate with no failing result is kept, a step
whose candidates all fail is resampled (at most `max_resamples` times, fresh seeds), and then
the chain stops with the reason stored. A chain ends at a line with `####` (the answer), at the
end of the document, or after `steps` steps; without an answer line, the answer is the greedy
continuation of `####` after the chain. The direct answer, the greedy `####` line right after
the problem under the same camera, is stored beside it: the paired baseline.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from condpred.checks import gate, run_checks
from condpred.checks.base import CheckInput, CheckResult
from condpred.condition import Conditional
from condpred.errors import InputError
from condpred.experiments.passk.data import Problem
from condpred.experiments.passk.verify import Verifier
from condpred.experiments.reason.document import document, load_reason_input, with_problem
from condpred.experiments.runner import (
    Item,
    Row,
    expect_kind,
    open_run,
    read_rows,
    recording,
    resumable,
)
from condpred.model.base import PredictiveModel, Sample, SamplingParams
from condpred.model.registry import load_model
from condpred.stats import ci_list
from condpred.store import Store

KIND = "reason"
DEFAULT_CHECKS = ("ai_author", "surprisal", "arithmetic")
ANSWER = "####"
ANSWER_TOKENS = 16
BLANK_LINES = 2  # blank lines after `Step k.` passed over before the step counts as empty


class Step(BaseModel):
    """One kept step: its text, what the checks said of it, and how often it was resampled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int  # 1, 2, ...
    text: str
    checks: list[dict[str, Any]]  # {"check", "value", "verdict", "message"} per result
    resampled: int  # rounds of resampling before this step was kept (0: the first draw)
    candidates: int  # candidates drawn for this step in all
    surprisal_bits: float  # mean bits/token of the kept step under the model
    part: str = "step"  # with --decompose: "sub-question" or "answer" (one per sub-question)

    @property
    def label(self) -> str:
        """How reports head it: `Step 2.`, or with --decompose `Sub-question 1.`, `Answer 3.`."""
        return f"{self.part.capitalize()} {self.index}."


class ReasonRow(Row):
    """One problem: the kept chain, why it stopped, the final and the direct answers."""

    table: ClassVar[str] = "reason"

    problem: int
    id: str
    gold: str | None
    steps: list[Step]
    stopped: str  # "answer", "end of document", "steps", or "gate: <what failed>"
    answer: str | None
    verdict: str | None  # the verifier's, when the problem has a gold answer
    direct_answer: str | None
    direct_verdict: str | None
    gate_stops: int  # steps the gate rejected at least once (resampled or stopped)
    tokens: int
    sample_s: float
    check_s: float


@dataclass
class ReasonResult:
    run_id: str | None
    rows: list[ReasonRow]
    summary: dict[str, Any]


def run_reason(
    file: str | Path,
    model: PredictiveModel,
    *,
    steps: int = 6,
    samples: int = 1,
    use_gate: bool = False,
    max_resamples: int = 2,
    checks: Sequence[str] = DEFAULT_CHECKS,
    data: str | Path | None = None,
    limit: int | None = None,
    temperature: float = 0.7,
    max_tokens: int = 64,
    seed: int = 0,
    cameras_dir: str | Path | None = None,
    time_limit: float = 10.0,
    decompose: bool = False,
    store: Store | None = None,
) -> ReasonResult:
    """Reason through each problem of `file` (or `data`) step by step (or, with `decompose`, by
    sub-questions each answered in its own document); stored as a run of kind 'reason' when
    `store` is given."""
    if steps < 1 or samples < 1 or max_resamples < 0 or max_tokens < 1 or temperature < 0:
        raise InputError(
            "need --steps >= 1, --samples >= 1, --max-resamples >= 0, --max-tokens >= 1 and "
            "--temperature >= 0",
            source="reason",
        )
    given = load_reason_input(file, data, limit, cameras_dir)
    from condpred.checks import get_check

    for spec in checks:  # every check spec validated before anything is sampled
        get_check(spec)
    params = {
        "file": str(file),
        "data": str(data) if data is not None else None,
        "data_sha256": given.data_sha256,
        "limit": limit,
        "conditional": given.conditional.to_yaml(),
        "problems": [dataclasses.asdict(p) for p in given.problems],
        "steps": steps,
        "samples": samples,
        "gate": use_gate,
        "max_resamples": max_resamples,
        "checks": list(checks),
        "sampling": {"temperature": temperature, "max_tokens": max_tokens},
        "cameras": str(Path(cameras_dir).resolve()) if cameras_dir else None,
        "time_limit_s": time_limit,
        "decompose": decompose,
    }
    run_id = open_run(store, KIND, model.spec, params, seed)
    return _execute(run_id, params, model, store, seed)


@resumable(KIND, rows=[ReasonRow])
def resume_reason(
    run_id: str, store: Store, load: Callable[[str], PredictiveModel] = load_model
) -> ReasonResult:
    """Finish an interrupted run: the problems, checks and seeds it was made with; only the
    problems it has no row for."""
    run = expect_kind(store.get_run(run_id), KIND)
    model = load(run.model_spec)
    store.reopen_run(run.id)
    return _execute(run.id, run.params, model, store, run.seed or 0)


def _seed(seed: int, *parts: int | str) -> int:
    """The sampling seed of one (problem, step, round): hashed, so streams are unrelated."""
    digest = hashlib.sha256(":".join(map(str, ("reason", seed, *parts))).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _execute(
    run_id: str | None,
    params: dict[str, Any],
    model: PredictiveModel,
    store: Store | None,
    seed: int,
) -> ReasonResult:
    conditional = Conditional.from_yaml(params["conditional"], source=f"run {run_id}")
    problems = [Problem(**p) for p in params["problems"]]
    cameras = params["cameras"]

    solve = _decomposed if params.get("decompose") else _chain  # runs made before: chains

    def item(index: int) -> Item:
        return solve(
            _Solve(index, problems[index], conditional, model, params, seed, cameras, verifier)
        )

    with recording(store, run_id) as recorder, Verifier(params["time_limit_s"]) as verifier:
        started = time.perf_counter()
        label = f"reason: {len(problems)} problems, up to {params['steps']} steps each"
        rows = recorder.add_items(ReasonRow, range(len(problems)), item, label)
        recorder.timings["reason_s"] = time.perf_counter() - started
    if store is not None:
        rows = read_rows(store, run_id, ReasonRow)
    return ReasonResult(run_id, rows, summarise(rows, params, seed))


@dataclass
class _Chain:
    """What one problem's chain has gathered so far (every draw and result, for the store)."""

    samples: list[Sample] = dataclasses.field(default_factory=list)
    results: list[CheckResult] = dataclasses.field(default_factory=list)
    tokens: int = 0
    sample_s: float = 0.0
    check_s: float = 0.0

    def draw(
        self,
        model: PredictiveModel,
        context: str,
        n: int,
        sampling: SamplingParams,
        line: bool = False,
    ) -> list[Sample]:
        started = time.perf_counter()
        drawn = model.sample(context, n, sampling)
        if line:
            drawn = [_first_line(model, context, s, sampling, i) for i, s in enumerate(drawn)]
        self.sample_s += time.perf_counter() - started
        self.tokens += sum(len(s.tokens) for s in drawn)
        # Stored indices run over the whole chain (every step, round and the answers).
        drawn = [dataclasses.replace(s, index=len(self.samples) + i) for i, s in enumerate(drawn)]
        self.samples.extend(drawn)
        return drawn

    def check(self, given: CheckInput, specs: Sequence[str]) -> list[CheckResult]:
        started = time.perf_counter()
        found = run_checks(specs, given) if specs else []
        self.check_s += time.perf_counter() - started
        self.results.extend(found)
        return found


@dataclass
class _Solve:
    """One problem being solved: what every stage reads, and what the stages gathered so far
    (every draw in `chain`; the kept steps; why it stopped; how often the gate resampled)."""

    index: int
    problem: Problem
    conditional: Conditional
    model: PredictiveModel
    params: dict[str, Any]
    seed: int
    cameras: str | None
    verifier: Verifier
    chain: _Chain = dataclasses.field(default_factory=_Chain)
    kept: list[Step] = dataclasses.field(default_factory=list)
    stopped: str = "steps"
    gate_stops: int = 0

    def draw_step(self, head: str, *key: int | str) -> _Kept:
        """One checked line after `head` (`_draw_step`); a resampled or stopped step counts
        as a gate stop."""
        drawn = _draw_step(self, head, (self.index, *key))
        self.gate_stops += bool(drawn.rounds or drawn.step is None)
        return drawn


@dataclass
class _Kept:
    """What one step's sampling came to: the kept draw (None: the gate stopped it) and why."""

    step: Sample | None
    results: list[CheckResult]
    rounds: int
    reason: str


def _draw_step(solve: _Solve, head: str, key: tuple[int | str, ...]) -> _Kept:
    """One line after `head`: drawn, checked and, with the gate, resampled (fresh seeds) until a
    candidate no check fails, or given up after `max_resamples` rounds."""
    chain, model, params = solve.chain, solve.model, solve.params
    s = params["sampling"]
    step, rounds, reason, results = None, 0, "", []
    for rounds in range(params["max_resamples"] + 1 if params["gate"] else 1):
        sampling = SamplingParams(
            max_new_tokens=s["max_tokens"],
            temperature=s["temperature"],
            stop=("\n",),
            seed=_seed(solve.seed, *key, rounds),
        )
        drawn = chain.draw(model, head, params["samples"], sampling, line=True)
        given = CheckInput(model, solve.conditional, head, drawn)
        results = chain.check(given, params["checks"])
        passing, dropped = gate(drawn, results, worst="warn")
        if not params["gate"] or passing:
            step = (passing or drawn)[0] if params["gate"] else drawn[0]
            break
        reason = "; ".join(sorted({r.message for r in dropped[drawn[0].index]}))
    return _Kept(step, results, rounds, reason)


def _kept(kept: _Kept, index: int, params: dict[str, Any], part: str = "step") -> Step:
    """The stored step: its text, its own check results (with the document's), its rounds."""
    assert kept.step is not None
    mine = [r for r in kept.results if r.sample_index in (None, kept.step.index)]
    return Step(
        index=index,
        text=kept.step.text,
        checks=[
            {"check": r.check, "value": r.value, "verdict": r.verdict, "message": r.message}
            for r in mine
        ],
        resampled=kept.rounds,
        candidates=params["samples"] * (kept.rounds + 1),
        surprisal_bits=_mean_bits(kept.step),
        part=part,
    )


def _chain(solve: _Solve) -> Item:
    """One problem's chain, its answers and verdicts, as an item to commit whole."""
    text = document(solve.conditional, solve.problem, solve.cameras)
    context = text
    for k in range(1, solve.params["steps"] + 1):
        head = f"{context}\nStep {k}."
        drawn = solve.draw_step(head, k)
        if drawn.step is None:
            solve.stopped = f"gate: step {k} failed {drawn.rounds + 1} rounds ({drawn.reason})"
            break
        solve.kept.append(_kept(drawn, k, solve.params))
        context = f"{head}{drawn.step.text}"
        if ANSWER in drawn.step.text:
            solve.stopped = "answer"
            break
        if drawn.step.finish_reason == "eos":
            solve.stopped = "end of document"
            break
    # The verifier reads the steps' own text: with the `Step k.` labels in it, its last-number
    # rule would take a label for the answer.
    return _finish(solve, text, context, "\n".join(st.text for st in solve.kept))


def _decomposed(solve: _Solve) -> Item:
    """One problem by decomposition: the expert writes sub-questions (`Sub-question k.`, up to
    `steps`, each a checked step), answers each in its own document (the problem, then the
    sub-question alone: `Answer.`, a checked step), and the answers are combined under the
    problem, where the final `####` line is drawn. Stored step by step like a chain."""
    problem, params = solve.problem, solve.params
    text = document(solve.conditional, problem, solve.cameras)
    plan, questions = f"{text}\nFirst the sub-questions, each answered on a page of its own.", []
    for k in range(1, params["steps"] + 1):
        head = f"{plan}\nSub-question {k}."
        drawn = solve.draw_step(head, "q", k)
        if drawn.step is None:
            solve.stopped = (
                f"gate: sub-question {k} failed {drawn.rounds + 1} rounds ({drawn.reason})"
            )
            break
        if not drawn.step.text.strip() or ANSWER in drawn.step.text:
            solve.stopped = "end of the sub-questions"
            break
        solve.kept.append(_kept(drawn, len(solve.kept) + 1, params, "sub-question"))
        questions.append(drawn.step.text.strip())
        plan = f"{head}{drawn.step.text}"
        if drawn.step.finish_reason == "eos":
            solve.stopped = "end of document"
            break
    combined, answers = text, []
    for k, question in enumerate(questions, 1):
        own = dataclasses.replace(problem, question=f"{problem.question}\n\nQuestion. {question}")
        drawn = solve.draw_step(
            f"{document(solve.conditional, own, solve.cameras)}\nAnswer.", "a", k
        )
        answer = "" if drawn.step is None else drawn.step.text.strip()
        if drawn.step is not None:
            solve.kept.append(_kept(drawn, len(solve.kept) + 1, params, "answer"))
        answers.append(answer)
        combined += f"\nSub-question {k}. {question}\nAnswer {k}. {answer}"
    # The verifier reads the answers alone: a sub-question's numbers are not the answer.
    return _finish(solve, text, combined, "\n".join(answers))


def _finish(solve: _Solve, text: str, context: str, solution: str) -> Item:
    """The chain's answer (its own `####` line, or the greedy one after `context`), the direct
    answer, both verified, as the problem's row with every draw and check result."""
    chain, problem = solve.chain, solve.problem
    if ANSWER not in solution:
        solution += f"\n{ANSWER}{_greedy_answer(solve, context)}"
    direct = f"{ANSWER}{_greedy_answer(solve, text)}"
    answer, verdict = _answer(solve.verifier, problem, solution)
    direct_answer, direct_verdict = _answer(solve.verifier, problem, direct)
    row = ReasonRow(
        index=solve.index,
        problem=solve.index,
        id=problem.id,
        gold=problem.gold or None,
        steps=solve.kept,
        stopped=solve.stopped,
        answer=answer,
        verdict=verdict,
        direct_answer=direct_answer,
        direct_verdict=direct_verdict,
        gate_stops=solve.gate_stops,
        tokens=chain.tokens,
        sample_s=chain.sample_s,
        check_s=chain.check_s,
    )
    framing = with_problem(solve.conditional, problem)  # the document as the model saw it
    return Item(
        row,
        conditional=(framing.to_yaml(), text, solve.params["file"]),
        samples=chain.samples,
        check_results=chain.results,
    )


def _first_line(
    model: PredictiveModel, head: str, sample: Sample, sampling: SamplingParams, i: int
) -> Sample:
    """A step is the first non-blank line after `Step k.`: a model that ends the line at once
    (`Step 1.` as a heading, its calculation on the line below) goes on after the newline it
    wrote, with the step's tokens that are left; one sample of what it wrote, newline included
    (stopping at the first newline made 12 of 45 of gemma's steps empty)."""
    for blank in range(BLANK_LINES):
        left = sampling.max_new_tokens - len(sample.tokens)
        if sample.text.strip() or sample.finish_reason != "stop" or left < 1:
            break
        written = f"{sample.text}\n"
        seed = _seed(sampling.seed, i, blank)
        more = model.sample(
            head + written, 1, dataclasses.replace(sampling, max_new_tokens=left, seed=seed)
        )[0]
        sample = dataclasses.replace(
            more,
            text=written + more.text,
            token_logprobs=[*sample.token_logprobs, *more.token_logprobs],
            tokens=[*sample.tokens, *more.tokens],
            index=sample.index,
        )
    return sample


def _greedy_answer(solve: _Solve, context: str) -> str:
    """The greedy continuation of an answer line `####` after `context`: its first non-blank
    line (a model may put a line break straight after `####`, so there is no stop string)."""
    sampling = SamplingParams(
        max_new_tokens=ANSWER_TOKENS, temperature=0.0, seed=_seed(solve.seed, solve.index)
    )
    text = solve.chain.draw(solve.model, f"{context}\n{ANSWER}", 1, sampling)[0].text
    return " " + next((line.strip() for line in text.splitlines() if line.strip()), "")


def _answer(verifier: Verifier, problem: Problem, text: str) -> tuple[str | None, str | None]:
    """The final answer in `text` and, with a gold answer, the verifier's verdict on it. A
    symbolic (MATH) answer is the `####` line put in the `\\boxed{}` the verifier reads: given
    the whole text, math-verify reads the last expression it can parse (`3` of an undelimited
    `\\left( 3, \\frac{\\pi}{2} \\right)`)."""
    if problem.gold:
        if problem.kind == "symbolic" and ANSWER in text:
            line = text.rsplit(ANSWER, 1)[1].strip().split("\n", 1)[0]
            text = f"\\boxed{{{line.strip().rstrip('.').strip('$').strip()}}}"
        verdict = verifier.check(problem.kind, problem.gold, text)
        return verdict.answer, verdict.verdict
    tail = text.rsplit(ANSWER, 1)[-1].strip()
    return tail or None, None


def _mean_bits(sample: Sample) -> float:
    if not sample.token_logprobs:
        return 0.0
    return float(-np.mean(sample.token_logprobs) / np.log(2))


# --- analysis -----------------------------------------------------------------------------------


def summarise(rows: Sequence[ReasonRow], params: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """The `--out` contract: each problem's steps (index, text, checks, resampled) and answer,
    a list under `items` when there are several, and accuracy of the chain vs the direct answer
    under the same camera (paired bootstrap over problems) where gold answers are known."""
    items = [_item_json(r) for r in rows]
    summary: dict[str, Any] = {"items": items} if len(items) != 1 else dict(items[0])
    graded = [r for r in rows if r.verdict is not None]
    if graded:
        summary["accuracy"] = accuracy(graded, seed)
    tokens, seconds = sum(r.tokens for r in rows), sum(r.sample_s for r in rows)
    summary["gate"] = {
        "on": params["gate"],
        "steps_rejected": sum(r.gate_stops for r in rows),
        "chains_stopped": sum(r.stopped.startswith("gate") for r in rows),
        "steps_kept": sum(len(r.steps) for r in rows),
    }
    summary["throughput"] = {
        "tokens": tokens,
        "sample_s": seconds,
        "tokens_per_s": tokens / seconds if seconds else None,
        "check_s": sum(r.check_s for r in rows),
    }
    return summary


def _item_json(row: ReasonRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "steps": [
            {"index": s.index, "text": s.text, "checks": s.checks, "resampled": s.resampled}
            | ({} if s.part == "step" else {"part": s.part})
            for s in row.steps
        ],
        "answer": row.answer,
        "verdict": row.verdict,
        "gold": row.gold,
        "stopped": row.stopped,
        "direct_answer": row.direct_answer,
        "direct_verdict": row.direct_verdict,
    }


def accuracy(rows: Sequence[ReasonRow], seed: int = 0) -> dict[str, Any]:
    """Accuracy of the chain and of the direct answer, each with a 95% bootstrap interval over
    problems, and their paired difference (one resample of problems serves both)."""
    chain = np.array([r.verdict == "correct" for r in rows], dtype=float)
    direct = np.array([r.direct_verdict == "correct" for r in rows], dtype=float)
    return {
        "problems": len(rows),
        "reason": {
            "accuracy": float(chain.mean()),
            "ci": ci_list(np.mean, chain, seed=seed),
        },
        "direct": {
            "accuracy": float(direct.mean()),
            "ci": ci_list(np.mean, direct, seed=seed),
        },
        "difference": {
            "reason_minus_direct": float((chain - direct).mean()),
            "ci": ci_list(lambda a, b: float(np.mean(a - b)), chain, direct, seed=seed),
        },
    }
