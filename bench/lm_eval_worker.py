"""lm-evaluation-harness's HF backend on the benchmark's requests (run by score_prefix.py).

Runs in its own virtual environment (lm-eval 0.4.13 with the same torch and transformers as
condpred's), so lm-eval's dependencies never touch condpred's environment:

    python lm_eval_worker.py REQUESTS.json RESULT.json

REQUESTS.json: {"pretrained", "batch_size", "threads", "contexts", "continuations"}.
RESULT.json: lm-eval's (logprob, is_greedy) per request, its token split of every request, and the
timing of one `loglikelihood` call over all requests, after a warm-up call on one batch.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _busy() -> float:
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    import torch

    torch.set_num_threads(spec["threads"])
    import lm_eval
    import transformers
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(
        pretrained=spec["pretrained"],
        batch_size=spec["batch_size"],
        device="cpu",
        dtype="float32",
    )
    pairs = list(zip(spec["contexts"], spec["continuations"], strict=True))
    requests = [
        Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i)
        for i, pair in enumerate(pairs)
    ]
    encoded = [list(map(list, lm._encode_pair(c, k))) for c, k in pairs]
    lm.loglikelihood(requests[: spec["batch_size"]], disable_tqdm=True)  # warm-up: one batch
    busy0, cpu0, wall0 = _busy(), time.process_time(), time.perf_counter()
    results = lm.loglikelihood(requests, disable_tqdm=True)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    others = max(0.0, _busy() - busy0 - cpu) / (wall * (os.cpu_count() or 1))
    run = {"seconds": wall, "cpu_seconds": cpu, "others_cpu_fraction": others}
    out = {
        "results": [[float(lp), bool(greedy)] for lp, greedy in results],
        "encoded": encoded,
        "summary": {
            "seconds": wall,
            "runs": [{k: round(v, 4) for k, v in run.items()}],
            "max_others_cpu_fraction": round(others, 4),
        },
        "lm_eval": lm_eval.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    Path(sys.argv[2]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
