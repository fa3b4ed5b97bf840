"""Forecast runs: scores with intervals per group, the reliability diagram beside the crowd's,
the distribution of forecasts by outcome, per-source Brier bars, and every question's row."""

from __future__ import annotations

import datetime as dt
from typing import Any

import plotly.graph_objects as go

from condpred import scoring
from condpred.forecasting import stored_forecast, summarise
from condpred.forecasting.run import ForecastRow
from condpred.report.sections import (
    SECTIONS,
    Block,
    error_bars,
    folded,
    integer_ticks,
    layout,
    table,
)
from condpred.stats import with_ci
from condpred.store import RunRecord, Store

METRICS = (
    ("Brier", "brier"),
    ("log score", "log_score"),
    ("skill vs base rate", "brier_skill_base_rate"),
    ("skill vs crowd", "brier_skill_crowd"),
)


@SECTIONS.register("forecast")
def build(store: Store, run: RunRecord) -> list[Block]:
    result = stored_forecast(store, run.id)
    cutoff = run.params.get("cutoff")
    summary = summarise(
        result.rows, dt.date.fromisoformat(cutoff) if cutoff else None, run.seed or 0
    )
    scored = [r for r in result.rows if r["outcome"] is not None]
    blocks = [scores_block(summary, cutoff)]
    if scored:
        blocks += [
            Block("Reliability diagram", figure=reliability_figure(scored)),
            Block("Forecasts by outcome", figure=histogram_figure(scored)),
            Block("Brier score per source", figure=source_figure(summary)),
        ]
    blocks.append(questions_block(result.rows))
    return blocks


def scores_block(summary: dict[str, Any], cutoff: str | None) -> Block:
    groups = {"all": summary, **summary.get("groups", {})}
    rows = []
    for name, m in groups.items():
        if not m.get("n"):
            continue
        crowd = m.get("crowd", {})
        values = [with_ci(m.get(key)) for _, key in METRICS]
        rows.append((name, m["n"], m["base_rate"], *values, m["ece"], with_ci(crowd.get("brier"))))
    header = ("questions", "n", "base rate", *(label for label, _ in METRICS), "ECE", "crowd Brier")
    note = (
        "Brier: lower is better (0.25 for always 0.5). Log score: mean ln P(what happened), higher "
        "is better. Skill: 1 - Brier / reference Brier (0 = as good as the reference). "
        "Bootstrap 95% intervals in brackets. "
        + (
            f"Training cutoff {cutoff}: the model cannot have read about questions resolved after "
            "it."
            if cutoff
            else "No training cutoff known: no leakage split."
        )
    )
    return Block("Scores", table(header, rows), note=note)


def reliability_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Observed frequency against mean forecast per bin, for the model and the crowd."""
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line_dash="dot"))
    y = [r["outcome"] for r in rows]
    series = {"model": [r["prob"] for r in rows]}
    crowd = [r for r in rows if r["crowd_prob"] is not None]
    if crowd:
        series["crowd"] = [r["crowd_prob"] for r in crowd]
    for name, probs in series.items():
        outcomes = y if name == "model" else [r["outcome"] for r in crowd]
        diagram = scoring.reliability(probs, outcomes)
        shown = [i for i, n in enumerate(diagram.count) if n]
        figure.add_trace(
            go.Scatter(
                x=[diagram.mean_prob[i] for i in shown],
                y=[diagram.frequency[i] for i in shown],
                mode="lines+markers+text",
                name=f"{name} (ECE {diagram.ece:.3f})",
                text=[f"n={diagram.count[i]}" for i in shown],  # each bin's questions, drawn
                textposition="top center",
                marker={"size": [6 + 2 * min(diagram.count[i], 10) for i in shown]},
            )
        )
    figure = layout(
        figure,
        "Reliability (10 equal-width bins; n = questions in the bin)",
        "mean forecast",
        "observed frequency",
    )
    # points at 0 or 1 (a bin whose questions all resolved alike) and their labels stay seen
    return figure.update_xaxes(range=[-0.04, 1.04]).update_yaxes(range=[-0.06, 1.14])


def histogram_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """The model's P(yes) on questions that resolved yes and no: separation is discrimination."""
    figure = go.Figure()
    for outcome, label in ((1, "resolved yes"), (0, "resolved no")):
        probs = [r["prob"] for r in rows if r["outcome"] == outcome]
        figure.add_trace(go.Histogram(x=probs, name=label, opacity=0.6, xbins={"size": 0.05}))
    figure.update_layout(barmode="overlay")
    figure = layout(figure, "Distribution of the model's P(yes)", "P(yes)", "questions")
    return integer_ticks(figure.update_xaxes(range=[0, 1]), "y", most=len(rows))


def source_figure(summary: dict[str, Any]) -> go.Figure:
    """Brier per source for the model, the crowd and the base rate, with the model's intervals."""
    groups = {
        k.removeprefix("source:"): m
        for k, m in summary["groups"].items()
        if k.startswith("source:")
    }
    names = list(groups)
    figure = go.Figure()
    model = [groups[n]["brier"] for n in names]
    crowd = [
        groups[n].get("crowd", {}).get("brier") or {"value": None, "ci95": None} for n in names
    ]
    base = [groups[n]["base_rate_brier"] for n in names]
    for label, values, cis in (
        ("model", [m["value"] for m in model], [m["ci95"] for m in model]),
        ("crowd", [c["value"] for c in crowd], [c["ci95"] for c in crowd]),
        ("base rate (in sample)", base, [None] * len(names)),
    ):
        figure.add_trace(
            go.Bar(
                x=names,
                y=values,
                name=label,
                error_y=error_bars([v or 0 for v in values], cis),
                text=[f"{v:.3f}" if v is not None else "n/a" for v in values],  # 0 is seen too
                textposition="outside",
            )
        )
    note = (
        "; bars without whiskers have fewer than 10 questions"
        if any(m["ci95"] is None for m in model)
        else ""
    )
    return layout(figure, f"Brier score per source (lower is better{note})", "source", "Brier")


def questions_block(rows: list[ForecastRow]) -> Block:
    """Each question by its text (its id where a run predates stored text), with the page the
    model saw folded beneath it."""
    header = ("question", "source", "as of", "resolved", "P(yes)", "crowd", "outcome", "reasoning")
    cells = [
        (
            folded(r.question or r.id, r.rendered),
            r.source,
            r.as_of,
            r.resolved,
            r.prob,
            r.crowd_prob,
            {1: "yes", 0: "no"}.get(r.outcome, "-"),
            r.reasoning or "",
        )
        for r in rows
    ]
    note = "Open a question to see the page the model saw, exactly as it was rendered."
    return Block(f"Questions ({len(rows)})", table(header, cells), note=note)
