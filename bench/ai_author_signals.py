"""The ai_author signals beside their anchors, on the embedded model, in the three validations
issue 14 asks for; writes bench/results/ai_author_signals.json.

1. human vs machine text (`../shared/data/human-vs-ai-text`, first `--limit` pairs per file);
2. planted conditionals: the five examples with a human vs an AI author, one neutral sentence;
3. self-sampled text: continuations sampled under a human vs an AI author, shown without it.

    .venv/bin/python bench/ai_author_signals.py --limit 8 --samples 6
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from condpred import load_conditional, load_model
from condpred.checks.validation import (
    format_validation,
    validate_ai_author,
    validate_planted,
    validate_self_sampled,
)

ROOT = Path(__file__).parents[1]
EXAMPLES = [
    "alignment-paper-2031",
    "textbook-solved-alignment",
    "news-ai-moratorium",
    "forecast-question",
    "policy-meeting-transcript",
]
NEUTRAL = " the details are given in the next section."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=60)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/human-vs-ai-text"))
    parser.add_argument("--out", default=str(ROOT / "bench/results/ai_author_signals.json"))
    args = parser.parse_args()
    model = load_model("default")
    conditionals = [
        (name, load_conditional(ROOT / "examples" / f"{name}.yaml")) for name in EXAMPLES
    ]
    record = {
        "model": model.spec,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    started = time.perf_counter()
    record["planted"] = validate_planted(model, conditionals, NEUTRAL)
    record["planted_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    record["self_sampled"] = validate_self_sampled(
        model, conditionals, samples=args.samples, max_tokens=args.max_tokens
    )
    record["self_sampled_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(record["self_sampled"]["signals"], indent=1))
    started = time.perf_counter()
    rows = validate_ai_author(model, args.data, limit=args.limit)
    record["human_vs_machine"] = {"limit": args.limit, "rows": rows}
    record["human_vs_machine_s"] = round(time.perf_counter() - started, 1)
    print(format_validation(rows))
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
