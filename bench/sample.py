"""Sampling benchmark: n = 64 samples x 128 new tokens under one ~400-token prefix.

condpred's `hf` sampling (`HFModel.sample`: the prefix's KV cache computed once and shared by
every row, each row drawing from its own seeded generator) against transformers'
`generate(do_sample=True, num_return_sequences=n)` on the same prefix, and against the machine's
limit (the model's FLOPs per generated token at the FLOP/s of a large matrix product measured in
the same run). Temperature 1, no top-k or top-p, float32 unless --dtype says otherwise.

Exactness: every checked row's tokens are compared with a reference sampler given the same
per-row uniform draws: at each step, one plain forward pass over the whole sequence so far (no
cache, batch 1), a float64 softmax, and the inverse CDF in vocabulary order at that step's draw
(teacher-forced on condpred's tokens, which is the same as running the reference freely as long as
they agree). Also on CPU: torch threads 1 vs 2, on a quiet machine and with one core kept busy.

    .venv/bin/python bench/sample.py                   # CPU, the embedded model
    python bench/sample.py --device cuda --random-init DIR   # a GPU the weights cannot reach

Writes bench/results/sample.json (or --out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import sys
import time
from pathlib import Path

import torch

from measure import (
    DTYPES,
    Quiet,
    add_model_args,
    configure,
    load,
    machine,
    matmul_flops,
    model_flops,
    timed,
    write,
)
from score_prefix import PREFIX

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "sample.json"


def _spin(stop) -> None:  # a busy process: the "other engineer" on a shared machine
    while not stop.is_set():
        pass


def generate_baseline(model, context_ids: tuple[int, ...], n: int, new_tokens: int) -> int:
    """transformers' own sampler on the same prefix; returns the tokens it generated (up to and
    including each row's first end-of-sequence token)."""
    ids = torch.tensor([list(context_ids)], device=model.device)
    eos = sorted(model.eos_ids)
    with torch.no_grad():
        out = model.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            num_return_sequences=n,
            max_new_tokens=new_tokens,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            pad_token_id=model.pad_id,
            eos_token_id=eos,
        )
    generated = out[:, ids.shape[1] :].tolist()
    total = 0
    for row in generated:
        ends = [i for i, t in enumerate(row) if t in eos]
        total += ends[0] + 1 if ends else len(row)
    return total


