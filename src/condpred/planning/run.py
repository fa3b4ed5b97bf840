"""Cyborg planning (seed 000): the human proposes plans, the model predicts their outcomes, the
human evaluates. For each plan, the situation is rendered in a world where the plan was carried
out, and each outcome question's distribution is predicted, with its conditioning shift.

Checks, when they apply: `performative` (the situation lists `responses`) tells whether
responding to the prediction would change the outcome; `ai_author` (with `samples` > 0) samples
the camera's report of each plan and asks whether the model predicts an AI wrote it. Nothing is
ranked unless the plan set gives utilities; then each plan's expected utility is shown with its
range over answer phrasings (the model's sensitivity to wording, not a confidence interval).
Each plan's row is stored as soon as it is done, so `resume_plans` computes only the others.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from condpred.checks import CheckInput, CheckResult, run_checks
from condpred.condition import Conditional, render
from condpred.elicit.outcomes import Distribution, outcomes
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
from condpred.planning.spec import OutcomeQuestion, PlanSet, load_plan_set, plan_set_from_dict
from condpred.store import Store

KIND = "plan"


class PlanRow(Row):
    """One plan's predictions: each outcome question's distribution, what the checks found,
    the expected utility (when the plan set gives utilities) and the sampled reports."""

    table: ClassVar[str] = "plans"

    plan: str
    carried_out: str
    distributions: dict[str, dict[str, Any]]  # question -> Distribution.to_dict()
    checks: list[dict[str, Any]]  # check_summary of each result (the full results beside)
    expected_utility: dict[str, float] | None  # value, low, high
    samples: list[str]


@dataclass(frozen=True)
class PlanRun:
    run_id: str | None
    plan_set: PlanSet
    rows: list[PlanRow]


def plan(
    path: str | Path,
    model: PredictiveModel,
    *,
    samples: int = 2,
    max_tokens: int = 60,
    seed: int = 0,
    store: Store | None = None,
) -> PlanRun:
    """Predict every outcome question under every plan of the plan set in `path`."""
    plan_set = load_plan_set(path)
    params = {
        "plans_file": str(path),
        "plan_set": plan_set.model_dump(mode="json"),
        "samples": samples,
        "max_tokens": max_tokens,
    }
    run_id = open_run(store, KIND, model.spec, params, seed)
    return _run(plan_set, model, params, seed, store, run_id)


@resumable(KIND, rows=[PlanRow], one_model=True)
def resume_plans(run_id: str, store: Store, model: PredictiveModel) -> PlanRun:
    """Finish an interrupted plan run from the plan set stored with it."""
    run = expect_kind(store.get_run(run_id), KIND)
    plan_set = plan_set_from_dict(run.params["plan_set"], f"run {run.id}")
    store.reopen_run(run.id)
    return _run(plan_set, model, run.params, run.seed or 0, store, run.id)


def stored_plans(store: Store, run_id: str) -> PlanRun:
    run = store.get_run(run_id)
    plan_set = plan_set_from_dict(run.params["plan_set"], f"run {run.id}")
    return PlanRun(run.id, plan_set, read_rows(store, run.id, PlanRow))


def _run(
    plan_set: PlanSet,
    model: PredictiveModel,
    params: dict[str, Any],
    seed: int,
    store: Store | None,
    run_id: str | None,
) -> PlanRun:
    with recording(store, run_id) as recorder:
        rows = recorder.add_items(
            PlanRow,
            range(len(plan_set.plans)),
            lambda i: predict_plan(plan_set, i, model, params, seed),
            "plans",
        )
    if store is not None:
        rows = read_rows(store, run_id, PlanRow)
    return PlanRun(run_id, plan_set, rows)


def predict_plan(
    plan_set: PlanSet,
    index: int,
    model: PredictiveModel,
    params: dict[str, Any],
    seed: int,
) -> Item:
    """One plan's row (each question's distribution, the checks' findings, expected utility),
    with the plan's conditional, sampled reports and check results, stored in one commit."""
    option = plan_set.plans[index]
    conditional = plan_set.plan_conditional(option)
    rendered = render(conditional)
    dists = {
        q.name: outcomes(conditional, q.outcomes, model, phrasings=q.phrasings)
        for q in plan_set.questions
    }
    reports = []
    if params["samples"] > 0:
        sampling = SamplingParams(max_new_tokens=params["max_tokens"], seed=seed)
        reports = model.sample(rendered, params["samples"], sampling)
    results = plan_checks(plan_set, conditional, rendered, model, reports)
    row = PlanRow(
        index=index,
        plan=option.name,
        carried_out=option.carried_out,
        distributions={name: d.to_dict() for name, d in dists.items()},
        checks=[check_summary(r) for r in results],
        expected_utility=expected_utility(plan_set.utilities, dists),
        samples=[s.text for s in reports],
    )
    side = (conditional.to_yaml(), rendered, option.name)
    return Item(row, conditional=side, samples=reports, check_results=results)


def plan_checks(
    plan_set: PlanSet,
    conditional: Conditional,
    rendered: str,
    model: PredictiveModel,
    reports: list[Sample],
) -> list[CheckResult]:
    """`performative` on each question (first phrasing) when the situation lists responses;
    `ai_author` on the sampled reports of the plan, when there are any."""
    results: list[CheckResult] = []
    if len(set(plan_set.situation.responses)) >= 2:
        for question in plan_set.questions:
            probe = performative_probe(conditional, question)
            found = run_checks(["performative"], CheckInput(model, probe, render(probe), []))
            results += [_about(r, question.name) for r in found]
    if reports:
        results += run_checks(["ai_author"], CheckInput(model, conditional, rendered, reports))
    return results


def performative_probe(conditional: Conditional, question: OutcomeQuestion) -> Conditional:
    """The plan's conditional ending with the question's first phrasing up to the outcome, with
    the phrased outcomes in `extra.outcomes`, as the performative check reads them."""
    lead, tail = question.phrasings[0].split("{}")
    stem = (conditional.prefix + lead).rstrip()
    gap = (conditional.prefix + lead)[len(stem) :]
    extra = conditional.extra | {"outcomes": [gap + o + tail for o in question.outcomes]}
    return conditional.with_(prefix=stem, extra=extra)


def _about(result: CheckResult, question: str) -> CheckResult:
    return replace(result, evidence=result.evidence | {"question": question})


def check_summary(result: CheckResult) -> dict[str, Any]:
    """What the plan table shows of a check result (the full result is stored beside it)."""
    return {
        "check": result.check,
        "value": result.value,
        "verdict": result.verdict,
        "sample": result.sample_index,
        "question": result.evidence.get("question"),
        "message": result.message,
    }


def expected_utility(
    utilities: dict[str, dict[str, float]], dists: dict[str, Distribution]
) -> dict[str, float] | None:
    """Sum over questions of E[utility]; low/high: each question's lowest/highest over phrasings."""
    if not utilities:
        return None
    total = low = high = 0.0
    for name, values in utilities.items():
        dist = dists[name]
        weights = [values[o] for o in dist.outcomes]
        per_phrasing = [
            sum(p * w for p, w in zip(row, weights, strict=True)) for row in dist.by_phrasing
        ]
        total += sum(p * w for p, w in zip(dist.probs, weights, strict=True))
        low += min(per_phrasing)
        high += max(per_phrasing)
    return {"value": total, "low": low, "high": high}
