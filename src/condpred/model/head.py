"""Log-probabilities of given tokens without materialising a positions-by-vocabulary logit matrix.

Scoring needs, per state, the logits of the tokens read there and the log-sum-exp over the whole
vocabulary. With gemma-3's 262,144 tokens, the plain way (all logits, then `log_softmax`) writes
and re-reads about a gigabyte per thousand positions, and on a CPU those passes over memory cost
as much as the output projection itself. `OutputHead` instead walks the vocabulary in slices
small enough to stay in cache: each slice's logits come from one matrix product into a reused
buffer, and feed a running (online) log-sum-exp, a running maximum and the gathered target logits
before the next slice overwrites them. Same float32 arithmetic, no big allocation; exact within
float32 rounding.
"""

from __future__ import annotations

import torch

from condpred.model._packed import PackedWeight

#: Logit elements (positions-by-vocabulary slice) per product: ~16 MB in float32, fits in L3.
BLOCK_ELEMENTS = 4 * 1024 * 1024
#: The narrowest vocabulary slice: narrower products run far below the machine's peak.
MIN_SLICE = 1024
#: Positions per product; more amortises reading the weights, fewer keeps slices wide.
MAX_POSITIONS = 2048
#: Vocabulary ids per slice of a packed head (`OutputHead.pack`), the widest of those measured.
PACKED_SLICE = 16384


def decoder_of(model: torch.nn.Module) -> torch.nn.Module:
    """The transformer under the LM head, which returns hidden states (`base_model`); a model
    whose `base_model` is itself has no separate decoder, and gets no sliced head."""
    return model.base_model


class OutputHead:
    """The model's output projection (`hidden @ weight.T + bias`), evaluated slice by slice."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        self.weight = weight
        self.bias = bias
        self.packed: list[PackedWeight] | None = None

    def pack(self) -> None:
        """Sampling's products through MKL's packed weights (`_packed`), slice by slice: 64
        rows by gemma-3's 262k ids ran 15% faster so. Scoring's wide blocks gain nothing."""
        vocab = self.weight.shape[0]
        self.packed = [
            PackedWeight(self.weight[start : start + PACKED_SLICE])
            for start in range(0, vocab, PACKED_SLICE)
        ]

    @classmethod
    def of(cls, model: torch.nn.Module) -> OutputHead | None:
        """The head of a causal LM whose logits are exactly `lm_head(last_hidden_state)`.

        Some architectures transform logits after the projection (soft-capping, scaling); rather
        than list them, this checks the identity on a short input and returns None when it does
        not hold, so callers fall back to the model's own logits."""
        projection = model.get_output_embeddings()
        if not isinstance(projection, torch.nn.Linear) or decoder_of(model) is model:
            return None
        head = cls(projection.weight, projection.bias)
        device = projection.weight.device
        ids = torch.arange(1, 9, device=device).unsqueeze(0) % projection.out_features
        with torch.no_grad():
            expected = model(input_ids=ids).logits[0].float()
            hidden = decoder_of(model)(input_ids=ids).last_hidden_state[0]
            logits = torch.nn.functional.linear(hidden, head.weight, head.bias).float()
        return head if torch.allclose(logits, expected, rtol=1e-5, atol=1e-5) else None

    @torch.no_grad()
    def token_logprobs(
        self, hidden: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """For hidden states [n, d] and target ids [p], each read at hidden state `rows` [p]
        (ascending; by default target i at state i): log P(target) as float32 [p], and whether
        the target has the highest logit [p] (the greedy choice; an exact tie counts as greedy).
        A state with several targets (continuations that branch there) is projected once."""
        n = hidden.shape[0]
        if rows is None:
            rows = torch.arange(n, device=hidden.device)
        if n == 0:
            empty = torch.empty(0, device=hidden.device)
            return empty, empty.bool()
        size = -(-n // -(-n // MAX_POSITIONS))  # blocks of equal size, none over MAX_POSITIONS
        starts = list(range(0, n, size))
        bounds = torch.searchsorted(rows, torch.tensor([*starts, n], device=rows.device)).tolist()
        parts = [
            self._block(hidden[i : i + size], targets[a:b], rows[a:b] - i)
            for i, a, b in zip(starts, bounds[:-1], bounds[1:], strict=True)
        ]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _block(self, hidden: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor):
        n, vocab = hidden.shape[0], self.weight.shape[0]
        width = max(MIN_SLICE, BLOCK_ELEMENTS // max(n, 1))
        buffer = torch.empty(n, min(width, vocab), dtype=hidden.dtype, device=hidden.device)
        running_max = torch.full((n,), -torch.inf, device=hidden.device)
        running_sum = torch.zeros(n, device=hidden.device)
        chosen = torch.empty(targets.shape[0], device=hidden.device)
        for start in range(0, vocab, width):
            logits = self._slice_logits(hidden, start, min(start + width, vocab), buffer)
            inside = (targets >= start) & (targets < start + logits.shape[1])
            chosen[inside] = logits[rows[inside], targets[inside] - start]
            new_max = torch.maximum(running_max, logits.amax(-1))
            rescaled = running_sum * torch.exp(running_max - new_max)
            running_sum = rescaled + logits.sub_(new_max.unsqueeze(-1)).exp_().sum(-1)
            running_max = new_max
        log_norm = running_max + running_sum.log()
        return chosen - log_norm[rows], chosen >= running_max[rows]

    @torch.no_grad()
    def logits_into(self, hidden: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """All logits of float32 hidden states [n, d], written slice by slice into `out` [n, vocab]
        (reused by the caller): the same values as one product (checked bit for bit in the
        tests), a quarter faster on CPU, and no new n x vocab matrix per sampled token."""
        vocab = self.weight.shape[0]
        if self.packed is not None and self.packed[0].applies(hidden):
            for start, part in zip(range(0, vocab, PACKED_SLICE), self.packed, strict=True):
                bias = None if self.bias is None else self.bias[start : start + PACKED_SLICE]
                out[:, start : start + PACKED_SLICE].copy_(part.product(hidden, bias=bias))
            return out
        width = max(MIN_SLICE, BLOCK_ELEMENTS // max(hidden.shape[0], 1))
        for start in range(0, vocab, width):
            self._slice_logits(hidden, start, min(start + width, vocab), out[:, start:])
        return out

    def _slice_logits(self, hidden: torch.Tensor, start: int, end: int, buffer: torch.Tensor):
        """float32 logits of vocabulary ids [start, end), written into `buffer`."""
        out = buffer[:, : end - start]
        if self.bias is None:
            torch.mm(hidden, self.weight[start:end].t(), out=out)
        else:  # one fused product, as `F.linear` computes it (a separate add rounds differently)
            torch.addmm(self.bias[start:end], hidden, self.weight[start:end].t(), out=out)
        return out.float() if out.dtype != torch.float32 else out
