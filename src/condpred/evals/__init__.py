"""Evaluations of whether a model predicts or acts: agentic markers under different conditionals
(`agentic`), and "0 vs 1" tests of predictive accuracy against self-interest (`zero_one`), over
model-written-evaluation data (`data`). Each returns tidy rows and stores them as a run."""

from condpred.evals.agentic import (
    AgenticResult,
    conditional_names,
    eval_conditional,
    resume_agentic,
    run_agentic,
)
from condpred.evals.data import EvalItem, EvalSet, load_evals
from condpred.evals.zero_one import ZeroOneResult, generate_pairs, resume_zero_one, run_zero_one

__all__ = [
    "AgenticResult",
    "EvalItem",
    "EvalSet",
    "ZeroOneResult",
    "conditional_names",
    "eval_conditional",
    "generate_pairs",
    "load_evals",
    "resume_agentic",
    "resume_zero_one",
    "run_agentic",
    "run_zero_one",
]
