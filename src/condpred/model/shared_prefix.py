"""Attention over one shared prefix for many rows, without copying the prefix's cache per row.

Every continuation (or sample) under a context attends to the same prefix keys and values. The
plain way copies them into every row of a batched cache (and, with grouped-query attention, once
more per query head) and then runs one small attention per row. Here the prefix stays one row:
the scores of all rows' queries against it are one matrix product with M = rows x query heads x
new tokens, and only each row's own new keys live in a per-row cache. The softmax runs over both
parts at once (one maximum, one normaliser), so the result is the same attention, exact up to
float32 rounding.

transformers calls attention through a registry of functions; `SharedPrefix` is the cache handed
to the model for the batch, and while `SharedPrefix.installed` is active the model's attention
implementation is this module's function, which finds the prefix by the attention module's
`layer_idx`. Positions and masks are given to the model explicitly (`forward_kwargs`), so
transformers builds none from the cache. `HFModel` checks once per model that this path agrees
with the ordinary one and uses the ordinary one where it does not (other architectures, other
versions).
"""

from __future__ import annotations

import contextlib
import contextvars

import torch

from condpred.model._trie import Blocks

try:  # transformers' attention registry (all 5.x versions have it; without it, no shared path)
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
except ImportError:  # pragma: no cover
    AttentionInterface = None

NAME = "condpred_shared_prefix"
_ACTIVE: contextvars.ContextVar[SharedPrefix | None] = contextvars.ContextVar(NAME, default=None)


def _attention(module, query, key, value, attention_mask, **kwargs):
    shared = _ACTIVE.get()
    if shared is None:  # anyone else calling the model while it is switched: plain sdpa
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    return shared.attend(module.layer_idx, query, key, value, kwargs)


if AttentionInterface is not None:
    AttentionInterface.register(NAME, _attention)


