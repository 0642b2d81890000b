"""Monotonic logistic mappings from predicted scores onto a dataset's subjective scale.

PLCC and RMSE are conventionally reported after such a mapping (VQEG), so that a model on a
different but monotonically related scale is not penalised for the scale alone:

* 5 parameters (Sheikh et al. 2006, LIVE): ``b1 * (1/2 - 1/(1 + exp(b2 (x - b3)))) + b4 x + b5``
* 4 parameters (VQEG FR-TV): ``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``

Fitted by least squares (scipy) on standardised data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike


def logistic5(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(np.clip(b2 * (x - b3), -50, 50)))) + b4 * x + b5


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    return (b1 - b2) / (1.0 + np.exp(np.clip(-(x - b3) / (abs(b4) + 1e-12), -50, 50))) + b2


def _start(params: int, sign: float) -> list[float]:
    """Starting values on standardised data (x and y z-scored)."""
    if params == 5:
        return [sign * 4.0, 1.0, 0.0, 0.0, 0.0]
    return [2.0 * sign, -2.0 * sign, 0.0, 1.0]


def fit_logistic(
    predictions: ArrayLike, labels: ArrayLike, params: int = 5
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The least-squares mapping, or None with too few or constant points.

    Fitted on z-scored predictions and labels (well conditioned whatever the scales) with a
    trust-region solver that returns its best parameters even when the 5-parameter form is
    over-determined (a nearly linear relation lets b1 and b4 trade off without converging).
    """
    from scipy.optimize import least_squares

    x, y = np.asarray(predictions, np.float64), np.asarray(labels, np.float64)
    if params not in (4, 5):
        raise ValueError("params must be 4 or 5")
    if len(x) < params + 1 or x.std() == 0 or y.std() == 0:
        return None
    f = logistic5 if params == 5 else logistic4
    mx, sx, my, sy = x.mean(), x.std(), y.mean(), y.std()
    xs, ys = (x - mx) / sx, (y - my) / sy
    sign = 1.0 if np.corrcoef(x, y)[0, 1] >= 0 else -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = least_squares(lambda b: f(xs, *b) - ys, _start(params, sign), max_nfev=5000)
    if not np.all(np.isfinite(fit.x)):
        return None
    beta = fit.x
    return lambda values: f((np.asarray(values, np.float64) - mx) / sx, *beta) * sy + my
