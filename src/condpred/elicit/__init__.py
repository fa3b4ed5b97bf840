"""The uses of a predictive model: sample predictions, score continuations."""

from condpred.elicit.predict import Prediction, predict, resume
from condpred.elicit.score import score

__all__ = ["Prediction", "predict", "resume", "score"]
