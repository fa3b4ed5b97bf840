"""The gap experiment kind: how much of KL(tuned || base) does a conditional close?

Three stored phases, each resumable item by item (`condpred resume ID`):
1. `gap`: per prompt, K responses sampled from the tuned model (its chat template, temperature 1),
   and for the bare prompt and each user conditional the exact KL and base rank of every token;
2. `gap_soft_prompt`: a soft prompt trained on the training prompts' responses (one item);
3. `gap_soft`: the soft prompt's KL and ranks on the held-out prompts.
The table (`summarise`) is computed on the held-out prompts, so the soft prompt and the
conditional chosen as best on the training prompts are not scored on what chose them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from condpred.condition import Conditional
from condpred.errors import InputError
from condpred.experiments.gap import measure
from condpred.experiments.gap.data import (
    BARE,
    Prompt,
    check_vocabularies,
    fill,
    load_conditionals,
    load_prompts,
    split,
    tuned_context,
)
from condpred.experiments.runner import (
    Item,
    Row,
    expect_kind,
    item_seed,
    open_run,
    read_rows,
    recording,
    resumable,
)
from condpred.model.base import PredictiveModel, SamplingParams
from condpred.model.registry import load_model
from condpred.store import Store

if TYPE_CHECKING:  # torch loads with a model, not with the CLI
    import torch

KIND = "gap"
SOFT = "soft-prompt"
BEST = "best-of-search"


class GapRow(Row):
    """One prompt: the tuned model's responses (text, token ids and texts) and, per conditional
    of the base model, each token's exact KL(T || B | c) in nats and its base rank."""

    table: ClassVar[str] = "gap"

    id: str
    category: str
    split: str  # "train" or "held-out"
    responses: list[str]
    ids: list[list[int]]
    tokens: list[list[str]]
    kl: dict[str, list[list[float]]]
    ranks: dict[str, list[list[int]]]
    sample_s: float
    measure_s: float


class SoftPromptRow(Row):
    """The trained soft prompt (index 0): its embeddings and its training loss curve."""

    table: ClassVar[str] = "gap_soft_prompt"

    virtual: list[list[float]]
    losses: list[float]
    examples: int
    train_s: float


class SoftEvalRow(Row):
    """One held-out prompt (index = the prompt's) under the soft prompt: KL and ranks."""

    table: ClassVar[str] = "gap_soft"

    kl: list[list[float]]
    ranks: list[list[int]]


@dataclass
class GapResult:
    run_id: str | None
    summary: dict[str, Any]


def run_gap(
    base: str,
    tuned: str,
    prompts: str,
    *,
    conditionals: str | None = None,
    soft_prompt: int = 8,
    samples: int = 2,
    max_tokens: int = 64,
    held_out: float = 0.5,
    soft_steps: int = 60,
    soft_lr: float = 0.1,
    soft_batch: int = 4,
    soft_top_k: int = 256,
    seed: int = 0,
    store: Store | None = None,
    load: Callable[[str], PredictiveModel] = load_model,
) -> GapResult:
    """Measure the gap between `tuned` and `base` on the prompts of a JSONL file (see the module
    docstring); stored as a run of kind 'gap' when `store` is given."""
    if samples < 1 or max_tokens < 1 or soft_prompt < 0 or soft_steps < 1 or soft_batch < 1:
        raise InputError(
            "need --samples >= 1, --max-tokens >= 1, --soft-prompt >= 0 and soft steps and "
            "batch >= 1",
            source="gap",
        )
    if not 0 < held_out < 1:
        raise InputError(f"--held-out must lie in (0, 1) (got {held_out})", source="--held-out")
    items, sha256 = load_prompts(prompts)
    user = load_conditionals(conditionals)
    models = _load_pair(base, tuned, load)
    searched = len(user) >= 2
    train, test = (
        split(len(items), held_out, seed)
        if soft_prompt or searched
        else ([], list(range(len(items))))
    )
    params = {
        "base": base,
        "tuned": tuned,
        "prompts": str(prompts),
        "prompts_sha256": sha256,
        "n_prompts": len(items),
        "conditionals": [{"name": "none", "template": BARE}, *user],
        "conditionals_file": str(conditionals) if conditionals else None,
        "train": train,
        "held_out": test,
        "soft_prompt": {
            "tokens": soft_prompt,
            "steps": soft_steps,
            "lr": soft_lr,
            "batch": soft_batch,
            "top_k": soft_top_k,
        },
        "sampling": {"samples": samples, "max_tokens": max_tokens, "temperature": 1.0},
        "tuned_chat_template": getattr(models[1].tokenizer, "chat_template", None),
        "tuned_context_example": tuned_context(models[1], items[0]),
    }
    run_id = open_run(store, KIND, f"{base},{tuned}", params, seed)
    return _execute(run_id, params, items, models, store, seed)


