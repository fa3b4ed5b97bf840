"""pass@k of the embedded pair on GSM8K, as the README reports it.

Each model is its own `condpred passk` run in its own process, one torch thread each: on two
cores shared with other jobs one thread per process is faster than two threads in one (the
OpenMP barrier waits on a busy core: bench/results/sample.json, `threads`), and the two models
progress side by side. Both runs take the same problems in the same order with the same
per-problem seeds (`item_seed(kind, seed, problem)`), and `summary` pairs them by problem id on
the problems both reached. A run stopped by SIGINT (`timeout -s INT`) is resumed by starting the
same command again (or `condpred resume RUN_ID --db DB`).

    OMP_NUM_THREADS=1 nice -n 15 timeout -s INT 4000 python bench/passk_embedded.py run base DB1 &
    OMP_NUM_THREADS=1 nice -n 15 timeout -s INT 4000 python bench/passk_embedded.py run tuned DB2 &
    python bench/passk_embedded.py summary DB1 DB2 bench/results/passk_embedded.json

A second tuned arm, `sft`, is one family with the base: the GSM8K fine-tune of gemma-3-270m that
`bench/gap_embedded.py build` makes, in its chat template. It trained on GSM8K test questions
0..95, so it runs on a copy of the file without them (the two exemplars kept, every problem keeping
its "line N" id; its per-problem seeds follow its own positions, so they differ from the base
run's), and `summary` pairs the arms by problem id:

    python bench/gap_embedded.py build      # once: the fine-tune (~25 min on 2 cores)
    OMP_NUM_THREADS=1 timeout -s INT 4000 python bench/passk_embedded.py run sft DB3
    python bench/passk_embedded.py summary DB1 DB3 bench/results/passk_embedded_sft.json
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from condpred import Store
from condpred.experiments.passk import PassKRow, resume_passk, run_passk
from condpred.experiments.passk.run import summarise
from condpred.experiments.runner import read_rows
from condpred.model.registry import load_model
from gap_embedded import GSM8K as DATA
from gap_embedded import SFT, TUNED, WORK

# base: gemma-3-270m on the worked-solutions page; tuned: SmolLM2-135M-Instruct in its template;
# sft: gemma-3-270m fine-tuned on GSM8K (bench/gap_embedded.py), in its template.
ARMS = {
    "base": ("default", "base"),
    "tuned": ("smollm2-135m-instruct", "chat"),
    "sft": (str(TUNED), "chat"),
}
SETTINGS = {
    "n": 16,
    "limit": 400,  # more than fits: the run is stopped by time, on paired problems
    "shots": 2,  # GSM8K test lines 1-2 are the worked examples, not evaluated
    "temperature": 0.6,
    "top_p": 1.0,  # nucleus sampling sorts the vocabulary per token on `hf`: off on CPU
    "max_tokens": 160,
    "seed": 0,
}


def _log_load(path: Path, every: float = 60.0) -> None:
    """Append the load averages every minute: the contention the tokens/s were measured under."""
    while True:
        with path.open("a") as f:
            f.write(json.dumps({"t": time.time(), "loadavg": os.getloadavg()}) + "\n")
        time.sleep(every)


def data_for(arm: str) -> Path:
    """GSM8K test as is, or for `sft` without the questions its fine-tune trained on: the
    exemplars (lines 1-2) and lines from `SFT["examples"] + 1` on, each with its "line N" id."""
    if arm != "sft":
        return DATA
    lines = DATA.read_text().splitlines()
    kept = [1, 2, *range(SFT["examples"] + 1, len(lines) + 1)]
    unseen = WORK / "gsm8k-test-unseen-by-sft.jsonl"
    unseen.write_text(
        "".join(json.dumps({**json.loads(lines[n - 1]), "id": f"line {n}"}) + "\n" for n in kept)
    )
    return unseen


def run(arm: str, db: Path) -> None:
    # A background job starts with SIGINT ignored: take it back, so `timeout -s INT` stops us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.setdefault("CONDPRED_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    threading.Thread(target=_log_load, args=(db.with_suffix(".load.jsonl"),), daemon=True).start()
    spec, style = ARMS[arm]
    load = lambda s: load_model(s, device="cpu")  # noqa: E731
    with Store(db) as store:
        earlier = store.list_runs(limit=1)
        try:
            if earlier and earlier[0].status != "done":
                resume_passk(earlier[0].id, store, load)
            elif not earlier:
                data = str(data_for(arm))
                run_passk(data, [spec], prompt_style=style, store=store, load=load, **SETTINGS)
        except KeyboardInterrupt:
            print(f"{arm}: interrupted; start the same command again to resume", flush=True)


def summary(base_db: Path, tuned_db: Path, out: Path) -> None:
    """Both runs' rows as one base-vs-tuned comparison, on the problems both reached."""
    rows, arms, runs = [], [], []
    for a, (db, role) in enumerate([(base_db, "base"), (tuned_db, "tuned")]):
        with Store(db) as store:
            record = store.list_runs(limit=1)[0]
            stored = read_rows(store, record.id, PassKRow)
            # Why samples ended (a stop string, end of turn, or --max-tokens: truncated), over
            # every problem the run sampled. A truncated sample's "answer" is its last number.
            ends = Counter(s.finish_reason for s in store.samples(record.id))
        runs.append(
            {
                "db": str(db),
                "run_id": record.id,
                "status": record.status,
                "problems_sampled": len(stored),
                "finish_reasons": dict(ends),
                "tokens_per_s_all_problems": sum(r.tokens for r in stored)
                / sum(r.sample_s for r in stored),
            }
        )
        arms.append({**record.params["arms"][0], "role": role})
        rows.append([r.model_copy(update={"arm": a, "role": role}) for r in stored])
        params = record.params
    # Paired by problem id ("line N"), each problem at its position in the base run.
    position = {r.id: r.problem for r in rows[0]}
    paired = position.keys() & {r.id for r in rows[1]}
    both = [
        r.model_copy(update={"problem": position[r.id]})
        for arm_rows in rows
        for r in arm_rows
        if r.id in paired
    ]
    merged = {**params, "arms": arms, "models": [a["model"] for a in arms]}
    loads = [
        json.loads(line)["loadavg"]
        for db in (base_db, tuned_db)
        for line in db.with_suffix(".load.jsonl").read_text().splitlines()
    ]
    n = params["n"]
    solved = {
        a["model"]: _exact_share([r.correct > 0 for r in arm_rows if r.id in paired])
        for a, arm_rows in zip(arms, rows, strict=True)
    }
    result = {
        "runs": runs,
        # pass@n is the share of problems solved at least once in n: a binomial share, so its
        # exact (Clopper-Pearson) interval stays informative at 0, where the percentile
        # bootstrap over problems collapses to [0, 0].
        f"solved_at_n_{n}_exact_ci": solved,
        "settings": SETTINGS,
        "torch_threads_per_process": 1,
        "problems_sampled": {a["model"]: len(r) for a, r in zip(arms, rows, strict=True)},
        "paired_problems": len(paired),
        "loadavg_1min": {
            "min": min(x[0] for x in loads),
            "median": sorted(x[0] for x in loads)[len(loads) // 2],
            "max": max(x[0] for x in loads),
            "samples": len(loads),
        },
        **summarise(both, merged, params.get("seed", 0)),
    }
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}: {len(paired)} paired problems")


def _exact_share(hits: list[bool]) -> dict[str, object]:
    from scipy.stats import binomtest  # pinned in constraints.txt (a transitive dependency)

    if not hits:
        return {"solved": 0, "problems": 0, "ci": None}
    ci = binomtest(sum(hits), len(hits)).proportion_ci(0.95, method="exact")
    return {"solved": sum(hits), "problems": len(hits), "ci": [ci.low, ci.high]}


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], Path(sys.argv[3]))
    else:
        summary(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
