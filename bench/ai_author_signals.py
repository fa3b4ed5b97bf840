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
    out = Path(args.out)

    def measured(name, compute):  # each part written as soon as it is done
        started = time.perf_counter()
        record[name] = compute()
        record[f"{name}_s"] = round(time.perf_counter() - started, 1)
        out.write_text(json.dumps(record, indent=1) + "\n")
        return record[name]

    measured("planted", lambda: validate_planted(model, conditionals, NEUTRAL))
    found = measured(
        "self_sampled",
        lambda: validate_self_sampled(
            model, conditionals, samples=args.samples, max_tokens=args.max_tokens
        ),
    )
    print(json.dumps(found["signals"], indent=1))
    rows = measured("human_vs_machine", lambda: validate_ai_author(model, args.data, args.limit))
    print(format_validation(rows))


if __name__ == "__main__":
    main()
