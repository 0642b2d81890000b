"""The report's inline SVG charts: the score histogram and the trend, with their axes."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from .format import _e, _edge_format, _g, _list, _num, _whole

_CHART_WIDTH = 960  # SVG user units; the charts scale to the page width
# Series colours (colour-blind safe pair plus accents), shared by charts and legends.
_LIB, _RUN, _P10, _SHARE, _ERR, _BAD = (
    "#4c78a8",
    "#e45756",
    "#f58518",
    "#7b4fa0",
    "#9d9d9d",
    "#c0392b",
)


def _axis(lo: float, hi: float, n: int = 4, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi] in about ``n`` steps of 1, 2, 2.5 or 5 x 10^k."""
    if hi <= lo:
        hi = lo + (1.0 if lo == 0 else abs(lo) * 0.1)
    raw = (hi - lo) / n
    exp = 10 ** math.floor(math.log10(raw))
    step = next(m * exp for m in (1, 2, 2.5, 5, 10) if m * exp >= raw * 0.999)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    start = math.floor(lo / step + 1e-9) * step
    stop = math.ceil(hi / step - 1e-9) * step
    return [start + i * step for i in range(round((stop - start) / step) + 1)]


class _Plot:
    """A plot area inside an SVG: maps data to pixels and draws axes (no state beyond that)."""

    def __init__(self, width: int, height: int, left: int, right: int, top: int, bottom: int):
        self.width, self.height = width, height
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = height - bottom, top  # y grows downwards: y0 is the axis line

    def sx(self, value: float, lo: float, hi: float) -> float:
        return self.x0 + (value - lo) / (hi - lo) * (self.x1 - self.x0) if hi > lo else self.x0

    def slot(self, i: int, n: int) -> float:
        """x of run i of n: the centre of its slot, so bars at the ends stay inside the plot."""
        return self.sx(i + 0.5, 0, max(n, 1))

    def sy(self, value: float, lo: float, hi: float) -> float:
        return self.y0 - (value - lo) / (hi - lo) * (self.y0 - self.y1) if hi > lo else self.y0

    def y_axis(
        self,
        ticks: Sequence[float],
        label: str,
        right: bool = False,
        fmt: Callable[[float], str] = _g,
        colour: str = "",
    ) -> str:
        """Ticks, grid lines (left axis only) and a rotated label (in its series' colour)."""
        lo, hi = ticks[0], ticks[-1]
        x = self.x1 if right else self.x0
        out = [f'<line class="axis" x1="{x}" y1="{self.y0}" x2="{x}" y2="{self.y1}"/>']
        for t in ticks:
            y = self.sy(t, lo, hi)
            if not right:
                out.append(
                    f'<line class="grid" x1="{self.x0}" y1="{y:.1f}" x2="{self.x1}" y2="{y:.1f}"/>'
                )
            anchor, tx = ("start", x + 6) if right else ("end", x - 6)
            out.append(f'<text x="{tx}" y="{y + 4:.1f}" text-anchor="{anchor}">{_e(fmt(t))}</text>')
        lx = self.width - 10 if right else 14
        style = f' style="fill:{colour}"' if colour else ""
        cy = (self.y0 + self.y1) / 2
        out.append(
            f'<text class="label" x="{lx}" y="{cy:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 {lx} {cy:.1f})"{style}>{_e(label)}</text>'
        )
        return "".join(out)


def _legend(x: int, y: int, items: Sequence[tuple[str, str, str]]) -> str:
    """Legend entries (colour, label, kind: "box" | "line" | "dash") laid out left to right."""
    out = []
    for colour, label, kind in items:
        if kind == "box":
            out.append(f'<rect x="{x}" y="{y - 9}" width="12" height="10" fill="{colour}"/>')
        else:
            dash = ' stroke-dasharray="5 3"' if kind == "dash" else ""
            out.append(
                f'<line x1="{x}" y1="{y - 4}" x2="{x + 14}" y2="{y - 4}" stroke="{colour}" '
                f'stroke-width="2.5"{dash}/>'
            )
        out.append(f'<text x="{x + 18}" y="{y}">{_e(label)}</text>')
        x += 26 + 7 * len(label)
    return f'<g class="legend">{"".join(out)}</g>'


def _score_axis(plot: _Plot, edges: list[float]) -> str:
    """The histogram's x axis: every k-th bin edge labelled, so at most ~11 labels."""
    lo, hi = edges[0], edges[-1]
    parts = [f'<line class="axis" x1="{plot.x0}" y1="{plot.y0}" x2="{plot.x1}" y2="{plot.y0}"/>']
    step = max(1, math.ceil(len(edges) / 11))
    label = _edge_format(edges[step] - edges[0] if len(edges) > step else hi - lo)
    for value in edges[::step]:
        x = plot.sx(value, lo, hi)
        parts.append(
            f'<line class="axis" x1="{x:.1f}" y1="{plot.y0}" x2="{x:.1f}" y2="{plot.y0 + 4}"/>'
            f'<text x="{x:.1f}" y="{plot.y0 + 17}" text-anchor="middle">{_e(label(value))}</text>'
        )
    parts.append(
        f'<text class="label" x="{(plot.x0 + plot.x1) / 2}" y="{plot.height - 6}" '
        f'text-anchor="middle">score</text>'
    )
    return "".join(parts)


