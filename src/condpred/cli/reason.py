"""`condpred reason`: a chain of steps, each a prediction of a human expert's next line, checked
(thin: parses, calls `condpred.experiments.reason`, prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from condpred.checks import get_check
from condpred.cli.app import (
    SEED_RANGE,
    CamerasOpt,
    DbOpt,
    JsonOpt,
    ModelOpt,
    TimeoutOpt,
    app,
    check_names,
    finish,
    load_model_with_bar,
    out,
)
from condpred.experiments.reason import load_reason_input, resume_reason, run_reason
from condpred.experiments.reason.run import DEFAULT_CHECKS
from condpred.stats import format_ci
from condpred.store import Store


@app.command("reason")
def reason_cmd(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A conditional (YAML): a named human's working document, with "
            "extra.problem or extra.problems."
        ),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Most steps per chain.")] = 6,
    samples: Annotated[
        int, typer.Option("--samples", min=1, help="Candidates drawn for each step.")
    ] = 1,
    use_gate: Annotated[
        bool,
        typer.Option(
            "--gate",
            help="Keep only steps no check fails; resample a failing step (--max-resamples), "
            "then stop the chain with the reason stored.",
        ),
    ] = False,
    max_resamples: Annotated[int, typer.Option("--max-resamples", min=0)] = 2,
    decompose: Annotated[
        bool,
        typer.Option(
            "--decompose",
            help="The expert writes sub-questions (up to --steps), each answered in its own "
            "document, then combined under the problem for the final answer.",
        ),
    ] = False,
    checks: Annotated[
        str,
        typer.Option(
            "--checks", help="Checks on each step, or 'none' (name:key=value sets arguments)."
        ),
    ] = ",".join(DEFAULT_CHECKS),
    data: Annotated[
        Path | None,
        typer.Option(help="JSONL of problems (GSM8K, MATH-500) in place of the file's own."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="The first N problems.")] = None,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.7,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="Most tokens per step.")
    ] = 64,
    model: ModelOpt = "default",
    seed: Annotated[int, typer.Option(**SEED_RANGE)] = 0,
    cameras: CamerasOpt = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the result as JSON.")] = None,
    resume_id: Annotated[
        str | None, typer.Option("--resume", help="Finish an interrupted run by its id.")
    ] = None,
    db: DbOpt = None,
    timeout: TimeoutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reason step by step as a named human expert would write it: each step sampled, checked
    (ai_author, surprisal, arithmetic) and, with --gate, resampled or the chain stopped; the
    final answer extracted, verified where a gold answer is known, beside a direct answer."""
    from condpred.errors import InputError

    with Store(db) as store:
        if resume_id:
            result = resume_reason(resume_id, store, load_model_with_bar)
        elif file is None:
            raise InputError("reason needs a FILE", fix="condpred reason FILE.yaml, or --resume ID")
        else:
            load_reason_input(file, data, limit, cameras)  # bad input refused before the model
            for spec in check_names(checks):  # loads (seconds to minutes)
                get_check(spec)
            result = run_reason(
                file,
                load_model_with_bar(model),
                steps=steps,
                samples=samples,
                use_gate=use_gate,
                max_resamples=max_resamples,
                checks=check_names(checks),
                data=data,
                limit=limit,
                temperature=temperature,
                max_tokens=max_tokens,
                seed=seed,
                cameras_dir=cameras,
                decompose=decompose,
                store=store,
            )
    finish(store, result.run_id, result.summary, output, as_json, _print)


def _print(summary: dict[str, Any]) -> None:
    for item in summary.get("items", [summary]):
        out.print(f"[bold]{escape(item['id'])}[/]")
        for step in item["steps"]:
            flags = ", ".join(
                f"{c['check']} {c['verdict']}" for c in step["checks"] if c["verdict"] != "pass"
            )
            again = f" (resampled {step['resampled']}x)" if step["resampled"] else ""
            out.print(
                f"  {step.get('part', 'step').capitalize()} {step['index']}."
                f"{escape(step['text'])}{again}" + (f"  [dim]{escape(flags)}[/]" if flags else "")
            )
        verdict = f" ({item['verdict']}; gold {item['gold']})" if item["verdict"] else ""
        out.print(
            f"  answer: {escape(str(item['answer']))}{verdict}; stopped: "
            f"{escape(item['stopped'])}; direct answer: {escape(str(item['direct_answer']))}"
        )
    if acc := summary.get("accuracy"):
        r, d, diff, n = acc["reason"], acc["direct"], acc["difference"], acc["problems"]
        out.print(
            f"accuracy over {n} problems: reason {r['accuracy']:.3f} {format_ci(r['ci'], n)}, "
            f"direct {d['accuracy']:.3f} {format_ci(d['ci'], n)}, difference "
            f"{diff['reason_minus_direct']:+.3f} {format_ci(diff['ci'], n)}"
        )
    g = summary["gate"]
    out.print(
        f"gate {'on' if g['on'] else 'off'}: {g['steps_rejected']} steps rejected, "
        f"{g['chains_stopped']} chains stopped, {g['steps_kept']} steps kept"
    )
