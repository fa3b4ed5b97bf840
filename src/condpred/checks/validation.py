"""Fitting and validating the ai_author check on data with a known answer.

The data are pairs of human-written and machine-written texts (the Fast-DetectGPT format:
`{"original": [human...], "sampled": [machine...]}`, paired by index). Each file is split by pair
index, odd pairs to fit and even pairs to validate, so every file is in both and no pair in both.
From the same split come the other two kinds of rows:

- human vs machine: as a prediction is seen: the words both texts start with as the start of
  the document (about 30 GPT-2 tokens: the generators were given them), each text's own
  continuation after it as the text to judge;
- self-sampled: the model continues a pair's opening under a human and under an AI author, and
  each continuation is shown without its author: whom was the model predicting?
- planted: the opening with a human vs an AI author, and the human's own next words after it.

Every row holds each signal (`ai_author.SIGNALS`); rows are appended to a JSONL cache as they
are computed, so a stopped run resumes where it was. `fit_combiners` fits the check's logistic
combiners on the fit rows (one set for the model's own samples, one for other text);
`summarise_validation` reports the check beside each signal and the
anchors (likelihood, Fast-DetectGPT) on the validation rows, AUROC with paired-bootstrap CIs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from condpred.checks.ai_author import (
    SIGNALS,
    Combiner,
    first_words,
    load_combiners,
    pick_combiner,
    probe_prior,
    signals,
)
from condpred.checks.base import verdict
from condpred.condition import Author, Conditional, render
from condpred.errors import InputError
from condpred.model.base import PredictiveModel, SamplingParams
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


PARTS = ("fit", "validate")


def split(pairs: Sequence[tuple[str, str]], part: str) -> list[tuple[int, tuple[str, str]]]:
    """(index, pair) of one part: odd indices fit, even ones validate."""
    remainder = 1 if part == "fit" else 0
    return [(i, pair) for i, pair in enumerate(pairs) if i % 2 == remainder]


# Authors the self-sampled and planted rows condition on: none of them is among the authors that
# `author_ratio` compares, so the check cannot win by recognising its own phrasing.
SAMPLING_AUTHORS = {
    "human": Author(name="Maria Gonzalez"),
    "ai": Author(name="Claude, an AI assistant made by Anthropic", kind="ai"),
}
OPENING_WORDS = 30  # at most: the two texts of a pair share their first 30 GPT-2 tokens


def opening(path: Path, human: str, machine: str) -> tuple[Conditional, str, str]:
    """A pair as a prediction is seen: the words both texts start with as the document's start
    (a news article for XSum, plain text otherwise), and each text's continuation after it."""
    words, other = human.split(), machine.split()
    shared = 0
    while shared < min(OPENING_WORDS, len(words) - 1, len(other) - 1):
        if words[shared] != other[shared]:
            break
        shared += 1
    shared = max(shared, 1)
    camera = "news-article" if path.name.startswith("xsum") else "plain"
    conditional = Conditional(camera=camera, prefix=" ".join(words[:shared]))
    return conditional, " " + " ".join(words[shared:]), " " + " ".join(other[shared:])


class RowCache:
    """Rows appended to a JSONL file as they are computed, keyed by `key`: a stopped run goes on
    from where it was; a line cut by a kill is ignored."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        self.wanted: dict[str, None] = {}  # insertion-ordered
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.rows[row["key"]] = row

    def missing(self, key: str) -> bool:
        """Whether `key` is still to compute; either way its row belongs to this run."""
        self.wanted.setdefault(key)
        return key not in self.rows

    def selected(self) -> list[dict[str, Any]]:
        """The rows this run asked for (a cache may hold more, from runs with other limits)."""
        return [self.rows[key] for key in self.wanted if key in self.rows]

    def add(self, row: dict[str, Any]) -> None:
        self.rows[row["key"]] = row
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")


def _row(kind: str, unit: str, label: int, part: str, file: str) -> dict[str, Any]:
    """A row's identity: `unit` pairs its label-0 and label-1 rows (a pair, an opening, or an
    opening's i-th sample)."""
    return {
        "key": f"{kind}:{unit}:{label}",
        "kind": kind,
        "unit": unit,
        "label": label,
        "part": part,
        "file": file,
    }


