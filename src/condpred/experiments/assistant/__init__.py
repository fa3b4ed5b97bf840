"""The two-model assistant (seed 001): model A predicts a named human expert's reply, model B
rewrites it as an AI assistant's reply that says it is an AI; `measures` says how well."""

from condpred.experiments.assistant.measures import (
    IMPERSONATION,
    content_recall,
    impersonation_hits,
    states_ai,
)
from condpred.experiments.assistant.run import (
    DISCLOSURE,
    KIND,
    Assistant,
    AssistantReply,
    AssistantResult,
    AssistantRow,
    resume_assistant,
    run_assistant,
    summarise,
)

__all__ = [
    "DISCLOSURE",
    "IMPERSONATION",
    "KIND",
    "Assistant",
    "AssistantReply",
    "AssistantResult",
    "AssistantRow",
    "content_recall",
    "impersonation_hits",
    "resume_assistant",
    "run_assistant",
    "states_ai",
    "summarise",
]
