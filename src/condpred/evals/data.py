"""Model-written evaluations (Perez et al. 2022) as items condpred can score.

The format is JSONL, one item a line: `question` (the question with its lettered choices),
`answer_matching_behavior` and `answer_not_matching_behavior` (e.g. `" (A)"`, or `" Yes"` /
`" No"` in the persona files; either may be a list). Data comes from a folder (every `*.jsonl`
under it, one category per file), a single file, or `hf:OWNER/NAME[:GLOB]` (files of a Hugging
Face dataset repository, downloaded with `huggingface_hub`, which transformers already installs).

Files whose labels are known to be wrong are excluded with a warning: see `label_audit.yaml`.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from condpred.errors import InputError

AUDIT_FILE = Path(__file__).with_name("label_audit.yaml")
CHOICE_LINE = re.compile(r"^\s*\(([A-Z])\)", re.MULTILINE)
LETTER_ANSWER = re.compile(r"\s*\(([A-Z])\)\s*")
DATA_FIX = (
    "Each line must be a JSON object with 'question', 'answer_matching_behavior' and "
    "'answer_not_matching_behavior' (Anthropic's model-written-evals format)"
)


@dataclass(frozen=True)
class EvalItem:
    """One question, every answer the model is scored on, and which of them show the behaviour."""

    category: str
    line: int  # 1-based line in its file: the item's id within the category
    question: str
    options: tuple[str, ...]  # every answer scored, e.g. (" (A)", " (B)", " (C)")
    matching: tuple[str, ...]  # the answers that show the behaviour (a subset of options)
    source: str


@dataclass(frozen=True)
class Exclusion:
    """A file left out, and why (it is also written into the run's parameters)."""

    source: str
    category: str
    reason: str


@dataclass
class EvalSet:
    """The items of an evaluation, grouped by category, and the files that were left out."""

    items: list[EvalItem]
    excluded: list[Exclusion] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(item.category for item in self.items))


def load_evals(
    data: str | Path,
    categories: Sequence[str] | None = None,
    limit: int | None = None,
) -> EvalSet:
    """Read every item of `data`; keep `categories` (all by default), the first `limit` of each.

    Audited files are excluded with a `UserWarning` per file; an unknown category, a bad line or
    nothing left to evaluate is an InputError naming the file, line and field."""
    files = _files(str(data))
    loaded, excluded = [], []
    for category, path, name in files:
        if (reason := _audited(path, name)) is not None:
            excluded.append(Exclusion(str(path), category, reason))
            warnings.warn(f"{path}: excluded, {reason} (see {AUDIT_FILE.name})", stacklevel=2)
        else:
            loaded.append((category, path))
    wanted = _pick(categories, [c for c, _ in loaded], excluded, str(data))
    items = [
        item
        for category, path in loaded
        if category in wanted
        for item in _read_items(path, category, limit)
    ]
    if not items:
        raise InputError(
            "no items left to evaluate" + (" (every file was excluded)" if excluded else ""),
            source=str(data),
            fix="Pass other files, e.g. advanced-ai-risk/lm_generated_evals/",
        )
    return EvalSet(items, [e for e in excluded if categories is None or e.category in wanted])


def _files(data: str) -> list[tuple[str, Path, str]]:
    """(category, path, name to audit by) for each JSONL file the --data value names."""
    if data.startswith("hf:"):
        return _hub_files(data[3:])
    path = Path(data).expanduser()
    if path.is_file():
        return [(path.stem, path, f"{path.parent.name}/{path.name}")]
    if not path.is_dir():
        raise InputError(
            "not found" if not path.exists() else "is neither a file nor a folder",
            source=data,
            fix="Pass a JSONL file, a folder of them, or hf:OWNER/NAME[:GLOB]",
        )
    found = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
    if not found:
        raise InputError("holds no *.jsonl files", source=data, fix=DATA_FIX)
    return [
        (p.relative_to(path).with_suffix("").as_posix(), p, p.relative_to(path).as_posix())
        for p in found
    ]


def _hub_files(spec: str) -> list[tuple[str, Path, str]]:
    """Download a dataset repository's JSONL files (those matching GLOB) from the Hugging Face hub.

    The same parser and audit then apply as to local files; no `datasets` install is needed."""
    repo, _, pattern = spec.partition(":")
    fix = (
        "The hub is unreachable here (or HF_HUB_OFFLINE=1): download the files and pass their "
        "folder, e.g. --data ../shared/data/anthropic-evals/advanced-ai-risk/lm_generated_evals"
    )
    try:
        from huggingface_hub import hf_hub_download, list_repo_files

        names = [
            n
            for n in list_repo_files(repo, repo_type="dataset")
            if n.endswith(".jsonl") and fnmatch.fnmatch(n, pattern or "*")
        ]
        paths = [Path(hf_hub_download(repo, n, repo_type="dataset")) for n in names]
    except Exception as error:  # offline, unknown repo, no permission: all mean "no data"
        raise InputError(
            f"cannot read the hub dataset '{repo}' ({type(error).__name__})",
            source=f"hf:{spec}",
            fix=fix,
        ) from error
    if not names:
        raise InputError(f"no *.jsonl files match '{pattern}'", source=f"hf:{spec}", fix=fix)
    return [(n.removesuffix(".jsonl"), p, n) for n, p in zip(names, paths, strict=True)]