def compute_rows(
    model: PredictiveModel,
    data: str | Path,
    part: str,
    limit: int | None = None,
    openings: int = 2,
    samples: int = 3,
    max_tokens: int = 60,
    seed: int = 0,
    cache: Path | None = None,
    performer: PredictiveModel | None = None,
) -> list[dict[str, Any]]:
    """Every row of one part: `limit` pairs of each file as human vs machine text, and the first
    `openings` of those pairs as self-sampled (`samples` a side, `max_tokens` long, temperature
    1) and planted conditionals. Rows already in `cache` are not computed again. With a
    `performer` sharing the model's tokenizer, text and self-sampled rows get Binoculars too."""
    if limit is not None and limit < 1:
        raise InputError(f"limit {limit} keeps no pairs", field="--limit", fix="Use 1 or more")
    root = Path(data)
    files = check_data(root)
    rows = RowCache(cache)
    priors = _Priors(model, rows)
    params = SamplingParams(max_new_tokens=max_tokens, seed=seed)
    for path in files:
        name = str(path.relative_to(root)) if root.is_dir() else path.name
        pairs = split(load_pairs(path)[0], part)[:limit]
        work = len(pairs) + min(openings, len(pairs))
        with progress_bar(work, f"ai_author {part}: {name}") as advance:
            for index, (human, machine) in pairs:
                conditional, *texts = opening(path, human, machine)
                context = render(conditional)
                for label, text in enumerate(texts):
                    row = _row("text", f"{name}:{index}", label, part, name)
                    if rows.missing(row["key"]):
                        rows.add(_scored(row, model, context, conditional, text))
                    priors.add(rows.rows[row["key"]], conditional)
                    _add_binoculars(rows, rows.rows[row["key"]], model, performer, context, text)
                advance(1)
            for index, (human, machine) in pairs[:openings]:
                conditional, next_words, _ = opening(path, human, machine)
                for row in _opening_rows(
                    model, rows, priors, part, name, index, conditional, next_words, samples, params
                ):
                    _add_binoculars(rows, row, model, performer, render(conditional), row["text"])
                advance(1)
    return rows.selected()


class _Priors:
    """Adds `probe_prior` (and `probe_shift`) to cached rows computed before the check read the
    probes against it, as `signals` computes them; one prior per conditional up to its authors
    (which the prior replaces)."""

    def __init__(self, model: PredictiveModel, rows: RowCache) -> None:
        self.model, self.rows, self.known = model, rows, {}

    def add(self, row: dict[str, Any], conditional: Conditional) -> None:
        values = row["signals"]
        if "probe_prior" in values:
            return
        key = conditional.with_(authors=[]).to_yaml()
        if key not in self.known:
            self.known[key] = probe_prior(self.model, conditional)
        values["probe_prior"] = self.known[key]
        values["probe_shift"] = values["probe_logit"] - values["probe_prior"]
        self.rows.add(row)  # the later line wins when the cache is read


def _add_binoculars(rows: RowCache, row: dict, model, performer, context: str, text: str) -> None:
    if performer is not None and "binoculars" not in row["signals"]:
        row["signals"]["binoculars"] = binoculars(model, performer, context, text)
        rows.add(row)  # the later line wins when the cache is read


def binoculars(
    observer: PredictiveModel, performer: PredictiveModel, context: str, text: str
) -> float:
    """Binoculars (Hans et al. 2024), negated so that higher means machine: the text's
    log-perplexity under the observer over the cross-perplexity of the performer's next-token
    distributions under the observer's. Needs two models with whole distributions over one
    tokenizer (`hf`); NaN otherwise. Reads the same first words as the check."""
    text = first_words(text)
    if not all(hasattr(m, "logprob_rows") for m in (observer, performer)):
        return float("nan")
    ids = observer.encode(text)
    if not ids or performer.encode(text) != ids:
        return float("nan")
    seen = observer.logprob_rows(observer.context_ids(context), ids)
    expected = performer.logprob_rows(performer.context_ids(context), ids)
    if seen.shape != expected.shape:
        return float("nan")
    log_ppl = -seen.gather(1, seen.new_tensor(ids).long()[:, None]).mean()
    x_ppl = -(expected.exp() * seen).sum(-1).mean()
    return float(-(log_ppl / x_ppl))


