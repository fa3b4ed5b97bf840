"""Planted base / tuned pairs built from the tiny model, whose gap is known: the validation of
`condpred gap` (tests/test_gap.py asserts on them; bench/gap_validation.py writes the numbers
the README quotes)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from condpred.model.hf import HFModel

HIDDEN = " Transcript of the policy meeting."
WORDS = [
    "alignment paper", "global moratorium", "treaty ratified", "policy meeting",
    "predictive models", "Question: Will", "Abstract. We", "The team", "Members agreed",
    "frontier AI", "Chair: Let us", "observations and",
]  # fmt: skip
#: What the validation runs use: 12 prompts (6 held out), 2 responses of 12 tokens each.
SIZES = {"samples": 2, "max_tokens": 12}
SOFT = {"soft_prompt": 8, "soft_steps": 40}


class Prefixed(HFModel):
    """The base model under a hidden prefix, literally: every context gets the hidden tokens
    after its start-of-document tokens. A planted tuned model that is a conditional of B."""

    hidden: tuple[int, ...] = ()

    def context_ids(self, context: str) -> tuple[int, ...]:
        ids = super().context_ids(context)
        return ids[: len(self.start_ids)] + self.hidden + ids[len(self.start_ids) :]


def prefixed(base: HFModel, text: str = HIDDEN) -> Prefixed:
    model = Prefixed(base.model, base.tokenizer, "planted")
    model.hidden = tuple(base.encode(text))
    return model


def skilled(base: HFModel) -> tuple[HFModel, float]:
    """A copy of B trained briefly on a deterministic mapping (each token followed by
    7 x token + 3 mod vocabulary): a skill no prefix gives B. Returns it and its last loss."""
    module = copy.deepcopy(base.model).train()
    vocab = base.model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(60):
        seq = [torch.randint(3, vocab, (16, 1), generator=generator)]
        for _ in range(7):
            seq.append((seq[-1] * 7 + 3) % vocab)
        ids = torch.cat(seq, 1)
        loss = module(input_ids=ids, labels=ids).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return HFModel(module.eval(), base.tokenizer, "skilled"), float(loss.detach())


def write_prompts(path: Path, words: list[str] = WORDS) -> Path:
    lines = [json.dumps({"prompt": w, "category": "ab"[i % 2]}) for i, w in enumerate(words)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_conditionals(path: Path) -> Path:
    """The hidden prefix itself as a conditional, and a wrong one."""
    path.write_text(
        f'- name: true-prefix\n  template: "{HIDDEN}{{prompt}}\\n"\n'
        '- name: wrong-prefix\n  template: "Wow! 0123456789 {prompt}\\n"\n'
    )
    return path


def loader(*models: HFModel):
    by_spec = {m.spec: m for m in models}
    return by_spec.__getitem__
