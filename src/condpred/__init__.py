"""condpred: condition predictive models on observations of the world, and check their predictions.

The flow is one direction: a `Conditional` is rendered through its camera into text, a
`PredictiveModel` (from `load_model`) scores or samples continuations of it, and a `Store` records
every run.
"""

from condpred.condition import Author, Conditional, list_cameras, load_conditional, render
from condpred.elicit import Prediction, predict, resume, score
from condpred.elicit.outcomes import Distribution, outcomes
from condpred.errors import InputError
from condpred.evals import load_evals, run_agentic, run_zero_one
from condpred.experiments.assistant import Assistant
from condpred.experiments.reason import run_reason
from condpred.forecasting import forecast
from condpred.model import PredictiveModel, Sample, SamplingParams, Score, TokenProb, load_model
from condpred.planning import plan
from condpred.store import Store

__all__ = [
    "Assistant",
    "Author",
    "Conditional",
    "Distribution",
    "InputError",
    "Prediction",
    "PredictiveModel",
    "Sample",
    "SamplingParams",
    "Score",
    "Store",
    "TokenProb",
    "forecast",
    "list_cameras",
    "load_conditional",
    "load_evals",
    "load_model",
    "outcomes",
    "plan",
    "predict",
    "render",
    "resume",
    "run_agentic",
    "run_reason",
    "run_zero_one",
    "score",
]