def _scored(row: dict, model: PredictiveModel, context: str, conditional, text: str) -> dict:
    """The row with its signals and the seconds they took (the check's cost per sample)."""
    started = time.perf_counter()
    row["signals"], _ = signals(model, context, conditional, text)
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def _opening_rows(
    model,
    rows: RowCache,
    priors: _Priors,
    part,
    name,
    index,
    conditional,
    next_words,
    samples,
    params,
) -> list[dict[str, Any]]:
    """Self-sampled and planted rows of one opening (computing those not in the cache yet);
    returns the self-sampled ones."""
    shown = render(conditional)
    sampled = []
    for label, side in ((0, "human"), (1, "ai")):
        authored = conditional.with_(authors=[SAMPLING_AUTHORS[side]])
        row = _row("planted", f"{name}:{index}", label, part, name)
        if rows.missing(row["key"]):
            rows.add(_scored(row, model, render(authored), authored, next_words))
        priors.add(rows.rows[row["key"]], authored)
        todo = [_row("sampled", f"{name}:{index}:{i}", label, part, name) for i in range(samples)]
        if [row for row in todo if rows.missing(row["key"])]:
            drawn = model.sample(render(authored), samples, params)
            for row, sample in zip(todo, drawn, strict=True):
                row = {**row, "text": sample.text}
                rows.add(_scored(row, model, shown, conditional, sample.text))
        for row in todo:
            priors.add(rows.rows[row["key"]], conditional)
        sampled += [rows.rows[row["key"]] for row in todo]
    return sampled


# --- fitting ------------------------------------------------------------------------------------

# The combiners fitted for each source of text, most signals first: the check uses the first whose
# signals a model gives (Fast-DetectGPT needs whole distributions, which only `hf` models expose).
FEATURE_SETS = {
    "all signals": SIGNALS,
    "no Fast-DetectGPT": tuple(s for s in SIGNALS if s != "fastdetect"),
}
# The rows each source's combiner is fitted on, each kind weighing this much in all whatever its
# count, and the kind whose human side sets its thresholds. The two sources are fitted apart
# because the style signals point opposite ways on them: AI-author samples of the model read
# *less* machine-like than human-author ones (Fast-DetectGPT AUROC 0.37, fit part), other models'
# text more. 5-fold cross-validation on the fit part (grouped by unit; 30 pairs a file, 3
# openings): one combiner on all three kinds (1 / 1 / 0.2) gave AUROC 0.856 on own samples and
# 0.770 on text; the own-samples combiner 0.892, the other-text one 0.827. Without planted
# authors the own-samples combiner reaches 0.916, but planted authors fall from 0.931 to 0.695
# (the probes' weight from 1.89 to 0.23): only they teach it an author the conditional states.
FIT_ROWS = {
    "own samples": {"sampled": 1.0, "planted": 0.2},
    "other text": {"text": 1.0},
}
THRESHOLD_ROWS = {"own samples": "sampled", "other text": "text"}
# Verdict thresholds: the false-positive rates allowed on each source's human side (the fit
# part's own samples under a human author; people's texts).
WARN_FPR, FAIL_FPR = 0.05, 0.01


def row_source(row: dict[str, Any]) -> str:
    """Which combiner judges a row: human vs machine text is other text; the model's own samples
    and planted authors (a document that states its author) are what a prediction is."""
    return "other text" if row["kind"] == "text" else "own samples"


