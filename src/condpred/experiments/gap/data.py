"""What a gap run reads: prompts (JSONL), conditionals (YAML templates around the prompt), the
tuned model's framing (its chat template), the train / held-out split, and the vocabulary check
that makes a KL between two models' next-token distributions meaningful at all.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from condpred.errors import InputError
from condpred.validate import read_text_input

PLACEHOLDER = "{prompt}"
#: The base model's context without any conditional: the prompt as a plain line of text.
BARE = PLACEHOLDER + "\n"
RESERVED = ("none", "soft-prompt", "best-of-search")


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    category: str


def load_prompts(path: str | Path) -> tuple[list[Prompt], str]:
    """Prompts from JSONL: `prompt` (or `question`, as GSM8K writes it), optional `category` and
    `id`. Every bad line is reported at once. Returns them with the file's sha256 (a resume on
    changed data is refused)."""
    fix = 'One JSON object a line, e.g. {"prompt": "Name three rivers.", "category": "lists"}'
    text = read_text_input(path, what="a prompts file", fix=fix)
    prompts, problems = [], []
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            problems.append(f"line {line}: not JSON ({error.msg})")
            continue
        body = record.get("prompt", record.get("question")) if isinstance(record, dict) else None
        if not isinstance(body, str) or not body.strip():
            problems.append(f"line {line}: needs a non-empty text field 'prompt' (or 'question')")
            continue
        category = record.get("category", "all")
        prompts.append(Prompt(str(record.get("id", f"line {line}")), body.strip(), str(category)))
    if problems:
        raise InputError("; ".join(problems), source=str(path), fix=fix)
    if len(prompts) < 2:
        raise InputError(
            f"holds {len(prompts)} prompt(s); a gap run needs at least 2 (some to train a soft "
            "prompt on, some held out)",
            source=str(path),
            fix=fix,
        )
    return prompts, hashlib.sha256(text.encode()).hexdigest()


def load_conditionals(path: str | Path | None) -> list[dict[str, str]]:
    """User conditionals from YAML: a list of `{name, template}`, each template a text with
    `{prompt}` where the prompt goes (a URIAL-style prefix, a transcript, a "helpful assistant"
    page). Every problem of the file is reported at once."""
    if path is None:
        return []
    fix = (
        "Write a YAML list like:\n- name: urial\n  template: |\n    # Query:\n    {prompt}\n"
        "    # Answer:\n(one entry per conditional, names unique, each template with {prompt} once)"
    )
    text = read_text_input(path, what="a conditionals file", fix=fix)
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InputError(f"not valid YAML ({error})", source=str(path), fix=fix) from None
    if not isinstance(entries, list) or not entries:
        raise InputError("must be a non-empty YAML list", source=str(path), fix=fix)
    out, problems, seen = [], [], set()
    for i, entry in enumerate(entries):
        where = f"entry {i}"
        if not isinstance(entry, dict) or set(entry) - {"name", "template"}:
            problems.append(f"{where}: must have exactly the fields 'name' and 'template'")
            continue
        name, template = entry.get("name"), entry.get("template")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: field 'name' must be a non-empty text")
        elif name in RESERVED or name in seen:
            problems.append(f"{where}: name '{name}' is reserved or used twice")
        if not isinstance(template, str) or template.count(PLACEHOLDER) != 1:
            problems.append(f"{where}: field 'template' must be a text with {PLACEHOLDER} once")
        if isinstance(name, str) and isinstance(template, str):
            seen.add(name)
            out.append({"name": name.strip(), "template": template})
    if problems:
        raise InputError("; ".join(problems), source=str(path), fix=fix)
    return out


def fill(template: str, prompt: Prompt) -> str:
    """The template with the prompt in its place (a literal replace: braces elsewhere stay)."""
    return template.replace(PLACEHOLDER, prompt.text)


def tuned_context(model: Any, prompt: Prompt) -> str:
    """How the tuned model is asked: its own chat template (the prompt as the user's turn, the
    assistant's turn opened), or the bare prompt when its tokenizer has none. The template's own
    start-of-document token is left to the backend, which adds it by its one rule."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return fill(BARE, prompt)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt.text}], tokenize=False, add_generation_prompt=True
    )
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and getattr(model, "start_ids", ()):
        text = text[len(bos) :]
    return text


def split(n: int, held_out: float, seed: int) -> tuple[list[int], list[int]]:
    """Prompt indices for training the soft prompt (and choosing the best conditional) and the
    held-out ones everything is reported on: seeded, at least one of each."""
    order = list(range(n))
    random.Random(f"gap-split:{seed}").shuffle(order)
    test = min(n - 1, max(1, round(n * held_out)))
    return sorted(order[test:]), sorted(order[:test])


def check_vocabularies(base: Any, tuned: Any) -> None:
    """Refuse a pair whose token ids mean different things: a KL or a rank between their
    next-token distributions would compare unrelated tokens."""
    problems = []
    for spec, model in (("--base", base), ("--tuned", tuned)):
        if not hasattr(model, "logprob_rows"):
            problems.append(
                f"{spec} {model.spec} does not give full next-token distributions (a server "
                "returns a few top log-probabilities only)"
            )
    if not problems:
        vb, vt = base.tokenizer.get_vocab(), tuned.tokenizer.get_vocab()
        if vb != vt:
            differ = sum(vt.get(t) != i for t, i in vb.items()) + len(set(vt) - set(vb))
            problems.append(
                f"the tokenizers differ ({len(vb)} vs {len(vt)} tokens, {differ} token->id "
                "entries differ)"
            )
        sizes = (base.model.config.vocab_size, tuned.model.config.vocab_size)
        if sizes[0] != sizes[1]:
            problems.append(f"the output layers differ in size ({sizes[0]} vs {sizes[1]})")
        if base.start_ids != tuned.start_ids:
            problems.append("the tokenizers start a document with different tokens")
    if problems:
        raise InputError(
            f"cannot compare {base.spec} and {tuned.spec}: " + "; ".join(problems),
            source="--base/--tuned",
            fix="Use a base model and its own tuned release, which share one tokenizer, loaded "
            "locally (hf id or directory, or gguf:PATH), e.g. --base google/gemma-3-270m "
            "--tuned google/gemma-3-270m-it, or Qwen/Qwen2.5-0.5B with Qwen/Qwen2.5-0.5B-Instruct",
        )
