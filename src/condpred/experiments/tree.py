"""The continuation tree (a "loom"): branch a model's text at any token and compare futures, with
every node's provenance stored, so a tree is a reproducible record and not a screen state.

A tree is a run of kind `tree` whose rows are its nodes (`TreeNode`, table `tree`) and the marks
a researcher put on them (`TreeMark`, table `tree_mark`; the latest mark of a node wins, earlier
ones are kept). The root holds the text the tree starts from (a stored conditional as the model
saw it, stored beside the root as the run's conditional 0); a node below it holds tokens that
follow its parent's first `at` tokens (all of them when `at` is None), with the model, sampling
parameters, seed and sample index that drew them and their log-probs under the model. Sample i
of a node depends only on (seed, i) (`model.base.sample_seed`), so `context_of` and a node's
provenance draw it again.

Each change (new children, a mark) commits on its own, whole; a tree run is closed as done as
soon as its root is stored, and stays done as it grows: there is never anything to finish.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import Any, ClassVar, Literal

from condpred.errors import InputError
from condpred.experiments.runner import (
    Item,
    Recorder,
    Row,
    open_run,
    read_rows,
    recording,
    resumable,
)
from condpred.model.base import PredictiveModel, SamplingParams, TokenProb
from condpred.store import Store

KIND = "tree"
MAX_CHILDREN = 64  # children drawn by one request: the viewer's bound on one click's work
MAX_TOP_K = 100


class TreeNode(Row):
    """One node: where it hangs, what it holds, and how it was made."""

    table: ClassVar[str] = "tree"

    parent: int | None  # None: the root
    at: int | None  # how many of the parent's tokens it follows; None: all (its whole text)
    how: Literal["root", "stored", "sample", "pick"]
    text: str
    tokens: list[str]
    token_logprobs: list[float]  # natural log, under `model` at temperature 1
    model: str | None  # the spec of the model that made it (None: the root's own text)
    params: dict[str, Any]  # sampling parameters ("sample"), top_k and rank ("pick")
    seed: int | None
    sample_index: int | None
    finish_reason: str | None
    source: dict[str, Any] | None  # the stored run, conditional and sample it came from


class TreeMark(Row):
    """A researcher's mark on a node (index: the mark's own position; the latest one wins)."""

    table: ClassVar[str] = "tree_mark"

    node: int
    marked: bool
    note: str = ""


_write_lock = threading.Lock()  # one process hands out node indices one at a time


@resumable(KIND, rows=[TreeNode, TreeMark])
def resume(run_id: str, store: Store, load: Any) -> None:
    """A tree has nothing to finish (every node commits whole): close it as done."""
    store.finish_run(run_id)


def start_tree(
    store: Store,
    model_spec: str,
    run_id: str,
    cond_index: int = 0,
    sample_index: int | None = None,
) -> str:
    """A new tree rooted at a stored conditional (or at one of its stored samples, whose tokens
    become the root's first child, each a place to branch); returns the tree's run id.
    `model_spec` names the model that will grow it."""
    source_run = store.get_run(run_id)
    conditionals = {c.index: c for c in store.conditionals(source_run.id)}
    if cond_index not in conditionals:
        raise InputError(
            f"run {source_run.id} has no conditional {cond_index}",
            source=str(store.path),
            fix=f"Conditionals of this run: {sorted(conditionals) or 'none'}",
        )
    conditional = conditionals[cond_index]
    source = {"run": source_run.id, "cond": cond_index}
    stored = None
    if sample_index is not None:
        found = [s for s in store.samples(source_run.id, cond_index) if s.index == sample_index]
        if not found:
            raise InputError(
                f"conditional {cond_index} of run {source_run.id} has no sample {sample_index}",
                source=str(store.path),
                fix="Pick a sample listed on the run's page",
            )
        stored = found[0]
    tree_id = open_run(
        store, KIND, model_spec, {"source": {**source, "sample": sample_index}}, None
    )
    root = _node(0, None, None, "root", conditional.rendered, source=source)
    label = f"run {source_run.id} conditional {cond_index}"
    with recording(store, tree_id) as recorder:
        recorder.add_item(
            TreeNode, Item(root, (conditional.yaml_text, conditional.rendered, label))
        )
        if stored is not None:
            recorder.add_item(
                TreeNode,
                _node(
                    1,
                    0,
                    None,
                    "stored",
                    stored.text,
                    tokens=stored.tokens,
                    token_logprobs=stored.token_logprobs,
                    model=source_run.model_spec,
                    params=source_run.params.get("sampling", {}),
                    seed=source_run.seed,
                    sample_index=stored.index,
                    finish_reason=stored.finish_reason,
                    source={**source, "sample": stored.index},
                ),
            )
    return tree_id


def _node(
    index: int, parent: int | None, at: int | None, how: str, text: str, **rest: Any
) -> TreeNode:
    fields: dict[str, Any] = {
        "tokens": [],
        "token_logprobs": [],
        "model": None,
        "params": {},
        "seed": None,
        "sample_index": None,
        "finish_reason": None,
        "source": None,
    }
    return TreeNode(index=index, parent=parent, at=at, how=how, text=text, **{**fields, **rest})


def nodes(store: Store, tree_id: str) -> dict[int, TreeNode]:
    """A tree's nodes by index."""
    return {n.index: n for n in read_rows(store, tree_id, TreeNode)}


def marks(store: Store, tree_id: str) -> dict[int, TreeMark]:
    """Each marked or unmarked node's latest mark."""
    return {m.node: m for m in read_rows(store, tree_id, TreeMark)}


def context_of(tree: dict[int, TreeNode], node: int, at: int | None = None) -> str:
    """The text the model continues at a branch point: the path from the root to `node`, then
    the node's first `at` tokens (all of its text when `at` is None)."""
    here = _get(tree, node)
    own = here.text if at is None else "".join(here.tokens[:at])
    if here.parent is None:
        return own
    return context_of(tree, here.parent, here.at) + own


def _get(tree: dict[int, TreeNode], node: int) -> TreeNode:
    if node not in tree:
        raise InputError(f"the tree has no node {node}", fix=f"Nodes: 0 to {max(tree)}")
    return tree[node]


def _branch_point(tree: dict[int, TreeNode], node: int, at: int | None) -> int | None:
    """`at` checked against the node (a root has no tokens: its whole text only)."""
    here = _get(tree, node)
    if at is not None and not 0 <= at <= len(here.tokens):
        raise InputError(
            f"node {node} has {len(here.tokens)} tokens: cannot branch after {at} of them",
            fix=f"Give at between 0 and {len(here.tokens)}, or none for after the whole node",
        )
    return None if at == len(here.tokens) and here.tokens else at


def next_tokens(
    store: Store, model: PredictiveModel, tree_id: str, node: int, at: int | None, top_k: int = 10
) -> list[TokenProb]:
    """The top_k of the exact next-token distribution at a branch point (`model.next_token`)."""
    if not 1 <= top_k <= MAX_TOP_K:
        raise InputError(f"top_k {top_k} is out of range", fix=f"Give 1 to {MAX_TOP_K}")
    tree = nodes(store, tree_id)
    at = _branch_point(tree, node, at)
    return model.next_token(context_of(tree, node, at), top_k)


def sample_children(
    store: Store,
    model: PredictiveModel,
    tree_id: str,
    node: int,
    at: int | None,
    n: int,
    params: SamplingParams,
) -> list[TreeNode]:
    """Draw n children at a branch point and store them with their provenance. Their sample
    indices follow those already drawn there with the same seed, so drawing again adds new
    children instead of repeating the first ones."""
    if not 1 <= n <= MAX_CHILDREN:
        raise InputError(f"n = {n} children is out of range", fix=f"Give 1 to {MAX_CHILDREN}")
    with _write_lock:
        tree = nodes(store, tree_id)
        at = _branch_point(tree, node, at)
        start = sum(
            1
            for c in tree.values()
            if (c.parent, c.at, c.how, c.seed) == (node, at, "sample", params.seed)
        )
        samples = model.sample(context_of(tree, node, at), n, params, start=start)
        recorder = Recorder(store, tree_id)
        first = max(tree) + 1
        sampling = {**asdict(params), "stop": list(params.stop)}
        return [
            recorder.add_item(
                TreeNode,
                _node(
                    first + i,
                    node,
                    at,
                    "sample",
                    s.text,
                    tokens=s.tokens,
                    token_logprobs=s.token_logprobs,
                    model=model.spec,
                    params=sampling,
                    seed=params.seed,
                    sample_index=s.index,
                    finish_reason=s.finish_reason,
                ),
            )
            for i, s in enumerate(samples)
        ]


def pick_token(
    store: Store,
    model: PredictiveModel,
    tree_id: str,
    node: int,
    at: int | None,
    token_id: int,
    top_k: int = 10,
) -> TreeNode:
    """A child holding one chosen token of the top_k at a branch point; its probability is the
    model's, computed again here (never taken from the page)."""
    with _write_lock:
        tree = nodes(store, tree_id)
        at = _branch_point(tree, node, at)
        top = next_tokens(store, model, tree_id, node, at, top_k)
        ranks = [rank for rank, t in enumerate(top) if t.token_id == token_id]
        if not ranks:
            raise InputError(
                f"token id {token_id} is not among the top {top_k} next tokens of node {node}",
                fix="Pick a token from the distribution shown",
            )
        chosen = top[ranks[0]]
        child = _node(
            max(tree) + 1,
            node,
            at,
            "pick",
            chosen.token,
            tokens=[chosen.token],
            token_logprobs=[chosen.logprob],
            model=model.spec,
            params={"top_k": top_k, "rank": ranks[0], "token_id": token_id},
        )
        return Recorder(store, tree_id).add_item(TreeNode, child)


def mark(store: Store, tree_id: str, node: int, marked: bool = True, note: str = "") -> TreeMark:
    """Mark (or unmark) a node; every mark is kept, the latest one counts."""
    with _write_lock:
        _get(nodes(store, tree_id), node)
        index = len(read_rows(store, tree_id, TreeMark))
        return Recorder(store, tree_id).add_item(
            TreeMark, TreeMark(index=index, node=node, marked=marked, note=note)
        )


def export_tree(store: Store, tree_id: str) -> dict[str, Any]:
    """The whole tree as one JSON-ready record: the run, every node with its provenance and its
    context, and the marks in force."""
    run = store.get_run(tree_id)
    tree = nodes(store, tree_id)
    current = marks(store, tree_id)
    return {
        "run": {
            "id": run.id,
            "kind": run.kind,
            "model": run.model_spec,
            "params": run.params,
            "condpred_version": run.version,
            "created_at": run.created_at,
        },
        "nodes": [
            {
                **n.model_dump(mode="json"),
                "marked": n.index in current and current[n.index].marked,
                "note": current[n.index].note if n.index in current else "",
            }
            for n in tree.values()
        ],
    }