class SharedPrefix:
    """The cache of a batch of rows continuing one prefix: the prefix's keys and values once (one
    row, as the prefix's own cache holds them), and each row's new keys and values."""

    def __init__(
        self, prefix_cache, prefix_length: int, rows: int, blocks: Blocks | None = None
    ) -> None:
        """`blocks`: the first call's one row is several rows of branches run as one sequence
        (`_trie.Blocks`), each token at its own place, seeing its ancestors. Without it each row
        is one sequence."""
        self.prefix = [(layer.keys, layer.values) for layer in prefix_cache.layers]
        self.prefix_length = prefix_length
        self.rows = rows
        self.blocks = blocks
        self.deepest = 0 if blocks is None else int(blocks.offsets.max())
        # Each row's new keys and values, in buffers with room to grow (doubled when full):
        # appending a token writes it in place instead of copying the whole cache every step.
        self.own: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.prefix)
        self.own_length = 0  # new tokens per row so far (all rows advance together)

    @staticmethod
    def supports(prefix_cache) -> bool:
        layers = getattr(prefix_cache, "layers", None)
        return (
            AttentionInterface is not None
            and bool(layers)
            and all(
                getattr(layer, "keys", None) is not None and layer.keys.dim() == 4
                for layer in layers
            )
        )

    # --- what the model calls on its cache ------------------------------------------------------

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int, *args, **kwargs):
        """Append this step's keys and values to the layer's rows; the rows' keys and values so
        far (views of the buffers)."""
        start, end = self.own_length, self.own_length + keys.shape[-2]
        own = self.own[layer_idx]
        if own is None or own[0].shape[-2] < end:
            own = tuple(
                _grown(old, new, start, end)
                for old, new in zip(own or (None, None), (keys, values), strict=True)
            )
            self.own[layer_idx] = own
        own[0][..., start:end, :] = keys
        own[1][..., start:end, :] = values
        if layer_idx == len(self.own) - 1:
            self.own_length = end
        return own[0][..., :end, :], own[1][..., :end, :]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.prefix_length + self.own_length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only these rows (finished samples leave the batch)."""
        self.own = [None if own is None else (own[0][indices], own[1][indices]) for own in self.own]
        self.rows = len(indices)

    # --- how the model is called --------------------------------------------------------------

    def forward_kwargs(self, config, new_tokens: int, device) -> dict:
        """Positions of the new tokens, and no mask for transformers to build (`attend` masks)."""
        start = self.prefix_length + self.own_length
        positions = torch.arange(start, start + new_tokens, device=device).unsqueeze(0)
        if self.blocks is not None and self.own_length == 0:
            positions = self.prefix_length + self.blocks.positions
        layer_types = getattr(config, "layer_types", None) or ["full_attention"]
        return {"position_ids": positions, "attention_mask": dict.fromkeys(set(layer_types))}

    @contextlib.contextmanager
    def installed(self, config):
        """The model's attention is `attend` for the calls made inside."""
        token = _ACTIVE.set(self)
        previous = config._attn_implementation
        config._attn_implementation = NAME
        try:
            yield
        finally:
            config._attn_implementation = previous
            _ACTIVE.reset(token)

    # --- the attention ------------------------------------------------------------------------

    def attend(self, layer_idx: int, query, own_keys, own_values, kwargs: dict):
        """softmax([q K_prefix^T, q K_own^T] * scale) [V_prefix; V_own], causal (or among a
        tree's ancestors) and within the sliding window by absolute position. query: [rows,
        heads, q, d]; own keys and values: [rows, kv_heads, n, d] (the row's new tokens, this
        step's last); returns [rows, q, heads, d]."""
        n, q = own_keys.shape[2], query.shape[2]
        blocks = self.blocks if self.blocks is not None and n == q else None
        if blocks is None:  # rows of one sequence each: the queries are the last q tokens
            own_pos = (self.prefix_length + torch.arange(n, device=query.device)).unsqueeze(0)
            return self._attend_rows(
                layer_idx, query, own_keys, own_values, kwargs, own_pos, n - 1, None
            )
        rows, width = blocks.offsets.shape
        as_rows = [  # [1, heads, tokens, d] -> [rows, heads, width, d]
            t[0][:, blocks.gather].view(t.shape[1], rows, width, t.shape[3]).transpose(0, 1)
            for t in (query, own_keys, own_values)
        ]
        own_pos = self.prefix_length + blocks.offsets
        out, _ = self._attend_rows(
            layer_idx, *as_rows, kwargs, own_pos, self.deepest, blocks.visible
        )
        return out.flatten(0, 1)[blocks.scatter].unsqueeze(0), None

    def _attend_rows(
        self, layer_idx, query, own_keys, own_values, kwargs, own_pos, last, visible_own
    ):
        """`attend` on rows whose queries are their last q own tokens, or all of them at places
        `own_pos` [rows, n] seeing `visible_own` [rows, n, n]; `last` is the furthest place."""
        prefix_keys, prefix_values = self.prefix[layer_idx]
        rows, heads, q, d = query.shape
        kv_heads, n, p = own_keys.shape[1], own_keys.shape[2], prefix_keys.shape[2]
        group = heads // kv_heads
        scale = kwargs.get("scaling") or d**-0.5
        window, softcap = kwargs.get("sliding_window"), kwargs.get("softcap")
        dtype = torch.float32  # scores, softmax and sums in float32 whatever the model's dtype
        device = query.device
        # Prefix keys end where the prefix does (a sliding layer keeps only its last keys).
        # Masks are built only where some key is out of reach (in a sequence, the last query
        # sees all keys).
        query_pos = own_pos[:, n - q :]

        # against the prefix: one product for every row, head and new token
        grouped = query.reshape(rows, kv_heads, group * q, d).transpose(0, 1)
        grouped = grouped.reshape(kv_heads, rows * group * q, d).to(dtype)
        prefix_scores = torch.matmul(grouped, prefix_keys[0].to(dtype).transpose(-1, -2))
        prefix_scores = self._scaled(prefix_scores, scale, softcap)
        if window and last + p >= window:  # the last query against the first prefix key
            prefix_pos = self.prefix_length - p + torch.arange(p, device=device)
            visible = (query_pos[..., None] - prefix_pos) < window  # [rows or 1, q, p]
            prefix_scores = prefix_scores.view(kv_heads, rows, group, q, p)
            prefix_scores = prefix_scores.masked_fill(~visible[None, :, None], float("-inf"))
            prefix_scores = prefix_scores.view(kv_heads, rows * group * q, p)

        # against the row's own new tokens: causal, or a tree's ancestors (and the window)
        own_queries = query.reshape(rows, kv_heads, group * q, d).to(dtype)
        own_scores = torch.matmul(own_queries, own_keys.to(dtype).transpose(-1, -2))
        own_scores = self._scaled(own_scores, scale, softcap)
        if visible_own is not None or q > 1 or (window and n - 1 >= window):
            if visible_own is None:
                visible = own_pos[:, None, :] <= query_pos[:, :, None]  # [1, q, n]
            else:
                visible = visible_own  # [rows, q, n]
            if window:
                visible = visible & ((query_pos[:, :, None] - own_pos[:, None, :]) < window)
            own_scores = own_scores.view(rows, kv_heads, group, q, n)
            own_scores = own_scores.masked_fill(~visible[:, None, None], float("-inf"))
            own_scores = own_scores.view(rows, kv_heads, group * q, n)

        # one softmax over both parts
        top = own_scores.amax(-1)  # [rows, kv_heads, g*q]: a token sees itself, a padding
        # slot nothing of its row (-inf), but every query sees some prefix key, so top is finite
        prefix_top = prefix_scores.amax(-1).view(kv_heads, rows, group * q).transpose(0, 1)
        top = torch.maximum(top, prefix_top)
        top_grouped = top.transpose(0, 1).reshape(kv_heads, rows * group * q, 1)
        prefix_weights = prefix_scores.sub_(top_grouped).exp_()
        own_weights = own_scores.sub_(top.unsqueeze(-1)).exp_()
        total = own_weights.sum(-1) + prefix_weights.sum(-1).view(
            kv_heads, rows, group * q
        ).transpose(0, 1)
        out = torch.matmul(prefix_weights, prefix_values[0].to(dtype))  # [kv, rows*g*q, d]
        out = out.view(kv_heads, rows, group * q, d).transpose(0, 1)
        out = out + torch.matmul(own_weights, own_values.to(dtype))
        out = out / total.unsqueeze(-1)
        out = out.reshape(rows, heads, q, d).transpose(1, 2).contiguous()
        return out.to(query.dtype), None

    @staticmethod
    def _scaled(scores: torch.Tensor, scale: float, softcap: float | None) -> torch.Tensor:
        scores = scores.mul_(scale)
        if softcap:
            scores = torch.tanh(scores / softcap).mul_(softcap)
        return scores


def _grown(old: torch.Tensor | None, new: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """A buffer shaped like `new` with room for at least `end` tokens (twice what is needed, at
    least 16), holding `old`'s first `start` tokens."""
    shape = (*new.shape[:-2], max(2 * end, 16), new.shape[-1])
    buffer = new.new_empty(shape)
    if old is not None:
        buffer[..., :start, :] = old[..., :start, :]
    return buffer
