"""pass@k runs: the curves (log-x) with their 95% bands, the paired difference and the crossover,
per-problem coverage (solved by base only / tuned only / both / neither), the verifier's verdicts
and the sampling throughput, and each framing's prompt as the model saw it."""

from __future__ import annotations

import plotly.graph_objects as go

from condpred.experiments.passk import estimate
from condpred.experiments.passk.run import PassKRow, summarise
from condpred.experiments.runner import read_rows
from condpred.report.sections import SECTIONS, Block, layout, pre, table
from condpred.stats import MIN_CI_N, format_ci
from condpred.store import RunRecord, Store

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


@SECTIONS.register("passk")
def build(store: Store, run: RunRecord) -> list[Block]:
    rows = read_rows(store, run.id, PassKRow)
    if not rows:
        return [Block("No problems sampled yet", note="Resume the run to sample them.")]
    params = run.params
    summary = summarise(rows, params, run.seed or 0)
    n = params["n"]
    blocks = [
        Block(
            "pass@k",
            figure=curve_figure(rows, params, run.seed or 0),
            note=f"Unbiased pass@k (Chen et al. 2021) from n = {n} samples per problem, every "
            f"k <= n, the mean over problems with a 95% bootstrap band (problems resampled). "
            f"Sampling: {params['sampling']}.",
        ),
    ]
    for c in summary["comparisons"]:
        name = (
            f"{c['tuned']['model']} ({c['tuned']['prompt_style']}) - "
            f"{c['base']['model']} ({c['base']['prompt_style']})"
        )
        x = c["crossover"]
        blocks.append(
            Block(
                f"Tuned - base: {name}",
                table(
                    ("k", "difference", "95% CI"),
                    [(d["k"], d["diff"], format_ci(d["ci"])) for d in c["diff"]],
                ),
                note=f"{x['status']} (95% CI {estimate.crossover_ci(x)}; "
                f"{x['share_of_resamples_crossing']:.0%} of resamples cross; leader at k = 1: "
                f"{x['leader_at_k1']}; {x['problems']} paired problems).",
            )
        )
        cov = c["coverage"]
        blocks.append(
            Block(
                f"Coverage at k = n = {n}: {name}",
                table(("base only", "tuned only", "both", "neither"), [list(cov.values())]),
                note="Problems solved by at least one of the n samples of each model.",
            )
        )
    blocks.append(
        Block(
            "Verification and throughput",
            table(
                ("model", "prompt", "problems", *summary["arms"][0]["verdicts"], "tokens/s"),
                [
                    (
                        a["model"],
                        a["style"],
                        a["problems"],
                        *a["verdicts"].values(),
                        a["tokens_per_s"],
                    )
                    for a in summary["arms"]
                ],
                numeric=".1f",
            ),
            note="Every sample's verdict: correct, wrong, unparseable (no answer found), timeout "
            f"(over {params['time_limit_s']:g} s in the verifier's worker), error.",
        )
    )
    for example in params.get("prompts", []):
        blocks.append(
            Block(
                f"Prompt: {example['model']} ({example['style']}), first problem",
                pre(example["prompt"]),
            )
        )
    return blocks


def curve_figure(rows: list[PassKRow], params: dict, seed: int) -> go.Figure:
    """One line per (model, prompt style) over every k = 1..n, with its 95% band, log-x."""
    n = params["n"]
    ks = list(range(1, n + 1))
    figure = go.Figure()
    for a, arm in enumerate(params["arms"]):
        correct = [r.correct for r in sorted(rows, key=lambda r: r.problem) if r.arm == a]
        if not correct:
            continue
        c = estimate.curve(n, correct, seed=seed)
        name = f"{arm['model']} ({arm['style']})"
        if c.problems >= MIN_CI_N:  # a band only where there are enough problems for one
            figure.add_trace(
                go.Scatter(
                    x=ks + ks[::-1],
                    y=list(c.high) + list(c.low)[::-1],
                    fill="toself",
                    fillcolor=_rgba(COLOURS[a % len(COLOURS)], 0.2),
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=name,
                )
            )
        figure.add_trace(
            go.Scatter(
                x=ks,
                y=list(c.mean),
                mode="lines",
                name=name,
                legendgroup=name,
                line={"color": COLOURS[a % len(COLOURS)]},
            )
        )
    layout(figure, "pass@k", "k (samples)", "pass@k")
    figure.update_xaxes(type="log")
    figure.update_yaxes(range=[0, 1])
    return figure


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"
