"""The two-model assistant of seed 001: model A predicts what a named human expert replies, model
B rewrites that reply in the voice of an assistant that says it is an AI, keeping its content.

Model A's camera is a public question-and-answer session's transcript (the `transcript` camera,
the expert as its one named participant): the reply it predicts is a human's, with a human's
claims ("as a nurse, ..."). Model B's camera is a translation page, a style guide that shows
expert answers beside the assistant's versions of them (`REWRITE_PAGE`), and the version it
predicts opens with the disclosure (`DISCLOSURE`): B may be another model or the same one. Both
drafts are kept. The `assistant` experiment kind runs a prompt set and measures the rewrite
(measures.py): human-impersonation rate before and after, the disclosure, content recall.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from condpred.condition import Author, Conditional, render
from condpred.errors import InputError
from condpred.experiments.assistant.measures import content_recall, impersonation_hits, states_ai
from condpred.experiments.runner import (
    Item,
    Row,
    expect_kind,
    item_seed,
    open_run,
    read_rows,
    recording,
    resumable,
)
from condpred.model.base import PredictiveModel, Sample, SamplingParams
from condpred.model.registry import load_model
from condpred.stats import ci_list
from condpred.store import Store

KIND = "assistant"
EXPERT = Author(name="Dr. Sarah Lin", affiliation="general practitioner and science writer")
DISCLOSURE = " I'm an AI assistant, not a person, but"
REWRITE_PAGE = """Style guide for the help desk, section 4: adapting expert answers for the AI \
assistant

The assistant is an AI, not a person. When an expert's answer is adapted for it, every fact, \
number and recommendation is kept, and what only a human could say (a job, a body, a family, \
memories, places visited) is dropped. The assistant says that it is an AI.

Expert's answer: I'm a nurse, and when my kids had fevers I gave them fluids and rest. A fever \
under 39 C usually needs no medicine; call a doctor if it lasts more than three days.
Assistant's version: I'm an AI assistant, not a person, but fluids and rest help with a fever. \
A fever under 39 C usually needs no medicine; call a doctor if it lasts more than three days.

Expert's answer: As a pilot with twenty years in the cockpit, I can tell you turbulence almost \
never damages a plane. Keep your seatbelt fastened whenever you are seated.
Assistant's version: I'm an AI assistant, not a person, but turbulence almost never damages a \
plane. Keep your seatbelt fastened whenever you are seated.

Expert's answer: {draft}
Assistant's version:"""


@dataclass(frozen=True)
class AssistantReply:
    """Both drafts and what was measured on them (the `chat --json` contract)."""

    human_draft: str
    reply: str
    checks: dict[str, Any]
    samples: list[Sample] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"human_draft": self.human_draft, "reply": self.reply, "checks": self.checks}


def measure(draft: str, reply: str) -> dict[str, Any]:
    """Impersonation phrases in each draft, the disclosure and the content recall."""
    return {
        "impersonation_draft": impersonation_hits(draft),
        "impersonation_reply": impersonation_hits(reply),
        "states_ai": states_ai(reply),
        "content_recall": content_recall(draft, reply),
    }


class Assistant:
    """`Assistant(model_a, model_b).reply("Is it safe to ...?")`: model A predicts the named
    expert's reply, model B (model A when not given) rewrites it as an AI assistant's."""

    def __init__(
        self,
        model_a: PredictiveModel,
        model_b: PredictiveModel | None = None,
        *,
        expert: Author = EXPERT,
        max_tokens: int = 96,
        temperature: float = 0.7,
        seed: int = 0,
    ) -> None:
        self.model_a, self.model_b = model_a, model_b or model_a
        self.expert, self.max_tokens, self.temperature, self.seed = (
            expert,
            max_tokens,
            temperature,
            seed,
        )

    def question_conditional(self, message: str) -> Conditional:
        """Model A's camera: the session's transcript up to the expert's turn."""
        speaker = self.expert.name.upper()
        return Conditional(
            camera="transcript",
            title="Ask the Experts: a public question-and-answer session",
            authors=[self.expert],
            prefix=f"QUESTION FROM THE AUDIENCE: {' '.join(message.split())}\n\n{speaker}:",
        )

    def rewrite_camera(self, draft: str) -> str:
        """Model B's context: the style guide's page up to the assistant's version, opened
        with the disclosure."""
        return REWRITE_PAGE.format(draft=" ".join(draft.split())) + DISCLOSURE

    def reply(self, message: str, index: int = 0) -> AssistantReply:
        if not message.strip():
            raise InputError("the message is empty", field="--message", fix="Ask a question")
        first = self._draw(
            self.model_a,
            render(self.question_conditional(message)),
            ("\n\n", "\nQUESTION"),
            index,
            0,
        )
        draft = first.text.strip()
        second = self._draw(self.model_b, self.rewrite_camera(draft), ("\n",), index, 1)
        reply = (DISCLOSURE + second.text).strip()
        return AssistantReply(draft, reply, measure(draft, reply), [first, second])

    def _draw(
        self, model: PredictiveModel, context: str, stop: tuple[str, ...], index: int, part: int
    ) -> Sample:
        params = SamplingParams(
            max_new_tokens=self.max_tokens,
            temperature=self.temperature,
            stop=stop,
            seed=item_seed("assistant", self.seed, index, part),
        )
        sample = model.sample(context, 1, params)[0]
        return Sample(**{**vars(sample), "index": part})


# --- the experiment kind: a prompt set, measured ------------------------------------------------


class AssistantRow(Row):
    """One prompt: both drafts and what was measured on them."""

    table: ClassVar[str] = "assistant"

    prompt: str
    human_draft: str
    reply: str
    impersonation_draft: list[str]  # the phrases matched
    impersonation_reply: list[str]
    states_ai: bool
    content_recall: float | None
    tokens: int
    sample_s: float


