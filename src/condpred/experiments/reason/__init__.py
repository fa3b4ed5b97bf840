"""Sequential reasoning by a predicted human (seed 001): a named expert's working document, one
step at a time, each step checked before the next builds on it.

`document` reads the conditional (the working document) and its problems, `run` is the
experiment kind: steps sampled and checked (and with the gate resampled or stopped), the final
answer extracted and verified, a direct answer under the same camera beside it.
"""

from condpred.experiments.reason.document import ReasonInput, load_reason_input
from condpred.experiments.reason.run import (
    KIND,
    ReasonResult,
    ReasonRow,
    Step,
    resume_reason,
    run_reason,
    summarise,
)

__all__ = [
    "KIND",
    "ReasonInput",
    "ReasonResult",
    "ReasonRow",
    "Step",
    "load_reason_input",
    "resume_reason",
    "run_reason",
    "summarise",
]
