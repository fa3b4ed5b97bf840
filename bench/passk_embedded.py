"""pass@k of the embedded pair on GSM8K, as the README reports it: `condpred passk` through the
library, stopped by SIGINT when its time is up (`timeout -s INT`) and summarised from the rows
stored by then; `condpred resume RUN_ID --db DB` goes on from there.

    nice -n 10 timeout -s INT 1200 python bench/passk_embedded.py DB OUT.json
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from condpred import Store
from condpred.experiments.passk import PassKRow, run_passk
from condpred.experiments.passk.run import summarise
from condpred.experiments.runner import read_rows
from condpred.model.registry import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"


def main(db: Path, out: Path) -> None:
    # A background job starts with SIGINT ignored: take it back, so `timeout -s INT` stops us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.time()
    with Store(db) as store:
        try:
            result = run_passk(
                str(DATA),
                ["default", "smollm2-135m-instruct"],
                n=8,
                limit=60,
                shots=2,
                prompt_style="native",
                temperature=0.6,
                top_p=1.0,
                max_tokens=128,
                seed=0,
                store=store,
                load=lambda spec: load_model(spec, device="cpu"),
            )
            run_id, summary = result.run_id, result.summary
        except KeyboardInterrupt:
            run = store.list_runs(limit=1)[0]
            rows = read_rows(store, run.id, PassKRow)
            run_id, summary = run.id, summarise(rows, run.params, run.seed or 0)
        status = store.get_run(run_id).status
    wall = time.time() - started
    out.write_text(json.dumps({"run_id": run_id, "status": status, "wall_s": wall, **summary}))
    print(f"run {run_id}: {status} after {wall:.0f} s; wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
