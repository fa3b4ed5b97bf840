"""Plan runs: plans by outcome questions (probability and conditioning shift), the checks, the
expected utility when the plan set gives utilities, and each plan's page and sampled reports."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from markupsafe import Markup

from condpred.planning import stored_plans
from condpred.report.sections import SECTIONS, Block, layout, pre, table
from condpred.store import RunRecord, Store


@SECTIONS.register("plan")
def build(store: Store, run: RunRecord) -> list[Block]:
    result = stored_plans(store, run.id)
    questions = [q.name for q in result.plan_set.questions]
    blocks = [outcomes_block(result.rows, questions)]
    blocks += [
        Block(f"P(outcome) per plan: {q}", figure=question_figure(result.rows, q))
        for q in questions
    ]
    if result.plan_set.utilities:
        blocks.append(
            Block("Expected utility", figure=utility_figure(result.rows), note=UTILITY_NOTE)
        )
    blocks.append(checks_block(result.rows))
    blocks += [plan_block(store, run, row) for row in result.rows]
    return blocks


UTILITY_NOTE = (
    "The sum over questions of the utilities the plan set gives, weighted by the predicted "
    "probabilities; the bars span each plan's lowest and highest over answer phrasings, a measure "
    "of sensitivity to wording, not a confidence interval."
)


def outcomes_block(rows: list[dict[str, Any]], questions: list[str]) -> Block:
    def cell(dist: dict[str, Any]) -> str:
        lines = []
        for i, outcome in enumerate(dist["outcomes"]):
            by_phrasing = [row[i] for row in dist["by_phrasing"]]
            lines.append(
                f"{outcome}: {dist['probs'][i]:.2f} (shift {dist['shift'][i]:+.2f}; "
                f"phrasings {min(by_phrasing):.2f}-{max(by_phrasing):.2f})"
            )
        return "\n".join(lines)

    cells = [(row["plan"], *(cell(row["distributions"][q]) for q in questions)) for row in rows]
    note = (
        "Probability of each outcome, averaged over answer phrasings (their lowest and highest "
        "beside it); the shift is log P(outcome | plan's conditional) - log P(outcome | camera "
        "alone), in nats."
    )
    return Block("Outcomes by plan", table(("plan", *questions), cells), note=note)


def question_figure(rows: list[dict[str, Any]], question: str) -> go.Figure:
    """Stacked probability of each outcome under each plan."""
    figure = go.Figure()
    outcomes = rows[0]["distributions"][question]["outcomes"]
    for index, outcome in enumerate(outcomes):
        probs = [row["distributions"][question]["probs"][index] for row in rows]
        figure.add_trace(go.Bar(x=[row["plan"] for row in rows], y=probs, name=outcome))
    figure.update_layout(barmode="stack")
    return layout(figure, question, "plan", "probability")


def utility_figure(rows: list[dict[str, Any]]) -> go.Figure:
    eus = [row["expected_utility"] for row in rows]
    figure = go.Figure(
        go.Bar(
            x=[row["plan"] for row in rows],
            y=[eu["value"] for eu in eus],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [eu["high"] - eu["value"] for eu in eus],
                "arrayminus": [eu["value"] - eu["low"] for eu in eus],
            },
        )
    )
    return layout(figure, "Expected utility per plan", "plan", "expected utility")


def checks_block(rows: list[dict[str, Any]]) -> Block:
    cells = [
        (
            row["plan"],
            c["check"],
            c["question"] or "",
            c["sample"],
            c["value"],
            c["verdict"],
            c["message"],
        )
        for row in rows
        for c in row["checks"]
    ]
    header = ("plan", "check", "question", "sample", "value", "verdict", "finding")
    return Block("Checks", table(header, cells))


def plan_block(store: Store, run: RunRecord, row: dict[str, Any]) -> Block:
    """The page the model saw for the plan, and the reports sampled from it."""
    record = next(c for c in store.conditionals(run.id) if c.index == row["index"])
    reports = Markup("").join(pre(text) for text in row["samples"])
    heading = Markup("<h3>Sampled reports</h3>") if row["samples"] else Markup("")
    return Block(f"Plan: {row['plan']}", pre(record.rendered) + heading + reports)
