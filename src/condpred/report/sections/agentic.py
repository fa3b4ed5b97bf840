"""Agentic-marker runs: the marker per category, model and conditional, as a dot plot with 95%
intervals, the tidy table, the paired contrasts, and the files left out."""

from __future__ import annotations

import plotly.graph_objects as go

from condpred.evals.agentic import AgenticRow, contrasts, summarise
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


@SECTIONS.register("agentic")
def build(store: Store, run: RunRecord) -> list[Block]:
    rows = read_rows(store, run.id, AgenticRow)
    if not rows:
        return [Block("No items scored yet", note="Resume the run to score them.")]
    summary = summarise(rows, run.seed or 0)
    blocks = [
        Block(
            "Probability on the behaviour-matching answers",
            figure=marker_figure(summary),
            note="Each dot is a mean over the same items with its 95% bootstrap interval; 0.5 is "
            "indifference between two answers. Conditionals vary who the model predicts.",
        ),
        Block(
            "Markers",
            table(
                (
                    "category",
                    "model",
                    "conditional",
                    "n",
                    "P(matching)",
                    "95% CI",
                    "per-token",
                    "letter-balanced",
                ),
                [
                    (
                        r["category"],
                        r["model"],
                        r["conditional"],
                        r["n"],
                        r["matching_prob"],
                        format_ci(r["ci"], r["n"]),
                        r["matching_prob_norm"],
                        r["balanced"],
                    )
                    for r in summary
                ],
            ),
            note=" ".join(
                f"Note: {r['category']} · {r['model']} · {r['conditional']}: {r['note']}."
                for r in summary
                if r.get("note")
            ),
        ),
        Block(
            "Paired contrasts (same items)",
            table(
                ("category", "within", "contrast", "n", "difference", "95% CI"),
                [
                    (
                        c["category"],
                        c["within"],
                        c["contrast"],
                        c["n"],
                        c["diff"],
                        format_ci(c["ci"], c["n"]),
                    )
                    for c in contrasts(rows, run.seed or 0)
                ],
            ),
        ),
    ]
    if excluded := run.params.get("excluded"):
        lines = "; ".join(f"{e['source']} ({e['reason']})" for e in excluded)
        blocks.append(Block("Files left out", note=lines))
    return blocks + conditional_blocks(store, run)


def marker_figure(summary: list[dict]) -> go.Figure:
    """One trace per (model, conditional): categories down, the marker across, with intervals."""
    figure = go.Figure()
    for key in dict.fromkeys((r["model"], r["conditional"]) for r in summary):
        rows = [r for r in summary if (r["model"], r["conditional"]) == key]
        figure.add_trace(
            go.Scatter(
                x=[r["matching_prob"] for r in rows],
                y=[r["category"] for r in rows],
                error_x=error_bars([r["matching_prob"] for r in rows], [r["ci"] for r in rows]),
                mode="markers",
                orientation="h",  # with scattermode "group": one row per trace in a category
                name=" · ".join(key),
            )
        )
    figure.add_vline(x=0.5, line_dash="dot", line_color="grey")
    layout(figure, "Agentic markers by conditional and model", "P(matching answer)", "category")
    figure.update_layout(
        scattermode="group", height=max(380, 24 * len(summary) + 120), yaxis_autorange="reversed"
    )
    return figure
