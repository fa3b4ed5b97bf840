"""`condpred reason` measured on the embedded model, as the README reports it: GSM8K's first
problems in the teacher's answer key (examples/reason/gsm8k-worked-solutions.yaml), three arms on
the same problems, each a stored run resumed where it stopped when the script is run again:

- `reason, no gate`: the chain with the arithmetic check only (stored, never acted on; without
  the gate the checks do not change what is sampled, so this is the chain of every ungated run);
- `reason, gate`: the default checks (ai_author, surprisal, arithmetic) with the gate on;
- `tuned CoT`: SmolLM2-135M-Instruct's own chain of thought under its chat template (the pass@k
  experiment with n = 1, greedy): the embedded gemma-3-270m has no chat template.

The direct answer under the same camera comes with every reason row. Accuracy and paired
differences with 95% bootstrap intervals over problems; the load average and tokens/s recorded.

    nice -n 10 timeout -s INT 2400 python bench/reason_embedded.py "reason, gate" FOLDER  # each arm
    python bench/reason_embedded.py summary bench/results/reason_gsm8k_embedded.json FOLDER

Each arm is its own process and store (FOLDER/ARM.db), so the arms run side by side; run an arm
again to resume it. Problems are paired by id across arms (those every arm reached).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from condpred import Store
from condpred.experiments.passk import PassKRow, Verifier, run_passk
from condpred.experiments.reason import ReasonRow, run_reason
from condpred.experiments.runner import read_rows, resume
from condpred.model.registry import load_model
from condpred.stats import ci_list

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
DOCUMENT = ROOT / "examples" / "reason" / "gsm8k-worked-solutions.yaml"
TUNED = "smollm2-135m-instruct"
REASON = dict(steps=3, max_tokens=40, temperature=0.7, seed=0)


def _load(spec: str):
    return load_model(spec, device="cpu")


ARMS = {
    "reason, no gate": (False, ["arithmetic"]),
    "reason, gate": (True, ["ai_author", "surprisal", "arithmetic"]),
    "tuned CoT": None,
}


def run_arm(arm: str, db: Path, n: int) -> None:
    """One arm in its own store (arms run as parallel processes: SQLite has one writer), resumed
    when the store already holds its run."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # `timeout -s INT` stops us
    with Store(db) as store:
        runs = store.list_runs(limit=1)
        try:
            if runs:
                resume(runs[0].id, store, _load)
            elif ARMS[arm] is None:
                run_passk(
                    str(DATA), [TUNED], n=1, limit=n, prompt_style="chat", temperature=0.0,
                    top_p=1.0, max_tokens=160, store=store, load=_load,
                )  # fmt: skip
            else:
                gate, checks = ARMS[arm]
                run_reason(
                    DOCUMENT, _load("default"), data=DATA, limit=n, use_gate=gate,
                    checks=checks, store=store, **REASON,
                )  # fmt: skip
        except KeyboardInterrupt:
            print(f"{arm}: stopped by its time limit; run it again to go on")


def main(out: Path, stores: dict[str, Path]) -> None:
    """The summary of the arms' stores, with the load average now."""
    state = {}
    opened = {arm: Store(path) for arm, path in stores.items() if path.exists()}
    for arm, store in opened.items():
        runs = store.list_runs(limit=1)
        if runs:
            state[arm] = (store, runs[0].id)
    report = summary(state)
    for store in opened.values():
        store.close()
    report.update(
        load_average=os.getloadavg(),
        settings={"n_requested": N, **REASON, "document": str(DOCUMENT.relative_to(ROOT))},
    )
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["accuracy"], indent=2))


def summary(state: dict[str, tuple[Store, str]]) -> dict:
    """Per arm: problems, correct, tokens/s; per problem id: who was right; paired CIs."""
    correct: dict[str, dict[str, bool]] = {}
    arms = {}
    for name, (store, run_id) in state.items():
        run = store.get_run(run_id)
        if run.kind == "reason":
            rows = read_rows(store, run_id, ReasonRow)
            correct[name] = {r.id: r.verdict == "correct" for r in rows}
            rescored = _rescored(store, run_id, rows)
            correct[f"{name} (rescored)"] = {i: v == "correct" for i, (_, v) in rescored.items()}
            correct.setdefault(
                "direct, same camera", {r.id: r.direct_verdict == "correct" for r in rows}
            )
            tokens, seconds = sum(r.tokens for r in rows), sum(r.sample_s for r in rows)
            arms[name] = {
                "run_id": run_id, "status": run.status, "problems": len(rows),
                "verdicts": _counts(r.verdict for r in rows),
                "direct_verdicts": _counts(r.direct_verdict for r in rows),
                "answers": [[r.id, r.answer, r.direct_answer, r.gold] for r in rows],
                "rescored_answers": {i: a for i, (a, _) in rescored.items()},
                "empty_steps": sum(not s.text.strip() for r in rows for s in r.steps),
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
            }  # fmt: skip
    accuracy = {}
    for name, by_id in correct.items():
        values = np.array(list(by_id.values()), dtype=float)
        if values.size:
            accuracy[name] = {
                "problems": int(values.size),
                "accuracy": float(values.mean()),
                "ci": ci_list(np.mean, values),
            }
    pairs = [("reason, gate", "reason, no gate"), ("reason, no gate", "direct, same camera"),
             ("reason, no gate (rescored)", "direct, same camera"),
             ("reason, no gate (rescored)", "tuned CoT"),
             ("reason, gate", "direct, same camera"), ("reason, no gate", "tuned CoT")]  # fmt: skip
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


def _rescored(store: Store, run_id: str, rows: list) -> dict[str, tuple]:
    """Each chain's answer re-verified from its stored steps and answer line without the `Step k.`
    labels (runs made before the fix read a label as the answer by the last-number rule)."""
    problems = {p["id"]: p for p in store.get_run(run_id).params["problems"]}
    out = {}
    with Verifier(10.0) as verifier:
        for r in rows:
            text = "\n".join(s.text for s in r.steps)
            if "####" not in text:  # the chain's answer line is the second-to-last sample
                text += "\n####" + store.samples(run_id, r.index)[-2].text
            p = problems[r.id]
            v = verifier.check(p["kind"], p["gold"], text)
            out[r.id] = (v.answer, v.verdict)
    return out


def _counts(values) -> dict[str, int]:
    tally: dict[str, int] = {}
    for v in values:
        tally[str(v)] = tally.get(str(v), 0) + 1
    return tally


N = 15


def _stores(folder: Path) -> dict[str, Path]:
    return {arm: folder / f"{arm.replace(', ', '-').replace(' ', '-')}.db" for arm in ARMS}


if __name__ == "__main__":
    if sys.argv[1] == "summary":  # summary OUT.json FOLDER
        main(Path(sys.argv[2]), _stores(Path(sys.argv[3])))
    else:  # ARM FOLDER: one arm, resumed if its store has its run
        run_arm(sys.argv[1], _stores(Path(sys.argv[2]))[sys.argv[1]], N)