@resumable(KIND, rows=[GapRow, SoftPromptRow, SoftEvalRow])
def resume_gap(
    run_id: str, store: Store, load: Callable[[str], PredictiveModel] = load_model
) -> GapResult:
    """Finish an interrupted run: the same prompts, split, seeds; only the missing items."""
    run = expect_kind(store.get_run(run_id), KIND)
    p = run.params
    items, sha256 = load_prompts(p["prompts"])
    if sha256 != p["prompts_sha256"]:
        raise InputError(
            "the prompts file changed since the run was made",
            source=p["prompts"],
            fix="Resume with the file as it was, or start a new run",
        )
    models = _load_pair(p["base"], p["tuned"], load)
    store.reopen_run(run.id)
    return _execute(run.id, p, items, models, store, run.seed or 0)


def _load_pair(
    base: str, tuned: str, load: Callable[[str], PredictiveModel]
) -> tuple[PredictiveModel, PredictiveModel]:
    """Both models (one object when they are the same spec), their vocabularies checked."""
    b = load(base)
    t = b if tuned == base else load(tuned)
    check_vocabularies(b, t)
    return b, t


def _execute(
    run_id: str | None,
    params: dict[str, Any],
    items: list[Prompt],
    models: tuple[PredictiveModel, PredictiveModel],
    store: Store | None,
    seed: int,
) -> GapResult:
    import torch

    from condpred.experiments.gap import softprompt

    base, tuned = models
    s = params["sampling"]
    held_out = set(params["held_out"])

    def tuned_rows(prompt: Prompt, ids: list[int]) -> torch.Tensor:
        return tuned.logprob_rows(tuned.context_ids(tuned_context(tuned, prompt)), ids)

    def item(index: int) -> Item:
        prompt = items[index]
        context = tuned_context(tuned, prompt)
        started = time.perf_counter()
        sampled = tuned.sample(
            context,
            s["samples"],
            SamplingParams(
                max_new_tokens=s["max_tokens"], temperature=1.0, seed=item_seed("gap", seed, index)
            ),
        )
        measured = time.perf_counter()
        ids = [tuned.encode(x.text) for x in sampled]
        kl: dict[str, list[list[float]]] = {c["name"]: [] for c in params["conditionals"]}
        ranks: dict[str, list[list[int]]] = {c["name"]: [] for c in params["conditionals"]}
        for response in ids:
            rows = tuned_rows(prompt, response)
            for c in params["conditionals"]:
                base_ids = base.context_ids(fill(c["template"], prompt))
                k, r = measure.compare(rows, base.logprob_rows(base_ids, response))
                kl[c["name"]].append(k)
                ranks[c["name"]].append(r)
        row = GapRow(
            index=index,
            id=prompt.id,
            category=prompt.category,
            split="held-out" if index in held_out else "train",
            responses=[x.text for x in sampled],
            ids=ids,
            tokens=[[tuned.tokenizer.decode([i]) for i in r] for r in ids],
            kl=kl,
            ranks=ranks,
            sample_s=measured - started,
            measure_s=time.perf_counter() - measured,
        )
        framing = Conditional(prefix=context, extra={"gap": "tuned", "prompt": prompt.id})
        return Item(row, conditional=(framing.to_yaml(), context, None), samples=sampled)

    soft = params["soft_prompt"]
    with recording(store, run_id) as recorder:
        started = time.perf_counter()
        label = f"gap: {params['tuned']} against {params['base']}"
        new = recorder.add_items(GapRow, range(len(items)), item, label)
        rows = read_rows(store, run_id, GapRow) if store is not None else new
        recorder.timings["measure_s"] = time.perf_counter() - started
        soft_rows: list[SoftEvalRow] = []
        if soft["tokens"]:
            by_index = {r.index: r for r in rows}

            def fit(_: int) -> SoftPromptRow:
                examples = [
                    softprompt.Example(
                        base.context_ids(fill(BARE, items[i])),
                        ids,
                        *softprompt.target(tuned_rows(items[i], ids), soft["top_k"]),
                    )
                    for i in params["train"]
                    for ids in by_index[i].ids
                    if ids
                ]
                if not examples:
                    raise InputError(
                        "the tuned model gave only empty responses on the training prompts",
                        source="--prompts",
                        fix="Raise --max-tokens or give more prompts",
                    )
                out = softprompt.train(
                    base,
                    examples,
                    tokens=soft["tokens"],
                    steps=soft["steps"],
                    lr=soft["lr"],
                    batch=soft["batch"],
                    seed=seed,
                )
                return SoftPromptRow(
                    index=0,
                    virtual=out["virtual"].tolist(),
                    losses=out["losses"],
                    examples=len(examples),
                    train_s=out["train_s"],
                )

            trained = recorder.add_items(SoftPromptRow, [0], fit, "soft prompt")
            if store is not None:
                trained = read_rows(store, run_id, SoftPromptRow)
            virtual = torch.tensor(trained[0].virtual)

            def evaluate(index: int) -> SoftEvalRow:
                prompt, kl, ranks = items[index], [], []
                context_ids = base.context_ids(fill(BARE, prompt))
                for ids in by_index[index].ids:
                    rows_b = base.logprob_rows(context_ids, ids, virtual=virtual)
                    k, r = measure.compare(tuned_rows(prompt, ids), rows_b)
                    kl.append(k)
                    ranks.append(r)
                return SoftEvalRow(index=index, kl=kl, ranks=ranks)

            soft_rows = recorder.add_items(
                SoftEvalRow, params["held_out"], evaluate, "soft prompt on held-out prompts"
            )
            if store is not None:
                soft_rows = read_rows(store, run_id, SoftEvalRow)
    return GapResult(run_id, summarise(rows, soft_rows, params, seed, trained_info(store, run_id)))


