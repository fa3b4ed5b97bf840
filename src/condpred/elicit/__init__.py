"""The uses of a predictive model: sample predictions, score continuations, check predictions."""

from condpred.elicit.check import DEFAULT_CHECKS, check, gated
from condpred.elicit.predict import Prediction, predict, resume, stored_prediction
from condpred.elicit.score import score

__all__ = [
    "DEFAULT_CHECKS",
    "Prediction",
    "check",
    "gated",
    "predict",
    "resume",
    "score",
    "stored_prediction",
]
