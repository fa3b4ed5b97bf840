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

    nice -n 10 timeout -s INT 3000 python bench/reason_embedded.py DB OUT.json [N]
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from condpred import Store
from condpred.experiments.passk import PassKRow, run_passk
from condpred.experiments.reason import ReasonRow, run_reason
from condpred.experiments.runner import read_rows, resume
from condpred.model.registry import load_model
from condpred.stats import bootstrap_ci

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
DOCUMENT = ROOT / "examples" / "reason" / "gsm8k-worked-solutions.yaml"
TUNED = "smollm2-135m-instruct"
REASON = dict(steps=3, max_tokens=40, temperature=0.7, seed=0)


def _load(spec: str):
    return load_model(spec, device="cpu")


def _arm(store: Store, state: dict, name: str, start) -> str:
    """The arm's run: resumed when the state file names an unfinished one, else started."""
    run_id = state.get(name)
    if run_id is None:
        try:
            run_id = start()
        except KeyboardInterrupt:
            state[name] = store.list_runs(limit=1)[0].id
            raise
    elif store.get_run(run_id).status != "done":
        resume(run_id, store, _load)
    state[name] = run_id
    return run_id


def main(db: Path, out: Path, n: int) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # `timeout -s INT` stops us
    state_file = db.with_suffix(".arms.json")
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    started, load_start = time.time(), os.getloadavg()
    gemma = None
    with Store(db) as store:
        try:
            for name, gate, checks in (
                ("reason, no gate", False, ["arithmetic"]),
                ("reason, gate", True, ["ai_author", "surprisal", "arithmetic"]),
            ):
                if name not in state:
                    gemma = gemma or _load("default")

                def start(gate=gate, checks=checks, model=gemma):
                    return run_reason(
                        DOCUMENT, model, data=DATA, limit=n, use_gate=gate, checks=checks,
                        store=store, **REASON,
                    ).run_id  # fmt: skip

                _arm(store, state, name, start)
                state_file.write_text(json.dumps(state))
            _arm(
                store,
                state,
                "tuned CoT",
                lambda: run_passk(
                    str(DATA), [TUNED], n=1, limit=n, prompt_style="chat", temperature=0.0,
                    top_p=1.0, max_tokens=160, store=store, load=_load,
                ).run_id,
            )  # fmt: skip
        except KeyboardInterrupt:
            print("stopped by its time limit; run it again to go on")
        state_file.write_text(json.dumps(state))
        report = summary(store, state)
    report.update(
        wall_s=time.time() - started,
        load_average_at_start=load_start,
        load_average_at_end=os.getloadavg(),
        settings={"problems": n, **REASON, "document": str(DOCUMENT.relative_to(ROOT))},
    )
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["accuracy"], indent=2))


def summary(store: Store, state: dict) -> dict:
    """Per arm: problems, correct, tokens/s; per problem id: who was right; paired CIs."""
    correct: dict[str, dict[str, bool]] = {}
    arms = {}
    for name, run_id in state.items():
        run = store.get_run(run_id)
        if run.kind == "reason":
            rows = read_rows(store, run_id, ReasonRow)
            correct[name] = {r.id: r.verdict == "correct" for r in rows}
            correct.setdefault(
                "direct, same camera", {r.id: r.direct_verdict == "correct" for r in rows}
            )
            tokens, seconds = sum(r.tokens for r in rows), sum(r.sample_s for r in rows)
            arms[name] = {
                "run_id": run_id, "status": run.status, "problems": len(rows),
                "verdicts": _counts(r.verdict for r in rows),
                "direct_verdicts": _counts(r.direct_verdict for r in rows),
                "answers": [[r.id, r.answer, r.direct_answer, r.gold] for r in rows],
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
                "ci": list(bootstrap_ci(np.mean, values)),
            }
    pairs = [("reason, gate", "reason, no gate"), ("reason, no gate", "direct, same camera"),
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
                    "ci": list(bootstrap_ci(lambda p, q: float(np.mean(p - q)), x, y)),
                }
    return {"arms": arms, "accuracy": accuracy}


def _counts(values) -> dict[str, int]:
    tally: dict[str, int] = {}
    for v in values:
        tally[str(v)] = tally.get(str(v), 0) + 1
    return tally


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 15)
