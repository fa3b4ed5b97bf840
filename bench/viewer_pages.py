"""How fast `condpred serve` lists and pages a large store, as the README reports it.

Two stores are built (reused when they exist, so a second run measures only): one predict run
with 10,000 samples of 64 tokens, each with a check result; and 10,000 runs of mixed kinds. The
viewer is served by real uvicorn on 127.0.0.1 and each page is fetched over HTTP with httpx:
first (cold) and then the median of REPEAT more. Every measured page is checked to be the right
page (its samples or runs, counted and named), and the clock on a known sleep, first.

    nice -n 10 python bench/viewer_pages.py [WORKDIR] [OUT.json]
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from condpred import Store
from condpred.checks.base import CheckResult
from condpred.model.base import Sample
from condpred.viewer import create_app

N = 10_000
TOKENS = 64
REPEAT = 5


def build_samples_store(path: Path) -> str:
    """One predict run with N samples (and a check result per sample); returns its id."""
    with Store(path) as store:
        if store.list_runs(1):
            return store.list_runs(1)[0].id
        run = store.create_run("predict", "bench", {"n": N}, 0)
        store.add_conditional(run, 0, "title: bench\n", "Title: bench\n\nAbstract.")
        for i in range(N):
            tokens = [f" w{(i + j) % 97}" for j in range(TOKENS)]
            logprobs = [-((i * 7 + j) % 13) / 2 for j in range(TOKENS)]
            store.add_sample(run, 0, Sample("".join(tokens), logprobs, tokens, "length", i))
            finding = CheckResult("ai_author", 0.1, 0.5, "pass", {"ratio": 0.1}, i, f"s{i}")
            store.add_check_results(run, 0, [finding])
        store.finish_run(run)
        return run


def build_runs_store(path: Path) -> list[str]:
    """N runs of three kinds and two models, newest last; returns their ids in that order."""
    with Store(path) as store:
        if not store.list_runs(1):
            for i in range(N):
                kind = ("predict", "score", "forecast")[i % 3]
                run = store.create_run(kind, f"model-{i % 2}", {"i": i}, i)
                store.finish_run(run)
        return [r.id for r in reversed(store.list_runs(None))]


def timed(client: httpx.Client, url: str) -> tuple[float, float, str]:
    """(cold seconds, median of REPEAT warm seconds, the page)."""
    times = []
    for _ in range(REPEAT + 1):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        response.raise_for_status()
    return times[0], statistics.median(times[1:]), response.text


def serve(db: Path) -> tuple[uvicorn.Server, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(db), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{port}"


def main(work: Path, out: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    time.sleep(0.2)
    clock = time.perf_counter() - start
    assert 0.19 < clock < 0.3, clock  # the clock, on a known interval
    started = time.perf_counter()
    run_id = build_samples_store(work / "samples.db")
    run_ids = build_runs_store(work / "runs.db")
    build_s = time.perf_counter() - started
    results: dict[str, dict[str, float]] = {}
    server, url = serve(work / "samples.db")
    with httpx.Client(timeout=60) as client:
        for page in (1, 250, 500):  # 20 samples a page: the first, a middle and the last page
            cold, warm, html = timed(client, f"{url}/runs/{run_id}?samples={page}")
            first = (page - 1) * 20
            assert html.count('class="sample"') == 20, page
            assert f'id="sample-0-{first}"' in html and f'id="sample-0-{first + 19}"' in html
            assert html.count('class="badge verdict-pass"') == 20
            results[f"run page, samples page {page} of 500"] = {"cold_s": cold, "warm_s": warm}
        cold, warm, html = timed(client, f"{url}/runs/{run_id}/conditionals/0?samples=500")
        assert f'id="sample-0-{N - 1}"' in html
        results["conditional page, last samples page"] = {"cold_s": cold, "warm_s": warm}
    server.should_exit = True
    server, url = serve(work / "runs.db")
    with httpx.Client(timeout=60) as client:
        for label, query, expect in (
            ("runs list, page 1", "", run_ids[-1]),
            ("runs list, last page (200)", "?page=200", run_ids[0]),
            ("runs list, kind=score, page 30", "?kind=score&page=30", None),
            ("runs list, search a model", "?model=model-1&page=50", None),
        ):
            cold, warm, html = timed(client, url + "/" + query)
            assert html.count('class="run-link"') > 0, label
            if expect is not None:
                assert expect in html, label
            results[label] = {"cold_s": cold, "warm_s": warm}
    server.should_exit = True
    record = {
        "what": f"condpred serve over HTTP (uvicorn, 127.0.0.1): a run of {N} samples of "
        f"{TOKENS} tokens with a check result each, 20 samples a page; a store of {N} runs, "
        f"50 a page. cold: the first request; warm: median of {REPEAT} more",
        "pages": results,
        "max_s": max(max(r.values()) for r in results.values()),
        "build_stores_s": build_s,
        "clock_check_s": clock,
        "load_avg_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    here = Path(__file__).parent
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/condpred-viewer-bench"),
        Path(sys.argv[2]) if len(sys.argv) > 2 else here / "results" / "viewer_pages.json",
    )
