"""Scoring benchmark: 64 continuations under one shared ~400-token prefix, on CPU.

Three ways to compute the same log-probabilities, in one run, on the same requests, in float32,
with the same torch threads:

1. condpred: `HFModel.score(prefix, continuations)` (prefix KV cache computed once and reused,
   logits only at scored positions);
2. naive batched full sequences: prefix+continuation per row, right-padded, batch 8, logits only at
   the scored positions (and, unless --quick, the generic-harness variant: full-vocabulary logits
   and log-softmax at every position);
3. lm-evaluation-harness 0.4.13's HF backend (`HFLM(..., batch_size=8)` and `loglikelihood` on
   `Instance`s), run in its own virtual environment (`bench/.venv-lmeval`, same torch and
   transformers versions) in a subprocess, requests passed as a JSON file.

It also measures `time(N)` for N = 1, 4, 16, 64 continuations with condpred, the prefix's one-time
cost, and the machine's limit: the FLOPs the model needs per scored token against the FLOP/s of a
large float32 matrix product on this machine, measured in the same run. Other processes' CPU use
during every timed section is recorded (from /proc/stat), so a contended measurement shows as one.

    .venv/bin/python bench/score_prefix.py            # full run (~15 min on 2 cores)
    .venv/bin/python bench/score_prefix.py --quick    # fewer repetitions, no lm-eval, no full-vocab

Writes bench/results/score_prefix.json (or --out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "score_prefix.json"
LM_EVAL_PYTHON = HERE / ".venv-lmeval" / "bin" / "python"
LM_EVAL_WORKER = HERE / "lm_eval_worker.py"
BATCH_SIZE = 8  # of both batched baselines (naive and lm-eval), as the issue specifies
TOLERANCE = 1e-4  # log-probabilities must agree this closely (float32)

# --- the requests -----------------------------------------------------------------------------
# A real rendered document: an Alignment Forum post as condpred's `alignment-forum-post` camera
# renders one (site name, title, by-line, forum-style date, tags, a "Context:" premise, body),
# and 64 different natural next sentences. Fixed text files, not rendered at run time, so the
# benchmark's requests never drift. Each continuation starts with the space that separates it
# from the document's last sentence.

DATA = HERE / "data"
PREFIX = (DATA / "score_prefix_document.txt").read_text().rstrip("\n")
CONTINUATIONS = [
    " " + line
    for line in (DATA / "score_prefix_continuations.txt").read_text().splitlines()
    if line
]


# --- measuring --------------------------------------------------------------------------------


def _proc_stat_busy() -> float:
    """CPU-seconds all processes on the machine have spent busy since boot (from /proc/stat)."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


class Probe:
    """Wall time, this process's CPU time, and other processes' CPU use over one timed section."""

    def __init__(self) -> None:
        self.busy0 = _proc_stat_busy()
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall0
        cpu = time.process_time() - self.cpu0
        others = max(0.0, _proc_stat_busy() - self.busy0 - cpu)
        cores = os.cpu_count() or 1
        return {
            "seconds": wall,
            "cpu_seconds": cpu,
            "others_cpu_fraction": others / (wall * cores) if wall > 0 else 0.0,
        }


class Quiet:
    """This machine may be shared: wait until other processes leave the CPU alone before each
    timed run, and run again (up to `retries` times) when they took more than `max_contention`
    of the machine's CPU during it. Every kept run records the contention it saw."""

    max_wait_s = 600.0
    max_contention = 0.10
    retries = 2
    contended_attempts = 0
    waited_s = 0.0

    @classmethod
    def others_busy(cls, seconds: float = 2.0) -> float:
        probe = Probe()
        time.sleep(seconds)
        return probe.stop()["others_cpu_fraction"]

    @classmethod
    def wait(cls) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < cls.max_wait_s:
            if cls.others_busy() <= cls.max_contention / 2:
                break
        cls.waited_s += time.perf_counter() - start


