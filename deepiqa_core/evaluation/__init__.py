"""Evaluating predicted quality against subjective scores: metrics, logistic mapping, reports."""

from .logistic import fit_logistic, logistic4, logistic5
from .metrics import krocc, mean_level_correlation, plcc, rankdata, rmse, srocc
from .report import evaluate_predictions, format_report, metrics

__all__ = [
    "evaluate_predictions",
    "fit_logistic",
    "format_report",
    "krocc",
    "logistic4",
    "logistic5",
    "mean_level_correlation",
    "metrics",
    "plcc",
    "rankdata",
    "rmse",
    "srocc",
]
