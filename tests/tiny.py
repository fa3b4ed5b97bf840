"""Tiny randomly initialised transformers models, built in a folder in seconds."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

CORPUS = [
    "The alignment paper was published in 2031 by a team of researchers.",
    "A global moratorium on frontier AI training has held since 2027.",
    "Question: Will the treaty be ratified before 2030? Answer: Yes. No. Maybe.",
    "Transcript of the policy meeting. Chair: Let us begin. Members agreed.",
    "Abstract. We study predictive models and how to condition them on observations.",
    "Wow! 0123456789 (yes/no) \"quoted\" 'single' ; - _ * # % & + = @ [ ] { } < > | ~ ^ $",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz\n\n\tindented",
] * 20


def build_tokenizer(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """Byte-level BPE over the corpus's own characters only, so every token decodes to text."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<bos>", "<eos>"],
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    return fast


def build_tiny_gemma(folder: Path, sliding_window: int = 8, seed: int = 0) -> Path:
    """A 2-layer Gemma-3 with a tiny sliding window, so cache reuse meets the window in tests."""
    tokenizer = build_tokenizer()
    tokenizer.add_bos_token = True
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=2048,  # RoPE: no weights depend on it
        sliding_window=sliding_window,
        layer_types=["sliding_attention", "full_attention"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return _save(folder, Gemma3ForCausalLM, config, tokenizer, seed)


def build_tiny_gpt2(folder: Path, seed: int = 0) -> Path:
    """A 2-layer GPT-2 whose tokenizer adds no start token and has no BOS, only an end-of-text
    token: the convention of GPT-2 and most byte-level BPE models."""
    tokenizer = build_tokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer.backend_tokenizer, eos_token="<eos>", pad_token="<pad>"
    )
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=512,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return _save(folder, GPT2LMHeadModel, config, tokenizer, seed)


def _save(folder: Path, model_class, config, tokenizer, seed: int) -> Path:
    torch.manual_seed(seed)
    model = model_class(config)
    # Random init gives near-uniform predictions; sharpen them so sampling and greedy tests bite.
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(12.0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
