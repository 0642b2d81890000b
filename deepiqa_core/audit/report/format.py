"""Formatting for the page: escaping (every string from data goes through ``_e``), numbers
that may be missing, and the guards that let any key of the input be absent."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from typing import Any

_DASH = "\u2014"


def _e(value: Any) -> str:
    """Escaped text for HTML body and attribute values (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> float | None:
    """A finite float, or None for missing/NaN/non-numeric values (so formatting never raises)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _score(value: Any, digits: int = 1) -> str:
    number = _num(value)
    # round first and add 0.0: a drop of -0.0002 reads "0.0", not "-0.0"
    return _DASH if number is None else f"{round(number, digits) + 0.0:.{digits}f}"


def _share(value: Any) -> str:
    number = _num(value)
    return _DASH if number is None else f"{100 * number:.1f}\u2009%"


def _count(value: Any) -> str:
    number = _num(value)
    return _DASH if number is None else f"{round(number):,}"


def _g(value: float) -> str:
    """Compact number for axis ticks and SVG coordinates."""
    return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.3e}"


def _edge_format(spacing: float) -> Callable[[float], str]:
    """Histogram edges to as many decimals as their spacing needs (edges from the data's own
    min/max are not round: -110.024 reads as -110.0), without trailing zeros."""
    decimals = 0 if spacing <= 0 else min(4, max(0, 1 - math.floor(math.log10(spacing))))

    def label(value: float) -> str:
        text = f"{value:.{decimals}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
        return "0" if text == "-0" else text

    return label


def _whole(value: float) -> str:
    """Axis tick for counts: 1,200."""
    return f"{value:,.0f}"


def _list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else []


def _dict(value: Any) -> dict:
    return dict(value) if isinstance(value, Mapping) else {}


def _direction_words(direction: Any) -> str:
    return {
        "higher_better": "higher is better",
        "lower_better": "lower is better",
    }.get(str(direction), "direction unknown")
