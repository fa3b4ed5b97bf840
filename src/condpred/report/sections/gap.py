"""gap runs: the table (KL per token, fraction of the bare prompt's KL closed, shifted-token
ratio, with CIs) overall and per category, KL by response position, shifts by kind of token,
and the tuned model's text with its shifted positions highlighted."""

from __future__ import annotations

import plotly.graph_objects as go
from markupsafe import Markup, escape

from condpred.experiments.gap import GapRow, SoftEvalRow, summarise
from condpred.experiments.gap.measure import SHIFTED_ABOVE
from condpred.experiments.gap.run import trained_info
from condpred.experiments.runner import read_rows
from condpred.report.sections import SECTIONS, Block, layout, pre, table
from condpred.stats import format_ci
from condpred.store import RunRecord, Store

SHOWN_RESPONSES = 4
HEADER = ("conditional", "KL/token", "95% CI", "closed", "95% CI", "shifted", "prompts")


@SECTIONS.register("gap")
def build(store: Store, run: RunRecord) -> list[Block]:
    rows = read_rows(store, run.id, GapRow)
    if not rows:
        return [Block("No prompts measured yet", note="Resume the run to measure them.")]
    params = run.params
    summary = summarise(
        rows,
        read_rows(store, run.id, SoftEvalRow),
        params,
        run.seed or 0,
        trained_info(store, run.id),
    )
    blocks = [
        Block(
            "KL(tuned || base | c) per token",
            _table(summary["rows"]),
            note=f"{params['tuned']} against {params['base']}, on the tuned model's own responses "
            f"({params['sampling']['samples']} per prompt, temperature 1, up to "
            f"{params['sampling']['max_tokens']} tokens) to {summary['prompts']['evaluated']} "
            "held-out prompts. Exact KL from both full next-token distributions; 'closed' is "
            "1 - KL_c / KL_none on the same responses; 'shifted' is URIAL's share of positions "
            f"where the tuned model's top token has base rank > {SHIFTED_ABOVE}. 95% percentile "
            "bootstrap CIs over prompts.",
        )
    ]
    for category, rows_c in summary["by_category"].items():
        blocks.append(Block(f"Category: {category}", _table(rows_c)))
    blocks.append(Block("KL by position", figure=_by_position(summary["by_position"])))
    blocks.append(
        Block(
            "Shifts by kind of token (bare prompt)",
            table(
                ("token class", "tokens", "KL/token", "shifted"),
                [
                    (c["class"], c["tokens"], c["kl"], c["shifted_ratio"])
                    for c in summary["by_class"]
                ],
            ),
        )
    )
    held_out = [r for r in rows if r.split == "held-out"][:SHOWN_RESPONSES]
    for r in held_out:
        blocks.append(
            Block(
                f"Tuned response to prompt {r.id} (shifted positions marked)",
                _highlighted(r.tokens[0], r.ranks["none"][0]) if r.tokens else Markup(),
                note="Marked: the tuned model's top token there has base rank > 3 under the bare "
                "prompt (the text shown is the sampled token).",
            )
        )
    soft = summary["soft_prompt"]
    if soft.get("losses"):
        figure = go.Figure(go.Scatter(y=soft["losses"], mode="lines", name="loss"))
        layout(figure, "Soft prompt training", "step", "cross-entropy to tuned top-k (nats)")
        blocks.append(
            Block(
                "Soft prompt",
                figure=figure,
                note=f"{soft['tokens']} virtual tokens, {soft['steps']} Adam steps of "
                f"{soft['batch']} responses from {soft['examples']} training responses, "
                f"{soft['train_s']:.0f} s.",
            )
        )
    blocks.append(
        Block("The tuned model's framing (first prompt)", pre(params["tuned_context_example"]))
    )
    return blocks


def _table(rows: list[dict]) -> Markup:
    return table(
        HEADER,
        [
            (
                r["conditional"] + (f" ({r['chosen']})" if "chosen" in r else ""),
                r["kl_per_token"],
                format_ci(r["ci"], r["prompts"]),
                r["fraction_closed"],
                format_ci(r["fraction_closed_ci"], r["prompts"]),
                r["shifted_ratio"],
                r["prompts"],
            )
            for r in rows
        ],
        numeric=".4f",
    )


def _by_position(by_position: dict[str, list[dict]]) -> go.Figure:
    figure = go.Figure()
    for name, points in by_position.items():
        figure.add_trace(
            go.Scatter(x=[p["position"] for p in points], y=[p["kl"] for p in points], name=name)
        )
    return layout(figure, "KL by response position", "token position", "mean KL (nats)")


def _highlighted(tokens: list[str], ranks: list[int]) -> Markup:
    parts = []
    for token, rank in zip(tokens, ranks, strict=True):
        text = escape(token)
        parts.append(
            Markup(f'<mark title="base rank {rank}">{text}</mark>')
            if rank > SHIFTED_ABOVE
            else text
        )
    return Markup("<pre>") + Markup("").join(parts) + Markup("</pre>")