def timed(
    fn: Callable[[], object], reps: int, warmup: int | Callable[[], object] = 1
) -> tuple[dict, object]:
    """Warm up (`warmup` untimed calls of `fn`, or a cheaper call of its own), then time `reps`
    runs. A run that other processes contended is rerun (see `Quiet`), keeping the least contended
    attempt; the median is over the runs within the contention threshold (all runs if none is)."""
    if callable(warmup):
        warmup()
    else:
        for _ in range(warmup):
            fn()
    runs, result = [], None
    for _ in range(reps):
        kept = None
        for _attempt in range(Quiet.retries + 1):
            gc.collect()
            Quiet.wait()
            probe = Probe()
            result = fn()
            run = probe.stop()
            if kept is None or run["others_cpu_fraction"] < kept["others_cpu_fraction"]:
                kept = run
            if run["others_cpu_fraction"] <= Quiet.max_contention:
                break
            Quiet.contended_attempts += 1
        runs.append(kept)
    quiet = [r for r in runs if r["others_cpu_fraction"] <= Quiet.max_contention] or runs
    summary = {
        "seconds": statistics.median(r["seconds"] for r in quiet),
        "runs": [{k: round(v, 4) for k, v in r.items()} for r in runs],
        "runs_in_median": len(quiet),
        "max_others_cpu_fraction": round(max(r["others_cpu_fraction"] for r in quiet), 4),
    }
    return summary, result


