"""`condpred forecast QUESTIONS.jsonl`: P(yes) per question from the model, scored against the
base rate and the crowd, stored as a run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from condpred.cli.app import (
    SEED_RANGE,
    DbOpt,
    JsonOpt,
    ModelOpt,
    TimeoutOpt,
    app,
    err,
    load_model_with_bar,
    out,
    stored,
    write_json,
)
from condpred.errors import InputError
from condpred.experiments.runner import expect_kind
from condpred.forecasting import (
    ForecastRun,
    forecast,
    load_questions,
    resume_forecast,
    summarise,
)
from condpred.model.registry import embedded_model
from condpred.stats import with_ci
from condpred.store import Store
from condpred.validate import check_model_spec, check_output_path


@app.command("forecast")
def forecast_cmd(
    questions: Annotated[
        Path | None,
        typer.Argument(
            help="JSONL: id, question, background, resolution_criteria, "
            "as-of date, resolved, outcome (0/1), crowd_prob"
        ),
    ] = None,
    model: ModelOpt = "default",
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="A seeded sample of N questions, stratified by source."),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the sample, the reasoning and the CIs.", **SEED_RANGE)
    ] = 0,
    reasoning: Annotated[
        bool, typer.Option("--reasoning", help="Sample a forecaster's comment before the answer.")
    ] = False,
    cutoff: Annotated[
        str | None,
        typer.Option(
            help="Training cutoff (YYYY-MM-DD); scores are also reported for questions "
            "resolved after it. Default: the embedded model's (gemma-3-270m: 2024-08-01)."
        ),
    ] = None,
    resume_id: Annotated[
        str | None, typer.Option("--resume", help="Finish an interrupted forecast run.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="Write the summary and per-question rows as JSON.")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Forecast each question as a forecasting-site page dated at its as-of date; report Brier,
    log score, skill against the base rate and the crowd, ECE, with bootstrap 95% CIs."""
    if resume_id and (questions or limit or reasoning or cutoff):
        raise InputError(
            "--resume continues a run with its own questions and options",
            field="--resume",
            fix="Pass only --resume ID (with --db, --out or --json), or start a new run",
        )
    check_output_path(output)  # an unwritable --out fails now, not after the whole run
    if not resume_id and questions is not None:
        check_model_spec(model)
        day = _cutoff(cutoff, model)
        load_questions(questions)  # a bad file fails before the store or the model opens
    with Store(db, create=not resume_id) as store:
        if resume_id:
            run = expect_kind(store.get_run(resume_id), "forecast")  # before the model loads
            seed = run.seed or 0
            result = resume_forecast(run.id, store, load_model_with_bar(run.model_spec))
        elif questions is None:
            raise InputError(
                "forecast needs a questions file", fix="Pass QUESTIONS.jsonl or --resume ID"
            )
        else:
            result = forecast(
                questions,
                load_model_with_bar(model),
                limit=limit,
                seed=seed,
                reasoning=reasoning,
                cutoff=day,
                store=store,
            )
        spec = store.get_run(result.run_id).model_spec
    stored_cutoff = result.params["cutoff"]
    summary = summarise(
        result.rows, dt.date.fromisoformat(stored_cutoff) if stored_cutoff else None, seed
    )
    record = forecast_record(result, spec, summary)
    write_json(output, record)
    if as_json:
        out.print_json(json.dumps(record))
        return
    print_summary(summary)
    out.print(f"{len(result.rows)} questions")
    stored(store, result.run_id, output)


def _cutoff(option: str | None, spec: str) -> dt.date | None:
    if option is not None:
        try:
            return dt.date.fromisoformat(option)
        except ValueError as error:
            raise InputError(
                f"not a date: {option!r}", field="--cutoff", fix="Write YYYY-MM-DD"
            ) from error
    embedded = embedded_model(spec)
    if embedded is None or embedded.cutoff is None:
        err.print(f"note: no training cutoff known for {spec}; pass --cutoff to split the scores")
        return None
    return embedded.cutoff


def forecast_record(result: ForecastRun, spec: str, summary: dict[str, Any]) -> dict[str, Any]:
    """What --out writes: the run, its summary metrics, and per question id, prob, outcome."""
    keys = ("id", "source", "prob", "outcome", "crowd_prob", "as_of", "resolved")
    return {
        "run_id": result.run_id,
        "model": spec,
        "questions_file": result.params["questions"],
        "reasoning": result.params["reasoning"],
        **summary,
        "questions": [{k: row[k] for k in keys} for row in result.rows],
    }


ROWS = (
    ("Brier (lower is better)", lambda m: with_ci(m["brier"])),
    ("log score (higher is better)", lambda m: with_ci(m["log_score"])),
    ("Brier skill vs base rate", lambda m: with_ci(m["brier_skill_base_rate"])),
    ("Brier skill vs crowd", lambda m: with_ci(m.get("brier_skill_crowd"))),
    ("ECE", lambda m: f"{m['ece']:.3f}"),
    ("crowd Brier", lambda m: with_ci(m.get("crowd", {}).get("brier"))),
    ("crowd log score", lambda m: with_ci(m.get("crowd", {}).get("log_score"))),
    ("base rate (its Brier)", lambda m: f"{m['base_rate']:.3f} ({m['base_rate_brier']:.3f})"),
)


def print_summary(summary: dict[str, Any]) -> None:
    """One column per group of questions (all, resolved after the cutoff, each source), one row
    per score with its bootstrap 95% interval; the crowd's scores below the model's."""
    if not summary.get("n"):
        out.print("no question has an outcome: nothing to score")
        return
    groups = {"all": summary, **summary["groups"]}
    groups = {name.replace("_", " "): m for name, m in groups.items() if m.get("n")}
    table = Table("", *groups, box=None)
    table.add_row("questions", *(str(m["n"]) for m in groups.values()))
    for label, show in ROWS:
        table.add_row(label, *(show(m) for m in groups.values()))
    out.print(table)
