"""Predictive-model backends behind one protocol (`base.py`); `load_model` picks one by spec."""

from condpred.model.base import PredictiveModel, Sample, SamplingParams, Score, TokenProb
from condpred.model.registry import load_model

__all__ = ["PredictiveModel", "Sample", "SamplingParams", "Score", "TokenProb", "load_model"]