def _histogram_svg(hist: Mapping, threshold: float | None, run_empty: bool) -> str:
    """Library counts as bars, this run's counts as a step line, on one axis: both are counts
    of images, and a second axis made a run of 5 images look as big as the library."""
    edges = [_num(v) for v in _list(hist.get("edges"))]
    bins = len(edges) - 1
    if bins < 1 or any(v is None for v in edges):
        return '<p class="note" id="histogram">no histogram in this summary</p>'
    edges_f = [float(v) for v in edges if v is not None]
    library = [_num(v) or 0.0 for v in _list(hist.get("library"))][:bins]
    library += [0.0] * (bins - len(library))
    run = [_num(v) or 0.0 for v in _list(hist.get("run"))][:bins]
    run += [0.0] * (bins - len(run))
    show_run = not run_empty and sum(run) > 0

    plot = _Plot(_CHART_WIDTH, 280, 64, 64, 34, 44)
    lo, hi = edges_f[0], edges_f[-1]
    top = max([*library, *(run if show_run else [])], default=0) or 1
    y_lib = _axis(0, top, integer=True)
    parts = [plot.y_axis(y_lib, "images", fmt=_whole, colour=_LIB)]
    for i, count in enumerate(library):
        xa, xb = plot.sx(edges_f[i], lo, hi), plot.sx(edges_f[i + 1], lo, hi)
        ytop = plot.sy(count, 0, y_lib[-1])
        parts.append(
            f'<rect class="bar-library" x="{xa + 0.5:.1f}" y="{ytop:.1f}" '
            f'width="{max(xb - xa - 1, 0.5):.1f}" height="{plot.y0 - ytop:.1f}" fill="{_LIB}">'
            f"<title>{_e(_g(edges_f[i]))}\u2013{_e(_g(edges_f[i + 1]))}: "
            f"{count:,.0f} in the library</title></rect>"
        )
    if show_run:
        points = []
        for i, count in enumerate(run):
            y = plot.sy(count, 0, y_lib[-1])
            points += [(plot.sx(edges_f[i], lo, hi), y), (plot.sx(edges_f[i + 1], lo, hi), y)]
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline class="line-run" points="{coords}" fill="none" stroke="{_RUN}" '
            f'stroke-width="2.5"><title>this run</title></polyline>'
        )
    parts.append(_score_axis(plot, edges_f))
    legend = [(_LIB, "library", "box")]
    if show_run:
        legend.append((_RUN, "this run", "line"))
    if threshold is not None and lo <= threshold <= hi:
        x = plot.sx(threshold, lo, hi)
        parts.append(
            f'<line class="threshold" x1="{x:.1f}" y1="{plot.y1 - 6}" x2="{x:.1f}" '
            f'y2="{plot.y0}" stroke="{_BAD}" stroke-width="2" stroke-dasharray="5 3"/>'
        )
        legend.append((_BAD, f"threshold {_g(threshold)}", "dash"))
    parts.append(_legend(plot.x0, 18, legend))
    return (
        f'<svg id="histogram" role="img" viewBox="0 0 {plot.width} {plot.height}" '
        f'width="{plot.width}" height="{plot.height}" aria-label="score histogram">'
        f"{''.join(parts)}</svg>"
    )


def _series(
    plot: _Plot, values: Sequence[float | None], lo: float, hi: float, colour: str, name: str
) -> str:
    """A line with a dot per run; a missing value breaks the line instead of inventing one."""
    n = len(values)
    out: list[str] = []
    run: list[tuple[float, float]] = []

    def flush() -> None:
        if len(run) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(
                f'<polyline class="series" points="{coords}" fill="none" stroke="{colour}" '
                f'stroke-width="2"/>'
            )
        run.clear()

    for i, value in enumerate(values):
        if value is None:
            flush()
            continue
        x, y = plot.slot(i, n), plot.sy(value, lo, hi)
        run.append((x, y))
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
            f"<title>{_e(name)}: {_e(_g(value))}</title></circle>"
        )
    flush()
    return "".join(out)


