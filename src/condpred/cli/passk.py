"""`condpred passk`: pass@k of a base and a tuned model, with bootstrap intervals and the
crossover (thin: parses, calls `condpred.experiments.passk`, prints)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from condpred.cli.app import (
    DbOpt,
    JsonOpt,
    app,
    err,
    finish,
    load_model_with_bar,
    out,
    write_json,
)
from condpred.errors import InputError
from condpred.experiments.passk import (
    PassKInterrupted,
    Verifier,
    resume_passk,
    run_passk,
    validate,
)
from condpred.experiments.passk.data import PROMPT_STYLES, load_problems
from condpred.experiments.passk.estimate import crossover_ci
from condpred.stats import format_ci
from condpred.store import Store


@app.command("passk")
def passk_cmd(
    models: Annotated[
        str, typer.Option("--models", help="BASE,TUNED (or one model): comma-separated specs.")
    ] = "default,smollm2-135m-instruct",
    data: Annotated[
        Path | None,
        typer.Option(
            help="JSONL of problems: question (or problem) and answer ('#### 42' or "
            "\\boxed{}), e.g. ../shared/data/gsm8k/test.jsonl."
        ),
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Samples per problem.")] = 64,
    k: Annotated[
        str | None, typer.Option("--k", help="Comma-separated k to report [default: 1,2,4,...,n].")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="The first N problems.")] = None,
    shots: Annotated[
        int,
        typer.Option(min=0, help="Few-shot exemplars: the file's first N problems, not evaluated."),
    ] = 0,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.6,
    top_p: Annotated[float, typer.Option("--top-p")] = 0.95,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 512,
    prompt_style: Annotated[
        str,
        typer.Option(
            "--prompt-style",
            help=f"{'|'.join(PROMPT_STYLES)}: native gives the base model a worked-solutions page "
            "and the tuned model its chat template; both gives every model both.",
        ),
    ] = "native",
    seed: Annotated[int, typer.Option(help="Seed of the samples and the bootstrap.")] = 0,
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=0.1, help="Seconds per verification.")
    ] = 10.0,
    check_verifier: Annotated[
        bool,
        typer.Option(
            "--check-verifier",
            help="Only verify the data's own reference solutions (they must verify) and exit.",
        ),
    ] = False,
    output: Annotated[Path | None, typer.Option("--out", help="Write the result as JSON.")] = None,
    resume_id: Annotated[
        str | None, typer.Option("--resume", help="Finish an interrupted run by its id.")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Does tuning teach new skills or re-weight what the base model samples? pass@k curves of a
    base and a tuned model (unbiased estimator, bootstrap CIs over problems), their paired
    difference at each k and the k where they cross."""
    if check_verifier:
        if data is None:
            raise InputError("--check-verifier needs --data")
        problems, _ = load_problems(data, limit)
        with Verifier(time_limit) as verifier:
            report = validate(problems, verifier)
        write_json(output, report)
        if as_json:
            out.print_json(json.dumps(report))
            return
        for case, r in report.items():
            out.print(
                f"{case}: {r['as_expected']}/{r['problems']} {r['expected']} "
                f"({r['rate']:.4f}); verdicts {r['verdicts']}"
            )
        return
    with Store(db) as store, _partial_out_on_interrupt(output):
        if resume_id:
            result = resume_passk(resume_id, store, load_model_with_bar)
        elif data is None:
            raise InputError("passk needs --data", fix="Pass --data FILE.jsonl or --resume ID")
        else:
            result = run_passk(
                str(data),
                [m.strip() for m in models.split(",") if m.strip()],
                n=n,
                ks=_ks(k),
                limit=limit,
                shots=shots,
                prompt_style=prompt_style,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_tokens,
                seed=seed,
                time_limit=time_limit,
                store=store,
                load=load_model_with_bar,
            )
    finish(store, result.run_id, result.summary, output, as_json, _print)


@contextmanager
def _partial_out_on_interrupt(output: Path | None) -> Iterator[None]:
    """Ctrl-C during the run: `--out` still gets the summary of the rows stored by then, marked
    `"status": "interrupted"` with the command that finishes the run; then the interrupt goes on
    (exit code 130, the run marked interrupted in the store)."""
    try:
        yield
    except PassKInterrupted as stop:
        run_id, summary = stop.result.run_id, stop.result.summary
        resume = f"condpred resume {run_id}"
        write_json(output, {"run_id": run_id, "status": "interrupted", "resume": resume, **summary})
        where = f"; wrote what was stored to {output} (partial)" if output else ""
        err.print(
            f"interrupted after {len(stop.result.rows)} (model, problem) rows{where}. "
            f"Finish the run with: {resume}",
            soft_wrap=True,
        )
        raise


def _ks(option: str | None) -> list[int] | None:
    if not option:
        return None
    try:
        return [int(x) for x in option.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--k takes whole numbers, e.g. 1,4,16 (got {option!r})") from None


def _print(summary: dict[str, Any]) -> None:
    curves = Table("model", "prompt", "k", "pass@k", "95% CI", title="pass@k", box=None)
    for c in summary["curves"]:
        curves.add_row(
            escape(c["model"]),
            c["prompt_style"],
            str(c["k"]),
            f"{c['pass_at_k']:.3f}",
            format_ci(c["ci"]),
        )
    out.print(curves)
    arms = Table(
        "model", "prompt", "problems", *summary["arms"][0]["verdicts"], "tokens/s", box=None
    )
    for a in summary["arms"]:
        rate = f"{a['tokens_per_s']:.1f}" if a["tokens_per_s"] else "-"
        arms.add_row(
            escape(a["model"]),
            a["style"],
            str(a["problems"]),
            *map(str, a["verdicts"].values()),
            rate,
        )
    out.print(arms)
    for c in summary["comparisons"]:
        title = (
            f"{c['tuned']['model']} ({c['tuned']['prompt_style']}) - "
            f"{c['base']['model']} ({c['base']['prompt_style']})"
        )
        diff = Table("k", "difference", "95% CI", title=escape(title), box=None)
        for d in c["diff"]:
            diff.add_row(str(d["k"]), f"{d['diff']:+.3f}", format_ci(d["ci"]))
        out.print(diff)
        x = c["crossover"]
        out.print(
            f"  {x['status']}; 95% CI {crossover_ci(x)}; "
            f"{x['share_of_resamples_crossing']:.0%} of resamples cross; "
            f"coverage {c['coverage']}"
        )