def reference_check(model, context_ids, batch, rows: int, seed: int) -> dict:
    """Teacher-forced reference sampler on the first `rows` rows (see the module docstring)."""
    from condpred.model.hf import sample_seed

    agree = total = 0
    first_mismatch = None
    max_logprob_diff = 0.0
    with torch.no_grad():
        for row in range(min(rows, len(batch.ids))):
            ids = batch.ids[row]
            generator = torch.Generator().manual_seed(sample_seed(seed, batch.indices[row]))
            draws = [torch.rand((), generator=generator).item() for _ in ids]
            sequence = torch.tensor([list(context_ids) + ids[:-1]], device=model.device)
            logits = model.model(input_ids=sequence, logits_to_keep=len(ids)).logits[0]
            logprobs = logits.double().log_softmax(-1)
            cdf = logprobs.exp().cumsum(-1)
            targets = torch.tensor(draws, device=cdf.device, dtype=cdf.dtype).unsqueeze(-1)
            picks = torch.searchsorted(cdf, targets * cdf[:, -1:]).squeeze(-1)
            picks = picks.clamp(max=cdf.shape[-1] - 1).tolist()
            for step, (mine, ref) in enumerate(zip(ids, picks, strict=True)):
                total += 1
                agree += mine == ref
                if mine != ref and first_mismatch is None:
                    first_mismatch = {"row": row, "step": step, "condpred": mine, "reference": ref}
            expected = logprobs.gather(-1, torch.tensor(ids, device=cdf.device)[:, None])
            diffs = (expected.squeeze(-1).cpu() - torch.tensor(batch.logprobs[row])).abs()
            max_logprob_diff = max(max_logprob_diff, float(diffs.max()))
    return {
        "rows_checked": min(rows, len(batch.ids)),
        "tokens_checked": total,
        "tokens_equal": agree,
        "all_equal": agree == total,
        "first_mismatch": first_mismatch,
        "max_abs_diff_token_logprob_vs_float64": max_logprob_diff,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=64, help="samples (default 64)")
    parser.add_argument("--new-tokens", type=int, default=128, help="per sample (default 128)")
    parser.add_argument("--reps", type=int, default=3, help="timed runs of condpred (default 3)")
    parser.add_argument("--check-rows", type=int, help="rows for the reference (CPU 8, CUDA all)")
    parser.add_argument("--skip-generate", action="store_true")
    parser.add_argument("--skip-threads", action="store_true", help="no 1-vs-2-threads section")
    parser.add_argument("--skip-growth", action="store_true", help="no time(n samples) section")
    parser.add_argument("--quick", action="store_true", help="1 rep, no threads, no growth")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    add_model_args(parser)
    args = parser.parse_args(argv)
    configure(args)
    from condpred.model._threads import DEFAULT_THREADS
    from condpred.model.base import SamplingParams
    from condpred.model.hf import _SamplingBatch

    cuda = args.device.startswith("cuda")
    dtype = DTYPES[args.dtype]
    n, new_tokens = args.n, args.new_tokens
    reps = 1 if args.quick else args.reps
    check_rows = args.check_rows if args.check_rows is not None else (n if cuda else 8)
    matmul_n, matmul_reps = (8192 if cuda else 4096), (4 if args.quick else 10)
    params = SamplingParams(max_new_tokens=new_tokens, temperature=1.0, top_p=1.0, seed=0)
    result: dict = {
        "benchmark": "sample",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(args.device),
        "workload": {"samples": n, "new_tokens": new_tokens, "temperature": 1.0, "top_p": 1.0},
        "failed": {},
    }
    log = lambda message: print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)  # noqa: E731
    methods: dict = {}

    def attempt(name, fn) -> None:
        try:
            fn()
        except Exception as error:
            log(f"{name} FAILED: {error!r}")
            result["failed"][name] = f"{type(error).__name__}: {error}"

    try:
        log(f"matmul FLOP/s ({matmul_n}x{matmul_n} {args.dtype} on {args.device})")
        peak_start = matmul_flops(matmul_n, matmul_reps, args.device, dtype)
        log(f"loading model {args.random_init or args.model} ({args.dtype} on {args.device})")
        model, result["model"] = load(args)
        model.max_batch_samples = max(model.max_batch_samples, n)
        context_ids = model.context_ids(PREFIX)
        flops = model_flops(model.model.config, [(list(context_ids), [0] * new_tokens)])
        result["workload"]["prefix_tokens"] = len(context_ids)

        def run_condpred():
            samples = model.sample(PREFIX, n, params)
            return samples

        log(f"condpred: HFModel.sample, {n} x {new_tokens} tokens x {reps} reps")
        summary, samples = timed(run_condpred, reps, warmup=lambda: model.sample(PREFIX, 2, params))
        tokens = sum(len(s.token_logprobs) for s in samples)
        methods["condpred"] = {
            **summary,
            "tokens": tokens,
            "tokens_per_s": tokens / summary["seconds"],
            "finish_reasons": {
                r: sum(s.finish_reason == r for s in samples) for r in ("eos", "length", "stop")
            },
        }

        def check() -> None:
            log(f"reference sampler on {check_rows} rows")
            batch = _SamplingBatch(model, model._prefix_cache(context_ids), list(range(n)), params)
            again = batch.run()
            result["reproducible"] = [s.text for s in again] == [s.text for s in samples]
            result["reference_check"] = reference_check(
                model, context_ids, batch, check_rows, params.seed
            )

        if dtype == torch.float32:
            attempt("reference_check", check)

        def generate() -> None:
            log(f"transformers generate(num_return_sequences={n})")
            generated = {}

            def call():
                torch.manual_seed(0)
                generated["tokens"] = generate_baseline(model, context_ids, n, new_tokens)

            summary_g, _ = timed(
                call,
                1 if not cuda else reps,
                warmup=lambda: generate_baseline(model, context_ids, 2, 4),
            )
            methods["transformers_generate"] = {
                **summary_g,
                "tokens": generated["tokens"],
                "tokens_per_s": generated["tokens"] / summary_g["seconds"],
            }

        if not args.skip_generate:
            attempt("transformers_generate", generate)

        def growth() -> None:
            log("condpred: time(n samples)")
            rows = []
            for k in (1, 4, 16, 64):
                summary_k, out = timed(lambda k=k: model.sample(PREFIX, k, params), 1, warmup=0)
                produced = sum(len(s.token_logprobs) for s in out)
                rows.append(
                    {
                        "samples": k,
                        "tokens": produced,
                        "seconds": round(summary_k["seconds"], 4),
                        "tokens_per_s": produced / summary_k["seconds"],
                        "max_others_cpu_fraction": summary_k["max_others_cpu_fraction"],
                    }
                )
            result["growth_samples"] = rows

        if not (args.quick or args.skip_growth):
            attempt("growth_samples", growth)

        def threads() -> None:
            small = SamplingParams(max_new_tokens=32, temperature=1.0, seed=0)
            counts = (1, 2, "auto")  # auto: the cores other processes leave free
            section = {
                "workload": {"samples": 16, "new_tokens": 32},
                "quiet": {},
                "one_core_busy": {},
            }

            def measure(setting: str) -> None:
                for count in counts:
                    model.threads.fix(count)
                    name = str(count)
                    log(f"threads {name}, {setting}")
                    s, _ = timed(lambda: model.sample(PREFIX, 16, small), 3)
                    section[setting][name] = {**s, "threads_used": model.threads.chosen}

            try:
                measure("quiet")
                stop = multiprocessing.Event()
                spinner = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
                spinner.start()
                saved = Quiet.max_contention, Quiet.max_wait_s
                Quiet.max_contention, Quiet.max_wait_s = 1.0, 0.0  # the load is the point here
                try:
                    measure("one_core_busy")
                finally:
                    Quiet.max_contention, Quiet.max_wait_s = saved
                    stop.set()
                    spinner.join()
            finally:
                model.threads.fix(None)
                torch.set_num_threads(DEFAULT_THREADS)  # the matmul measured after is torch's
            result["threads"] = section

        if not (cuda or args.quick or args.skip_threads):
            attempt("threads", threads)

        log("matmul FLOP/s again")
        peak_end = matmul_flops(matmul_n, matmul_reps, args.device, dtype)
        peak = max(peak_start["flops_per_s_best"], peak_end["flops_per_s_best"])
        limit_tps = peak / flops["flops_per_scored_token"]
        result["limit"] = {
            "matmul_start": peak_start,
            "matmul_end": peak_end,
            "peak_flops_per_s": peak,
            **flops,
            "limit_tokens_per_s": limit_tps,
            "note": "generated tokens/s if every FLOP the model needs per generated token (body, "
            "attention over the prefix and the tokens so far, full-vocabulary output projection) "
            "ran at the best matmul rate of this run; the prefix's one-time FLOPs are not "
            "credited",
        }
        for entry in methods.values():
            entry["fraction_of_limit"] = entry["tokens_per_s"] / limit_tps
        if "transformers_generate" in methods:
            methods["condpred"]["speedup_vs_generate"] = (
                methods["condpred"]["tokens_per_s"]
                / methods["transformers_generate"]["tokens_per_s"]
            )
        result["targets"] = {
            "fraction_of_limit_target": 0.60,
            "fraction_of_limit": methods["condpred"]["fraction_of_limit"],
            "fraction_of_limit_met": methods["condpred"]["fraction_of_limit"] >= 0.60,
        }
    finally:
        result["methods"] = methods
        result["machine"]["loadavg_at_end"] = list(os.getloadavg())
        result["contention"] = Quiet.report()
        write(args.out, result)
        log(f"wrote {args.out}")
    for name, entry in methods.items():
        log(
            f"{name:24s} {entry['seconds']:8.3f} s {entry['tokens_per_s']:9.1f} tok/s "
            f"{entry['fraction_of_limit']:.1%} of limit"
        )
    log(f"limit {limit_tps:.1f} tok/s ({peak / 1e9:.1f} GFLOP/s matmul)")
    if "reference_check" in result:
        log(f"reference: {result['reference_check']}  reproducible: {result['reproducible']}")
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