def matmul_flops(n: int, reps: int) -> dict:
    """FLOP/s of an n x n float32 matrix product with torch's default threads (2 warm-ups)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    summary, _ = timed(lambda: torch.matmul(a, b, out=out), reps, warmup=2)
    rates = [2 * n**3 / r["seconds"] for r in summary["runs"]]
    return {
        "n": n,
        "reps": reps,
        "flops_per_s_best": max(rates),
        "flops_per_s_median": statistics.median(rates),
        "max_others_cpu_fraction": summary["max_others_cpu_fraction"],
    }


# --- the model's FLOPs ------------------------------------------------------------------------


def model_flops(config, pairs: list[tuple[list[int], list[int]]]) -> dict:
    """FLOPs per scored token of a decoder-only transformer, counted from its config.

    Every matmul costs 2*m*k*n. Per token: 2 * (non-embedding matmul parameters: q, k, v, o and the
    gated MLP's gate, up, down in every layer); attention over the context, 2 * 2 * heads *
    head_dim * (keys it attends to, capped at the window in sliding-window layers) per layer
    (QK^T and AV); and at every scored position the output projection 2 * hidden * vocab. Norms,
    rotary embeddings, activations and softmax are elementwise and left out (a few % at most).
    """
    hidden, layers = config.hidden_size, config.num_hidden_layers
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    inter, vocab = config.intermediate_size, config.vocab_size
    layer_types = getattr(config, "layer_types", None) or ["full_attention"] * layers
    window = getattr(config, "sliding_window", None)
    per_layer = hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    per_layer += heads * head_dim * hidden + 3 * hidden * inter
    matmul_params = layers * per_layer
    body = 2 * matmul_params
    head = 2 * hidden * vocab

    def attention(position: int) -> int:  # a query at 0-based `position` sees position+1 keys
        keys = [
            min(position + 1, window) if kind == "sliding_attention" and window else position + 1
            for kind in layer_types
        ]
        return 4 * heads * head_dim * sum(keys)

    scored = [(len(c), j) for c, k in pairs for j in range(len(k))]
    attn = sum(attention(ctx - 1 + j) for ctx, j in scored) / len(scored)
    context = len(pairs[0][0])
    prefix = sum(body + attention(p) for p in range(context - 1))
    return {
        "formula": "per scored token: 2*L*(h*H*d + 2*h*Hkv*d + H*d*h + 3*h*I) [body matmuls] "
        "+ 4*H*d*sum_layers(keys attended, capped at the sliding window) [attention QK^T and AV] "
        "+ 2*h*V [output projection]; "
        f"L={layers} layers, h={hidden}, H={heads} heads, Hkv={kv_heads}, d={head_dim}, "
        f"I={inter}, V={vocab}, window={window}",
        "non_embedding_matmul_params": matmul_params,
        "body_flops_per_token": body,
        "attention_flops_per_scored_token_mean": attn,
        "output_projection_flops_per_scored_token": head,
        "flops_per_scored_token": body + attn + head,
        "prefix_flops_one_time": prefix,
        "prefix_positions": context - 1,
    }


# --- the requests, tokenised as lm-evaluation-harness does --------------------------------------


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's split: trailing spaces move to the continuation; the whole is encoded at once."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = tokenizer(context + continuation).input_ids
    context_ids = tokenizer(context).input_ids
    return whole[: len(context_ids)], whole[len(context_ids) :]


# --- baseline 2: naive batched full sequences -------------------------------------------------


@torch.no_grad()
def naive_batched(
    lm, pairs: list[tuple[list[int], list[int]]], pad_id: int, full_vocab: bool
) -> list[tuple[list[float], bool]]:
    """Each row is a whole sequence, context + continuation (its last token dropped: nothing
    scores what follows it), right-padded with an attention mask, `BATCH_SIZE` rows at a time,
    longest first. With `full_vocab`, logits and log-softmax at every position, as a generic
    harness does; otherwise logits only at the positions that score a continuation token."""
    order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    results: list[tuple[list[float], bool] | None] = [None] * len(pairs)
    for start in range(0, len(order), BATCH_SIZE):
        batch = order[start : start + BATCH_SIZE]
        rows = [pairs[i][0] + pairs[i][1][:-1] for i in batch]
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        # the logits at position p predict token p+1: row r's continuation is scored at
        # positions len(context)-1 ... len(context)+len(continuation)-2
        first = [len(pairs[i][0]) - 1 for i in batch]
        if full_vocab:
            offset = 0
            logits = lm(input_ids=ids, attention_mask=mask).logits
        else:
            offset = min(first)
            end = max(f + len(pairs[i][1]) for f, i in zip(first, batch, strict=True))
            keep = torch.arange(offset, end)
            logits = lm(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
        logprobs = torch.log_softmax(logits, dim=-1)
        for r, i in enumerate(batch):
            targets = torch.tensor(pairs[i][1])
            rows_lp = logprobs[r, first[r] - offset : first[r] - offset + len(targets)]
            chosen = rows_lp.gather(-1, targets[:, None]).squeeze(-1)
            greedy = bool((rows_lp.argmax(-1) == targets).all())
            results[i] = (chosen.tolist(), greedy)
        del logits, logprobs
    return results  # type: ignore[return-value]


# --- baseline 3: lm-evaluation-harness, in its own venv ---------------------------------------


def run_lm_eval(folder: Path, threads: int, python: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        request_file, result_file = Path(tmp) / "requests.json", Path(tmp) / "result.json"
        request_file.write_text(
            json.dumps(
                {
                    "pretrained": str(folder),
                    "batch_size": BATCH_SIZE,
                    "threads": threads,
                    "contexts": [PREFIX] * len(CONTINUATIONS),
                    "continuations": CONTINUATIONS,
                }
            )
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        subprocess.run(
            [str(python), str(LM_EVAL_WORKER), str(request_file), str(result_file)],
            env=env,
            check=True,
        )
        return json.loads(result_file.read_text())


# --- comparing ----------------------------------------------------------------------------------


def compare(
    reference: list[tuple[list[float] | None, float, bool]],
    other: list[tuple[list[float] | None, float, bool]],
) -> dict:
    """Max |difference| per token (where both have per-token values) and per continuation sum."""
    per_token = [
        abs(a - b)
        for (ta, _, _), (tb, _, _) in zip(reference, other, strict=True)
        if ta is not None and tb is not None
        for a, b in zip(ta, tb, strict=True)
    ]
    sums = [abs(a - b) for (_, a, _), (_, b, _) in zip(reference, other, strict=True)]
    greedy_same = sum(ga == gb for (_, _, ga), (_, _, gb) in zip(reference, other, strict=True))
    out = {
        "max_abs_diff_sum_logprob": max(sums),
        "greedy_flags_equal": f"{greedy_same}/{len(reference)}",
    }
    if per_token:
        out["max_abs_diff_token_logprob"] = max(per_token)
    out["agree_within_1e-4"] = max([*per_token, *sums]) <= TOLERANCE
    return out


def method_entry(summary: dict, scored_tokens: int, extra: dict | None = None) -> dict:
    entry = {
        "seconds": round(summary["seconds"], 4),
        "tokens_per_s": scored_tokens / summary["seconds"],
        "reps": len(summary["runs"]),
        "runs_in_median": summary.get("runs_in_median", len(summary["runs"])),
        "runs": summary["runs"],
        "max_others_cpu_fraction": summary["max_others_cpu_fraction"],
    }
    return {**entry, **(extra or {})}


# --- the run ----------------------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    import transformers

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "loadavg_at_start": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer reps; no lm-eval, full-vocab")
    parser.add_argument("--skip-lm-eval", action="store_true", help="leave out lm-eval's backend")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    parser.add_argument("--model", default="default", help="condpred model spec (default)")
    parser.add_argument(
        "--lm-eval-python", type=Path, default=LM_EVAL_PYTHON, help="python with lm-eval 0.4.13"
    )
    parser.add_argument(
        "--max-contention",
        type=float,
        default=Quiet.max_contention,
        help="rerun a timed run when other processes used more than this share of the CPU",
    )
    parser.add_argument("--retries", type=int, default=Quiet.retries, help="reruns at most")
    parser.add_argument(
        "--max-wait", type=float, default=Quiet.max_wait_s, help="seconds to wait for a quiet CPU"
    )
    args = parser.parse_args(argv)
    Quiet.max_contention, Quiet.retries, Quiet.max_wait_s = (
        args.max_contention,
        args.retries,
        args.max_wait,
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("CONDPRED_PROGRESS", "0")  # no progress-bar thread in timed sections

    from condpred.model.registry import embedded_model, load_model

    reps = 1 if args.quick else 5  # condpred's scoring of all 64
    scaling_reps = 1 if args.quick else 3
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    result: dict = {
        "benchmark": "score_prefix",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
        "machine": machine(),
    }
    log = lambda message: print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)  # noqa: E731

    log("matmul FLOP/s (4096x4096 float32)")
    peak_start = matmul_flops(4096, 4 if args.quick else 10)

    log(f"loading model {args.model}")
    model = load_model(args.model)
    lm, tokenizer = model.model, model.tokenizer
    embedded = embedded_model(args.model)
    folder = Path(lm.name_or_path)
    pairs = [encode_pair(tokenizer, PREFIX, c) for c in CONTINUATIONS]
    lengths = [len(k) for _, k in pairs]
    scored_tokens = sum(lengths)
    flops = model_flops(lm.config, pairs)
    result["model"] = {
        "spec": args.model,
        "name": embedded.name if embedded else args.model,
        "about": embedded.about if embedded else None,
        "path": str(folder),
        "dtype": str(next(lm.parameters()).dtype),
        "parameters": sum(p.numel() for p in lm.parameters()),
        "architecture": lm.config.architectures,
        "vocab_size": lm.config.vocab_size,
    }
    result["requests"] = {
        "prefix_tokens": len(pairs[0][0]),
        "prefix_sha256": hashlib.sha256(PREFIX.encode()).hexdigest()[:16],
        "continuations": len(CONTINUATIONS),
        "continuation_tokens": {
            "total_scored": scored_tokens,
            "min": min(lengths),
            "mean": round(scored_tokens / len(lengths), 2),
            "max": max(lengths),
        },
        "same_context_ids_for_all": len({tuple(c) for c, _ in pairs}) == 1,
    }
    methods: dict = {}
    outputs: dict = {}

    # 1. condpred
    log(f"condpred: HFModel.score, {len(CONTINUATIONS)} continuations x {reps} reps")
    summary, scores = timed(lambda: model.score(PREFIX, CONTINUATIONS), reps)
    methods["condpred"] = method_entry(
        summary, scored_tokens, {"max_batch_tokens": model.max_batch_tokens}
    )
    outputs["condpred"] = [(s.token_logprobs, s.logprob, s.greedy) for s in scores]
    assert [len(s.token_logprobs) for s in scores] == lengths, "condpred tokenised differently"

    log("condpred: time(N) and the prefix's one-time cost")
    scaling = []
    for n in (1, 4, 16, 64):
        summary_n, _ = timed(lambda n=n: model.score(PREFIX, CONTINUATIONS[:n]), scaling_reps)
        tokens_n = sum(lengths[:n])
        scaling.append(
            {
                "n": n,
                "scored_tokens": tokens_n,
                "seconds": round(summary_n["seconds"], 4),
                "runs": [r["seconds"] for r in summary_n["runs"]],
                "max_others_cpu_fraction": summary_n["max_others_cpu_fraction"],
            }
        )
    prefix_ids = torch.tensor([pairs[0][0][:-1]])
    with torch.no_grad():
        prefix_summary, _ = timed(
            lambda: lm(input_ids=prefix_ids, use_cache=True, logits_to_keep=1), scaling_reps
        )
    xs = [s["scored_tokens"] for s in scaling]
    ys = [s["seconds"] for s in scaling]
    fit = statistics.linear_regression(xs, ys)
    result["scaling"] = {
        "time_n": scaling,
        "prefix_forward_seconds": round(prefix_summary["seconds"], 4),
        "prefix_positions": len(pairs[0][0]) - 1,
        "linear_fit": {
            "seconds_per_scored_token": fit.slope,
            "intercept_seconds": fit.intercept,
            "marginal_tokens_per_s": 1 / fit.slope,
        },
        "note": "time(N) = condpred's HFModel.score on the first N continuations; the intercept of "
        "the fit is the one-time cost (prefix forward, tokenisation), the slope the cost per new "
        "token; prefix_forward_seconds times the prefix forward pass alone",
    }

    # 2. naive batched full sequences
    log(f"naive batched (batch {BATCH_SIZE}, logits at scored positions only)")
    naive_reps = 1 if args.quick else 3
    summary, naive = timed(
        lambda: naive_batched(lm, pairs, model.pad_id, full_vocab=False),
        naive_reps,
        warmup=lambda: naive_batched(lm, pairs[:BATCH_SIZE], model.pad_id, full_vocab=False),
    )
    methods["naive_batched_scored_logits"] = method_entry(summary, scored_tokens)
    outputs["naive_batched_scored_logits"] = [(t, sum(t), g) for t, g in naive]
    if not args.quick:
        log(f"naive batched (batch {BATCH_SIZE}, full-vocab logits + log-softmax everywhere)")
        summary, naive_full = timed(
            lambda: naive_batched(lm, pairs, model.pad_id, full_vocab=True),
            1,
            warmup=lambda: naive_batched(lm, pairs[:2], model.pad_id, full_vocab=True),
        )
        methods["naive_batched_full_vocab"] = method_entry(summary, scored_tokens)
        outputs["naive_batched_full_vocab"] = [(t, sum(t), g) for t, g in naive_full]
    gc.collect()

    # 3. lm-evaluation-harness
    if not (args.quick or args.skip_lm_eval):
        log(f"lm-eval 0.4.13 HFLM (batch {BATCH_SIZE}) in {args.lm_eval_python}")
        lm_eval = None
        for _attempt in range(Quiet.retries + 1):
            Quiet.wait()
            attempt = run_lm_eval(folder, threads, args.lm_eval_python)
            contention = attempt["summary"]["max_others_cpu_fraction"]
            if lm_eval is None or contention < lm_eval["summary"]["max_others_cpu_fraction"]:
                lm_eval = attempt
            if contention <= Quiet.max_contention:
                break
            Quiet.contended_attempts += 1
        assert lm_eval["encoded"] == [[c, k] for c, k in pairs], "lm-eval tokenised differently"
        methods["lm_eval_hf"] = method_entry(
            lm_eval["summary"],
            scored_tokens,
            {k: lm_eval[k] for k in ("lm_eval", "torch", "transformers", "torch_threads")},
        )
        outputs["lm_eval_hf"] = [(None, lp, g) for lp, g in lm_eval["results"]]

    log("matmul FLOP/s again")
    peak_end = matmul_flops(4096, 4 if args.quick else 10)
    peak = max(peak_start["flops_per_s_best"], peak_end["flops_per_s_best"])

    # --- summary ------------------------------------------------------------------------------
    limit_tps = peak / flops["flops_per_scored_token"]
    result["limit"] = {
        "matmul_start": peak_start,
        "matmul_end": peak_end,
        "peak_flops_per_s": peak,
        **flops,
        "limit_tokens_per_s": limit_tps,
        "limit_seconds_for_all": scored_tokens / limit_tps,
        "note": "the limit: scored tokens/s if every FLOP the model needs per scored token ran at "
        "the best float32 matmul rate measured in this run; the prefix's one-time FLOPs are "
        "not credited, so its cost counts against the fraction",
    }
    condpred_tps = methods["condpred"]["tokens_per_s"]
    methods["condpred"]["fraction_of_limit"] = condpred_tps / limit_tps
    methods["condpred"]["marginal_fraction_of_limit"] = (
        result["scaling"]["linear_fit"]["marginal_tokens_per_s"] / limit_tps
    )
    for name, entry in methods.items():
        if name != "condpred":
            entry["condpred_speedup"] = condpred_tps / entry["tokens_per_s"]
            entry["fraction_of_limit"] = entry["tokens_per_s"] / limit_tps
    result["methods"] = methods
    result["agreement"] = {
        name: compare(outputs["condpred"], out)
        for name, out in outputs.items()
        if name != "condpred"
    }
    targets = {"fraction_of_limit_target": 0.70, "fraction_of_limit": condpred_tps / limit_tps}
    targets["fraction_of_limit_met"] = targets["fraction_of_limit"] >= 0.70
    if "lm_eval_hf" in methods:
        targets["speedup_vs_lm_eval_target"] = 25.0
        targets["speedup_vs_lm_eval"] = methods["lm_eval_hf"]["condpred_speedup"]
        targets["speedup_vs_lm_eval_met"] = targets["speedup_vs_lm_eval"] >= 25.0
    result["targets"] = targets
    result["machine"]["loadavg_at_end"] = list(os.getloadavg())
    result["contention"] = {
        "max_others_cpu_fraction_accepted": Quiet.max_contention,
        "contended_attempts_rerun": Quiet.contended_attempts,
        "seconds_waited_for_quiet_cpu": round(Quiet.waited_s, 1),
        "note": "others_cpu_fraction: CPU time of other processes during a timed run over "
        "(wall time x cores), from /proc/stat; a run above the threshold is rerun (at most "
        f"{Quiet.retries} times) after waiting for a quiet CPU, the least contended attempt is "
        "kept, and medians are taken over the runs within the threshold",
    }

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {args.out}")
    for name, entry in methods.items():
        speedup = entry.get("condpred_speedup")
        log(
            f"{name:30s} {entry['seconds']:9.2f} s {entry['tokens_per_s']:9.1f} tok/s"
            + (f"  condpred {speedup:6.1f}x" if speedup else "")
            + f"  {entry['fraction_of_limit']:.1%} of limit"
        )
    log(f"limit {limit_tps:.1f} tok/s ({peak / 1e9:.1f} GFLOP/s matmul)")
    log(f"agreement: {json.dumps(result['agreement'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
