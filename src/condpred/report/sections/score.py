"""Score runs: each continuation's log-probability and the surprisal of each of its tokens."""

from __future__ import annotations

import plotly.graph_objects as go

from condpred.report.sections import SECTIONS, Block, conditional_blocks, layout, table
from condpred.store import RunRecord, Store


@SECTIONS.register("score")
def build(store: Store, run: RunRecord) -> list[Block]:
    blocks = conditional_blocks(store, run)
    scores = store.scores(run.id)
    rows = [
        (repr(s.continuation), s.logprob, len(s.tokens), "yes" if s.greedy else "") for s in scores
    ]
    blocks.append(
        Block("Scores", table(("continuation", "log P (nats)", "tokens", "greedy"), rows))
    )
    figure = go.Figure()
    for s in scores:
        labels = [f"{i}:{t!r}" for i, t in enumerate(s.tokens)]
        figure.add_trace(go.Bar(x=labels, y=s.surprisal_bits, name=repr(s.continuation)))
    blocks.append(
        Block(
            "Per-token surprisal",
            figure=layout(figure, "Surprisal of each token", "token", "bits"),
            note="Tokens the model did not expect stand out as tall bars.",
        )
    )
    return blocks
