"""`condpred evals`: agentic markers under different conditionals, and "0 vs 1" tests."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from condpred.cli.app import (
    SEED_RANGE,
    CamerasOpt,
    DbOpt,
    JsonOpt,
    TimeoutOpt,
    app,
    err,
    load_model_with_bar,
    out,
    stored,
    write_json,
)
from condpred.errors import InputError
from condpred.evals import agentic, zero_one
from condpred.stats import format_ci
from condpred.store import Store
from condpred.validate import check_model_spec, check_output_path

evals_app = typer.Typer(
    help="Predictor or agent? Agentic markers and 0-vs-1 tests.", no_args_is_help=True
)
app.add_typer(evals_app, name="evals")

ModelsOpt = Annotated[
    str,
    typer.Option(
        "--models", help="Comma-separated model specs, e.g. default,smollm2-135m-instruct"
    ),
]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="The first N items per category.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write the summary rows as JSON.")]
ResumeOpt = Annotated[
    str | None, typer.Option("--resume", help="Finish an interrupted run by its id.")
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap intervals.", **SEED_RANGE)]


def _check_new_run(models: str, output: Path | None, resume_id: str | None) -> None:
    """Before the store or any model opens: the --out path, and each model spec."""
    check_output_path(output)
    if not resume_id:
        for spec in _names(models):
            check_model_spec(spec, "--models")


def _names(option: str | None) -> list[str]:
    return [n.strip() for n in (option or "").split(",") if n.strip()]


@evals_app.command("agentic")
def agentic_cmd(
    data: Annotated[
        str | None,
        typer.Option(help="A JSONL file, a folder of them, or hf:OWNER/NAME[:GLOB]."),
    ] = None,
    models: ModelsOpt = "default,smollm2-135m-instruct",
    conditionals: Annotated[
        str,
        typer.Option(
            help=f"Comma-separated: built-in ({', '.join(agentic.conditional_names())}) "
            "or paths of YAML conditionals whose prefix holds {question}."
        ),
    ] = ",".join(agentic.DEFAULT_CONDITIONALS),
    categories: Annotated[
        str | None, typer.Option(help="Comma-separated categories (file names); default all.")
    ] = None,
    limit: LimitOpt = None,
    output: OutOpt = None,
    resume_id: ResumeOpt = None,
    cameras: CamerasOpt = None,
    seed: SeedOpt = 0,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """The probability each model puts on the behaviour-matching answers of model-written
    evaluations, under each conditional (category x model x conditional, bootstrap 95% CIs)."""
    _check_new_run(models, output, resume_id)
    with Store(db, create=not resume_id) as store, warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = _warn  # excluded files are reported before the scoring starts
        if resume_id:
            result = agentic.resume_agentic(resume_id, store, load_model_with_bar)
        elif data is None:
            raise InputError(
                "evals agentic needs --data", fix="Pass --data FILE|DIR or --resume ID"
            )
        else:
            result = agentic.run_agentic(
                data,
                _names(models),
                _names(conditionals),
                categories=_names(categories) or None,
                limit=limit,
                store=store,
                load=load_model_with_bar,
                cameras_dir=cameras,
                seed=seed,
            )
    columns = ("category", "model", "conditional", "n", "matching_prob", "ci", "matching_prob_norm")
    _show(store, result.run_id, result.summary, columns, result.contrasts, output, as_json)


@evals_app.command("zero-one")
def zero_one_cmd(
    models: ModelsOpt = "default,smollm2-135m-instruct",
    templates: Annotated[
        Path | None, typer.Option(help="A YAML file of templates [default: the built-in ones].")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="The first N pairs per template.")
    ] = None,
    output: OutOpt = None,
    resume_id: ResumeOpt = None,
    seed: SeedOpt = 0,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Self-serving vs predictively right: P(self-serving answer) in items minus controls that
    differ only in who benefits (per template x model, paired bootstrap 95% CIs)."""
    _check_new_run(models, output, resume_id)
    with Store(db, create=not resume_id) as store:
        if resume_id:
            result = zero_one.resume_zero_one(resume_id, store, load_model_with_bar)
        else:
            result = zero_one.run_zero_one(
                _names(models),
                templates=templates,
                limit=limit,
                store=store,
                load=load_model_with_bar,
                seed=seed,
            )
    columns = ("template", "model", "n", "serving_item", "serving_control", "shift", "ci")
    _show(store, result.run_id, result.summary, columns, result.contrasts, output, as_json)


def _warn(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    err.print(f"[yellow]warning:[/] {escape(str(message))}")


def _show(
    store: Store,
    run_id: str | None,
    summary: list[dict[str, Any]],
    columns: Sequence[str],
    contrasts: list[dict[str, Any]],
    output: Path | None,
    as_json: bool,
) -> None:
    """Print the summary (and the paired contrasts) and write the rows to --out."""
    write_json(output, summary)
    if as_json:
        out.print_json(json.dumps({"run_id": run_id, "rows": summary, "contrasts": contrasts}))
        return
    out.print(_table(summary, columns))
    for row in summary:
        if row.get("note"):
            label = " · ".join(str(row[c]) for c in columns[:3])
            err.print(f"[yellow]note:[/] {escape(label)}: {escape(row['note'])}")
    if contrasts:
        out.print(_table(contrasts, [k for k in contrasts[0] if k != "vary"], "paired contrasts"))
    stored(store, run_id, output)


def _table(rows: list[dict[str, Any]], columns: Sequence[str], title: str = "") -> Table:
    table = Table(*columns, title=title or None, box=None)
    for row in rows:
        table.add_row(
            *(
                escape(format_ci(row[c], row.get("n")) if c == "ci" else _cell(row[c]))
                for c in columns
            )
        )
    return table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list) and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.3f}" for v in value) + "]"
    return str(value)
