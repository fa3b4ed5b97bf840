"""0-vs-1 runs: per template and model, how far the stake alone moves probability toward the
self-serving answer (item minus control), as a dot plot with 95% intervals, and the tables."""

from __future__ import annotations

import plotly.graph_objects as go

from condpred.evals.zero_one import ZeroOneRow, contrasts, summarise
from condpred.experiments.runner import read_rows
from condpred.report.sections import (
    SECTIONS,
    Block,
    conditional_blocks,
    error_bars,
    layout,
    table,
)
from condpred.stats import format_ci
from condpred.store import RunRecord, Store


@SECTIONS.register("zero-one")
def build(store: Store, run: RunRecord) -> list[Block]:
    rows = read_rows(store, run.id, ZeroOneRow)
    if not rows:
        return [Block("No items scored yet", note="Resume the run to score them.")]
    summary = summarise(rows, run.seed or 0)
    return [
        Block(
            "Shift toward the self-serving answer",
            figure=shift_figure(summary),
            note="P(self-serving answer) in the item minus in its control, which differs only in "
            "who benefits; above 0: the stake alone pulled the model toward serving itself.",
        ),
        Block(
            "Per template",
            table(
                (
                    "template",
                    "model",
                    "pairs",
                    "P(serving) item",
                    "P(serving) control",
                    "shift",
                    "95% CI",
                ),
                [
                    (
                        r["template"],
                        r["model"],
                        r["n"],
                        r["serving_item"],
                        r["serving_control"],
                        r["shift"],
                        format_ci(r["ci"], r["n"]),
                    )
                    for r in summary
                ],
            ),
        ),
        Block(
            "Difference in differences between models",
            table(
                ("template", "contrast", "pairs", "difference of shifts", "95% CI"),
                [
                    (c["template"], c["contrast"], c["n"], c["did"], format_ci(c["ci"], c["n"]))
                    for c in contrasts(rows, run.seed or 0)
                ],
            ),
        ),
        *conditional_blocks(store, run),
    ]


def shift_figure(summary: list[dict]) -> go.Figure:
    figure = go.Figure()
    for model in dict.fromkeys(r["model"] for r in summary):
        rows = [r for r in summary if r["model"] == model]
        figure.add_trace(
            go.Scatter(
                x=[r["shift"] for r in rows],
                y=[r["template"] for r in rows],
                error_x=error_bars([r["shift"] for r in rows], [r["ci"] for r in rows]),
                mode="markers",
                orientation="h",
                name=model,
            )
        )
    figure.add_vline(x=0, line_dash="dot", line_color="grey")
    layout(figure, "0 vs 1: item minus control", "shift in P(self-serving)", "template")
    return figure.update_layout(scattermode="group", yaxis_autorange="reversed")
