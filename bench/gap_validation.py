"""The validation numbers of `condpred gap` the README quotes: the planted pairs of
tests/planted_gap.py (identical models, the base model under a hidden prefix, a model that
learned a mapping the base lacks), each run as the tests run them, written to
bench/results/gap_validation.json.

    nice -n 10 python bench/gap_validation.py bench/results/gap_validation.json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from tests.planted_gap import (
    SIZES,
    SOFT,
    WORDS,
    loader,
    prefixed,
    skilled,
    write_conditionals,
    write_prompts,
)
from tests.tiny import build_tiny_gemma

from condpred.experiments.gap import run_gap
from condpred.model.hf import HFModel

KEEP = (
    "conditional",
    "kl_per_token",
    "ci",
    "fraction_closed",
    "fraction_closed_ci",
    "shifted_ratio",
)


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        base = HFModel.from_pretrained(build_tiny_gemma(tmp / "tiny"), spec="base", device="cpu")
        # 24 prompts, 12 held out: enough for intervals (condpred.stats.MIN_CI_N is 10)
        words = WORDS + [f"{w} today" for w in WORDS]
        prompts = str(write_prompts(tmp / "prompts.jsonl", words))
        skill, skill_loss = skilled(base)
        cases = {
            "identical": dict(tuned="base", soft_prompt=0, models=[base]),
            "hidden prefix": dict(
                tuned="planted",
                conditionals=str(write_conditionals(tmp / "c.yaml")),
                **SOFT,
                models=[base, prefixed(base)],
            ),
            "learned skill": dict(tuned="skilled", **SOFT, models=[base, skill]),
        }
        results = {}
        for name, case in cases.items():
            started = time.perf_counter()
            models = case.pop("models")
            tuned = case.pop("tuned")
            r = run_gap("base", tuned, prompts, load=loader(*models), **SIZES, **case)
            results[name] = {
                "rows": [{k: row[k] for k in KEEP} for row in r.summary["rows"]],
                "chosen_by_search": r.summary["chosen_by_search"],
                "seconds": time.perf_counter() - started,
            }
            print(name, json.dumps(results[name]["rows"]), flush=True)
    results["learned skill"]["skill_training_loss"] = skill_loss
    record = {"sizes": SIZES, "soft": SOFT, "prompts": len(words), "cases": results}
    out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
