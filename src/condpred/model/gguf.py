"""GGUF files as transformers models: converted once to float32 safetensors, then loaded in seconds.

transformers dequantises a GGUF on every load (about two minutes for gemma-3-270m on two cores);
the cache makes that a one-time cost. Float32: bfloat16 on CPU is both slower and less exact.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from condpred.errors import InputError
from condpred.progress import progress_bar


def cache_root() -> Path:
    """Where converted models live: `$CONDPRED_CACHE`, else the user cache dir."""
    root = os.environ.get("CONDPRED_CACHE") or platformdirs.user_cache_dir("condpred")
    return Path(root)


# Bumped whenever conversion changes what it writes (2: the tokenizer follows add_bos_token).
CONVERSION = 2


def _fingerprint(path: Path) -> str:
    """Cheap identity of a conversion: the GGUF's path, size and modification time, the
    conversion's version, and transformers' major.minor (releases before 5.18 dequantised
    gemma-3 into a different model, so a copy made by another transformers is not reused)."""
    import transformers

    stat = path.stat()
    release = ".".join(transformers.__version__.split(".")[:2])
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{CONVERSION}:{release}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@contextmanager
def _lock(path: Path):
    """An exclusive lock, so two processes never convert the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def converted_dir(gguf_path: str | Path, name: str | None = None) -> Path:
    """The safetensors copy of a GGUF file, converting it first if it is not cached yet."""
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise InputError(
            f"no GGUF file at {gguf_path}",
            source="--model",
            fix="Pass gguf:PATH with the path of an existing .gguf file.",
        )
    name = name or gguf_path.stem
    target = cache_root() / "models" / f"{name}-{_fingerprint(gguf_path)}"
    if (target / "config.json").exists():
        return target
    with _lock(target.parent / f"{target.name}.lock"):
        if not (target / "config.json").exists():
            _convert(gguf_path, target)
    return target


def _convert(gguf_path: Path, target: Path) -> None:
    """Dequantise, drop the quantisation config (save_pretrained refuses it), save atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    description = f"converting {gguf_path.name} to safetensors (once; minutes on a small CPU)"
    with progress_bar(None, description):
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        _start_as_the_file_says(tokenizer, gguf_path)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _start_as_the_file_says(tokenizer, gguf_path: Path) -> None:
    """Make the tokenizer add a BOS token exactly when the GGUF's `add_bos_token` says so.

    transformers does not always carry that flag over (4.56 gives SmolLM2, whose file says false,
    a tokenizer that prepends `<|im_start|>`), and the start-of-document rule of every backend is
    "what the model's own tokenizer adds", which for a GGUF file is its metadata."""
    from gguf import GGUFReader

    field = GGUFReader(gguf_path).fields.get("tokenizer.ggml.add_bos_token")
    if field is None or tokenizer.bos_token_id is None:
        return
    wanted = bool(field.parts[field.data[0]][0])
    if _adds_bos(tokenizer) != wanted:
        tokenizer.add_bos_token = wanted
        if hasattr(tokenizer, "update_post_processor"):
            tokenizer.update_post_processor()
    if _adds_bos(tokenizer) != wanted:
        raise InputError(
            f"cannot make the tokenizer of {gguf_path.name} follow its add_bos_token={wanted}",
            source="--model",
            fix="Upgrade transformers (pip install -U transformers)",
        )


def _adds_bos(tokenizer) -> bool:
    ids = tokenizer("a").input_ids
    return bool(ids) and ids[0] == tokenizer.bos_token_id
