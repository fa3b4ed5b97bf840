"""Forecasting: questions as forecasting-site pages dated at their as-of date, P(yes) from the
model, and proper scores against the base rate and the crowd (see `run`, `summary`, `scoring`)."""

from condpred.forecasting.questions import Question, load_questions, stratified_sample
from condpred.forecasting.run import ForecastRun, forecast, resume_forecast, stored_forecast
from condpred.forecasting.summary import summarise

__all__ = [
    "ForecastRun",
    "Question",
    "forecast",
    "load_questions",
    "resume_forecast",
    "stored_forecast",
    "stratified_sample",
    "summarise",
]
