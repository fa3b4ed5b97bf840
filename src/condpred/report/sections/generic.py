"""Any run kind without a section module of its own: its conditionals, samples, scores and
experiment items (one table row per item, the columns its rows have)."""

from __future__ import annotations

from condpred.report.sections import Block, conditional_blocks, table
from condpred.store import RunRecord, Store


def build(store: Store, run: RunRecord) -> list[Block]:
    blocks = conditional_blocks(store, run)
    samples = store.samples(run.id)
    if samples:
        rows = [(s.index, len(s.tokens), s.finish_reason, s.text) for s in samples]
        blocks.append(Block("Samples", table(("sample", "tokens", "ended by", "text"), rows)))
    scores = store.scores(run.id)
    if scores:
        rows = [(repr(s.continuation), s.logprob, len(s.tokens)) for s in scores]
        blocks.append(Block("Scores", table(("continuation", "log P (nats)", "tokens"), rows)))
    items = store.item_rows(run.id)
    if items:
        columns = list(dict.fromkeys(key for row in items for key in row))
        cells = [[row.get(column) for column in columns] for row in items]
        blocks.append(Block(f"Items ({len(items)})", table(columns, cells)))
    return blocks
