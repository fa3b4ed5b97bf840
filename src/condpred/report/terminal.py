"""Readable terminal layouts for predictions, scores and runs (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from condpred.checks.base import CheckResult
from condpred.elicit.predict import Prediction
from condpred.model.base import Sample, Score
from condpred.store import ConditionalRecord, RunRecord

TAIL = 160  # characters of the rendered conditional shown before each sample


def _sample_panel(sample: Sample, tail: str) -> Panel:
    body = Text()
    body.append(tail, style="dim")
    body.append(sample.text)
    mean = sample.logprob / max(len(sample.tokens), 1)
    title = (
        f"sample {sample.index} · {len(sample.tokens)} tokens · "
        f"mean log-prob {mean:.2f} · ended by {sample.finish_reason}"
    )
    return Panel(body, title=title, title_align="left")


def prediction(console: Console, result: Prediction) -> None:
    tail = "…" + result.rendered[-TAIL:] if len(result.rendered) > TAIL else result.rendered
    for sample in result.samples:
        console.print(_sample_panel(sample, tail))
    console.print(f"[bold]{len(result.samples)} samples[/] from {result.model_spec}")


def _surprisal_line(score: Score) -> Text:
    """Each token shaded by its surprisal in bits: the tokens the model did not expect stand out."""
    line = Text()
    for token, bits in zip(score.tokens, score.surprisal_bits, strict=True):
        style = "bold red" if bits > 10 else "yellow" if bits > 4 else "green"
        line.append(token, style=style)
        line.append(f"[{bits:.1f}]", style="dim")
    return line


def scores(console: Console, results: list[Score]) -> None:
    table = Table("continuation", "log P", "bits/token", "greedy", box=None)
    for s in results:
        per_token = -s.logprob / max(len(s.tokens), 1) / 0.6931471805599453
        table.add_row(
            escape(repr(s.continuation)),
            f"{s.logprob:.3f}",
            f"{per_token:.2f}",
            "yes" if s.greedy else "",
        )
    console.print(table)
    for s in results:
        console.print(Group(Text("per-token surprisal (bits):", style="bold"), _surprisal_line(s)))


def runs(console: Console, records: list[RunRecord]) -> None:
    """The runs table; ids, kinds and statuses are never cut or wrapped, whatever the width
    (other commands need the ids whole): the model column folds instead."""
    table = Table(box=None)
    for column, values in (("id", [r.id for r in records]), ("kind", [r.kind for r in records])):
        table.add_column(column, no_wrap=True, min_width=max(map(len, values), default=2))
    table.add_column("model", overflow="fold", min_width=10)  # gives way: a long path folds
    for column in ("status", "samples", "scores"):
        table.add_column(column, no_wrap=True, min_width=len(column))
    table.add_column("created (UTC)", no_wrap=True, overflow="ellipsis")
    colors = {"done": "green", "running": "yellow", "interrupted": "yellow", "failed": "red"}
    for r in records:
        status = f"[{colors.get(r.status, 'white')}]{r.status}[/]"
        table.add_row(
            r.id,
            r.kind,
            r.model_spec,
            status,
            str(r.n_samples),
            str(r.n_scores),
            r.created_at[:16].replace("T", " "),
        )
    console.print(table if records else "no runs yet")


def run(
    console: Console,
    record: RunRecord,
    conditionals: list[ConditionalRecord],
    samples: list[Sample],
    results: list[Score],
    items: Sequence[dict[str, Any]] = (),
    checked: Sequence[CheckResult] = (),
) -> None:
    facts = Table(box=None, show_header=False)
    for key in (
        "id",
        "kind",
        "model_spec",
        "status",
        "seed",
        "version",
        "created_at",
        "finished_at",
    ):
        facts.add_row(key, escape(str(getattr(record, key))))
    facts.add_row("params", escape(str(record.params)))
    if record.error:
        facts.add_row("error", f"[red]{escape(record.error)}[/]")
    console.print(facts)
    for c in conditionals:
        console.print(Panel(Text(c.rendered), title=f"conditional {c.index} as the model saw it"))
    for sample in samples:
        console.print(_sample_panel(sample, ""))
    if checked:
        check_summary(console, list(checked))
    if results:
        scores(console, results)
    if items:
        columns = list(dict.fromkeys(key for row in items for key in row))
        table = Table(*columns, title=f"items ({len(items)})", box=None)
        for row in items:
            table.add_row(*(escape(_short(row.get(c))) for c in columns))
        console.print(table)


def _short(value: object, limit: int = 60) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


VERDICT_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def _verdict(result: CheckResult) -> str:
    return f"[{VERDICT_STYLE[result.verdict]}]{result.check} {result.verdict} {result.value:.3g}[/]"


def check_summary(console: Console, results: list[CheckResult]) -> None:
    """One line per sample with each check's verdict, colour-coded; conditional-level first."""
    overall = [r for r in results if r.sample_index is None]
    if overall:
        console.print("[bold]conditional[/]  " + "  ".join(_verdict(r) for r in overall))
        for r in overall:
            if r.verdict != "pass" and r.message:
                console.print(f"  {r.check}: {escape(r.message)}")
    indices = sorted({r.sample_index for r in results if r.sample_index is not None})
    for index in indices:
        own = [r for r in results if r.sample_index == index]
        console.print(f"[bold]sample {index}[/]  " + "  ".join(_verdict(r) for r in own))


def dropped(console: Console, reasons: dict[int, list[CheckResult]]) -> None:
    if not reasons:
        console.print("[green]gate: every sample passed its checks[/]")
        return
    console.print(f"[yellow]gate: dropped {len(reasons)} sample(s)[/]")
    for index, results in sorted(reasons.items()):
        why = ", ".join(f"{r.check} {r.verdict} ({r.value:.3g})" for r in results)
        console.print(f"  sample {index}: {why}")
