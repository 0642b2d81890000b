"""Evaluation metrics against scipy's results on fixed arrays, logistic mapping, reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from deepiqa_core.evaluation import (
    evaluate_predictions,
    fit_logistic,
    format_report,
    krocc,
    logistic4,
    logistic5,
    plcc,
    rankdata,
    rmse,
    srocc,
)

RNG = np.random.default_rng(7)
X = np.round(RNG.normal(50, 15, 200), 0)  # rounded: many ties
Y = np.round(0.04 * X + RNG.normal(0, 0.4, 200), 1)


def test_metrics_match_scipy_on_fixed_arrays():
    assert np.array_equal(rankdata(X), stats.rankdata(X))
    assert srocc(X, Y) == pytest.approx(stats.spearmanr(X, Y).statistic, abs=1e-12)
    assert plcc(X, Y) == pytest.approx(stats.pearsonr(X, Y).statistic, abs=1e-12)
    assert krocc(X, Y) == pytest.approx(stats.kendalltau(X, Y).statistic, abs=1e-12)
    assert krocc(X, Y, chunk=7) == pytest.approx(krocc(X, Y), abs=1e-12)  # chunking is exact
    assert krocc([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert np.isnan(plcc([1, 1, 1], [1, 2, 3])) and np.isnan(krocc([1], [2]))


@pytest.mark.parametrize(
    ("params", "f", "beta"),
    [(5, logistic5, (4.0, 0.2, 50, 0.01, 3.0)), (4, logistic4, (5.0, 1.0, 50, 6.0))],
)
def test_logistic_fit_recovers_a_known_mapping(params, f, beta):
    x = np.linspace(10, 90, 81)
    y = f(x, *beta)
    mapping = fit_logistic(x, y, params)
    assert mapping is not None
    assert np.abs(mapping(x) - y).max() < 1e-3
    assert fit_logistic([1, 2, 3], [1, 2, 3], params) is None  # too few points to fit


def test_report_aligns_directions_and_tabulates_types():
    n = 60
    kinds = np.array(["blur", "noise", "jpeg"])[np.arange(n) % 3]
    level = (np.arange(n) // 3) % 5 + 1
    ref = np.arange(n) // 15
    quality = 100 - 15 * level + RNG.normal(0, 2, n)  # the model: higher = better
    frame = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(n)],
            "ref_id": ref.astype(str),
            "score": 10 * level + RNG.normal(0, 3, n),  # DMOS: lower = better
            "score_direction": "lower_better",
            "dataset": "toy",
            "distortion": kinds,
            "level": pd.array(level, dtype="Int64"),
            "prediction": quality,
        }
    )
    frame.loc[0, "prediction"] = None
    report = evaluate_predictions(frame)
    toy = report["datasets"]["toy"]
    assert report["failed"] == 1 and toy["images"] == n - 1
    assert report["labels_flipped_for"] == ["toy"]
    assert toy["srocc"] > 0.9 and toy["plcc_logistic"] >= toy["plcc"] - 1e-9
    assert toy["level_correlation"] < -0.9
    assert set(report["distortions"]["toy"]) == {"blur", "noise", "jpeg"}
    kept = frame.iloc[1:]
    assert toy["srocc"] == pytest.approx(-srocc(kept["prediction"], kept["score"]), abs=1e-4)
    text = format_report(report)
    assert "toy" in text and "per distortion type" in text and "labels negated" in text
