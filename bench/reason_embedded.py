"""`condpred reason` measured on the embedded model, as the README reports it: GSM8K's (or
MATH-500's) first problems in a teacher's answer key (examples/reason/gsm8k-worked-solutions.yaml,
math-worked-solutions.yaml), the arms on the same problems, each a stored run resumed where it
stopped when the script is run again:

- `reason, no gate`: the chain with the arithmetic check only (stored, never acted on; without
  the gate the checks do not change what is sampled, so this is the chain of every ungated run);
- `reason, gate`: the default checks (ai_author, surprisal, arithmetic) with the gate on;
- `tuned CoT`: SmolLM2-135M-Instruct's own chain of thought under its chat template (the pass@k
  experiment with n = 1, greedy): the embedded gemma-3-270m has no chat template.

The direct answer under the same camera (greedy `####` line after the problem) comes with every
reason row. Accuracy and paired differences with 95% bootstrap intervals over problems; the load
average (every minute, per arm) and tokens/s recorded. One torch thread per arm: the arms run
side by side on a 2-core machine shared with other jobs (bench/sample.py: one thread is faster
with a core busy).

    nice -n 10 timeout -s INT 2400 python bench/reason_embedded.py "reason, gate" FOLDER gsm8k
    python bench/reason_embedded.py summary bench/results/reason_gsm8k_embedded.json FOLDER gsm8k

Each arm is its own process and store (FOLDER/DATASET-ARM.db), so the arms run side by side; run
an arm again to resume it. Problems are paired by id across arms (those every pair reached).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from condpred import Store
from condpred.experiments.passk import PassKRow, Verifier, run_passk
from condpred.experiments.passk.data import load_problems
from condpred.experiments.reason import ReasonRow, run_reason
from condpred.experiments.runner import read_rows, resume
from condpred.model.registry import load_model
from condpred.stats import ci_list

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {  # data, document, problems
    "gsm8k": (
        ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl",
        ROOT / "examples" / "reason" / "gsm8k-worked-solutions.yaml",
        30,
    ),
    "math500": (
        ROOT.parent / "shared" / "data" / "math500" / "test.jsonl",
        ROOT / "examples" / "reason" / "math-worked-solutions.yaml",
        16,
    ),
}
THREADS = 1
TUNED = "smollm2-135m-instruct"
REASON = dict(steps=3, max_tokens=40, temperature=0.7, seed=0)


def _load(spec: str):
    os.environ["CONDPRED_THREADS"] = str(THREADS)
    return load_model(spec, device="cpu")


ARMS = {
    "reason, no gate": (False, ["arithmetic"]),
    "reason, gate": (True, ["ai_author", "surprisal", "arithmetic"]),
    "tuned CoT": None,
}


def run_arm(arm: str, db: Path, dataset: str) -> None:
    """One arm in its own store (arms run as parallel processes: SQLite has one writer), resumed
    when the store already holds its run."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # `timeout -s INT` stops us
    data, document, n = DATASETS[dataset]
    _watch_load(db.with_suffix(".load.jsonl"))
    with Store(db) as store:
        runs = store.list_runs(limit=1)
        try:
            if runs:
                resume(runs[0].id, store, _load)
            elif ARMS[arm] is None:
                run_passk(
                    str(data), [TUNED], n=1, limit=n, prompt_style="chat", temperature=0.0,
                    top_p=1.0, max_tokens=160, store=store, load=_load,
                )  # fmt: skip
            else:
                gate, checks = ARMS[arm]
                run_reason(
                    document, _load("default"), data=data, limit=n, use_gate=gate,
                    checks=checks, store=store, **REASON,
                )  # fmt: skip
        except KeyboardInterrupt:
            print(f"{arm}: stopped by its time limit; run it again to go on")


def _watch_load(path: Path, every: float = 60.0) -> None:
    """The load average every minute while the arm runs, appended to `path` (a daemon thread)."""

    def watch() -> None:
        while True:
            with path.open("a") as f:
                f.write(json.dumps({"t": time.time(), "load": os.getloadavg()}) + "\n")
            time.sleep(every)

    threading.Thread(target=watch, daemon=True).start()


