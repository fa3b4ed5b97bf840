"""`condpred plan PLANS.yaml`: the predicted outcomes of each candidate plan, for a human to
judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from condpred.cli.app import (
    SEED_RANGE,
    DbOpt,
    JsonOpt,
    ModelOpt,
    TimeoutOpt,
    app,
    load_model_with_bar,
    out,
    stored,
)
from condpred.errors import InputError
from condpred.experiments.runner import expect_kind
from condpred.planning import PlanRun, load_plan_set, plan, resume_plans
from condpred.store import Store
from condpred.validate import check_model_spec


@app.command("plan")
def plan_cmd(
    file: Annotated[
        Path | None, typer.Argument(help="A plan set (YAML): situation, plans, questions.")
    ] = None,
    model: ModelOpt = "default",
    samples: Annotated[
        int, typer.Option(min=0, help="Reports sampled per plan for the ai_author check (0: none).")
    ] = 2,
    max_tokens: Annotated[int, typer.Option(min=1, help="New tokens per sampled report.")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the sampled reports.", **SEED_RANGE)] = 0,
    resume_id: Annotated[
        str | None, typer.Option("--resume", help="Finish an interrupted plan run.")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Predict each outcome question under each plan (probabilities and conditioning shift), with
    the performative and ai_author checks; ranks plans only when the file gives utilities."""
    if resume_id and file:
        raise InputError(
            "--resume continues a run with its own plan set",
            field="--resume",
            fix="Pass either PLANS.yaml or --resume ID",
        )
    if not resume_id and file is not None:  # checked before the store or the model opens
        check_model_spec(model)
        load_plan_set(file)
    with Store(db, create=not resume_id) as store:
        if resume_id:
            run = expect_kind(store.get_run(resume_id), "plan")  # before the model loads
            result = resume_plans(run.id, store, load_model_with_bar(run.model_spec))
        elif file is None:
            raise InputError("plan needs a plan set file", fix="Pass PLANS.yaml or --resume ID")
        else:
            model_ = load_model_with_bar(model)
            result = plan(
                file, model_, samples=samples, max_tokens=max_tokens, seed=seed, store=store
            )
    if as_json:
        out.print_json(
            json.dumps({"run_id": result.run_id, "plans": [r.model_dump() for r in result.rows]})
        )
        return
    print_plans(result)
    stored(store, result.run_id)


def _cell(dist: dict[str, Any]) -> str:
    """Each outcome's probability, with its conditioning shift in nats."""
    return "\n".join(
        f"{escape(o)} {p:.2f} ({s:+.2f})"
        for o, p, s in zip(dist["outcomes"], dist["probs"], dist["shift"], strict=True)
    )


def _checks(row: dict[str, Any]) -> str:
    worst: dict[str, dict[str, Any]] = {}
    for result in row["checks"]:  # the highest value of each check stands for it
        if result["check"] not in worst or result["value"] > worst[result["check"]]["value"]:
            worst[result["check"]] = result
    return "\n".join(f"{r['check']} {r['value']:.2f} {r['verdict']}" for r in worst.values())


def print_plans(result: PlanRun) -> None:
    """Plans by questions; with utilities, expected utility (range over phrasings) and rank."""
    questions = [q.name for q in result.plan_set.questions]
    ranked = result.plan_set.utilities != {}
    table = Table("plan", *questions, "checks (max)", box=None, show_lines=True)
    if ranked:
        table.add_column("expected utility [phrasings]")
    for row in sorted(result.rows, key=_rank_key) if ranked else result.rows:
        cells = [escape(row["plan"]), *(_cell(row["distributions"][q]) for q in questions)]
        cells.append(_checks(row))
        if ranked:
            eu = row["expected_utility"]
            cells.append(f"{eu['value']:.2f} [{eu['low']:.2f}, {eu['high']:.2f}]")
        table.add_row(*cells)
    out.print(table)
    out.print(
        "probability (conditioning shift, nats: log P under the plan - log P under the camera "
        "alone). "
        + ("Ranked by expected utility." if ranked else "Not ranked: no utilities given.")
    )


def _rank_key(row: dict[str, Any]) -> float:
    return -row["expected_utility"]["value"]
