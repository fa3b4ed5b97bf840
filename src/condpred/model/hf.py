"""The `hf` backend: any transformers causal LM, on CPU or CUDA, exact and prefix-cached.

What makes it fast without giving up exactness:
- The context is run through the model **once**: its last logits give every continuation's (or
  sample's) first token, and its KV cache serves every row after it (`SharedPrefix`: one copy
  read by all rows), so cost grows with new tokens only.
- Scoring runs each state the continuations share once (`_trie`), and reads the output head
  only at states that predict a token, vocabulary slice by slice (`head.OutputHead`): with a
  262k-token vocabulary the output projection costs more than the rest of a small model.
- On CPU in float32 the linear layers multiply through MKL's packed weights (`_packed`).
Log-probabilities agree with a plain full-sequence forward pass within 1e-4 in float32 at any batch
size; `tests/test_hf_backend.py` checks exactly that.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from condpred.errors import InputError
from condpred.model._packed import can_pack, linears, pack_linears
from condpred.model._threads import ThreadPolicy
from condpred.model._trie import CONTEXT, Blocks, Layout, lay_out
from condpred.model.base import (
    BatchedScoring,
    Sample,
    SamplingParams,
    Score,
    ScoreRequest,
    TokenProb,
    sample_seed,
    split_trailing_whitespace,
)
from condpred.model.head import OutputHead, decoder_of
from condpred.model.shared_prefix import SharedPrefix
from condpred.progress import progress_bar

#: Slots in a row of branches (`lay_out`): room for several short continuations side by side;
#: the tree mask's attention within a row grows with its square.
TREE_WIDTH = 64


@dataclass(frozen=True)
class _Request:
    """One continuation to score, tokenised the way lm-evaluation-harness does."""

    index: int
    context_ids: tuple[int, ...]
    continuation_ids: tuple[int, ...]
    continuation: str


@dataclass(frozen=True)
class _Prefix:
    """A context's KV cache, how many tokens it holds (a sliding-window layer keeps fewer), and
    its next-token logits (float32, [vocab]): the one state every continuation starts from."""

    cache: object
    length: int
    logits: torch.Tensor


def pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _cache_name(model: torch.nn.Module) -> str:
    """The name transformers gives the KV cache, as a forward argument and an output field: `cache`
    from 5.2x on (`past_key_values` warns there and goes in 5.40), `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class HFModel(BatchedScoring):
    """A transformers model behind the `PredictiveModel` protocol."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        spec: str,
        *,
        max_batch_tokens: int = 2048,
        max_batch_samples: int = 64,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.spec = spec
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_samples = max_batch_samples
        self.device = next(model.parameters()).device
        self.threads = ThreadPolicy(active=self.device.type == "cpu")
        self.start_ids = self._start_ids()
        self.eos_ids = self._eos_ids()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.head = OutputHead.of(self.model)
        self.decoder = decoder_of(self.model)
        self.packed = self._pack()
        self.cache_name = _cache_name(self.model)
        self.shared_prefix = False
        self.shared_prefix = self._shared_prefix_works()

    def _pack(self) -> bool:
        """On CPU in float32, the linear layers and the sliced head through MKL's packed
        weights (`_packed`), where the memory for the copies is free."""
        head = self.model.get_output_embeddings() if self.head is not None else None
        layers = linears(self.model, leave_out=head)
        weights = [layer.weight for layer in layers] + ([head.weight] if head else [])
        if not can_pack(weights):
            return False
        pack_linears(layers)
        if self.head is not None:
            self.head.pack()
        return True

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        spec: str | None = None,
        device: str | None = None,
        dtype: torch.dtype = torch.float32,
        **kwargs: int,
    ) -> HFModel:
        """Load a Hugging Face model id or local directory (float32 by default: exact on CPU)."""
        transformers.utils.logging.disable_progress_bar()  # condpred draws its own bars
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
        model.to(pick_device(device))
        return cls(model, tokenizer, spec or str(name_or_path), **kwargs)

    # --- tokenisation -------------------------------------------------------------------------

    def _start_ids(self) -> tuple[int, ...]:
        """The special tokens the tokenizer itself puts at a document's start (e.g. Gemma's BOS;
        nothing for GPT-2 or SmolLM2). Tokens it appends at the end are not a start."""
        with_special = self.tokenizer("a", add_special_tokens=True).input_ids
        plain = self.tokenizer("a", add_special_tokens=False).input_ids
        for start in range(len(with_special) - len(plain) + 1):
            if with_special[start : start + len(plain)] == plain:
                return tuple(with_special[:start])
        return ()

    def _eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        return {i for i in ids if i is not None}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def context_ids(self, context: str) -> tuple[int, ...]:
        """The start-of-document rule, the same on every backend: a context begins with exactly
        what the tokenizer adds by itself, so scores equal a plain forward pass of the tokenizer's
        own encoding. An empty context still needs a token to predict from: BOS, else EOS (as
        lm-evaluation-harness does)."""
        if context:
            return self.start_ids + tuple(self.encode(context))
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        if not self.start_ids and bos is None and eos is None:
            raise InputError(
                f"{self.spec}'s tokenizer has neither a BOS nor an EOS token, so an empty "
                "context has nothing to start from",
                source="--model",
                fix="Give a non-empty context (e.g. a newline)",
            )
        return self.start_ids or (bos if bos is not None else eos,)

    @property
    def context_limit(self) -> int | None:
        """The most tokens the model attends to (its position embeddings), when it says."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        return limit if isinstance(limit, int) and limit > 0 else None

    def check_context(self, context: str, new_tokens: int = 0) -> None:
        """Refuse a context (plus `new_tokens` to generate) longer than the context window, with
        the numbers, before a run starts: past it the model's output means nothing (and a long
        enough context asks for gigabytes)."""
        self._check_length(len(self.context_ids(context)), new_tokens)

    def _check_length(self, tokens: int, new_tokens: int = 0) -> None:
        limit = self.context_limit
        if limit is None or tokens + new_tokens <= limit:
            return
        asked = f"{tokens} tokens" + (f" + {new_tokens} new tokens" if new_tokens else "")
        raise InputError(
            f"the text is {asked}, more than the context window of {self.spec} ({limit} tokens)",
            source="--model",
            fix="Shorten the conditional (fewer or shorter premises, a shorter prefix)"
            + (" or lower --max-tokens" if new_tokens else "")
            + ", or use a model with a longer context",
        )

    def _request(self, index: int, context: str, continuation: str) -> _Request:
        """Split as lm-evaluation-harness does: trailing spaces of the context move onto the
        continuation, and context+continuation are encoded together (so tokens merge naturally)."""
        context, continuation = split_trailing_whitespace(context, continuation)
        context_ids = self.context_ids(context)
        whole = self.context_ids(context + continuation) if context else None
        if whole is None:  # empty context: the continuation is the whole document
            cont_ids = tuple(self.encode(continuation))
            self._check_length(len(context_ids) + len(cont_ids))
            return _Request(index, context_ids, cont_ids, continuation)
        self._check_length(len(whole))
        return _Request(index, whole[: len(context_ids)], whole[len(context_ids) :], continuation)

    def _token_texts(self, ids: Sequence[int]) -> list[str]:
        return [self.tokenizer.decode([i]) for i in ids]

    # --- the KV cache of a shared context -----------------------------------------------------

    @torch.no_grad()
    def _prefix_cache(self, context_ids: Sequence[int]) -> _Prefix:
        """Run the context once: its cache serves every row that continues it, and its last
        logits give every row's first token."""
        ids = torch.tensor([list(context_ids)], device=self.device)
        out, cache = self.forward(self.model, ids, None, logits_to_keep=1)
        return _Prefix(cache, len(context_ids), out.logits[0, -1].float())

    def forward(self, module: torch.nn.Module, input_ids: torch.Tensor, cache, **kwargs):
        """One forward pass of `module` (the model, or its decoder) continuing `cache`;
        returns the output and the grown cache."""
        self.threads.apply()
        if isinstance(cache, SharedPrefix):
            kwargs.update(cache.forward_kwargs(self.model.config, input_ids.shape[1], self.device))
            with cache.installed(self.model.config):
                out = module(
                    input_ids=input_ids, use_cache=True, **{self.cache_name: cache}, **kwargs
                )
            return out, cache
        out = module(input_ids=input_ids, use_cache=True, **{self.cache_name: cache}, **kwargs)
        return out, getattr(out, self.cache_name)

    def _expand(self, prefix: _Prefix, batch_size: int, blocks: Blocks | None = None):
        """The cache of `batch_size` rows continuing `prefix`. Where the model allows it, the prefix
        stays one row that every row's attention reads (`SharedPrefix`, with rows of branches as
        one sequence if `blocks` are given); else the rows get a batched cache whose prefix part
        is broadcast views of the one row, and the first forward pass copies it once per row as
        it appends the new keys."""
        cache = prefix.cache
        if self.shared_prefix and SharedPrefix.supports(cache):
            return SharedPrefix(cache, prefix.length, batch_size, blocks)
        layers = getattr(cache, "layers", None)
        if layers is None or not all(hasattr(layer, "keys") for layer in layers):
            expanded = copy.deepcopy(cache)  # a cache of another layout: copy it row by row
            expanded.batch_repeat_interleave(batch_size)
            return expanded
        expanded = copy.copy(cache)
        expanded.layers = []
        for layer in layers:
            view = copy.copy(layer)
            if getattr(layer, "keys", None) is not None and layer.keys.numel():
                view.keys = layer.keys.expand(batch_size, *layer.keys.shape[1:])
                view.values = layer.values.expand(batch_size, *layer.values.shape[1:])
            expanded.layers.append(view)
        return expanded

    @torch.no_grad()
    def _shared_prefix_works(self) -> bool:
        """Whether `SharedPrefix` gives this model's own hidden states (checked once, on short
        inputs; transformers versions and architectures differ in how they call attention): for
        branches side by side in one row, and for rows growing over two calls."""
        vocab = self.model.config.vocab_size
        prefix = [i % vocab for i in (5, 9, 2, 7, 3, 8, 4)]
        branches = [[i % vocab for i in b] for b in ([6, 1, 10], [6, 1, 12], [11, 12, 13])]

        def plain(branch: list[int]) -> torch.Tensor:
            ids = torch.tensor([prefix + branch], device=self.device)
            return self.decoder(input_ids=ids).last_hidden_state[0, -len(branch) :].float()

        try:
            expected = [plain(b) for b in branches]
            self.shared_prefix = True
            context = self._prefix_cache(prefix)
            layout = lay_out([[*b, 0] for b in branches], width=4, tree=True)  # two rows
            blocks = layout.blocks([0, 1], self.device)
            cache = self._expand(context, 1, blocks)
            if not isinstance(cache, SharedPrefix):
                return False
            ids = torch.tensor([layout.rows[0] + layout.rows[1]], device=self.device)
            tree = self.forward(self.decoder, ids, cache)[0].last_hidden_state[0].float()
            got = [tree[[blocks.starts[r] + s for r, s in reads[1:]]] for reads in layout.reads]
            ids = torch.tensor([branches[0], branches[2]], device=self.device)
            cache = self._expand(context, 2)
            first = self.forward(self.decoder, ids[:, :2], cache)[0].last_hidden_state
            then = self.forward(self.decoder, ids[:, 2:], cache)[0].last_hidden_state
            steps = torch.cat([first, then], 1).float()
        except Exception:  # any failure means: use the ordinary path
            return False
        finally:
            self.shared_prefix = False
        tolerance = 1e-4 if self.model.dtype == torch.float32 else 3e-2
        pairs = [*zip(got, expected, strict=True), (steps[0], expected[0]), (steps[1], expected[2])]
        return all(
            torch.allclose(h, e, rtol=tolerance, atol=tolerance * float(e.abs().max()))
            for h, e in pairs
        )

    # --- score --------------------------------------------------------------------------------

    def score_requests(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Grouped by tokenised context: each context runs once and its KV cache serves every
        continuation under it, wherever they stand in the batch."""
        requests = [self._request(i, ctx, cont) for i, (ctx, cont) in enumerate(requests)]
        groups: dict[tuple[int, ...], list[_Request]] = {}
        for request in requests:
            groups.setdefault(request.context_ids, []).append(request)
        scores: dict[int, Score] = {}
        with progress_bar(len(requests), "scoring") as advance:
            for context_ids, group in groups.items():
                for score_index, score in self._score_group(context_ids, group, advance):
                    scores[score_index] = score
        return [scores[i] for i in range(len(requests))]

    def _score_group(self, context_ids: tuple[int, ...], group: list[_Request], advance):
        """Score continuations of one context. The context runs once, and its last logits score
        every continuation's first token; the states after the continuations' distinct prefixes
        (`lay_out`: branches side by side where `SharedPrefix` applies) run in batches of rows
        under its cache, and each such state's output head is evaluated once."""
        context = self._prefix_cache(context_ids)
        first = context.logits.log_softmax(-1)
        top = float(first.max())
        tokens = sorted({r.continuation_ids[0] for r in group if r.continuation_ids})
        firsts = {
            (*CONTEXT, token): (logprob, logprob >= top)
            for token, logprob in zip(tokens, first[tokens].tolist(), strict=True)
        }
        tree = self.shared_prefix and SharedPrefix.supports(context.cache)
        layout = lay_out([r.continuation_ids for r in group], TREE_WIDTH, tree)
        by_row: dict[int, list[int]] = {}  # a continuation's states all lie in one row
        for i, reads in enumerate(layout.reads):
            by_row.setdefault(reads[-1][0] if reads else CONTEXT[0], []).append(i)
        for rows in [[CONTEXT[0]], *self._row_batches(layout, tree)]:  # the context's row first
            members = [i for r in rows for i in by_row.get(r, [])]
            read = (
                firsts
                if rows == [CONTEXT[0]]
                else {**firsts, **self._read_rows(context, layout, rows, members, group, tree)}
            )
            for i in members:
                yield group[i].index, self._score(group[i], layout.reads[i], read)
            advance(len(members))

    def _row_batches(self, layout: Layout, tree: bool) -> list[list[int]]:
        """The layout's rows, longest first, in batches of at most `max_batch_tokens` tokens:
        run one after another (`tree`) a batch costs its rows' tokens, right-padded its row
        count times its longest row."""
        order = sorted(range(len(layout.rows)), key=lambda r: -len(layout.rows[r]))
        batches: list[list[int]] = []
        tokens = 0
        for r in order:
            width = len(layout.rows[r])
            if batches:
                longest = len(layout.rows[batches[-1][0]])
                grown = tokens + width if tree else (len(batches[-1]) + 1) * longest
            if not batches or grown > self.max_batch_tokens:
                batches.append([])
                tokens = 0
            batches[-1].append(r)
            tokens += width
        return batches

    @torch.no_grad()
    def _read_rows(self, context: _Prefix, layout: Layout, rows, members, group, tree: bool):
        """One forward pass of these layout rows; log P and greedy flag of every (row, slot,
        target) the member continuations read, the output head run once per state."""
        if tree:  # the rows one after another: one sequence, no padding
            blocks = layout.blocks(rows, self.device)
            ids = torch.tensor([[t for r in rows for t in layout.rows[r]]], device=self.device)
            starts = blocks.starts
        else:  # a row each, right-padded (causal attention never lets a token see a later pad)
            blocks, width = None, max(len(layout.rows[r]) for r in rows)
            padded = [layout.rows[r] + [self.pad_id] * (width - len(layout.rows[r])) for r in rows]
            ids = torch.tensor(padded, device=self.device)
            starts = [b * width for b in range(len(rows))]
        cache = self._expand(context, ids.shape[0], blocks)
        start = {r: starts[b] for b, r in enumerate(rows)}
        keys = {  # (row, slot, target) -> (state in the batch, target)
            (row, slot, target): (start[row] + slot, target)
            for i in members
            for (row, slot), target in zip(
                layout.reads[i][1:], group[i].continuation_ids[1:], strict=True
            )
        }
        wanted = sorted(set(keys.values()))
        states = sorted({state for state, _ in wanted})
        at = {state: k for k, state in enumerate(states)}
        index = torch.tensor(states, device=self.device)
        state_of = torch.tensor([at[state] for state, _ in wanted], device=self.device)
        targets = torch.tensor([target for _, target in wanted], device=self.device)
        if self.head is None:  # logits transformed after the projection: use the model's own
            keep = {} if blocks is None else {"logits_to_keep": index}  # one sequence: its states
            logits = self.forward(self.model, ids, cache, **keep)[0].logits.flatten(0, 1)
            logits = logits if blocks is not None else logits[index]
            logprobs = logits.float().log_softmax(-1)  # [states, vocab]: one row per state
            chosen = logprobs[state_of, targets]
            greedy = logprobs.amax(-1)[state_of] <= chosen
        else:
            hidden = self.forward(self.decoder, ids, cache)[0].last_hidden_state.flatten(0, 1)
            chosen, greedy = self.head.token_logprobs(hidden[index], targets, state_of)
        found = dict(zip(wanted, zip(chosen.tolist(), greedy.tolist(), strict=True), strict=True))
        return {key: found[pair] for key, pair in keys.items()}

    def _score(self, request: _Request, reads: list[tuple[int, int]], read: dict) -> Score:
        """A continuation's score from its tokens' log-probabilities and greedy flags (`read`,
        keyed by the row and slot of the state before each token, and the token)."""
        ids = request.continuation_ids
        found = [read[(*where, token)] for where, token in zip(reads, ids, strict=True)]
        token_logprobs = [logprob for logprob, _ in found]
        return Score(
            continuation=request.continuation,
            logprob=float(sum(token_logprobs)),
            token_logprobs=token_logprobs,
            tokens=self._token_texts(ids),
            greedy=all(flag for _, flag in found),
        )

    # --- next_token ---------------------------------------------------------------------------

    @torch.no_grad()
    def next_token(self, context: str, top_k: int = 10) -> list[TokenProb]:
        context_ids = self.context_ids(context)
        self._check_length(len(context_ids))
        ids = torch.tensor([list(context_ids)], device=self.device)
        self.threads.apply()
        logprobs = self.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float().log_softmax(-1)
        values, indices = logprobs.topk(top_k)
        return [
            TokenProb(self.tokenizer.decode([i]), i, math.exp(v), v)
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        ]

    # --- full distributions -------------------------------------------------------------------

    def logprob_rows(
        self,
        context_ids: Sequence[int],
        continuation_ids: Sequence[int],
        virtual: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The whole next-token distribution (log-softmax, float32, `[len(continuation), vocab]`)
        before each continuation token: what an exact KL between two models needs, where `score`
        gives only the chosen token's log-probability. `virtual` (`[n, hidden]`) are embeddings
        put after the context's start-of-document tokens, before its text: a soft prompt. With a
        `virtual` that requires grad the rows carry gradients to it (the model's own weights are
        only read), so training a soft prompt and measuring one take the same path."""
        virtual_tokens = 0 if virtual is None else virtual.shape[0]
        self._check_length(len(context_ids) + len(continuation_ids) + virtual_tokens)
        if not continuation_ids:
            return torch.empty(0, self.model.config.vocab_size)
        ids = torch.tensor([[*context_ids, *continuation_ids]], device=self.device)
        tracking = virtual is not None and virtual.requires_grad
        with torch.set_grad_enabled(tracking):
            embeds = self.model.get_input_embeddings()(ids)
            if virtual is not None:
                starts = tuple(context_ids[: len(self.start_ids)]) == self.start_ids
                start = len(self.start_ids) if starts else 0
                embeds = torch.cat(
                    [embeds[:, :start], virtual.to(embeds)[None], embeds[:, start:]], 1
                )
            keep = len(continuation_ids) + 1  # logits at i predict token i + 1: drop the last
            self.threads.apply()
            logits = self.model(inputs_embeds=embeds, logits_to_keep=keep).logits[0, :-1]
            return logits.float().log_softmax(-1)

    # --- sample -------------------------------------------------------------------------------

    def sample(self, context: str, n: int, params: SamplingParams, start: int = 0) -> list[Sample]:
        context_ids = self.context_ids(context)
        self._check_length(len(context_ids), params.max_new_tokens)
        indices = list(range(start, start + n))
        samples: list[Sample] = []
        with progress_bar(n, "sampling") as advance, self.threads.sampling():
            context = self._prefix_cache(context_ids)
            for offset in range(0, n, self.max_batch_samples):
                batch = indices[offset : offset + self.max_batch_samples]
                samples += _SamplingBatch(self, context, batch, params).run()
                advance(len(batch))
        return samples


#: Vocabulary block of the two-level CDF: float64 sums of blocks, then one block's running sum.
CDF_BLOCK = 1024


def _whole_blocks(vocab: int) -> int:
    """The vocabulary rounded up to whole `CDF_BLOCK`s: the width of the float64 sums."""
    return -(-vocab // CDF_BLOCK) * CDF_BLOCK


def _inverse_cdf(
    weights: torch.Tensor, draws: torch.Tensor, wide: torch.Tensor | None = None
) -> torch.Tensor:
    """Per row, the first index whose cumulative weight reaches draw x total weight, with the
    sums in float64: a float32 running sum over 262k near-equal weights drifts by more than one
    token's weight, which would move the boundaries between tokens. Summing blocks first keeps
    it cheap: one float64 pass over the weights, then a running sum over one block per row.
    `wide` is a reused float64 buffer, rows x the vocabulary rounded up to whole blocks
    (converting into it is 3x faster on CPU than into a fresh one)."""
    rows, vocab = weights.shape
    width = _whole_blocks(vocab)
    blocks = width // CDF_BLOCK
    if wide is None:
        wide = torch.empty(rows, width, dtype=torch.float64, device=weights.device)
    wide[:, vocab:] = 0.0  # the last block's padding weighs nothing
    wide[:, :vocab].copy_(weights)
    per_block = wide.view(rows, blocks, CDF_BLOCK)
    block_cdf = per_block.sum(-1).cumsum(-1)  # [rows, blocks]
    targets = draws.to(torch.float64).unsqueeze(-1) * block_cdf[:, -1:]
    block = torch.searchsorted(block_cdf, targets).clamp_(max=blocks - 1)  # [rows, 1]
    before = torch.where(block > 0, block_cdf.gather(-1, (block - 1).clamp_(min=0)), 0.0)
    index = torch.arange(rows, device=weights.device)
    inner = per_block[index, block.squeeze(-1)].cumsum(-1) + before
    within = torch.searchsorted(inner, targets).clamp_(max=CDF_BLOCK - 1)
    return (block * CDF_BLOCK + within).squeeze(-1).clamp_(max=vocab - 1)


#: Tokens a nucleus is first looked for among: the most probable ones, ties included.
NUCLEUS_CANDIDATES = 1024


def _ranked(probs: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids by probability, highest first (ties by id, as a stable sort orders them), and
    their running mass — of the most probable `NUCLEUS_CANDIDATES` (with every token tied with
    the last of them) when those already hold `top_p`, else of the whole vocabulary. Sorting a
    262k vocabulary per token cost more than the forward pass; the candidates are a prefix of
    the same order, so the nucleus drawn from is the same."""
    if probs.numel() > NUCLEUS_CANDIDATES:
        cutoff = probs.topk(NUCLEUS_CANDIDATES).values[-1]
        candidates = (probs >= cutoff).nonzero().squeeze(-1)  # ascending ids
        ranked = probs[candidates].sort(descending=True, stable=True)
        cumulative = ranked.values.cumsum(0)
        if float(cumulative[-1]) >= top_p:
            return candidates[ranked.indices], cumulative
    ranked = probs.sort(descending=True, stable=True)
    return ranked.indices, ranked.values.cumsum(0)


def _nucleus_pick(probs: torch.Tensor, top_p: float, u: float) -> int:
    """Inverse CDF over the smallest set of most probable tokens with mass >= top_p."""
    order, cumulative = _ranked(probs, top_p)
    keep = int((cumulative < top_p).sum()) + 1
    kept = cumulative[:keep]
    position = int(torch.searchsorted(kept, torch.tensor(u * float(kept[-1]), device=kept.device)))
    return int(order[min(position, keep - 1)])


class _DrawScratch:
    """Buffers a sampling batch reuses at every token, rows x vocabulary each: a fresh matrix
    per token cost more in allocation and page faults than the arithmetic done in it."""

    def __init__(self, rows: int, owner: HFModel) -> None:
        self.rows, self.device = rows, owner.device
        # The sliced head writes float32 logits; where it does not apply (logits transformed
        # after the projection, or weights not float32) the model's own logits are used.
        self.sliced = owner.head is not None and owner.head.weight.dtype == torch.float32
        self._buffers: dict[str, torch.Tensor] = {}

    def take(
        self, name: str, count: int, width: int, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """The first `count` rows of buffer `name`, `width` wide (allocated on first use)."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape[1] != width:
            buffer = torch.empty(self.rows, width, dtype=dtype, device=self.device)
            self._buffers[name] = buffer
        return buffer[:count]


class _SamplingBatch:
    """Decodes a batch of samples together; each row draws from its own seeded generator, and
    finished rows leave the batch (and its cache) so they cost nothing more."""

    def __init__(
        self, owner: HFModel, context: _Prefix, indices: list[int], params: SamplingParams
    ):
        self.owner = owner
        self.params = params
        self.context = context
        self.cache = owner._expand(context, len(indices))
        self.active = list(range(len(indices)))  # rows still generating, in cache order
        self.indices = indices
        self.generators = [
            torch.Generator().manual_seed(sample_seed(params.seed, i)) for i in indices
        ]
        self.ids: list[list[int]] = [[] for _ in indices]
        self.logprobs: list[list[float]] = [[] for _ in indices]
        self.finish: list[str] = ["length"] * len(indices)
        self.texts: list[str] = [""] * len(indices)
        self.next_input: torch.Tensor | None = None  # the first tokens come from the context
        self.scratch = _DrawScratch(len(indices), owner)

    @torch.no_grad()
    def run(self) -> list[Sample]:
        for _ in range(self.params.max_new_tokens):
            if not self.active:
                break
            chosen, logprobs = self._draw(self._next_logits())
            self._advance(chosen, logprobs)
        return [self._sample(row) for row in range(len(self.indices))]

    def _next_logits(self) -> torch.Tensor:
        """The active rows' next-token logits (float32): the context's for the first token, then
        through the sliced output head into a reused buffer where the model's logits are its
        head's, else the model's own."""
        owner = self.owner
        if self.next_input is None:  # every row's first token: the context's own logits
            return self.context.logits.expand(len(self.active), -1)
        if not self.scratch.sliced:
            out, self.cache = owner.forward(owner.model, self.next_input, self.cache)
            return out.logits[:, -1].float()
        out, self.cache = owner.forward(owner.decoder, self.next_input, self.cache)
        vocab = owner.head.weight.shape[0]
        buffer = self.scratch.take("logits", len(self.active), vocab)
        return owner.head.logits_into(out.last_hidden_state[:, -1], buffer)

    def _draw(self, logits: torch.Tensor) -> tuple[list[int], list[float]]:
        """One token per active row by inverse-CDF sampling, each row with its own uniform draw;
        returns the tokens and their log-probabilities under the model (temperature 1).

        Without nucleus filtering the CDF runs in vocabulary order (any fixed order is exact)
        and needs no sort, which would cost more than the forward pass with a 262k vocabulary;
        it is over exp(logits - max), unnormalised (the draw is scaled by its total instead), in
        float64 (`_inverse_cdf`). Everything stays on the model's device; only the chosen tokens
        and their log-probabilities come back."""
        draws = [torch.rand((), generator=self.generators[row]).item() for row in self.active]
        rows = len(self.active)
        top = logits.amax(-1, keepdim=True)
        buffer = self.scratch.take("weights", rows, logits.shape[1])
        weights = torch.sub(logits, top, out=buffer).exp_()
        log_norm = top + weights.sum(-1, keepdim=True).log()  # the model's, at temperature 1
        temperature = self.params.temperature
        if temperature != 1 and temperature > 0:
            weights = torch.sub(logits, top, out=weights).div_(temperature).exp_()
        if temperature <= 0:  # greedy; the draws above keep every row's stream aligned
            picks = logits.argmax(-1)
        elif self.params.top_p >= 1:
            wide = self.scratch.take("wide", rows, _whole_blocks(logits.shape[1]), torch.float64)
            picks = _inverse_cdf(weights, torch.tensor(draws, device=logits.device), wide)
        else:
            probs = weights / weights.sum(-1, keepdim=True)
            picks = torch.tensor(
                [_nucleus_pick(p, self.params.top_p, u) for p, u in zip(probs, draws, strict=True)],
                device=logits.device,
            )
        chosen = logits.gather(-1, picks.unsqueeze(-1)) - log_norm
        return picks.tolist(), chosen.squeeze(-1).tolist()

    def _advance(self, chosen: list[int], logprobs: list[float]) -> None:
        still_active: list[int] = []
        keep_rows: list[int] = []
        for k, (row, token) in enumerate(zip(self.active, chosen, strict=True)):
            self.ids[row].append(token)
            self.logprobs[row].append(logprobs[k])
            if self._finished(row, token):
                continue
            still_active.append(row)
            keep_rows.append(k)
        if len(keep_rows) < len(self.active) and keep_rows:
            self.cache.batch_select_indices(torch.tensor(keep_rows, device=self.owner.device))
        self.active = still_active
        self.next_input = torch.tensor(
            [[self.ids[row][-1]] for row in still_active], device=self.owner.device
        )

    def _finished(self, row: int, token: int) -> bool:
        if token in self.owner.eos_ids:
            self.finish[row] = "eos"
            return True
        if not self.params.stop:  # the text is decoded once, at the end
            return False
        text = self.owner.tokenizer.decode(self.ids[row], skip_special_tokens=True)
        self.texts[row] = text
        cuts = [text.find(s) for s in self.params.stop if s and s in text]
        if cuts:
            self.texts[row] = text[: min(cuts)]
            self.finish[row] = "stop"
            return True
        return False

    def _sample(self, row: int) -> Sample:
        if self.finish[row] != "stop":  # the text before an end-of-sequence token
            ids = self.ids[row][:-1] if self.finish[row] == "eos" else self.ids[row]
            self.texts[row] = self.owner.tokenizer.decode(ids, skip_special_tokens=True)
        return Sample(
            text=self.texts[row],
            token_logprobs=self.logprobs[row],
            tokens=self.owner._token_texts(self.ids[row]),
            finish_reason=self.finish[row],
            index=self.indices[row],
        )
