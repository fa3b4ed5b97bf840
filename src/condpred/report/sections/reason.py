"""Reason runs: accuracy of the chain against the direct answer under the same camera (paired
bootstrap), what the gate did, and each problem's chain with its checks, as the model wrote it."""

from __future__ import annotations

from condpred.experiments.reason.run import ReasonRow, summarise
from condpred.experiments.runner import read_rows
from condpred.report.sections import SECTIONS, Block, pre, table
from condpred.stats import format_ci
from condpred.store import RunRecord, Store


@SECTIONS.register("reason")
def build(store: Store, run: RunRecord) -> list[Block]:
    rows = read_rows(store, run.id, ReasonRow)
    if not rows:
        return [Block("No problems reasoned through yet", note="Resume the run to do them.")]
    summary = summarise(rows, run.params, run.seed or 0)
    blocks = []
    if acc := summary.get("accuracy"):
        blocks.append(
            Block(
                "Accuracy: chain vs direct answer",
                table(
                    ("answer", "accuracy", "95% CI"),
                    [
                        (
                            "chain (reason)",
                            acc["reason"]["accuracy"],
                            format_ci(acc["reason"]["ci"]),
                        ),
                        (
                            "direct, same camera",
                            acc["direct"]["accuracy"],
                            format_ci(acc["direct"]["ci"]),
                        ),
                        (
                            "difference",
                            acc["difference"]["reason_minus_direct"],
                            format_ci(acc["difference"]["ci"]),
                        ),
                    ],
                ),
                note=f"{acc['problems']} problems with gold answers, verified by the pass@k "
                "verifier; 95% percentile bootstrap over problems, paired for the difference.",
            )
        )
    g, t = summary["gate"], summary["throughput"]
    blocks.append(
        Block(
            "Gate and throughput",
            table(
                ("gate", "steps kept", "steps rejected", "chains stopped", "tokens", "tokens/s"),
                [
                    (
                        "on" if g["on"] else "off",
                        g["steps_kept"],
                        g["steps_rejected"],
                        g["chains_stopped"],
                        t["tokens"],
                        t["tokens_per_s"],
                    )
                ],
                numeric=".1f",
            ),
            note=f"Checks on every step: {', '.join(run.params['checks']) or 'none'}. A step is "
            "rejected when every candidate has a failing result.",
        )
    )
    for row in rows:
        lines = [
            f"{s.label}{s.text}"
            + (f"   [resampled {s.resampled}x]" if s.resampled else "")
            + "".join(f"\n    {c['check']}: {c['verdict']} ({c['message']})" for c in s.checks)
            for s in row.steps
        ]
        lines.append(
            f"answer: {row.answer} ({row.verdict or 'no gold'}); direct: {row.direct_answer} "
            f"({row.direct_verdict or 'no gold'}); stopped: {row.stopped}"
        )
        blocks.append(Block(f"Problem {row.id}", pre("\n".join(lines))))
    return blocks