def _x_labels(plot: _Plot, labels: Sequence[str]) -> str:
    """At most six labels, evenly spread, always the first and the last run."""
    n = len(labels)
    keep = sorted({round(i * (n - 1) / 5) for i in range(6)}) if n > 6 else range(n)
    out = [f'<line class="axis" x1="{plot.x0}" y1="{plot.y0}" x2="{plot.x1}" y2="{plot.y0}"/>']
    for i in keep:
        x = plot.slot(i, n)
        out.append(
            f'<text x="{x:.1f}" y="{plot.y0 + 17}" text-anchor="middle">{_e(labels[i])}</text>'
        )
    return "".join(out)


def _trend_svgs(trend: Sequence[Mapping], threshold: float | None) -> str:
    """Two charts over runs (oldest first): median and p10 on the score scale; share below the
    threshold (left axis, %) with failed images per run as bars (right axis)."""
    stamps = [str(t.get("finished_at") or t.get("run_id") or "") for t in trend]
    labels = [stamp[:10] for stamp in stamps]
    if len(set(labels)) < len(labels):  # several runs a day: month, day and time
        labels = [stamp[5:16].replace("T", " ") for stamp in stamps]
    return _trend_scores_svg(trend, labels, threshold) + _trend_health_svg(trend, labels, threshold)


def _trend_scores_svg(trend: Sequence[Mapping], labels: list[str], threshold: float | None) -> str:
    """Median and p10 per run on the score scale, with the threshold."""
    medians = [_num(t.get("median")) for t in trend]
    p10s = [_num(t.get("p10")) for t in trend]
    plot = _Plot(_CHART_WIDTH, 230, 64, 64, 34, 30)
    known = [v for v in medians + p10s if v is not None]
    if threshold is not None:
        known.append(threshold)
    y = _axis(min(known, default=0.0), max(known, default=1.0))
    parts = [plot.y_axis(y, "score"), _x_labels(plot, labels)]
    legend = [(_LIB, "median", "line"), (_P10, "p10", "line")]
    if threshold is not None:
        ty = plot.sy(threshold, y[0], y[-1])
        parts.append(
            f'<line x1="{plot.x0}" y1="{ty:.1f}" x2="{plot.x1}" y2="{ty:.1f}" stroke="{_BAD}" '
            f'stroke-width="1.5" stroke-dasharray="5 3"/>'
        )
        legend.append((_BAD, f"threshold {_g(threshold)}", "dash"))
    parts.append(_series(plot, medians, y[0], y[-1], _LIB, "median"))
    parts.append(_series(plot, p10s, y[0], y[-1], _P10, "p10"))
    parts.append(_legend(plot.x0, 18, legend))
    return (
        f'<svg id="trend-scores" role="img" viewBox="0 0 {plot.width} {plot.height}" '
        f'width="{plot.width}" height="{plot.height}" aria-label="median and p10 per run">'
        f"{''.join(parts)}</svg>"
    )


def _trend_health_svg(trend: Sequence[Mapping], labels: list[str], threshold: float | None) -> str:
    """The share below the threshold (left axis, %) and failed images per run (bars, right)."""
    shares = [_num(t.get("share_below")) for t in trend]
    failed = [_num(t.get("failed")) for t in trend]
    n = len(trend)
    plot = _Plot(_CHART_WIDTH, 200, 64, 64, 34, 30)
    pct = [None if v is None else 100 * v for v in shares]
    y_share = _axis(0, max([v for v in pct if v is not None], default=0) or 1)
    y_fail = _axis(0, max([v for v in failed if v is not None], default=0) or 1, integer=True)
    parts = [
        plot.y_axis(y_share, "% below threshold", fmt=lambda v: f"{v:g}", colour=_SHARE),
        plot.y_axis(y_fail, "failed", right=True, fmt=_whole, colour="#666"),
        _x_labels(plot, labels),
    ]
    width = max(2.0, min(18.0, (plot.x1 - plot.x0) / max(n, 1) * 0.5))
    for i, count in enumerate(failed):
        if count is None:
            continue
        x, top = plot.slot(i, n), plot.sy(count, 0, y_fail[-1])
        parts.append(
            f'<rect class="bar-failed" x="{x - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
            f'height="{plot.y0 - top:.1f}" fill="{_ERR}" opacity="0.7">'
            f"<title>{_e(labels[i])}: {count:,.0f} failed</title></rect>"
        )
    parts.append(_series(plot, pct, y_share[0], y_share[-1], _SHARE, "% below threshold"))
    share_label = "% below threshold" if threshold is not None else "% below threshold (none set)"
    parts.append(_legend(plot.x0, 18, [(_SHARE, share_label, "line"), (_ERR, "failed", "box")]))
    return (
        f'<svg id="trend-health" role="img" viewBox="0 0 {plot.width} {plot.height}" '
        f'width="{plot.width}" height="{plot.height}" aria-label="share below threshold and '
        f'failures per run">{"".join(parts)}</svg>'
    )
