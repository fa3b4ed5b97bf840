"""The RLHF conditioning hypothesis (seed 002): how much of KL(tuned || base) does a conditional
of the base model close?

`data` reads prompts and conditionals, frames the tuned model's turn and checks that the two
models share a vocabulary; `measure` holds the exact per-token KL, URIAL's base-rank shift and
the bootstrap table; `softprompt` trains N virtual tokens on the frozen base model; `run` is the
experiment kind.
"""

from condpred.experiments.gap.run import (
    KIND,
    GapResult,
    GapRow,
    SoftEvalRow,
    SoftPromptRow,
    resume_gap,
    run_gap,
    summarise,
)

__all__ = [
    "KIND",
    "GapResult",
    "GapRow",
    "SoftEvalRow",
    "SoftPromptRow",
    "resume_gap",
    "run_gap",
    "summarise",
]
