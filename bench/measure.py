"""What the benchmarks share: timing with other processes' CPU use recorded, the machine's
matmul FLOP/s, the model's FLOPs per token, the machine's description, and loading the model
(condpred's spec, or a config with random weights for a machine the weights cannot reach)."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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

    @classmethod
    def report(cls) -> dict:
        return {
            "max_others_cpu_fraction_accepted": cls.max_contention,
            "contended_attempts_rerun": cls.contended_attempts,
            "seconds_waited_for_quiet_cpu": round(cls.waited_s, 1),
            "note": "others_cpu_fraction: CPU time of other processes during a timed run over "
            "(wall time x cores), from /proc/stat; a run above the threshold is rerun (at most "
            f"{cls.retries} times) after waiting for a quiet CPU, the least contended attempt is "
            "kept, and medians are taken over the runs within the threshold",
        }


def synchronize() -> None:
    """Wait for queued GPU work, so a timed section ends when its kernels do."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


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
    synchronize()
    runs, result = [], None
    for _ in range(reps):
        kept = None
        for _attempt in range(Quiet.retries + 1):
            gc.collect()
            Quiet.wait()
            probe = Probe()
            result = fn()
            synchronize()
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


def matmul_flops(n: int, reps: int, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """FLOP/s of an n x n matrix product in `dtype` on `device` (torch's default threads and
    float32 precision: no TF32 unless torch's defaults allow it), 2 warm-ups."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    summary, _ = timed(lambda: torch.matmul(a, b, out=out), reps, warmup=2)
    rates = [2 * n**3 / r["seconds"] for r in summary["runs"]]
    return {
        "n": n,
        "dtype": str(dtype).removeprefix("torch."),
        "device": device,
        "reps": reps,
        "flops_per_s_best": max(rates),
        "flops_per_s_median": statistics.median(rates),
        "max_others_cpu_fraction": summary["max_others_cpu_fraction"],
    }


def model_flops(config, pairs: list[tuple[list[int], list[int]]]) -> dict:
    """FLOPs per scored (or generated) token of a decoder-only transformer, from its config.

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


def machine(device: str = "cpu") -> dict:
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

    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "condpred_threads": os.environ.get("CONDPRED_THREADS")
        or os.environ.get("OMP_NUM_THREADS")
        or "default (scoring: the cores others leave free; sampling: torch's count)",
        "torch_interop_threads": torch.get_num_interop_threads(),
        "loadavg_at_start": list(os.getloadavg()),
        "device": device,
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["gpu_multiprocessors"] = props.multi_processor_count
        info["cuda"] = torch.version.cuda
        info["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    return info


def add_model_args(parser) -> None:
    parser.add_argument("--model", default="default", help="condpred model spec (default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument(
        "--random-init",
        type=Path,
        help="a folder with config.json and a tokenizer: the model built from that config with "
        "random weights (seed 0), for a machine the weights cannot be copied to; same FLOPs, "
        "and exactness is as testable, but the text means nothing",
    )
    parser.add_argument(
        "--no-shared-prefix",
        action="store_true",
        help="condpred without its shared-prefix attention (the per-row cache path), to compare",
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


def configure(args) -> None:
    Quiet.max_contention, Quiet.retries, Quiet.max_wait_s = (
        args.max_contention,
        args.retries,
        args.max_wait,
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("CONDPRED_PROGRESS", "0")  # no progress-bar thread in timed sections


def load(args):
    """(condpred's HFModel, a description of the model) for the arguments of `add_model_args`."""
    from condpred.model.hf import HFModel

    dtype = DTYPES[args.dtype]
    if args.random_init:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        config = AutoConfig.from_pretrained(args.random_init)
        torch.manual_seed(0)
        with torch.device(args.device):
            lm = AutoModelForCausalLM.from_config(config)
        lm = lm.to(dtype)
        tokenizer = AutoTokenizer.from_pretrained(args.random_init)
        model = HFModel(lm, tokenizer, f"random-init:{args.random_init.name}")
        name = f"{args.random_init.name} (random weights, seed 0)"
        about = "config of the named model, weights drawn by transformers' initialiser"
    else:
        from condpred.model.registry import embedded_model, load_model

        model = load_model(args.model, device=args.device)
        if dtype != torch.float32:
            model.model.to(dtype)
            model = HFModel(model.model, model.tokenizer, model.spec)
        embedded = embedded_model(args.model)
        name = embedded.name if embedded else args.model
        about = embedded.about if embedded else None
    if args.no_shared_prefix:
        model.shared_prefix = False
    lm = model.model
    description = {
        "spec": args.model if not args.random_init else model.spec,
        "name": name,
        "about": about,
        "random_weights": bool(args.random_init),
        "shared_prefix_attention": model.shared_prefix,
        "path": str(args.random_init or lm.name_or_path),
        "dtype": str(next(lm.parameters()).dtype).removeprefix("torch."),
        "device": str(next(lm.parameters()).device),
        "parameters": sum(p.numel() for p in lm.parameters()),
        "architecture": lm.config.architectures,
        "vocab_size": lm.config.vocab_size,
        "config": {
            k: getattr(lm.config, k, None)
            for k in (
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
                "head_dim",
                "intermediate_size",
                "sliding_window",
            )
        },
    }
    return model, description


def write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
