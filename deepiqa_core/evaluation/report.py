"""Evaluation of predicted scores against a manifest's subjective scores.

``evaluate_predictions`` returns overall figures, one row per dataset (cross-dataset evaluation:
a manifest may join several datasets) and per-distortion-type tables like the paper's TID2013
table. Directions are aligned first: when the model's scores and a dataset's labels point in
opposite directions (quality vs DMOS), the labels' sign is flipped for the correlations, so a
good model always shows positive SROCC/KROCC/PLCC.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .logistic import fit_logistic
from .metrics import krocc, mean_level_correlation, plcc, rmse, srocc

if TYPE_CHECKING:
    import pandas as pd

MIN_IMAGES = 3  # fewer than this gives no meaningful correlation


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def metrics(predictions: np.ndarray, labels: np.ndarray, logistic_params: int = 5) -> dict:
    """SROCC, KROCC, PLCC (raw and after the logistic mapping) and RMSE after the mapping."""
    out: dict[str, int | float | None] = {"images": int(len(predictions))}
    if len(predictions) < MIN_IMAGES:
        return out
    mapping = fit_logistic(predictions, labels, logistic_params)
    mapped = mapping(predictions) if mapping is not None else None
    out.update(
        srocc=_clean(srocc(predictions, labels)),
        krocc=_clean(krocc(predictions, labels)),
        plcc=_clean(plcc(predictions, labels)),
        plcc_logistic=_clean(plcc(mapped, labels)) if mapped is not None else None,
        rmse_logistic=_clean(rmse(mapped, labels)) if mapped is not None else None,
    )
    return out


def evaluate_predictions(
    frame: pd.DataFrame, model_direction: str = "higher_better", logistic_params: int = 5
) -> dict:
    """``frame``: manifest columns plus ``prediction`` (null where scoring failed).

    ``model_direction`` "unknown" (a weights file that does not say) is taken as higher_better.

    Returns ``{"overall", "datasets", "distortions", "failed"}``; "overall" pools all rows and is
    meaningful only for one dataset (scales differ), so cross-dataset results are per dataset.
    """
    if model_direction == "unknown":
        model_direction = "higher_better"
    scored = frame[frame["prediction"].notna()].copy()
    flip = np.where(scored["score_direction"] == model_direction, 1.0, -1.0)
    scored["aligned"] = scored["score"].to_numpy(np.float64) * flip
    report: dict = {
        "model_direction": model_direction,
        "logistic_params": logistic_params,
        "failed": int(frame["prediction"].isna().sum()),
        "labels_flipped_for": sorted(scored.loc[flip < 0, "dataset"].astype(str).unique().tolist()),
        "overall": metrics(
            scored["prediction"].to_numpy(np.float64), scored["aligned"].to_numpy(), logistic_params
        ),
        "datasets": {},
        "distortions": {},
    }
    for name, part in scored.groupby("dataset", sort=True):
        entry = metrics(
            part["prediction"].to_numpy(np.float64), part["aligned"].to_numpy(), logistic_params
        )
        leveled = part[part["level"].notna() & part["distortion"].notna()]
        if len(leveled):
            groups = list(zip(leveled["ref_id"], leveled["distortion"], strict=True))
            entry["level_correlation"] = _clean(
                mean_level_correlation(leveled["prediction"], leveled["level"].astype(int), groups)
            )
        report["datasets"][str(name)] = entry
        typed = part[part["distortion"].notna()]
        if len(typed):
            report["distortions"][str(name)] = {
                str(kind): metrics(
                    rows["prediction"].to_numpy(np.float64),
                    rows["aligned"].to_numpy(),
                    logistic_params,
                )
                for kind, rows in typed.groupby("distortion", sort=True)
            }
    return report


COLUMNS = (
    ("images", "images", 7),
    ("srocc", "SROCC", 8),
    ("krocc", "KROCC", 8),
    ("plcc", "PLCC", 8),
    ("plcc_logistic", "PLCC*", 8),
    ("rmse_logistic", "RMSE*", 9),
)


def _row(name: str, width: int, m: dict, extra: tuple[str, ...] = ()) -> str:
    cells = [f"{name:<{width}}"]
    for key, _, w in COLUMNS + tuple((k, k, 8) for k in extra):
        v = m.get(key)
        cells.append(
            f"{'-':>{w}}" if v is None else f"{v:>{w}}" if key == "images" else f"{v:>{w}.3f}"
        )
    return "".join(cells)


def _header(first: str, width: int, extra: tuple[str, ...] = ()) -> str:
    titles = [f"{t:>{w}}" for _, t, w in COLUMNS] + [f"{t:>8}" for t in extra]
    return f"{first:<{width}}" + "".join(titles)


def format_report(report: dict) -> str:
    """A plain-text rendering: one table of datasets, then a per-type table for each."""
    level = ("level_correlation",)
    lines = [_header("dataset", 16, ("level",))]
    lines += [_row(name, 16, m, level) for name, m in report["datasets"].items()]
    for name, table in report["distortions"].items():
        lines += ["", f"{name}: per distortion type", _header("type", 36)]
        lines += [_row(kind, 36, m) for kind, m in table.items()]
    lines += [
        "",
        f"* after the {report['logistic_params']}-parameter logistic mapping; "
        f"failed rows: {report['failed']}",
    ]
    if report["labels_flipped_for"]:
        flipped = ", ".join(report["labels_flipped_for"])
        lines.append(f"labels negated (opposite direction to the model): {flipped}")
    return "\n".join(lines)
