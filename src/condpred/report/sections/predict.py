"""Predict runs: the conditional as the model saw it, the samples, and what the checks found."""

from __future__ import annotations

import plotly.graph_objects as go

from condpred.checks.base import CheckResult
from condpred.model.base import Sample
from condpred.report.sections import SECTIONS, Block, conditional_blocks, layout, table
from condpred.store import RunRecord, Store


@SECTIONS.register("predict")
def build(store: Store, run: RunRecord) -> list[Block]:
    blocks = conditional_blocks(store, run)
    samples = store.samples(run.id)
    results = store.check_results(run.id)
    blocks.append(samples_block(samples, results))
    if results:
        blocks.append(checks_block(results))
        per_sample = [r for r in results if r.sample_index is not None]
        if per_sample:
            blocks.append(Block("Check values per sample", figure=check_figure(per_sample)))
    if samples:
        blocks.append(Block("Sample log-probabilities", figure=logprob_figure(samples)))
    return blocks


def samples_block(samples: list[Sample], results: list[CheckResult]) -> Block:
    """One row per sample with the verdicts of its own checks and those of the conditional."""

    def verdicts(index: int) -> str:
        own = [r for r in results if r.sample_index in (None, index)]
        return ", ".join(f"{r.check} {r.verdict}" for r in own)

    rows = [(s.index, len(s.tokens), s.finish_reason, verdicts(s.index), s.text) for s in samples]
    header = ("sample", "tokens", "ended by", "checks", "text")
    return Block(f"Samples ({len(samples)})", table(header, rows))


def checks_block(results: list[CheckResult]) -> Block:
    rows = [
        (
            r.check,
            "conditional" if r.sample_index is None else r.sample_index,
            r.value,
            r.threshold,
            r.verdict,
            r.message,
        )
        for r in results
    ]
    header = ("check", "about", "value", "warns above", "verdict", "finding")
    return Block("Check results", table(header, rows))


def check_figure(results: list[CheckResult]) -> go.Figure:
    """Each per-sample check's values, with its warning threshold where it has one."""
    figure = go.Figure()
    for name in sorted({r.check for r in results}):
        own = [r for r in results if r.check == name]
        figure.add_trace(
            go.Scatter(
                x=[r.sample_index for r in own],
                y=[r.value for r in own],
                mode="markers",
                name=name,
                text=[r.verdict for r in own],
            )
        )
        threshold = own[0].threshold
        if threshold is not None:
            figure.add_hline(y=threshold, line_dash="dot", annotation_text=f"{name} warns above")
    return layout(figure, "Check values per sample", "sample", "value")


def logprob_figure(samples: list[Sample]) -> go.Figure:
    """Mean log-probability per token of each sample under the model itself."""
    means = [s.logprob / max(len(s.tokens), 1) for s in samples]
    figure = go.Figure(go.Bar(x=[s.index for s in samples], y=means, name="mean log-prob"))
    return layout(figure, "Mean log-prob per token of each sample", "sample", "nats per token")