@dataclass
class AssistantResult:
    run_id: str | None
    rows: list[AssistantRow]
    summary: dict[str, Any]


def load_prompts(path: str | Path, limit: int | None = None) -> list[str]:
    """One question a line (blank lines and lines starting with # skipped)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}", source="--prompts", fix="One question a line")
    prompts = [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not prompts:
        raise InputError("the file holds no questions", source=str(path), fix="One question a line")
    return prompts[:limit] if limit else prompts


def run_assistant(
    prompts_file: str | Path,
    model_a: PredictiveModel,
    model_b: PredictiveModel | None = None,
    *,
    limit: int | None = None,
    max_tokens: int = 96,
    temperature: float = 0.7,
    seed: int = 0,
    store: Store | None = None,
) -> AssistantResult:
    """Both drafts for every prompt of the file, measured; stored as a run of kind 'assistant'."""
    prompts = load_prompts(prompts_file, limit)
    model_b = model_b or model_a
    params = {
        "prompts_file": str(prompts_file),
        "prompts": prompts,
        "models": [model_a.spec, model_b.spec],
        "expert": EXPERT.model_dump(),
        "disclosure": DISCLOSURE,
        "sampling": {"max_tokens": max_tokens, "temperature": temperature},
    }
    spec = model_a.spec if model_b is model_a else f"{model_a.spec},{model_b.spec}"
    run_id = open_run(store, KIND, spec, params, seed)
    return _execute(run_id, params, model_a, model_b, store, seed)


@resumable(KIND, rows=[AssistantRow])
def resume_assistant(
    run_id: str, store: Store, load: Callable[[str], PredictiveModel] = load_model
) -> AssistantResult:
    """Finish an interrupted run: only the prompts it has no row for."""
    run = expect_kind(store.get_run(run_id), KIND)
    specs = run.params["models"]
    model_a = load(specs[0])
    model_b = model_a if specs[1] == specs[0] else load(specs[1])
    store.reopen_run(run.id)
    return _execute(run.id, run.params, model_a, model_b, store, run.seed or 0)


def _execute(
    run_id: str | None,
    params: dict[str, Any],
    model_a: PredictiveModel,
    model_b: PredictiveModel,
    store: Store | None,
    seed: int,
) -> AssistantResult:
    s = params["sampling"]
    assistant = Assistant(
        model_a,
        model_b,
        expert=Author(**params["expert"]),
        max_tokens=s["max_tokens"],
        temperature=s["temperature"],
        seed=seed,
    )
    prompts = params["prompts"]

    def item(index: int) -> Item:
        started = time.perf_counter()
        answer = assistant.reply(prompts[index], index)
        c = answer.checks
        row = AssistantRow(
            index=index,
            prompt=prompts[index],
            human_draft=answer.human_draft,
            reply=answer.reply,
            impersonation_draft=[h["match"] for h in c["impersonation_draft"]],
            impersonation_reply=[h["match"] for h in c["impersonation_reply"]],
            states_ai=c["states_ai"],
            content_recall=c["content_recall"],
            tokens=sum(len(x.tokens) for x in answer.samples),
            sample_s=time.perf_counter() - started,
        )
        # Model A's conditional is stored with the item (the samples hang off it); model B's
        # context is REWRITE_PAGE with the draft, rebuilt from the row.
        asked = assistant.question_conditional(prompts[index])
        return Item(row, conditional=(asked.to_yaml(), render(asked), None), samples=answer.samples)

    with recording(store, run_id) as recorder:
        rows = recorder.add_items(AssistantRow, range(len(prompts)), item, "assistant: prompts")
    if store is not None:
        rows = read_rows(store, run_id, AssistantRow)
    return AssistantResult(run_id, rows, summarise(rows, seed))


def summarise(rows: Sequence[AssistantRow], seed: int = 0) -> dict[str, Any]:
    """Impersonation rates before and after (share of prompts with a phrase), their paired
    difference, the disclosure rate and the mean content recall, each with a 95% bootstrap
    interval over prompts; as a control, the recall of each draft against the reply to the next
    prompt (a rewrite that kept nothing of this draft's content)."""
    if not rows:
        return {"prompts": 0}
    before = np.array([bool(r.impersonation_draft) for r in rows], dtype=float)
    after = np.array([bool(r.impersonation_reply) for r in rows], dtype=float)
    disclosed = np.array([r.states_ai for r in rows], dtype=float)
    kept = [r for r in rows if r.content_recall is not None]
    recall = np.array([r.content_recall for r in kept], dtype=float)
    shifted = [
        content_recall(a.human_draft, b.reply)
        for a, b in zip(kept, kept[1:] + kept[:1], strict=True)
    ]
    control = np.array([x for x in shifted if x is not None], dtype=float)
    tokens, seconds = sum(r.tokens for r in rows), sum(r.sample_s for r in rows)

    def rate(values: np.ndarray) -> dict[str, Any]:
        return {"rate": float(values.mean()), "ci": ci_list(np.mean, values, seed=seed)}

    return {
        "prompts": len(rows),
        "impersonation_draft": rate(before),
        "impersonation_reply": rate(after),
        "impersonation_change": {
            "difference": float((after - before).mean()),
            "ci": ci_list(lambda a, b: float(np.mean(a - b)), after, before, seed=seed),
        },
        "states_ai": rate(disclosed),
        "content_recall": rate(recall) if recall.size else None,
        "content_recall_control": rate(control) if len(kept) > 1 and control.size else None,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds if seconds else None,
    }