def fit_combiners(rows: Sequence[dict[str, Any]]) -> list[Combiner]:
    """A logistic regression per source and feature set on standardised signals, each on its
    source's fit rows weighted as `FIT_ROWS` says; then thresholds at the quantiles of that
    source's human-side rows (`THRESHOLD_ROWS`) that give `WARN_FPR` and `FAIL_FPR`."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as e:
        raise InputError(
            f"fitting the ai_author combiner needs scikit-learn ({e})",
            fix="install the optional dependencies with: pip install 'condpred[fit]'",
        ) from None

    combiners = []
    for source, kinds in FIT_ROWS.items():
        train = [r for r in rows if r["kind"] in kinds]
        y = np.array([r["label"] for r in train])
        if len(set(y)) < 2:
            raise InputError(
                f"no rows of both labels to fit the combiner for {source} on",
                field=", ".join(kinds),
                fix="Fit with at least one pair a file and one opening (--limit, --openings)",
            )
        human = [r for r in train if r["kind"] == THRESHOLD_ROWS[source] and not r["label"]]
        weight = _kind_weights(train, kinds)
        for name, features in FEATURE_SETS.items():
            x = np.array([[r["signals"][f] for f in features] for r in train], dtype=float)
            mean, spread = x.mean(0), x.std(0)
            scale = np.where(spread > 0, spread, 1.0)  # a signal constant in the data (lexical)
            model = LogisticRegression(C=1.0).fit((x - mean) / scale, y, sample_weight=weight)
            combiner = Combiner(
                name,
                source,
                features,
                tuple(mean),
                tuple(scale),
                tuple(model.coef_[0]),
                float(model.intercept_[0]),
                1.0,
                1.0,
            )
            values = np.array([combiner.probability(r["signals"]) for r in human])
            warn = float(np.quantile(values, 1 - WARN_FPR))
            fail = max(float(np.quantile(values, 1 - FAIL_FPR)), warn)
            combiners.append(dataclasses.replace(combiner, warn_above=warn, fail_above=fail))
    return combiners


def _kind_weights(rows: Sequence[dict[str, Any]], kinds: dict[str, float]) -> np.ndarray:
    """Each row's weight: its kind's share of the weights in `kinds` over the rows of that kind
    (mean 1 over the rows)."""
    counts = Counter(r["kind"] for r in rows)
    total = sum(kinds[k] for k in counts)
    return np.array([kinds[r["kind"]] / total * len(rows) / counts[r["kind"]] for r in rows])


# --- validation -----------------------------------------------------------------------------

# What the tables show, each oriented so that higher means "an AI wrote it": the check itself,
# its signals, and the anchors (likelihood and Fast-DetectGPT are signals and anchors at once).
COLUMNS = {
    "ai_author (the check)": "check",
    "probes": "probe_shift",
    "author ratio": "author_llr",
    "likelihood": "loglik",
    "Fast-DetectGPT": "fastdetect",
    "Binoculars": "binoculars",
}
# The yardstick of criterion (1): the best single-model anchor of each file. Binoculars needs a
# second model, so it is reported beside them but is not what the check is held to.
SINGLE_MODEL_ANCHORS = ("likelihood", "Fast-DetectGPT")


def with_check(rows: Sequence[dict[str, Any]], combiners: Sequence[Combiner]) -> list[dict]:
    """The rows with the check's own value (`check`) beside their signals, and its verdict at
    the thresholds of the combiner that judged the row."""
    out = []
    for row in rows:
        values = row["signals"]
        combiner = pick_combiner(combiners, values, row_source(row))
        check = combiner.probability(values)
        found = verdict(check, combiner.warn_above, combiner.fail_above)
        out.append({**row, "signals": {**values, "check": check}, "verdict": found})
    return out


def verdict_rates(rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """The share of `rows` that warn or fail, and that fail, at the check's thresholds."""
    if not rows:
        return {"warn": None, "fail": None}
    return {
        "warn": sum(r["verdict"] != "pass" for r in rows) / len(rows),
        "fail": sum(r["verdict"] == "fail" for r in rows) / len(rows),
    }


def _auroc_ci(negative: np.ndarray, positive: np.ndarray, seed: int):
    """AUROC of positives over negatives and its paired-bootstrap 95% interval (None below
    `MIN_CI_N` pairs or where a value is missing)."""
    if np.isnan(negative).any() or np.isnan(positive).any():
        return None, None  # a signal not computed here (Binoculars without a performer)
    return auroc(positive, negative), ci_list(
        lambda n, p: auroc(p, n), negative, positive, seed=seed
    )


def _paired(rows: Sequence[dict[str, Any]], kind: str) -> tuple[list[dict], list[dict]]:
    """The label-0 and label-1 rows of one kind, paired by unit (both present)."""
    by_unit: dict[str, dict[int, dict]] = {}
    for row in rows:
        if row["kind"] == kind:
            by_unit.setdefault(row["unit"], {})[row["label"]] = row
    units = sorted(u for u, sides in by_unit.items() if len(sides) == 2)
    return [by_unit[u][0] for u in units], [by_unit[u][1] for u in units]


def _values(rows: Sequence[dict[str, Any]], signal: str) -> np.ndarray:
    """One signal of each row; NaN where it was not computed (Binoculars without a performer)."""
    return np.array([r["signals"].get(signal, np.nan) for r in rows], dtype=float)


def auroc_row(name: str, negative: Sequence[dict], positive: Sequence[dict], seed: int) -> dict:
    """AUROC [CI] of every column on paired rows, the check's paired difference with the best
    single-model anchor, and the TPR of each column at a 1% false-positive rate."""
    row: dict[str, Any] = {"file": name, "n": len(negative)}
    for column, signal in COLUMNS.items():
        neg, pos = _values(negative, signal), _values(positive, signal)
        value, ci = _auroc_ci(neg, pos, seed)
        row[column] = {"auroc": value, "ci": ci, "tpr_at_1pct_fpr": _tpr_at(neg, pos, 0.01)}
    best = max(
        SINGLE_MODEL_ANCHORS, key=lambda a: -1.0 if row[a]["auroc"] is None else row[a]["auroc"]
    )
    signal = COLUMNS[best]
    row["best_anchor"] = best
    row["check_minus_best"] = ci_list(
        lambda n1, p1, n2, p2: auroc(p1, n1) - auroc(p2, n2),
        _values(negative, "check"),
        _values(positive, "check"),
        _values(negative, signal),
        _values(positive, signal),
        seed=seed,
    )
    return row


