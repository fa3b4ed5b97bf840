"""The `arithmetic` check on known answers: GSM8K's calculator annotations (`<<48/2=24>>`, the
calculation the dataset's authors ran) must hold, the same with the result changed must not, and
the reference solutions as people read them (annotations removed) must raise no false alarm.

    python bench/arithmetic_validation.py bench/results/arithmetic_validation.json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from condpred.checks.arithmetic import equations
from condpred.experiments.passk.data import CALCULATOR, load_problems

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"
ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>=]*)>>")


def main(out: Path) -> None:
    problems, sha256 = load_problems(DATA)
    raw = [json.loads(line)["answer"] for line in DATA.read_text().splitlines() if line.strip()]
    annotated = [(m.group(1), m.group(2)) for text in raw for m in ANNOTATION.finditer(text)]
    true_found = true_held = wrong_found = wrong_caught = 0
    misses, false_alarms = [], []
    for expression, result in annotated:
        found = equations(f"{expression} = {result}")
        if not found:
            continue
        true_found += 1
        true_held += found[0]["holds"]
        if not found[0]["holds"]:
            misses.append(f"{expression}={result}")
        changed = equations(f"{expression} = {_changed(result)}")
        if changed:
            wrong_found += 1
            wrong_caught += not changed[0]["holds"]
    texts = [CALCULATOR.sub("", p.reference or "") for p in problems]
    in_text = [e for text in texts for e in equations(text)]
    false_alarms = [e["equation"] for e in in_text if not e["holds"]]
    report = {
        "data": str(DATA),
        "data_sha256": sha256,
        "annotations": len(annotated),
        "annotations_read": true_found,
        "annotations_holding": true_held,
        "not_holding": misses[:20],
        "changed_results_read": wrong_found,
        "changed_results_caught": wrong_caught,
        "reference_solutions": len(texts),
        "equations_in_reference_text": len(in_text),
        "false_alarms_in_reference_text": len(false_alarms),
        "false_alarm_examples": false_alarms[:20],
    }
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if not isinstance(v, list)}, indent=2))


def _changed(result: str) -> str:
    """The result with its last digit moved by one (a plausible slip, never the same number)."""
    digits = [i for i, c in enumerate(result) if c.isdigit()]
    if not digits:
        return result + "1"
    i = digits[-1]
    return result[:i] + str((int(result[i]) + 1) % 10) + result[i + 1 :]


if __name__ == "__main__":
    main(Path(sys.argv[1]))
