"""Validating checks on labelled data: does a check's number separate what it claims to?

`validate_ai_author` runs the ai_author probe on pairs of human-written and machine-written texts
(the Fast-DetectGPT format: `{"original": [human...], "sampled": [machine...]}`, paired by index)
and reports, per file, the AUROC of P(AI) with a paired-bootstrap 95% interval, beside the classic
likelihood baseline (machine text is more probable: mean token log-prob) under the same model, so
the number can be read against something.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from condpred.checks.ai_author import ai_probability
from condpred.errors import InputError
from condpred.model.base import PredictiveModel
from condpred.progress import progress_bar
from condpred.stats import auroc, bootstrap_ci

FORMAT_FIX = (
    'Each file must hold one JSON object {"original": [texts], "sampled": [texts]}: '
    "human-written and machine-written texts, paired by index, as many of each"
)


def data_files(path: str | Path) -> list[Path]:
    """The `*.json` files to validate on: `path` itself, or every one under the folder `path`."""
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputError("no such file or folder", source=str(root), field="--data")
    files = sorted(p for p in root.rglob("*.json") if p.is_file())
    if not files:
        raise InputError(
            "no *.json files in this folder", source=str(root), field="--data", fix=FORMAT_FIX
        )
    return files


def check_data(path: str | Path) -> list[Path]:
    """Read and check every data file (cheap): call before loading a model to fail fast."""
    files = data_files(path)
    for file in files:
        load_pairs(file)
    return files


def validation_record(
    rows: Sequence[dict[str, Any]],
    *,
    model: str,
    data: str,
    limit: int | None,
    seed: int,
    seconds: float,
) -> dict[str, Any]:
    """The JSON document written by `--out`: the rows and what produced them."""
    return {
        "check": "ai_author",
        "model": model,
        "data": data,
        "limit": limit,
        "seed": seed,
        "bootstrap": "paired over pairs, 1000 resamples, percentile 95%",
        "baseline": "mean token log-prob of the text under the same model (higher = machine)",
        "date": dt.date.today().isoformat(),
        "seconds": round(seconds, 1),
        "rows": list(rows),
    }


def _texts(data: dict[str, Any], key: str, source: str) -> list[str]:
    texts = data.get(key)
    if not isinstance(texts, list):
        raise InputError(f"'{key}' is missing or not a list", source=source, fix=FORMAT_FIX)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(
                f"'{key}'[{index}] is a {type(text).__name__}, not text",
                source=source,
                fix=FORMAT_FIX,
            )
    # The generators' texts keep their newlines, the human ones had theirs collapsed: without
    # this, whitespace alone would give the label away (see the data's SOURCE.md).
    return [" ".join(text.split()) for text in texts]


def load_pairs(path: str | Path) -> tuple[list[tuple[str, str]], int]:
    """(human, machine) pairs with whitespace collapsed, and how many identical pairs were dropped.

    Identical pairs (the generator copied the human text) carry no label and are left out."""
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the file ({exc})", source=source) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON (line {exc.lineno}: {exc.msg})", source=source, fix=FORMAT_FIX
        ) from exc
    if not isinstance(data, dict):
        raise InputError(f"the top level is a {type(data).__name__}", source=source, fix=FORMAT_FIX)
    human, machine = _texts(data, "original", source), _texts(data, "sampled", source)
    if len(human) != len(machine):
        raise InputError(
            f"{len(human)} original texts but {len(machine)} sampled ones",
            source=source,
            fix=FORMAT_FIX,
        )
    for index, (h, m) in enumerate(zip(human, machine, strict=True)):
        if not h or not m:
            raise InputError(f"pair {index} holds an empty text", source=source, fix=FORMAT_FIX)
    pairs = [(h, m) for h, m in zip(human, machine, strict=True) if h != m]
    return pairs, len(human) - len(pairs)


def score_text(model: PredictiveModel, text: str, camera: str = "plain") -> tuple[float, float]:
    """(P(AI) from the ai_author probes, mean token log-prob of the text itself).

    Two `score` calls: the probes continue the text (its cache computed once); the baseline
    scores the text as a whole document after the start of text."""
    p_ai, _ = ai_probability(model, text, camera)
    whole = model.score("", [text])[0]
    return p_ai, whole.logprob / max(len(whole.token_logprobs), 1)


def _auroc_with_ci(human: np.ndarray, machine: np.ndarray, seed: int) -> tuple[float, list[float]]:
    """AUROC of machine (positive) over human (negative), and its paired-bootstrap 95% interval."""
    low, high = bootstrap_ci(lambda h, m: auroc(m, h), human, machine, n=1000, seed=seed)
    return auroc(machine, human), [low, high]


def summarise_scores(name: str, scores: dict[str, list[float]], seed: int = 0) -> dict[str, Any]:
    """A row from per-pair scores: AUROC and CI for P(AI) and for the likelihood baseline."""
    arrays = {key: np.asarray(values, dtype=float) for key, values in scores.items()}
    p_auc, p_ci = _auroc_with_ci(arrays["p_ai_human"], arrays["p_ai_machine"], seed)
    b_auc, b_ci = _auroc_with_ci(arrays["baseline_human"], arrays["baseline_machine"], seed)
    return {
        "file": name,
        "n": len(arrays["p_ai_human"]),
        "auroc": p_auc,
        "auroc_ci": p_ci,
        "baseline_auroc": b_auc,
        "baseline_ci": b_ci,
        "p_ai_mean_human": float(arrays["p_ai_human"].mean()),
        "p_ai_mean_machine": float(arrays["p_ai_machine"].mean()),
        "scores": scores,
    }


def validate_file(
    model: PredictiveModel,
    path: Path,
    limit: int | None = None,
    seed: int = 0,
    camera: str = "plain",
    name: str | None = None,
) -> dict[str, Any]:
    """One row: AUROC of P(AI) and of the likelihood baseline on the first `limit` usable pairs."""
    pairs, identical = load_pairs(path)
    pairs = pairs[:limit] if limit is not None else pairs
    if not pairs:
        raise InputError("no usable pairs", source=str(path), fix=FORMAT_FIX)
    start = time.perf_counter()
    scores: dict[str, list[float]] = {
        k: [] for k in ("p_ai_human", "p_ai_machine", "baseline_human", "baseline_machine")
    }
    with progress_bar(len(pairs), f"ai_author on {path.name}") as advance:
        for human, machine in pairs:
            for side, text in (("human", human), ("machine", machine)):
                p_ai, baseline = score_text(model, text, camera)
                scores[f"p_ai_{side}"].append(p_ai)
                scores[f"baseline_{side}"].append(baseline)
            advance(1)
    row = summarise_scores(name or path.name, scores, seed)
    row["identical_pairs_dropped"] = identical
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def pooled(rows: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """All files' pairs as one sample: a narrower interval than one file's, across generators."""
    keys = rows[0]["scores"].keys()
    scores = {key: [v for row in rows for v in row["scores"][key]] for key in keys}
    row = summarise_scores("(all files pooled)", scores, seed)
    row["seconds"] = round(sum(r.get("seconds", 0.0) for r in rows), 1)
    return row


def validate_ai_author(
    model: PredictiveModel,
    path: str | Path,
    limit: int | None = None,
    seed: int = 0,
    camera: str = "plain",
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Validate ai_author on a file or folder of human-vs-machine pairs: one row per file.

    `limit` keeps the first N usable pairs of each file; `seed` seeds the bootstrap. With several
    files a last row pools them all. Each row keeps its per-pair `scores` for later analysis.
    Every file is read and checked before any model work, so a malformed one fails at once."""
    if limit is not None and limit < 1:
        raise InputError(f"limit {limit} keeps no pairs", field="--limit", fix="Use 1 or more")
    root = Path(path)
    files = check_data(root)
    rows = []
    for file in files:
        name = str(file.relative_to(root)) if root.is_dir() else file.name
        rows.append(validate_file(model, file, limit, seed, camera, name))
        if on_row:
            on_row(rows[-1])
    return [*rows, pooled(rows, seed)] if len(rows) > 1 else rows


def format_validation(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table, for the terminal and for pasting into a README."""
    lines = [
        "| file | n | ai_author AUROC [95% CI] | likelihood baseline AUROC [95% CI] |",
        "| --- | ---: | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['file']} | {row['n']} | {_auc(row['auroc'], row['auroc_ci'])} "
            f"| {_auc(row['baseline_auroc'], row['baseline_ci'])} |"
        )
    return "\n".join(lines)


def _auc(value: float, ci: Sequence[float]) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