def _tpr_at(negative: np.ndarray, positive: np.ndarray, fpr: float) -> float | None:
    """The share of positives above the threshold that at most `fpr` of negatives exceed."""
    if np.isnan(negative).any() or np.isnan(positive).any() or not len(negative):
        return None
    threshold = np.quantile(negative, 1 - fpr, method="higher")
    return float((positive > threshold).mean())


def summarise_validation(
    rows: Sequence[dict[str, Any]], combiners: Sequence[Combiner], seed: int = 0
) -> dict[str, Any]:
    """The three validations on scored rows: human vs machine text (per file and pooled), the
    model's own samples under a human vs an AI author, and planted authors; and the rows with
    the check's value beside their signals."""
    rows = with_check(rows, combiners)
    files = sorted({r["file"] for r in rows if r["kind"] == "text"})
    text = [
        auroc_row(f, *_paired([r for r in rows if r["file"] == f], "text"), seed) for f in files
    ]
    people, machines = _paired(rows, "text")
    if len(files) > 1:
        text.append(auroc_row("(all files pooled)", people, machines, seed))
    if text:
        text[-1]["false_positive_rate"] = verdict_rates(people)
        text[-1]["true_positive_rate"] = verdict_rates(machines)
    human, ai = _paired(rows, "sampled")
    sampled = auroc_row("self-sampled", human, ai, seed)
    sampled["false_positive_rate"] = verdict_rates(human)
    sampled["true_positive_rate"] = verdict_rates(ai)
    planted_h, planted_ai = _paired(rows, "planted")
    planted: dict[str, Any] = {"n": len(planted_h)}
    planted["verdicts"] = {"human": verdict_rates(planted_h), "ai": verdict_rates(planted_ai)}
    for column, signal in COLUMNS.items():
        on_ai, on_human = _values(planted_ai, signal), _values(planted_h, signal)
        if not len(on_ai) or np.isnan(on_ai).any() or np.isnan(on_human).any():
            planted[column] = {"ai_higher": None, "ci": None}
            continue
        higher = (on_ai > on_human) + 0.5 * (on_ai == on_human)  # a tie counts one half
        planted[column] = {
            "ai_higher": float(higher.mean()),
            "ci": ci_list(np.mean, higher, seed=seed),
        }
    return {
        "human_vs_machine": text,
        "self_sampled": sampled,
        "planted": planted,
        "seconds_per_row": seconds_per_row(rows),
        "rows": rows,
    }