def main(out: Path, stores: dict[str, Path], dataset: str) -> None:
    """The summary of the arms' stores, with the load averages recorded while they ran."""
    state = {}
    opened = {arm: Store(path) for arm, path in stores.items() if path.exists()}
    for arm, store in opened.items():
        runs = store.list_runs(limit=1)
        if runs:
            state[arm] = (store, runs[0].id)
    report = summary(state)
    for store in opened.values():
        store.close()
    loads = {}
    for arm, path in stores.items():
        log = path.with_suffix(".load.jsonl")
        if log.exists():
            one_minute = [json.loads(line)["load"][0] for line in log.read_text().splitlines()]
            loads[arm] = {
                "samples": len(one_minute), "min": min(one_minute),
                "median": float(np.median(one_minute)), "max": max(one_minute),
            }  # fmt: skip
    _, document, n = DATASETS[dataset]
    report.update(
        load_average_1min=loads,
        settings={"dataset": dataset, "n_requested": n, **REASON, "torch_threads": THREADS,
                  "document": str(document.relative_to(ROOT)), "tuned_max_tokens": 160},
    )  # fmt: skip
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["accuracy"], indent=2))


def summary(state: dict[str, tuple[Store, str]]) -> dict:
    """Per arm: problems, correct, tokens/s; per problem id: who was right; paired CIs."""
    correct: dict[str, dict[str, bool]] = {}
    arms = {}
    direct: dict[str, dict[str, str | None]] = {}
    for name, (store, run_id) in state.items():
        run = store.get_run(run_id)
        if run.kind == "reason":
            rows = read_rows(store, run_id, ReasonRow)
            correct[name] = {r.id: r.verdict == "correct" for r in rows}
            direct[name] = {r.id: r.direct_answer for r in rows}
            if name == "reason, no gate" or "direct, same camera" not in correct:
                correct["direct, same camera"] = {r.id: r.direct_verdict == "correct" for r in rows}
            tokens, seconds = sum(r.tokens for r in rows), sum(r.sample_s for r in rows)
            arms[name] = {
                "run_id": run_id, "status": run.status, "problems": len(rows),
                "verdicts": _counts(r.verdict for r in rows),
                "direct_verdicts": _counts(r.direct_verdict for r in rows),
                "answers": [[r.id, r.answer, r.direct_answer, r.gold] for r in rows],
                "empty_steps": sum(not s.text.strip() for r in rows for s in r.steps),
                "steps_on_the_line_below": sum(
                    s.text.startswith("\n") for r in rows for s in r.steps
                ),
                "steps_kept": sum(len(r.steps) for r in rows),
                "steps_rejected": sum(r.gate_stops for r in rows),
                "chains_stopped_by_gate": sum(r.stopped.startswith("gate") for r in rows),
                "stopped": _counts(r.stopped.split(":")[0] for r in rows),
                "check_verdicts": _counts(
                    f"{c['check']}:{c['verdict']}" for r in rows for s in r.steps for c in s.checks
                ),
                "tokens": tokens, "sample_s": seconds,
                "tokens_per_s": tokens / seconds if seconds else None,
                "check_s": sum(r.check_s for r in rows),
                **_rules(store, run_id, rows),
            }  # fmt: skip
        else:
            rows = read_rows(store, run_id, PassKRow)
            correct[name] = {r.id: r.correct > 0 for r in rows}
            tokens, seconds = sum(r.tokens for r in rows), sum(r.sample_s for r in rows)
            arms[name] = {
                "run_id": run_id, "status": run.status, "problems": len(rows),
                "verdicts": _counts(v for r in rows for v in r.verdicts),
                "answers": [[r.id, r.answers[0]] for r in rows],
                "tokens": tokens, "tokens_per_s": tokens / seconds if seconds else None,
                **_rules(store, run_id, rows),
            }  # fmt: skip
    if len(direct) == 2:  # greedy and seeded alike: both reason arms' direct answers must agree
        a, b = direct.values()
        shared = set(a) & set(b)
        arms["direct answers identical across the reason arms"] = (
            f"{sum(a[i] == b[i] for i in shared)} of {len(shared)}"
        )
    accuracy = {}
    for name, by_id in correct.items():
        values = np.array(list(by_id.values()), dtype=float)
        if values.size:
            accuracy[name] = {
                "problems": int(values.size),
                "correct": int(values.sum()),
                "accuracy": float(values.mean()),
                "ci": ci_list(np.mean, values),
                "exact_ci": _exact(int(values.sum()), int(values.size)),
            }
    pairs = [("reason, gate", "reason, no gate"), ("reason, no gate", "direct, same camera"),
             ("reason, gate", "direct, same camera"), ("reason, no gate", "tuned CoT"),
             ("reason, gate", "tuned CoT"), ("direct, same camera", "tuned CoT")]  # fmt: skip
    for a, b in pairs:
        if a in correct and b in correct:
            ids = sorted(set(correct[a]) & set(correct[b]))
            if ids:
                x = np.array([correct[a][i] for i in ids], dtype=float)
                y = np.array([correct[b][i] for i in ids], dtype=float)
                accuracy[f"{a} - {b}"] = {
                    "problems": len(ids),
                    "difference": float((x - y).mean()),
                    "ci": ci_list(lambda p, q: float(np.mean(p - q)), x, y),
                }
    return {"arms": arms, "accuracy": accuracy}


