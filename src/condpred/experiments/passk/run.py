"""The pass@k experiment kind: n samples per (model, prompt style, problem), each verified, one
typed row per item committed with its samples (so `condpred resume ID` finishes a run), and the
curves, their paired difference and the crossover computed from the rows.

All n samples of a problem are one `model.sample(context, n, ...)` call: `hf` runs the prompt
once and samples from its KV cache; `openai` keeps the requests in flight (and, with more room
than n, several problems at once: `requests_at_once(model) // n`). Sample i of a problem depends
only on (seed, problem, i), so a resumed or re-batched run draws the same samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from condpred.condition import Conditional
from condpred.errors import InputError
from condpred.evals.instrument import load_all
from condpred.experiments.passk import estimate
from condpred.experiments.passk.data import Problem, arms, load_problems, prompt, stops
from condpred.experiments.passk.verify import Verifier, counts
from condpred.experiments.runner import (
    Item,
    Row,
    expect_kind,
    item_seed,
    open_run,
    read_rows,
    recording,
    resumable,
)
from condpred.model.base import PredictiveModel, SamplingParams, requests_at_once
from condpred.model.registry import load_model
from condpred.store import Store

KIND = "passk"


class PassKRow(Row):
    """One (model, prompt style, problem): n samples, how many verified correct, and each
    sample's verdict and extracted answer (the samples themselves are stored beside the row)."""

    table: ClassVar[str] = "passk"

    arm: int  # position in the run's (model, prompt style) list
    model: str
    role: str  # "base" or "tuned": the first model named is the base
    prompt_style: str  # "base" (worked-solutions page) or "chat" (the model's chat template)
    problem: int  # position in the run's problem list
    id: str
    n: int
    correct: int
    verdicts: list[str]
    answers: list[str | None]
    tokens: int  # tokens generated for the n samples
    sample_s: float
    verify_s: float


@dataclass
class PassKResult:
    run_id: str | None
    rows: list[PassKRow]
    summary: dict[str, Any]


class PassKInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during a stored run: still a KeyboardInterrupt, carrying the result of
    the rows stored by then, so the caller can write a partial `--out` before exiting (the run is
    marked interrupted in the store; `condpred resume RUN_ID` finishes it)."""

    def __init__(self, result: PassKResult) -> None:
        super().__init__(f"run {result.run_id} interrupted after {len(result.rows)} rows")
        self.result = result


def run_passk(
    data: str,
    models: Sequence[str],
    *,
    n: int = 64,
    ks: Sequence[int] | None = None,
    limit: int | None = None,
    shots: int = 0,
    prompt_style: str = "native",
    temperature: float = 0.6,
    top_p: float = 0.95,
    max_tokens: int = 512,
    seed: int = 0,
    time_limit: float = 10.0,
    store: Store | None = None,
    load: Callable[[str], PredictiveModel] = load_model,
) -> PassKResult:
    """Sample n solutions per problem of `data` from each model (the first `shots` problems are the
    few-shot exemplars and are not evaluated), verify them, and return the rows with the curves,
    paired differences and the crossover. Stored as a run of kind 'passk' when `store` is given."""
    if not 1 <= len(models) <= 2:
        raise InputError(
            f"pass@k compares one or two models (got {len(models)})",
            source="--models",
            fix="--models BASE,TUNED",
        )
    if n < 1 or shots < 0 or max_tokens < 1 or temperature < 0 or not 0 < top_p <= 1:
        raise InputError(
            "need n >= 1, shots >= 0, max tokens >= 1, temperature >= 0 and 0 < top-p <= 1",
            source="passk",
        )
    ks = sorted(set(ks)) if ks else estimate.k_grid(n)
    if ks[0] < 1 or ks[-1] > n:
        raise InputError(
            f"every k must lie in 1..n = {n} (got {', '.join(map(str, ks))})",
            source="--k",
            fix="Raise --n, or ask for k <= n",
        )
    problems, sha256 = load_problems(data, None if limit is None else limit + shots)
    if len(problems) <= shots:
        raise InputError(
            f"{len(problems)} problems leave none to evaluate after {shots} exemplars",
            source="--shots",
        )
    plan = arms(list(models), prompt_style)
    loaded = load_all(models, load)
    params = {
        "data": str(data),
        "data_sha256": sha256,
        "limit": limit,
        "shots": shots,
        "exemplars": [p.id for p in problems[:shots]],
        "n_problems": len(problems) - shots,
        "models": list(models),
        "prompt_style": prompt_style,
        "arms": plan,
        "n": n,
        "k": ks,
        "sampling": {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens},
        "time_limit_s": time_limit,
        "prompts": _prompt_examples(dict(zip(models, loaded, strict=True)), plan, problems, shots),
    }
    run_id = open_run(store, KIND, ",".join(models), params, seed)
    return _execute(run_id, params, problems, loaded, store, seed)


@resumable(KIND, rows=[PassKRow])
def resume_passk(
    run_id: str, store: Store, load: Callable[[str], PredictiveModel] = load_model
) -> PassKResult:
    """Finish an interrupted run: the same problems, prompts, seeds; only the missing items."""
    run = expect_kind(store.get_run(run_id), KIND)
    p = run.params
    problems, sha256 = load_problems(
        p["data"], None if p["limit"] is None else p["limit"] + p["shots"]
    )
    if sha256 != p["data_sha256"] or len(problems) - p["shots"] != p["n_problems"]:
        raise InputError(
            "the data file changed since the run was made",
            source=p["data"],
            fix="Resume with the data as it was, or start a new run",
        )
    loaded = load_all(p["models"], load)
    store.reopen_run(run.id)
    return _execute(run.id, p, problems, loaded, store, run.seed or 0)


def _prompt_examples(
    by_spec: dict[str, PredictiveModel], plan: list[dict], problems: list[Problem], shots: int
) -> list[dict[str, str]]:
    """Each arm's prompt for the first evaluated problem, exactly as the model sees it: the
    framing is part of the result (and a model without a chat template fails here, before any
    sampling)."""
    first = problems[shots]
    return [
        {**arm, "prompt": prompt(by_spec[arm["model"]], arm["style"], first, problems[:shots])}
        for arm in plan
    ]


def _execute(
    run_id: str | None,
    params: dict[str, Any],
    problems: list[Problem],
    models: list[PredictiveModel],
    store: Store | None,
    seed: int,
) -> PassKResult:
    """Problem by problem, every arm on each (so a run stopped early still has paired problems);
    a server backend gets `requests_at_once(model) // n` problems' samples in flight at once."""
    shots, evaluated = problems[: params["shots"]], problems[params["shots"] :]
    by_spec = dict(zip(params["models"], models, strict=True))  # as named, whatever their .spec
    plan = params["arms"]
    s, n, size = params["sampling"], params["n"], len(evaluated)

    def item(index: int) -> Item:
        a, p = divmod(index, size)
        arm, problem = plan[a], evaluated[p]
        model, style = by_spec[arm["model"]], arm["style"]
        context = prompt(model, style, problem, shots)
        sampling = SamplingParams(
            max_new_tokens=s["max_tokens"],
            temperature=s["temperature"],
            top_p=s["top_p"],
            stop=stops(style),
            seed=item_seed(KIND, seed, p),
        )
        started = time.perf_counter()
        samples = model.sample(context, n, sampling)
        sampled = time.perf_counter()
        verdicts = verifier.check_all(problem.kind, problem.gold, [x.text for x in samples])
        row = PassKRow(
            index=index,
            arm=a,
            model=arm["model"],
            role=arm["role"],
            prompt_style=style,
            problem=p,
            id=problem.id,
            n=n,
            correct=sum(v.correct for v in verdicts),
            verdicts=[v.verdict for v in verdicts],
            answers=[v.answer for v in verdicts],
            tokens=sum(len(x.tokens) for x in samples),
            sample_s=sampled - started,
            verify_s=time.perf_counter() - sampled,
        )
        # The exact prompt is stored as the item's conditional (the samples hang off it).
        framing = Conditional(prefix=context, extra={"passk": style, "problem": problem.id})
        return Item(row, conditional=(framing.to_yaml(), context, None), samples=samples)

    at_once = max(1, min(requests_at_once(m) for m in models) // n)

    def batch(indices: list[int]) -> list[Item]:
        if at_once == 1:
            return [item(i) for i in indices]
        with ThreadPoolExecutor(max_workers=at_once) as pool:  # one model's problems at a time
            by_arm: dict[int, list[int]] = {}
            for i in indices:
                by_arm.setdefault(i // size, []).append(i)
            done = {
                i: it
                for group in by_arm.values()
                for i, it in zip(group, pool.map(item, group), strict=True)
            }
        return [done[i] for i in indices]

    order = [a * size + p for p in range(size) for a in range(len(plan))]
    label = f"passk: {', '.join(params['models'])}, {n} samples per problem"
    try:
        with recording(store, run_id) as recorder, Verifier(params["time_limit_s"]) as verifier:
            started = time.perf_counter()
            step = 1 if at_once == 1 else at_once * len(plan)  # a local model commits each problem
            rows = recorder.add_item_batches(PassKRow, order, batch, label, batch=step)
            recorder.timings["sampling_s"] = time.perf_counter() - started
    except KeyboardInterrupt as stop:
        if store is None:  # nothing was kept: nothing to summarise or resume
            raise
        rows = read_rows(store, run_id, PassKRow)
        partial = PassKResult(run_id, rows, summarise(rows, params, seed))
        raise PassKInterrupted(partial) from stop
    if store is not None:
        rows = read_rows(store, run_id, PassKRow)
    return PassKResult(run_id, rows, summarise(rows, params, seed))


# --- analysis -----------------------------------------------------------------------------------


def summarise(rows: Sequence[PassKRow], params: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """The `--out` contract: per-problem counts, the curves with bootstrap CIs at k = 1, 2, 4, ...
    n, the crossover (of the base model's page against the tuned model's chat, or the first pair
    of arms of the two models), every base-vs-tuned comparison with its paired differences, what
    the verifier said, and the sampling throughput."""
    n = params["n"]
    ks = params.get("k") or estimate.k_grid(n)
    plan = params["arms"]
    by_arm = {
        a: sorted((r for r in rows if r.arm == a), key=lambda r: r.problem)
        for a in range(len(plan))
    }
    problems = [
        {
            "id": r.id,
            "model": r.model,
            "prompt_style": r.prompt_style,
            "n": r.n,
            "correct": r.correct,
        }
        for r in rows
    ]
    curves, arms_out = [], []
    for a, arm in enumerate(plan):
        arm_rows = by_arm[a]
        tokens = sum(r.tokens for r in arm_rows)
        seconds = sum(r.sample_s for r in arm_rows)
        arms_out.append(
            {
                **{k: arm[k] for k in ("model", "role", "style")},
                "problems": len(arm_rows),
                "verdicts": counts(v for r in arm_rows for v in r.verdicts),
                "tokens": tokens,
                "sample_s": seconds,
                "tokens_per_s": tokens / seconds if seconds else None,
                "verify_s": sum(r.verify_s for r in arm_rows),
            }
        )
        if not arm_rows:
            continue
        c = estimate.curve(n, [r.correct for r in arm_rows], seed=seed)
        for k in ks:
            value, ci = c.at(k)
            curves.append(
                {
                    "model": arm["model"],
                    "prompt_style": arm["style"],
                    "k": k,
                    "pass_at_k": value,
                    "ci": ci,
                }
            )
    comparisons = []
    for b, base in enumerate(plan):
        for t, tuned in enumerate(plan):
            if base["role"] != "base" or tuned["role"] != "tuned":
                continue
            base_rows = {r.problem: r.correct for r in by_arm[b]}
            tuned_rows = {r.problem: r.correct for r in by_arm[t]}
            paired = sorted(set(base_rows) & set(tuned_rows))
            if not paired:
                continue
            cmp = estimate.compare(
                n, [base_rows[p] for p in paired], [tuned_rows[p] for p in paired], seed=seed
            )
            solved = [(base_rows[p] > 0, tuned_rows[p] > 0) for p in paired]
            comparisons.append(
                {
                    "coverage": {
                        "base_only": sum(b and not t for b, t in solved),
                        "tuned_only": sum(t and not b for b, t in solved),
                        "both": sum(b and t for b, t in solved),
                        "neither": sum(not (b or t) for b, t in solved),
                    },
                    "base": {"model": base["model"], "prompt_style": base["style"]},
                    "tuned": {"model": tuned["model"], "prompt_style": tuned["style"]},
                    "crossover": cmp.to_json(),
                    "diff": [cmp.diff_at(k) for k in ks],
                }
            )
    primary = next(
        (
            c
            for c in comparisons
            if (c["base"]["prompt_style"], c["tuned"]["prompt_style"]) == ("base", "chat")
        ),
        comparisons[0] if comparisons else None,
    )
    return {
        "problems": problems,
        "curves": curves,
        "crossover": primary["crossover"] if primary else None,
        "comparisons": comparisons,
        "arms": arms_out,
        "n": n,
        "k": ks,
    }
