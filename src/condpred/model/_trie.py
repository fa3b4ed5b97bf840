"""Continuations of one context laid out in rows to run, each state they share run once.

Scoring continuation c_1..c_m needs the model's state after the context (shared by every
continuation: the context's own pass gives it) and after each of c_1..c_k for k < m (c_m predicts
nothing). Continuations often begin alike (" The", " We found"); a state after a prefix they
share is the same state, so it is run once in each row that holds it (once in all, unless the
continuations sharing it fill more than one row). With `tree=True` the distinct prefixes (the
nodes of the continuations' trie) are packed side by side into rows: each token attends to the
context and to its own ancestors in the row (`Layout.visible`), at its own position
(`Layout.offsets`), so a row holds many branches and almost no padding. Without it (a model
where only the ordinary attention path applies) each row is one continuation, right-padded, as
causal attention needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

#: Where a continuation's first token is read: the context's last state, not a slot of a row.
CONTEXT = (-1, -1)


@dataclass
class Layout:
    """Rows of tokens to run, and where each continuation's tokens are read.

    `rows[r][s]` is a token and `parents[r][s]` the slot in the same row of the one before it
    (-1: it follows the context); `reads[i][k]` is the (row, slot) whose state predicts token k of
    continuation i (`CONTEXT` for the first)."""

    rows: list[list[int]]
    parents: list[list[int]]
    reads: list[list[tuple[int, int]]]

    def offsets(self, rows: Sequence[int], width: int) -> torch.Tensor:
        """Each slot's place after the context (0 = the first continuation token), [rows, width];
        padding slots get 0."""
        out = [[0] * width for _ in rows]
        for r, row in enumerate(rows):
            for s, parent in enumerate(self.parents[row]):
                out[r][s] = 0 if parent < 0 else out[r][parent] + 1
        return torch.tensor(out, dtype=torch.long)

    def visible(self, rows: Sequence[int], width: int) -> torch.Tensor:
        """Which slots each slot attends to within its row (itself and its ancestors; a padding
        slot nothing), [rows, width, width]."""
        where: list[tuple[int, int, int]] = []
        for r, row in enumerate(rows):
            seen: list[list[int]] = []
            for s, parent in enumerate(self.parents[row]):
                seen.append([*(seen[parent] if parent >= 0 else []), s])
                where += [(r, s, k) for k in seen[s]]
        out = torch.zeros(len(rows), width, width, dtype=torch.bool)
        if where:
            out[tuple(torch.tensor(where).t())] = True
        return out

    def blocks(self, rows: Sequence[int], device: torch.device | str = "cpu") -> Blocks:
        """These rows run as one sequence, one after another (`starts`), with no padding."""
        width = max(len(self.rows[r]) for r in rows)
        lengths = torch.tensor([len(self.rows[r]) for r in rows])
        filled = torch.arange(width) < lengths[:, None]  # [rows, width]: not padding
        starts = lengths.cumsum(0) - lengths
        at = (starts[:, None] + torch.arange(width)).masked_fill(~filled, 0)
        offsets = self.offsets(rows, width)
        return Blocks(
            starts=starts.tolist(),
            positions=offsets[filled].unsqueeze(0).to(device),
            offsets=offsets.to(device),
            visible=self.visible(rows, width).to(device),
            gather=at.flatten().to(device),
            scatter=filled.flatten().nonzero().squeeze(-1).to(device),
        )


@dataclass
class Blocks:
    """Layout rows run as one sequence: the body of the model sees no padding, and attention
    among the rows' own tokens runs row by row, each row padded to the widest (`gather` takes the
    sequence into rows x width, `scatter` takes that back)."""

    starts: list[int]  # where each row begins in the sequence
    positions: torch.Tensor  # [1, tokens]: each token's place after the context
    offsets: torch.Tensor  # [rows, width]: the same, per row (padding: 0)
    visible: torch.Tensor  # [rows, width, width]: itself and its ancestors (padding: nothing)
    gather: torch.Tensor  # [rows * width]: the sequence index of each row slot (padding: 0)
    scatter: torch.Tensor  # [tokens]: the row slot of each sequence index


#: Rows with room left that a continuation may still be put in (the most recent): enough to fill
#: the gaps, few enough that laying out many thousands of continuations stays fast.
OPEN_ROWS = 8


def lay_out(continuations: Sequence[Sequence[int]], width: int, tree: bool) -> Layout:
    """The rows that give every state the continuations need. With `tree`, continuations in
    sorted order go to the first open row with room (`width` slots, or their own length if
    longer), sharing the slots of prefixes already in it; else one continuation per row."""
    layout = Layout([], [], [[] for _ in continuations])
    tries: list[dict[int, tuple[int, dict]]] = []  # per row: token -> (slot, children)
    open_rows: list[int] = []
    for i in sorted(range(len(continuations)), key=lambda i: tuple(continuations[i])):
        path = continuations[i][:-1]  # the states that predict tokens 2..m
        room = max(width, len(path))
        fits = (
            r
            for r in open_rows
            if (new := _unshared(tries[r], path)) == 0 or len(layout.rows[r]) + new <= room
        )
        row = next(fits, -1) if tree and path else -1  # the first open row with room
        if path and row < 0:
            row = len(layout.rows)
            layout.rows.append([])
            layout.parents.append([])
            tries.append({})
            open_rows = [*open_rows, row][-OPEN_ROWS:] if tree else []
        reads, level, slot = [CONTEXT], tries[row] if path else {}, -1
        for token in path:
            if token not in level:
                level[token] = (len(layout.rows[row]), {})
                layout.rows[row].append(token)
                layout.parents[row].append(slot)
            slot, level = level[token]
            reads.append((row, slot))
        layout.reads[i] = reads[: len(continuations[i])]
    return layout


def _unshared(trie: dict[int, tuple[int, dict]], path: Sequence[int]) -> int:
    """How many of `path`'s prefixes are not yet in the row."""
    level = trie
    for depth, token in enumerate(path):
        if token not in level:
            return len(path) - depth
        level = level[token][1]
    return 0