def _exact(correct: int, n: int) -> list[float]:
    """Clopper-Pearson's exact 95% interval: the percentile bootstrap of a 0 of n accuracy is
    [0, 0] (every resample is 0), which says nothing of how high the accuracy could be."""
    from scipy.stats import binomtest  # scipy: pinned in constraints.txt, via scikit-learn

    ci = binomtest(correct, n).proportion_ci(method="exact")
    return [float(ci.low), float(ci.high)]


def _rules(store: Store, run_id: str, rows: list) -> dict[str, dict[str, int]]:
    """Which of the verifier's rules found each answer (`####` written by the model, or a
    fallback: boxed, "answer is", the last number in the text), re-verifying the stored text as
    the run gave it to the verifier; symbolic answers are all math-verify's."""
    params = store.get_run(run_id).params
    if "problems" in params:
        problems = {p["id"]: p for p in params["problems"]}
    else:  # a pass@k run stores where its problems are
        loaded, _ = load_problems(params["data"], params["limit"])
        problems = {p.id: {"kind": p.kind, "gold": p.gold} for p in loaded}
    chain, direct = [], []
    with Verifier(10.0) as verifier:
        for r in rows:
            p, samples = problems[r.id], store.samples(run_id, r.index)
            if p["kind"] != "numeric":
                continue
            if isinstance(r, PassKRow):
                chain.append(verifier.check("numeric", p["gold"], samples[0].text).rule)
                continue
            text = "\n".join(s.text for s in r.steps)
            if "####" not in text:  # the chain's answer line is the second-to-last sample
                text += f"\n#### {_first_line(samples[-2].text)}"
            chain.append(verifier.check("numeric", p["gold"], text).rule)
            direct.append(
                verifier.check("numeric", p["gold"], f"#### {_first_line(samples[-1].text)}").rule
            )
    out = {"answer_rules": _counts(chain)}
    if direct:
        out["direct_answer_rules"] = _counts(direct)
    return out


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _counts(values) -> dict[str, int]:
    tally: dict[str, int] = {}
    for v in values:
        tally[str(v)] = tally.get(str(v), 0) + 1
    return tally


def _stores(folder: Path, dataset: str) -> dict[str, Path]:
    return {
        arm: folder / f"{dataset}-{arm.replace(', ', '-').replace(' ', '-')}.db" for arm in ARMS
    }


if __name__ == "__main__":
    if sys.argv[1] == "summary":  # summary OUT.json FOLDER DATASET
        main(Path(sys.argv[2]), _stores(Path(sys.argv[3]), sys.argv[4]), sys.argv[4])
    else:  # ARM FOLDER DATASET: one arm, resumed if its store has its run
        run_arm(sys.argv[1], _stores(Path(sys.argv[2]), sys.argv[3])[sys.argv[1]], sys.argv[3])
