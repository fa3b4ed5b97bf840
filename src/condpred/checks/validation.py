"""Validating checks on labelled data: does a check's number separate what it claims to?

`validate_ai_author` runs the ai_author probe on pairs of human-written and machine-written texts
(the Fast-DetectGPT format: `{"original": [human...], "sampled": [machine...]}`, paired by index)
and reports, per file, the AUROC of each signal with a paired-bootstrap 95% interval: the probes'
P(AI), the author likelihood ratio (`author_ratio`), and two anchors under the same model — the
classic likelihood baseline (machine text is more probable: mean token log-prob) and
Fast-DetectGPT's analytic criterion (Bao et al. 2024: the text's log-likelihood against what the
model expects of its own samples, standardised; `hf` models only) — so each number can be read
against something.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from condpred.checks.ai_author import ai_probability, author_ratio
from condpred.condition import Author, Conditional, render
from condpred.errors import InputError
from condpred.model.base import PredictiveModel
from condpred.progress import progress_bar
from condpred.stats import auroc, ci_list, format_ci

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
        "signals": {
            "auroc": "ai_author probes: mean P(AI) over the camera's disclosure probes",
            "llr_auroc": "author ratio: log P(text | AI author) - log P(text | human author), "
            "per token, plain document, three authors a side",
            "baseline_auroc": "likelihood: mean token log-prob of the text",
            "fastdetect_auroc": "Fast-DetectGPT analytic criterion, the same model sampling "
            "and scoring (hf only)",
        },
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


# Each signal's per-pair score keys (`{key}_human`, `{key}_machine`) and its row's AUROC and CI
# keys; every signal is oriented so that higher means "machine".
SIGNALS = {
    "ai_author probes": ("p_ai", "auroc", "auroc_ci"),
    "author ratio": ("llr", "llr_auroc", "llr_ci"),
    "likelihood": ("baseline", "baseline_auroc", "baseline_ci"),
    "Fast-DetectGPT": ("fastdetect", "fastdetect_auroc", "fastdetect_ci"),
}


def score_text(model: PredictiveModel, text: str, camera: str = "plain") -> dict[str, float]:
    """Every signal for one text: P(AI) from the probes (the text continued by each probe), the
    author ratio per token (the text under a plain document with a human vs an AI author), the
    mean token log-prob of the text as a whole document, and Fast-DetectGPT's criterion (NaN
    where the backend gives no full distributions)."""
    p_ai, _ = ai_probability(model, text, camera)
    document = Conditional.model_construct(camera=camera)
    whole = model.score("", [text])[0]
    return {
        "p_ai": p_ai,
        "llr": author_ratio(model, document, text)["llr_per_token"],
        "baseline": whole.logprob / max(len(whole.token_logprobs), 1),
        "fastdetect": fast_detect_criterion(model, text),
    }


def fast_detect_criterion(model: PredictiveModel, text: str) -> float:
    """(log p(x) - sum_t E_p[log p]) / sqrt(sum_t Var_p[log p]) over the text's tokens, one model
    sampling and scoring (Fast-DetectGPT's analytic form); needs the full next-token
    distributions, which only the `hf` backend exposes (NaN elsewhere)."""
    from condpred.model.hf import HFModel

    if not isinstance(model, HFModel):
        return float("nan")
    import torch

    ids = [*model.context_ids(""), *model.encode(text)]
    with torch.no_grad():
        logits = model.model(torch.tensor([ids], device=model.device)).logits[0, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    targets = torch.tensor(ids[1:], device=logp.device)
    observed = logp.gather(1, targets[:, None]).squeeze(1)
    probs = logp.exp()
    expected = (probs * logp).sum(-1)
    variance = (probs * logp.square()).sum(-1) - expected.square()
    return float((observed.sum() - expected.sum()) / variance.sum().clamp_min(1e-12).sqrt())


def _auroc_with_ci(
    human: np.ndarray, machine: np.ndarray, seed: int
) -> tuple[float, list[float] | None]:
    """AUROC of machine (positive) over human (negative), and its paired-bootstrap 95% interval
    (None for fewer than `MIN_CI_N` pairs)."""
    if np.isnan(human).any() or np.isnan(machine).any():
        return float("nan"), None
    ci = ci_list(lambda h, m: auroc(m, h), human, machine, n=1000, seed=seed)
    return auroc(machine, human), ci


def summarise_scores(name: str, scores: dict[str, list[float]], seed: int = 0) -> dict[str, Any]:
    """A row from per-pair scores: each signal's AUROC and CI (`auroc`/`auroc_ci` for the
    probes, `baseline_auroc`/`baseline_ci` for likelihood, and so on)."""
    arrays = {key: np.asarray(values, dtype=float) for key, values in scores.items()}
    row: dict[str, Any] = {"file": name, "n": len(arrays["p_ai_human"])}
    for key, auc_key, ci_key in SIGNALS.values():
        value, ci = _auroc_with_ci(arrays[f"{key}_human"], arrays[f"{key}_machine"], seed)
        row[auc_key], row[ci_key] = value, ci
    row["p_ai_mean_human"] = float(arrays["p_ai_human"].mean())
    row["p_ai_mean_machine"] = float(arrays["p_ai_machine"].mean())
    row["scores"] = scores
    return row


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
        f"{key}_{side}": [] for key, *_ in SIGNALS.values() for side in ("human", "machine")
    }
    with progress_bar(len(pairs), f"ai_author on {path.name}") as advance:
        for human, machine in pairs:
            for side, text in (("human", human), ("machine", machine)):
                for key, value in score_text(model, text, camera).items():
                    scores[f"{key}_{side}"].append(value)
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
    names = list(SIGNALS)
    lines = [
        "| file | n | " + " | ".join(f"{name} AUROC [95% CI]" for name in names) + " |",
        "| --- | ---: |" + " --- |" * len(names),
    ]
    for row in rows:
        cells = [_auc(row[auc], row[ci]) for _, auc, ci in SIGNALS.values()]
        lines.append(f"| {row['file']} | {row['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _auc(value: float, ci: Sequence[float] | None) -> str:
    if np.isnan(value):
        return "n/a"
    return f"{value:.3f} {format_ci(ci)}"


# Authors the self-sampled validation conditions on: none of them is among the authors that
# `author_ratio` compares, so the check cannot win by recognising its own phrasing.
SAMPLING_AUTHORS = {
    "human": Author(name="Maria Gonzalez"),
    "ai": Author(name="Claude, an AI assistant made by Anthropic", kind="ai"),
}


def validate_self_sampled(
    model: PredictiveModel,
    conditionals: Sequence[tuple[str, Conditional]],
    samples: int = 6,
    max_tokens: int = 60,
    seed: int = 0,
) -> dict[str, Any]:
    """Can each signal tell whom the model was predicting? Continuations are sampled under each
    conditional with a human author and with an AI author (`SAMPLING_AUTHORS`), then shown to
    the signals under the conditional *without* its authors: the probes after it, the author
    ratio, and the likelihood of the continuation there. AUROC of AI-author samples over
    human-author ones, paired by (conditional, sample index)."""
    from condpred.model.base import SamplingParams

    params = SamplingParams(max_new_tokens=max_tokens, seed=seed)
    scores: dict[str, list[float]] = {
        f"{key}_{side}": [] for key in ("p_ai", "llr", "baseline") for side in ("human", "machine")
    }
    per_conditional = []
    with progress_bar(len(conditionals) * 2, "ai_author on self-sampled text") as advance:
        for name, conditional in conditionals:
            bare = conditional.model_copy(update={"authors": []})
            shown = render(bare)
            for side, label in (("human", "human"), ("ai", "machine")):
                authored = conditional.model_copy(update={"authors": [SAMPLING_AUTHORS[side]]})
                drawn = model.sample(render(authored), samples, params)
                for sample in drawn:
                    p_ai, _ = ai_probability(model, shown + sample.text, conditional.camera)
                    ratio = author_ratio(model, bare, sample.text)
                    whole = model.score(shown, [sample.text])[0]
                    scores[f"p_ai_{label}"].append(p_ai)
                    scores[f"llr_{label}"].append(ratio["llr_per_token"])
                    scores[f"baseline_{label}"].append(
                        whole.logprob / max(len(whole.token_logprobs), 1)
                    )
                    per_conditional.append({"conditional": name, "side": side, "text": sample.text})
                advance(1)
    arrays = {key: np.asarray(values, dtype=float) for key, values in scores.items()}
    signals = {}
    for name, (key, *_) in SIGNALS.items():
        if f"{key}_human" in arrays:
            value, ci = _auroc_with_ci(arrays[f"{key}_human"], arrays[f"{key}_machine"], seed)
            signals[name] = {"auroc": value, "ci": ci}
    return {
        "n_pairs": len(arrays["p_ai_human"]),
        "samples_per_side": samples,
        "max_tokens": max_tokens,
        "sampling_authors": {k: a.name for k, a in SAMPLING_AUTHORS.items()},
        "signals": signals,
        "scores": scores,
        "samples": per_conditional,
    }


def validate_planted(
    model: PredictiveModel,
    conditionals: Sequence[tuple[str, Conditional]],
    text: str,
) -> list[dict[str, Any]]:
    """The same document with a human author and with an AI author (`SAMPLING_AUTHORS`), one
    neutral continuation: each signal's value on both sides. The probes read the stated author;
    the author ratio, which sets its own authors, cannot (the same value on both sides)."""
    rows = []
    for name, conditional in conditionals:
        row: dict[str, Any] = {"conditional": name}
        for side, author in SAMPLING_AUTHORS.items():
            authored = conditional.model_copy(update={"authors": [author]})
            p_ai, _ = ai_probability(model, render(authored) + text, conditional.camera)
            ratio = author_ratio(model, authored, text)
            row[f"p_ai_{side}"] = p_ai
            row[f"llr_{side}"] = ratio["llr_per_token"]
        rows.append(row)
    return rows
