"""Assistant runs: impersonation before and after the rewrite, the disclosure and content
recall (with its mismatched-pairs control), each with its 95% interval, and every prompt's two
drafts side by side."""

from __future__ import annotations

from condpred.experiments.assistant import AssistantRow, summarise
from condpred.experiments.runner import read_rows
from condpred.report.sections import SECTIONS, Block, pre, table
from condpred.stats import format_ci
from condpred.store import RunRecord, Store

MEASURES = (
    ("impersonation_draft", "human-impersonation phrases, expert's draft (model A)"),
    ("impersonation_reply", "human-impersonation phrases, assistant's reply (model B)"),
    ("states_ai", "reply says it is an AI"),
    ("content_recall", "content recall of the rewrite"),
    ("content_recall_control", "control: recall against the reply to another prompt"),
)


@SECTIONS.register("assistant")
def build(store: Store, run: RunRecord) -> list[Block]:
    rows = read_rows(store, run.id, AssistantRow)
    if not rows:
        return [Block("No prompts answered yet", note="Resume the run to answer them.")]
    s = summarise(rows, run.seed or 0)
    cells = [
        (label, s[key]["rate"], format_ci(s[key]["ci"], s["prompts"]))
        for key, label in MEASURES
        if s.get(key)
    ]
    change = s["impersonation_change"]
    blocks = [
        Block(
            "Impersonation, disclosure and content kept",
            table(("measure", "rate or mean", "95% CI"), cells),
            note=f"{s['prompts']} prompts; rates are shares of prompts, 95% percentile bootstrap "
            f"over prompts. Change in impersonation (reply - draft, paired): "
            f"{change['difference']:+.3f} {format_ci(change['ci'], s['prompts'])}. "
            f"Models: {', '.join(run.params['models'])}.",
        )
    ]
    for row in rows:
        text = (
            f"Q: {row.prompt}\n\nexpert (A): {row.human_draft}\n  impersonation: "
            f"{row.impersonation_draft or 'none'}\n\nassistant (B): {row.reply}\n  impersonation: "
            f"{row.impersonation_reply or 'none'}; says it is an AI: {row.states_ai}; "
            f"content recall: {row.content_recall}"
        )
        blocks.append(Block(f"Prompt {row.index}", pre(text)))
    return blocks
