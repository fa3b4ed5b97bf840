"""`condpred gap`: how much of KL(tuned || base) a conditional of the base model closes (thin:
parses, calls `condpred.experiments.gap`, prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from condpred.cli.app import DbOpt, JsonOpt, app, finish, load_model_with_bar, out
from condpred.errors import InputError
from condpred.experiments.gap import resume_gap, run_gap
from condpred.stats import format_ci
from condpred.store import Store
from condpred.validate import check_output_path


@app.command("gap")
def gap_cmd(
    base: Annotated[
        str | None, typer.Option("--base", help="The base model (local: hf or gguf).")
    ] = None,
    tuned: Annotated[
        str | None, typer.Option("--tuned", help="The tuned model, with the same tokenizer.")
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option(help="JSONL: prompt (or question), optional category and id, one a line."),
    ] = None,
    conditionals: Annotated[
        Path | None,
        typer.Option(help="YAML list of {name, template}, each template with {prompt} once."),
    ] = None,
    soft_prompt: Annotated[
        int,
        typer.Option("--soft-prompt", min=0, help="Virtual tokens of the soft prompt (0: none)."),
    ] = 8,
    samples: Annotated[int, typer.Option(min=1, help="Tuned responses per prompt.")] = 2,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 64,
    held_out: Annotated[
        float, typer.Option("--held-out", help="Share of prompts held out for the table.")
    ] = 0.5,
    soft_steps: Annotated[int, typer.Option("--soft-steps", min=1)] = 60,
    soft_lr: Annotated[
        float, typer.Option("--soft-lr", help="Adam step, relative to the embeddings' spread.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of samples, split, soft prompt, bootstrap.")] = 0,
    output: Annotated[Path | None, typer.Option("--out", help="Write the result as JSON.")] = None,
    resume_id: Annotated[
        str | None, typer.Option("--resume", help="Finish an interrupted run by its id.")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Is a tuned model its base model under some conditional? The exact KL(tuned || base | c)
    per token on the tuned model's own responses, for the bare prompt, your conditionals, the
    best of them (chosen on training prompts) and a trained soft prompt, on held-out prompts;
    with URIAL's shifted-token ratio and bootstrap CIs over prompts."""
    check_output_path(output)
    with Store(db) as store:
        if resume_id:
            result = resume_gap(resume_id, store, load_model_with_bar)
        else:
            missing = [n for n, v in (("--base", base), ("--tuned", tuned), ("--prompts", prompts))
                       if v is None]  # fmt: skip
            if missing:
                raise InputError(
                    f"gap needs {', '.join(missing)}",
                    fix="e.g. condpred gap --base B --tuned T --prompts prompts.jsonl, "
                    "or --resume ID",
                )
            result = run_gap(
                str(base),
                str(tuned),
                str(prompts),
                conditionals=str(conditionals) if conditionals else None,
                soft_prompt=soft_prompt,
                samples=samples,
                max_tokens=max_tokens,
                held_out=held_out,
                soft_steps=soft_steps,
                soft_lr=soft_lr,
                seed=seed,
                store=store,
                load=load_model_with_bar,
            )
    finish(store, result.run_id, result.summary, output, as_json, _print)


def _print(summary: dict[str, Any]) -> None:
    table = Table(
        "conditional", "KL/token (nats)", "95% CI", "closed", "95% CI", "shifted", "prompts",
        title=f"KL(tuned || base | c) on {summary['prompts']['evaluated']} held-out prompts",
        box=None,
    )  # fmt: skip
    for r in summary["rows"]:
        name = r["conditional"] + (f" ({r['chosen']})" if "chosen" in r else "")
        table.add_row(
            escape(name),
            f"{r['kl_per_token']:.4f}",
            format_ci(r["ci"], r["prompts"]),
            "-" if r["fraction_closed"] is None else f"{r['fraction_closed']:.3f}",
            format_ci(r["fraction_closed_ci"], r["prompts"]),
            f"{r['shifted_ratio']:.3f}",
            str(r["prompts"]),
        )
    out.print(table)
