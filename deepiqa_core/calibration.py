"""A readable score scale: a monotone map from a network's raw output to 0-100.

A network trained on weak labels predicts *that label*, whose numbers have no anchor a user can
read (a clean photo may come out anywhere from 30 to 75). Calibration version ``cal-v1`` fixes
the scale by reference points measured on validation photos the model was not trained on:

    the median raw score of pristine photos          ->  90
    the median raw score of distortion level k=1..5  ->  90 - 15 k  (75, 60, 45, 30, 15)

(levels over all 25 KADID-style types), so "60" reads "about as degraded as a typical level-2
distortion". Between the points the map is linear; beyond the end points it approaches 0 and
100 exponentially, leaving with the end segments' slopes (no clipping: two images that differ
in raw score never tie, so rankings and ladders keep their order). If the medians are not in
order (a model that cannot tell two levels apart), adjacent points are pooled (their means
taken) until they are, so the map is always increasing.

It is stored in the weights metadata (``WeightsMeta.calibration``) and applied by the scorer to
every image score and to each patch of a quality map (the map reads on the same scale; an image's
score is the calibrated weighted mean of its raw patch scores, so it is not exactly the weighted
mean of the map's calibrated values). The targets assume ``higher_better`` raw scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CALIBRATION_VERSION = "cal-v1"
KNOWN_VERSIONS = (CALIBRATION_VERSION,)  # what this library can apply
TARGETS = {0: 90.0, 1: 75.0, 2: 60.0, 3: 45.0, 4: 30.0, 5: 15.0}  # level (0 = pristine) -> score
SCALE = (0.0, 100.0)


@dataclass(frozen=True)
class Calibration:
    """Knots ``raw`` (strictly increasing) -> ``score`` (non-decreasing); see the module doc."""

    raw: tuple[float, ...]
    score: tuple[float, ...]
    version: str = CALIBRATION_VERSION

    def __post_init__(self) -> None:
        if self.version not in KNOWN_VERSIONS:
            raise ValueError(
                f"unknown calibration version {self.version!r} (known: {KNOWN_VERSIONS})"
            )
        if len(self.raw) < 2 or len(self.raw) != len(self.score):
            raise ValueError("a calibration needs at least two (raw, score) points")
        if not np.all(np.isfinite(self.raw)) or not np.all(np.isfinite(self.score)):
            raise ValueError("calibration points must be finite")
        low, high = SCALE
        if min(self.score) < low or max(self.score) > high:
            raise ValueError(f"calibrated scores must lie in {low:g}..{high:g}")
        if np.any(np.diff(self.raw) <= 0) or np.any(np.diff(self.score) < 0):
            raise ValueError("calibration points must increase")

    def __call__(self, raw: np.ndarray | float) -> np.ndarray | float:
        x = np.asarray(raw, dtype=np.float64)
        xs, ys = np.asarray(self.raw), np.asarray(self.score)
        y = np.interp(x, xs, ys)
        low, high = SCALE
        # tails: exponential approach to the scale's ends, with the end segments' slopes at the
        # end points (continuous and smooth there, strictly increasing: no ties, no clipping)
        slope_lo = (ys[1] - ys[0]) / (xs[1] - xs[0])
        slope_hi = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        room_lo, room_hi = max(ys[0] - low, 1e-9), max(high - ys[-1], 1e-9)
        below = np.minimum(x - xs[0], 0.0)
        above = np.maximum(x - xs[-1], 0.0)
        y = np.where(x < xs[0], low + room_lo * np.exp(slope_lo * below / room_lo), y)
        y = np.where(x > xs[-1], high - room_hi * np.exp(-slope_hi * above / room_hi), y)
        return float(y) if np.ndim(raw) == 0 else y.astype(np.asarray(raw).dtype, copy=False)

    def to_dict(self) -> dict:
        return {"version": self.version, "raw": list(self.raw), "score": list(self.score)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Calibration:
        return cls(
            tuple(map(float, data["raw"])), tuple(map(float, data["score"])), data["version"]
        )


def fit_calibration(
    raw_by_level: Mapping[int, Sequence[float]], targets: Mapping[int, float] = TARGETS
) -> Calibration:
    """The ``cal-v1`` map from raw scores grouped by level (0 = pristine, 1..5 = KADID levels).

    Raises ``ValueError`` when the medians cannot be put in order (all levels pooled together:
    the model does not separate clean from distorted at all).
    """
    # from the worst level to pristine: raw medians should rise with the target
    blocks = [
        [float(np.median(raw_by_level[lv])), targets[lv], 1]
        for lv in sorted(targets, key=lambda lv: targets[lv])
        if len(raw_by_level.get(lv, ())) > 0
    ]
    merged: list[list[float]] = []
    for block in blocks:  # pool adjacent violators (equal weight per level)
        merged.append(block)
        while len(merged) > 1 and merged[-2][0] >= merged[-1][0]:
            (r1, t1, n1), (r2, t2, n2) = merged.pop(-2), merged.pop()
            merged.append(
                [(r1 * n1 + r2 * n2) / (n1 + n2), (t1 * n1 + t2 * n2) / (n1 + n2), n1 + n2]
            )
    if len(merged) < 2:
        raise ValueError("the raw scores do not separate the levels: nothing to calibrate on")
    return Calibration(tuple(b[0] for b in merged), tuple(b[1] for b in merged))
