"""A soft prompt: N virtual-token embeddings, put before the bare prompt, trained on the frozen
base model to minimise KL(tuned || base + soft prompt) on the tuned model's own responses.

A plain `torch.nn.Parameter` through the backend's `logprob_rows(..., virtual=)` rather than
PEFT's prompt tuning: the same forward pass that measures the KL trains it (one path, so the
trained prompt is measured exactly as it was trained), and it costs no dependency. Initialised
from the embeddings of N vocabulary tokens drawn with the seed (Lester et al. 2021's "sampled
vocabulary" start). The target is the tuned model's distribution cut to its `top_k` most
probable tokens and renormalised (the cross-entropy to it is the KL up to a constant); the
evaluation afterwards is the exact full-vocabulary KL.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from condpred.progress import progress_bar


@dataclass(frozen=True)
class Example:
    """One tuned response to train on: the base context's ids (the bare prompt), the response's
    ids, and the tuned model's top-k next tokens (ids and renormalised probabilities) per
    position."""

    context_ids: list[int]
    response_ids: list[int]
    target_ids: torch.Tensor
    target_probs: torch.Tensor


def target(rows: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    values, ids = rows.topk(min(top_k, rows.shape[-1]), -1)
    return ids, values.softmax(-1)


def train(
    base: Any,
    examples: Sequence[Example],
    *,
    tokens: int,
    steps: int,
    lr: float,
    batch: int,
    seed: int,
) -> dict[str, Any]:
    """Adam on the virtual embeddings only (the base model frozen): `steps` steps of `batch`
    examples drawn with the seed. `lr` is relative to the spread of the model's token embeddings
    (Adam moves each coordinate by about lr), so one setting suits models of any width. Returns
    the embeddings and the loss curve."""
    generator = torch.Generator().manual_seed(seed)
    table = base.model.get_input_embeddings()
    with torch.no_grad():
        start = torch.randint(0, base.model.config.vocab_size, (tokens,), generator=generator)
        init = table(start.to(base.device)).float()
        scale = float(table(torch.arange(min(4096, base.model.config.vocab_size))).std())
    virtual = torch.nn.Parameter(init.clone())
    optimiser = torch.optim.Adam([virtual], lr=lr * scale)
    frozen = [p for p in base.model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    losses: list[float] = []
    started = time.perf_counter()
    try:
        with progress_bar(steps, f"soft prompt: {tokens} virtual tokens") as advance:
            for _ in range(steps):
                picks = torch.randint(0, len(examples), (batch,), generator=generator).tolist()
                optimiser.zero_grad()
                total = 0.0
                for i in picks:
                    loss = _loss(base, examples[i], virtual) / batch
                    loss.backward()
                    total += float(loss.detach())
                optimiser.step()
                losses.append(total)
                advance(1)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return {
        "virtual": virtual.detach(),
        "losses": losses,
        "train_s": time.perf_counter() - started,
        "lr_scale": scale,
    }


def _loss(base: Any, example: Example, virtual: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the base model with the soft prompt to the tuned top-k target, per token."""
    rows = base.logprob_rows(example.context_ids, example.response_ids, virtual=virtual)
    chosen = rows.gather(-1, example.target_ids)
    return -(example.target_probs * chosen).sum(-1).mean()
