"""Predict runs: the conditional as the model saw it, the samples, and what the checks found:
one table of findings and one panel per check (in its own unit, with its threshold)."""

from __future__ import annotations

import plotly.graph_objects as go
from markupsafe import Markup

from condpred.checks import CHECKS, describe_check
from condpred.checks.base import CheckResult
from condpred.model.base import Sample
from condpred.report.sections import (
    SECTIONS,
    Block,
    conditional_blocks,
    integer_ticks,
    layout,
    table,
    verdict_badge,
)
from condpred.store import RunRecord, Store

VERDICT_COLOURS = {"pass": "#1a7f37", "warn": "#bf8700", "fail": "#cf222e"}
GATE_NOTE = (
    "Every sample is shown with its verdicts: `--gate` only filters what predict and check "
    "print (and keeps samples whose checks all pass)."
)


@SECTIONS.register("predict")
def build(store: Store, run: RunRecord) -> list[Block]:
    blocks = conditional_blocks(store, run)
    samples = store.samples(run.id)
    results = store.check_results(run.id)
    blocks.append(samples_block(samples, results))
    if results:
        blocks.append(checks_block(results))
        for name in dict.fromkeys(r.check for r in results if r.sample_index is not None):
            own = [r for r in results if r.check == name]
            blocks.append(Block(f"{name} per sample", figure=check_figure(name, own)))
    if samples:
        blocks.append(Block("Sample log-probabilities", figure=logprob_figure(samples)))
    return blocks


def unit_of(check: str) -> str:
    """The unit of a result named `check` or `check.part` (from the registered check)."""
    name = check.split(".")[0]
    return describe_check(name)["unit"] if name in CHECKS else "value"


def samples_block(samples: list[Sample], results: list[CheckResult]) -> Block:
    """One row per sample with the verdicts of its own checks and those of the conditional."""

    def verdicts(index: int) -> Markup:
        own = [r for r in results if r.sample_index in (None, index)]
        return Markup(" ").join(
            Markup("{} {}").format(r.check, verdict_badge(r.verdict)) for r in own
        )

    rows = [(s.index, len(s.tokens), s.finish_reason, verdicts(s.index), s.text) for s in samples]
    header = ("sample", "tokens", "ended by", "checks", "text")
    return Block(f"Samples ({len(samples)})", table(header, rows), note=GATE_NOTE)


def checks_block(results: list[CheckResult]) -> Block:
    rows = [
        (
            r.check,
            "conditional" if r.sample_index is None else r.sample_index,
            r.value,
            unit_of(r.check),
            r.threshold,
            verdict_badge(r.verdict),
            r.message,
        )
        for r in results
    ]
    header = ("check", "about", "value", "unit", "warns above", "verdict", "finding")
    return Block("Check results", table(header, rows))


def check_figure(name: str, results: list[CheckResult]) -> go.Figure:
    """One check's value per sample, coloured by verdict, with its warning threshold."""
    figure = go.Figure(
        go.Scatter(
            x=[r.sample_index for r in results],
            y=[r.value for r in results],
            mode="markers",
            marker={"size": 10, "color": [VERDICT_COLOURS[r.verdict] for r in results]},
            text=[r.verdict for r in results],
            hovertemplate="sample %{x}: %{y:.3f} (%{text})<extra></extra>",
            showlegend=False,
        )
    )
    threshold = results[0].threshold
    if threshold is not None:
        figure.add_hline(y=threshold, line_dash="dot", annotation_text=f"warns above {threshold}")
    layout(figure, f"{name} per sample", "sample", unit_of(name))
    return integer_ticks(figure)


def logprob_figure(samples: list[Sample]) -> go.Figure:
    """Mean log-probability per token of each sample under the model itself."""
    means = [s.logprob / max(len(s.tokens), 1) for s in samples]
    figure = go.Figure(go.Bar(x=[s.index for s in samples], y=means, name="mean log-prob"))
    layout(figure, "Mean log-prob per token of each sample", "sample", "nats per token")
    return integer_ticks(figure)