def trained_info(store: Store | None, run_id: str | None) -> dict[str, Any] | None:
    if store is None:
        return None
    trained = read_rows(store, run_id, SoftPromptRow)
    if not trained:
        return None
    t = trained[0]
    return {"losses": t.losses, "examples": t.examples, "train_s": t.train_s}


# --- analysis -----------------------------------------------------------------------------------


def summarise(
    rows: Sequence[GapRow],
    soft_rows: Sequence[SoftEvalRow],
    params: dict[str, Any],
    seed: int = 0,
    soft_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `--out` contract: `rows` (one per conditional, on the held-out prompts), the same per
    category, KL and shifted ratio by position and by token class, the chosen conditional of the
    search, the soft prompt's training, and the sampling throughput."""
    evaluated = set(params["held_out"])
    gap_rows = sorted((r for r in rows if r.index in evaluated), key=lambda r: r.index)
    kl = {r.index: dict(r.kl) for r in gap_rows}
    ranks = {r.index: dict(r.ranks) for r in gap_rows}
    for s in soft_rows:
        if s.index in kl:
            kl[s.index][SOFT], ranks[s.index][SOFT] = s.kl, s.ranks
    names = [c["name"] for c in params["conditionals"]]
    chosen = _best_on_train(rows, params, names[1:]) if len(names) > 2 else None

    def table(subset: list[GapRow]) -> list[dict[str, Any]]:
        out = []
        entries = [(n, n) for n in names]
        if chosen:
            entries.append((BEST, chosen))
        if soft_rows:
            entries.append((SOFT, SOFT))
        for label, name in entries:
            have = [r for r in subset if name in kl[r.index]]
            if not have:
                continue
            totals = [measure.per_prompt(kl[r.index][name], ranks[r.index][name]) for r in have]
            none = [measure.per_prompt(kl[r.index]["none"], ranks[r.index]["none"]) for r in have]
            row = measure.table_row(label, totals, none, seed)
            if label == BEST:
                row["chosen"] = chosen
            out.append(row)
        return out

    categories = sorted({r.category for r in gap_rows})
    tokens = sum(len(t) for r in rows for t in r.ids)
    seconds = sum(r.sample_s for r in rows)
    return {
        "rows": table(gap_rows),
        "by_category": {c: table([r for r in gap_rows if r.category == c]) for c in categories}
        if len(categories) > 1
        else {},
        "by_position": _by_position(gap_rows, kl, ranks),
        "by_class": _by_class(gap_rows, kl, ranks),
        "chosen_by_search": chosen,
        "prompts": {"total": params["n_prompts"], "evaluated": len(gap_rows)},
        "split": {"train": params["train"], "held_out": params["held_out"]},
        "soft_prompt": {**params["soft_prompt"], **(soft_info or {})},
        "sampling": {
            **params["sampling"],
            "tokens": tokens,
            "tokens_per_s": tokens / seconds if seconds else None,
        },
    }


def _best_on_train(rows: Sequence[GapRow], params: dict[str, Any], names: list[str]) -> str | None:
    """The user conditional with the least KL per token on the training prompts."""
    train = [r for r in rows if r.index in set(params["train"])]
    if not train or not names:
        return None

    def kl_per_token(name: str) -> float:
        totals = [measure.per_prompt(r.kl[name], r.ranks[name]) for r in train]
        tokens = sum(t["tokens"] for t in totals)
        return sum(t["kl"] for t in totals) / tokens if tokens else float("inf")

    return min(names, key=kl_per_token)


def _by_position(rows: list[GapRow], kl: dict, ranks: dict) -> dict[str, list[dict[str, Any]]]:
    """Mean KL and shifted ratio at each response position, per conditional (where shifts fall:
    URIAL found them mostly early)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in {n for r in rows for n in kl[r.index]}:
        sums: dict[int, list[float]] = {}
        for r in rows:
            if name not in kl[r.index]:
                continue
            for ks, rs in zip(kl[r.index][name], ranks[r.index][name], strict=True):
                for t, (k, rank) in enumerate(zip(ks, rs, strict=True)):
                    acc = sums.setdefault(t, [0.0, 0.0, 0.0])
                    acc[0] += k
                    acc[1] += rank > measure.SHIFTED_ABOVE
                    acc[2] += 1
        out[name] = [
            {"position": t, "kl": a[0] / a[2], "shifted_ratio": a[1] / a[2], "tokens": int(a[2])}
            for t, a in sorted(sums.items())
        ]
    return dict(sorted(out.items()))


def _by_class(rows: list[GapRow], kl: dict, ranks: dict) -> list[dict[str, Any]]:
    """Shifted ratio and mean KL under the bare prompt by kind of token."""
    sums: dict[str, list[float]] = {}
    for r in rows:
        for tokens, ks, rs in zip(
            r.tokens, kl[r.index]["none"], ranks[r.index]["none"], strict=True
        ):
            for token, k, rank in zip(tokens, ks, rs, strict=True):
                acc = sums.setdefault(measure.token_class(token), [0, 0, 0])
                acc[0] += k
                acc[1] += rank > measure.SHIFTED_ABOVE
                acc[2] += 1
    return [
        {"class": c, "tokens": int(a[2]), "kl": a[0] / a[2], "shifted_ratio": a[1] / a[2]}
        for c, a in sorted(sums.items())
    ]