def seconds_per_row(rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """The check's measured cost: median seconds to compute every signal of one row, by kind
    (the median, since a row computed while the machine was busy is an outlier)."""
    cost: dict[str, float | None] = {}
    for kind in ("text", "sampled", "planted"):
        seconds = [r["seconds"] for r in rows if r["kind"] == kind and "seconds" in r]
        cost[kind] = round(float(np.median(seconds)), 2) if seconds else None
    return cost


def combiner_record(
    combiners: Sequence[Combiner], rows: Sequence[dict[str, Any]], **fitted: Any
) -> dict[str, Any]:
    """The JSON the check loads: the combiners, and how and on what they were fitted."""
    kinds = {k: sum(1 for r in rows if r["kind"] == k) for k in ("text", "sampled", "planted")}
    return {
        "combiners": [dataclasses.asdict(c) for c in combiners],
        "fitted": {
            **fitted,
            "rows": kinds,
            "seconds_per_row": seconds_per_row(rows),
            "split": "odd pair indices of each file (validation uses the even ones)",
            "fitted_on": {s: f"fit-part rows weighing {k}" for s, k in FIT_ROWS.items()},
            "thresholds": f"warn and fail where {WARN_FPR:.0%} and {FAIL_FPR:.0%} of each "
            "source's human side lie above (own samples under a human author; people's texts)",
            "date": dt.date.today().isoformat(),
        },
    }


def _cell(result: dict[str, Any]) -> str:
    if result["auroc"] is None:
        return "n/a"
    return f"{result['auroc']:.3f} {format_ci(result['ci'])}"


def _versus_best(row: dict[str, Any]) -> str:
    """The check's paired AUROC difference with the file's best single-model anchor."""
    low, high = row["check_minus_best"] or (None, None)
    if low is None:
        return "n/a"
    name = row["best_anchor"]
    point = row["ai_author (the check)"]["auroc"] - row[name]["auroc"]
    return f"{point:+.3f} {format_ci([low, high])} vs {name}"


def _share(result: dict[str, Any]) -> str:
    if result["ai_higher"] is None:
        return "n/a"
    return f"{result['ai_higher']:.2f} {format_ci(result['ci'])}"


def format_validation(summary: dict[str, Any]) -> str:
    """The three validations as Markdown tables, for the terminal and for pasting."""
    names = list(COLUMNS)
    head = [
        "| | n | " + " | ".join(names) + " | check - best single-model anchor |",
        "| --- | ---: |" + " --- |" * (len(names) + 1),
    ]
    lines = ["Human vs machine text: AUROC [95% CI] (higher = machine)", "", *head]
    for row in [*summary["human_vs_machine"], summary["self_sampled"]]:
        label = row["file"] if row["file"] != "self-sampled" else None
        if label is None:
            lines += [
                "",
                "Self-sampled: AUROC of AI-author over human-author predictions",
                "",
                *head,
            ]
            label = "self-sampled"
        cells = " | ".join(_cell(row[name]) for name in names)
        lines.append(f"| {label} | {row['n']} | {cells} | {_versus_best(row)} |")
    lines.append("")
    for label, row in (
        ("the model's own samples", summary["self_sampled"]),
        ("human vs machine text", (summary["human_vs_machine"] or [None])[-1]),
    ):
        if row is not None and row["false_positive_rate"]["warn"] is not None:
            fpr, tpr = row["false_positive_rate"], row["true_positive_rate"]
            lines.append(
                f"Verdicts on {label}: human side warn {fpr['warn']:.1%}, fail "
                f"{fpr['fail']:.1%} (fitted for {WARN_FPR:.0%} and {FAIL_FPR:.0%}); AI side "
                f"warn {tpr['warn']:.1%}, fail {tpr['fail']:.1%}"
            )
    planted = summary["planted"]
    lines += [
        "",
        f"Planted authors ({planted['n']} openings): share where the AI side is higher",
        "",
        "| " + " | ".join(names) + " |",
        "|" + " --- |" * len(names),
        "| " + " | ".join(_share(planted[n]) for n in names) + " |",
    ]
    human, ai = planted["verdicts"]["human"], planted["verdicts"]["ai"]
    if human["warn"] is not None:
        lines += [
            "",
            f"Verdicts on planted authors: human side warn {human['warn']:.1%}, AI side warn "
            f"{ai['warn']:.1%}, fail {ai['fail']:.1%}",
        ]
    return "\n".join(lines)


def fit_ai_author(model: PredictiveModel, data: str | Path, **options: Any) -> dict[str, Any]:
    """Fit the check's combiners on the fit part of `data` (options as `compute_rows` takes
    them): the document `condpred checks fit ai_author` writes and the check loads."""
    started = time.perf_counter()
    rows = compute_rows(model, data, "fit", **options)
    combiners = fit_combiners(rows)
    return combiner_record(
        combiners,
        rows,
        model=getattr(model, "spec", None),
        data=str(data),
        options={k: v for k, v in options.items() if k != "cache"},
        seconds=round(time.perf_counter() - started, 1),
    )


def validate_ai_author(
    model: PredictiveModel,
    data: str | Path,
    combiner: str | Path | None = None,
    seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """The three validations on the validation part of `data`, with the fitted combiners
    (the package's, or `combiner`); `options` as `compute_rows` takes them."""
    started = time.perf_counter()
    rows = compute_rows(model, data, "validate", seed=seed, **options)
    combiners, fitted = load_combiners(combiner)
    summary = summarise_validation(rows, combiners, seed)
    return {
        "check": "ai_author",
        "model": getattr(model, "spec", None),
        "data": str(data),
        "options": {k: v for k, v in options.items() if k not in ("cache", "performer")},
        "performer": getattr(options.get("performer"), "spec", None),
        "combiner_fitted": fitted,
        "bootstrap": "paired over units (pairs, samples, openings), 1000 resamples, percentile 95%",
        "date": dt.date.today().isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
        **summary,
    }