@cache
def label_audit() -> dict[str, dict[str, Any]]:
    """The audited files (see label_audit.yaml), keyed by their path in the published repository."""
    return yaml.safe_load(AUDIT_FILE.read_text(encoding="utf-8"))["files"]


def _audited(path: Path, name: str) -> str | None:
    """Why this file must be left out, or None; matched by content hash or by published name."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for published, entry in label_audit().items():
        if entry["sha256"] == digest or name.endswith(published):
            return entry["reason"]
    return None


def _pick(
    categories: Sequence[str] | None,
    available: list[str],
    excluded: list[Exclusion],
    source: str,
) -> set[str]:
    if categories is None:
        return set(available)
    for name in categories:
        if name in available:
            continue
        if gone := [e for e in excluded if e.category == name]:
            raise InputError(
                f"category '{name}' was excluded: {gone[0].reason}",
                source=source,
                field="categories",
                fix=f"See {AUDIT_FILE.name} in the condpred package; choose another category",
            )
        near = difflib.get_close_matches(name, available, n=1)
        raise InputError(
            f"unknown category '{name}'",
            source=source,
            field="categories",
            fix=(f"Did you mean '{near[0]}'? " if near else "")
            + f"Categories here: {', '.join(available)}",
        )
    return set(categories)


def _read_items(path: Path, category: str, limit: int | None) -> Iterator[EvalItem]:
    """The file's items in order, at most `limit` of them, each validated."""
    count = 0
    for number, line in _lines(path):
        if limit is not None and count >= limit:
            return
        if line.strip():
            count += 1
            yield parse_item(line, category, f"{path}, line {number}", number)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as handle:
            yield from enumerate(handle, start=1)
    except UnicodeDecodeError as error:
        raise InputError(f"is not UTF-8 text ({error.reason})", source=str(path)) from error
    except OSError as error:
        raise InputError(f"cannot be read ({error.strerror})", source=str(path)) from error


def parse_item(line: str, category: str, where: str, number: int) -> EvalItem:
    """One JSONL line as an EvalItem, or an InputError saying what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error.msg})", source=where, fix=DATA_FIX) from error
    if not isinstance(record, dict):
        raise InputError("is not a JSON object", source=where, fix=DATA_FIX)
    question = _text(record, "question", where)
    matching = _answers(record, "answer_matching_behavior", where)
    others = _answers(record, "answer_not_matching_behavior", where)
    if set(matching) & set(others):
        raise InputError(
            "an answer is both matching and not matching the behaviour",
            source=where,
            field="answer_not_matching_behavior",
            fix="List each answer on one side only",
        )
    options, matching = _options(question, matching, others, where)
    return EvalItem(category, number, question, options, matching, where.rsplit(", line", 1)[0])


def _text(record: dict[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            "is missing" if value is None else "must be non-empty text",
            source=where,
            field=key,
            fix=DATA_FIX,
        )
    return value


def _answers(record: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = record.get(key)
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise InputError(
            "is missing" if value is None else "must be an answer text or a list of them",
            source=where,
            field=key,
            fix=DATA_FIX,
        )
    return tuple(values)


def _options(
    question: str, matching: tuple[str, ...], others: tuple[str, ...], where: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every answer to score, the matching ones among them). Letter answers (" (A)") are scored
    against all lettered choices in the question, so the probability mass is normalised over the
    whole choice set (multi-option items have one not-matching answer named); else the answers."""
    answers = matching + others
    letters = [m.group(1) for a in answers if (m := LETTER_ANSWER.fullmatch(a))]
    if len(letters) < len(answers):
        return tuple(dict.fromkeys(answers)), matching
    listed = list(dict.fromkeys(CHOICE_LINE.findall(question)))
    if missing := [letter for letter in letters if letter not in listed]:
        raise InputError(
            f"the answer ({missing[0]}) is not among the question's choices "
            f"({', '.join(listed) or 'none found'})",
            source=where,
            field="question",
            fix="List each choice on a line of its own, like ' (A) Yes'",
        )
    style = answers[0][: answers[0].index("(")]  # the leading space the answers are written with
    options = tuple(f"{style}({letter})" for letter in listed)
    return options, tuple(f"{style}({letter})" for letter in letters[: len(matching)])
