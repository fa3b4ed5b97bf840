"""`condpred chat`: the two-model assistant, interactively, for one message (`--message TEXT
--json`), or measured on a prompt set (`--prompts FILE`, a stored run) (thin: parses, calls
`condpred.experiments.assistant`, prints)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from condpred.cli.app import (
    SEED_RANGE,
    DbOpt,
    JsonOpt,
    ModelOpt,
    TimeoutOpt,
    app,
    finish,
    load_model_with_bar,
    out,
    write_json,
)
from condpred.experiments.assistant import Assistant, resume_assistant, run_assistant
from condpred.stats import format_ci
from condpred.store import Store


@app.command("chat")
def chat_cmd(
    message: Annotated[
        str | None, typer.Option("--message", help="One message; without it, a prompt loop.")
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option(help="Measure on a prompt set (one question a line), stored as a run."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="The first N prompts.")] = None,
    model: ModelOpt = "default",
    rewriter: Annotated[
        str | None,
        typer.Option("--rewriter", help="Model B, which rewrites the reply [default: --model]."),
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 96,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.7,
    seed: Annotated[int, typer.Option(**SEED_RANGE)] = 0,
    output: Annotated[Path | None, typer.Option("--out", help="Write the result as JSON.")] = None,
    resume_id: Annotated[
        str | None, typer.Option("--resume", help="Finish an interrupted prompt-set run.")
    ] = None,
    db: DbOpt = None,
    timeout: TimeoutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An assistant that says it is an AI: model A predicts a named human expert's reply, model B
    rewrites it in an AI assistant's voice, keeping its content; both drafts are shown."""
    if prompts is not None or resume_id:
        _measure(prompts, resume_id, limit, model, rewriter, max_tokens, temperature, seed, db,
                 output, as_json)  # fmt: skip
        return
    model_a = load_model_with_bar(model)
    model_b = load_model_with_bar(rewriter) if rewriter and rewriter != model else model_a
    assistant = Assistant(
        model_a, model_b, max_tokens=max_tokens, temperature=temperature, seed=seed
    )
    if message is not None:
        _show(assistant.reply(message).to_json(), as_json, output)
        return
    out.print("Ask a question (an empty line ends the chat).")
    for turn in range(10_000):
        text = typer.prompt("you", default="", show_default=False)
        if not text.strip():
            return
        _show(assistant.reply(text, turn).to_json(), as_json, None)


def _show(answer: dict[str, Any], as_json: bool, output: Path | None) -> None:
    write_json(output, answer)
    if as_json:
        out.print_json(json.dumps(answer))
        return
    c = answer["checks"]
    out.print(f"[dim]human expert's draft:[/] {escape(answer['human_draft'])}")
    out.print(f"[bold]assistant:[/] {escape(answer['reply'])}")
    recall = c["content_recall"]
    out.print(
        f"[dim]impersonation phrases {len(c['impersonation_draft'])} -> "
        f"{len(c['impersonation_reply'])}; says it is an AI: {c['states_ai']}; content kept: "
        f"{'-' if recall is None else f'{recall:.0%}'}[/]"
    )


def _measure(
    prompts: Path | None,
    resume_id: str | None,
    limit: int | None,
    model: str,
    rewriter: str | None,
    max_tokens: int,
    temperature: float,
    seed: int,
    db: Path | None,
    output: Path | None,
    as_json: bool,
) -> None:
    with Store(db) as store:
        if resume_id:
            result = resume_assistant(resume_id, store, load_model_with_bar)
        else:
            assert prompts is not None
            model_a = load_model_with_bar(model)
            model_b = load_model_with_bar(rewriter) if rewriter and rewriter != model else None
            result = run_assistant(
                prompts, model_a, model_b, limit=limit, max_tokens=max_tokens,
                temperature=temperature, seed=seed, store=store,
            )  # fmt: skip
    finish(store, result.run_id, result.summary, output, as_json, _print_measures)


def _print_measures(s: dict[str, Any]) -> None:
    for key in ("impersonation_draft", "impersonation_reply", "states_ai", "content_recall"):
        if s.get(key):
            out.print(f"{key}: {s[key]['rate']:.3f} {format_ci(s[key]['ci'], s['prompts'])}")
    out.print(f"{s['prompts']} prompts")
