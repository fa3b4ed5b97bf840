"""Markdown tables from the benchmarks' JSON (bench/results/), for the READMEs:

    python bench/report.py            # prints them; nothing is measured here

Growth is shown as tables with a bar per row (seconds, drawn to scale within each table)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
NAMES = {
    "condpred": "condpred `HFModel`",
    "naive_batched_scored_logits": "naive batched, logits at scored positions",
    "naive_batched_full_vocab": "naive batched, full-vocab logits everywhere",
    "lm_eval_hf": "lm-evaluation-harness 0.4.13 HF backend (batch 8)",
    "transformers_generate": "transformers `generate(num_return_sequences=64)`",
}


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def bar(value: float, top: float, width: int = 30) -> str:
    return "█" * max(1, round(width * value / top)) if top else ""


def methods_table(result: dict, unit: str) -> list[str]:
    rows = [
        f"| method | seconds | {unit}/s | condpred's speed-up | of the FLOP limit | "
        "others' CPU share |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    condpred = result["methods"]["condpred"]["tokens_per_s"]
    for name, entry in result["methods"].items():
        speedup = "—" if name == "condpred" else f"{condpred / entry['tokens_per_s']:.2f}x"
        rows.append(
            f"| {NAMES.get(name, name)} | {entry['seconds']:.3f} | {entry['tokens_per_s']:.1f} | "
            f"{speedup} | {entry.get('fraction_of_limit', float('nan')):.1%} | "
            f"{entry.get('max_others_cpu_fraction', 0):.1%} |"
        )
    for name, error in result.get("failed", {}).items():
        rows.append(f"| {NAMES.get(name, name)} | failed: {error[:120]} | | | | |")
    return rows


def growth_table(rows: list[dict], key: str, label: str) -> list[str]:
    top = max(r["seconds"] for r in rows)
    out = [f"| {label} | seconds | |", "| ---: | ---: | --- |"]
    out += [f"| {r[key]} | {r['seconds']:.3f} | {bar(r['seconds'], top)} |" for r in rows]
    return out


def main() -> None:
    blocks: list[str] = []
    for name in sorted(RESULTS.glob("score_prefix*.json")) + sorted(RESULTS.glob("sample*.json")):
        result = json.loads(name.read_text())
        model = result.get("model", {})
        machine = result["machine"]
        where = machine.get("gpu") or f"{machine['cpu']} ({machine['cores']} cores)"
        title = (
            f"### {name.name}: {model.get('name')} {model.get('dtype')} on {where}, "
            f"torch {machine['torch']}, transformers {machine['transformers']}, {result['date']}"
        )
        blocks.append(title)
        unit = "generated tokens" if result["benchmark"] == "sample" else "scored tokens"
        if result.get("methods"):
            blocks += methods_table(result, unit)
        limit = result.get("limit", {})
        if limit:
            blocks.append(
                f"\nLimit {limit['limit_tokens_per_s']:.1f} {unit}/s: "
                f"{limit['flops_per_scored_token'] / 1e6:.1f} MFLOP per token at "
                f"{limit['peak_flops_per_s'] / 1e9:.1f} GFLOP/s (best matmul of the run)."
            )
        for key in ("plain_forward_check", "reference_check", "agreement"):
            if key in result:
                blocks.append(f"\n{key}: `{json.dumps(result[key])}`")
        if "scaling" in result:
            blocks += ["", *growth_table(result["scaling"]["time_n"], "n", "N continuations")]
        if "growth_prefix_length" in result:
            blocks += [
                "",
                *growth_table(
                    result["growth_prefix_length"], "prefix_tokens", "prefix tokens (N = 16)"
                ),
            ]
        if "growth_samples" in result:
            blocks += ["", *growth_table(result["growth_samples"], "samples", "n samples")]
        if "threads" in result:
            t = result["threads"]
            blocks.append("\n| torch threads | quiet machine (s) | one core kept busy (s) |")
            blocks.append("| ---: | ---: | ---: |")
            for count in ("1", "2"):
                quiet = t["quiet"].get(count, {}).get("seconds", float("nan"))
                busy = t["one_core_busy"].get(count, {}).get("seconds", float("nan"))
                blocks.append(f"| {count} | {quiet:.2f} | {busy:.2f} |")
        contention = result.get("contention", {})
        blocks.append(
            f"\nContention: {contention.get('contended_attempts_rerun')} attempts rerun, "
            f"{contention.get('seconds_waited_for_quiet_cpu')} s waited; load average "
            f"{machine.get('loadavg_at_start')} at start, {machine.get('loadavg_at_end')} at end."
        )
        blocks.append("")
    print("\n".join(blocks))


if __name__ == "__main__":
    main()
