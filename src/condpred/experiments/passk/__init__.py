"""pass@k of base vs tuned models (seed 004; Yue, Chen et al. 2025): does RL teach new skills, or
re-weight what the base model already samples?

`data` loads problems and frames them (a worked-solutions page for a base model, the chat template
for a tuned one), `verify` checks answers in a time-limited worker process, `estimate` holds the
unbiased pass@k, its bootstrap intervals and the crossover, and `run` is the experiment kind.
"""

from condpred.experiments.passk.estimate import compare, curve, pass_at_k, pass_at_k_matrix
from condpred.experiments.passk.run import (
    KIND,
    PassKInterrupted,
    PassKResult,
    PassKRow,
    resume_passk,
    run_passk,
)
from condpred.experiments.passk.verify import Verdict, Verifier, validate

__all__ = [
    "KIND",
    "PassKInterrupted",
    "PassKResult",
    "PassKRow",
    "Verdict",
    "Verifier",
    "compare",
    "curve",
    "pass_at_k",
    "pass_at_k_matrix",
    "resume_passk",
    "run_passk",
    "validate",
]
