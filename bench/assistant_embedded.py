"""The two-model assistant measured on the embedded model (model A = model B = gemma-3-270m,
the rewrite by the translation camera), as the README reports it: the shipped prompt set, both
drafts per prompt, impersonation before and after, the disclosure, content recall and its
control. Resumed where it stopped when run again with the same DB.

    nice -n 10 timeout -s INT 2100 python bench/assistant_embedded.py DB OUT.json [--summary]

(--summary: only summarise what the DB holds.)
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from condpred import Store
from condpred.experiments.assistant import AssistantRow, run_assistant, summarise
from condpred.experiments.assistant.run import measure
from condpred.experiments.runner import read_rows, resume
from condpred.model.registry import load_model

PROMPTS = Path(__file__).resolve().parents[1] / "examples" / "assistant" / "expert-questions.txt"
SETTINGS = dict(max_tokens=48, temperature=0.7, seed=0)


def main(db: Path, out: Path, summary_only: bool = False) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # `timeout -s INT` stops us
    load_start = os.getloadavg()
    with Store(db) as store:
        runs = store.list_runs(limit=1)
        try:
            if summary_only:
                pass
            elif runs:
                resume(runs[0].id, store, lambda spec: load_model(spec, device="cpu"))
            else:
                model = load_model("default", device="cpu")
                run_assistant(PROMPTS, model, store=store, **SETTINGS)
        except KeyboardInterrupt:
            print("stopped by its time limit; run it again to go on")
        run = store.list_runs(limit=1)[0]
        rows = [_remeasured(r) for r in read_rows(store, run.id, AssistantRow)]
    report = {
        "run_id": run.id,
        "status": run.status,
        "model_a": "default",
        "model_b": "default (translation camera)",
        **SETTINGS,
        "summary": summarise(rows, run.seed or 0),
        "rows": [r.model_dump() for r in rows],
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
    }
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["summary"], indent=2))


def _remeasured(row: AssistantRow) -> AssistantRow:
    """The row measured by the measures as they are now (the drafts are what was sampled)."""
    m = measure(row.human_draft, row.reply)
    return row.model_copy(
        update={
            "impersonation_draft": [h["match"] for h in m["impersonation_draft"]],
            "impersonation_reply": [h["match"] for h in m["impersonation_reply"]],
            "states_ai": m["states_ai"],
            "content_recall": m["content_recall"],
        }
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), "--summary" in sys.argv[3:])
