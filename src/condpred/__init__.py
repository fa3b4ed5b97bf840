"""condpred: condition predictive models on observations of the world, and check their predictions.

The flow is one direction: a `Conditional` is rendered through its camera into text, a
`PredictiveModel` (from `load_model`) scores or samples continuations of it, and a `Store` records
every run.
"""

from condpred.condition import Author, Conditional, list_cameras, load_conditional, render
from condpred.elicit import Prediction, predict, resume, score
from condpred.errors import InputError
from condpred.evals import load_evals, run_agentic, run_zero_one
from condpred.model import PredictiveModel, Sample, SamplingParams, Score, TokenProb, load_model
from condpred.store import Store

__all__ = [
    "Author",
    "Conditional",
    "InputError",
    "Prediction",
    "PredictiveModel",
    "Sample",
    "SamplingParams",
    "Score",
    "Store",
    "TokenProb",
    "list_cameras",
    "load_conditional",
    "load_evals",
    "load_model",
    "predict",
    "render",
    "resume",
    "run_agentic",
    "run_zero_one",
    "score",
]
