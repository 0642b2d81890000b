"""One audit run's ``report.html``: a single self-contained file anyone can open offline.

Why self-contained: the report is copied around (mail, tickets, object stores) and opened years
later, often without network. So the styles are inline, charts are inline SVG, thumbnails and
quality maps are ``data:`` URIs, and nothing is fetched -- a Content-Security-Policy in the page
makes the browser refuse any fetch that slipped in. The only script makes the per-folder table
sortable; the page reads the same without it.

Every string that comes from data (URIs can hold ``<``, ``&`` and quotes) is escaped. Any key of
the input may be missing and any number may be ``None`` (an incremental run that scored nothing):
the report then says so rather than failing. The input contract is the audit job's ``summary``
(also written as ``summary.json``) plus ``extras`` (galleries, maps, error rows, trend).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import warnings
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

THUMBNAIL_SIZE = 144
# Quality maps are drawn at the image's full size; past this width they are shrunk for the page.
MAP_MAX_WIDTH = 800  # wider maps are re-encoded (JPEG) to this width for the page
MAP_MIN_WIDTH = 800  # ... and narrower ones are zoomed (x2) towards this
# A map's PNG (crisp labels) is kept up to this size; a photo-like map compresses badly as PNG
# (200 KB for one 512 px image), so beyond it the map goes in as JPEG.
MAP_PNG_BYTES = 60_000
MAP_JPEG_QUALITY = 75
THUMBNAIL_QUALITY = 70  # ~5 KB for a 144 px thumbnail: 30 images' report stays ~300 KB
_DASH = "\u2014"
_SNIFF = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
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


# --- thumbnails ---------------------------------------------------------------------------------


def thumbnail(data: bytes, size: int = THUMBNAIL_SIZE) -> bytes | None:
    """A JPEG (``THUMBNAIL_QUALITY``) of the image fitted into ``size`` x ``size``; None if it
    cannot be read.

    Runs on the driver for a few dozen images, so it must never raise: undecodable bytes, and
    images over Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, checked from the
    header before any pixel is decoded), give None and the gallery shows why.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below
            image = Image.open(io.BytesIO(data))
            limit = Image.MAX_IMAGE_PIXELS
            if limit and image.width * image.height > limit:
                return None
            image.draft("RGB", (size, size))  # JPEG: decode at 1/2..1/8 scale, much cheaper
            image = ImageOps.exif_transpose(image)
            image = _flat_rgb(image)
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
            return buf.getvalue()
    except Exception:  # noqa: BLE001 - any decoder failure means "no thumbnail", never a crash
        return None


def _flat_rgb(image: Image.Image) -> Image.Image:
    """RGB for a JPEG: alpha composited onto white (as viewers show it), 16-bit grey scaled."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 257).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _page_map(png: bytes) -> tuple[bytes | None, int, int, int]:
    """The map for the page and its display size: a map wider than MAP_MAX_WIDTH re-encoded
    smaller (a 4000 px photo's map is ~12000 px wide unless drawn with ``max_width``), a small
    one shown at an integer zoom so its labels stay crisp. Returns (bytes, display width,
    display height, zoom); None bytes when it cannot be read (never a huge blob in the page)."""
    try:
        with warnings.catch_warnings():  # our own picture: a bomb warning is only noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(png))
        with image:
            width, height = image.size
            zoom = max(1, min(round(MAP_MIN_WIDTH / width), 2)) if width <= MAP_MAX_WIDTH else 1
            if width <= MAP_MAX_WIDTH and len(png) <= MAP_PNG_BYTES:
                return png, width * zoom, height * zoom, zoom
            if width > MAP_MAX_WIDTH:
                height = max(1, round(height * MAP_MAX_WIDTH / width))
                width = MAP_MAX_WIDTH
                image = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            image.convert("RGB").save(buf, format="JPEG", quality=MAP_JPEG_QUALITY)
            return buf.getvalue(), width * zoom, height * zoom, zoom
    except Exception:  # noqa: BLE001 - unreadable or over Pillow's bomb limit: a placeholder
        return None, 0, 0, 1


def _data_uri(data: Any) -> str | None:
    """``data:`` URI for PNG/JPEG/GIF/WebP bytes; None for anything a browser may not show."""
    if not isinstance(data, bytes | bytearray | memoryview):
        return None
    data = bytes(data)
    mime = next((m for magic, m in _SNIFF if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --- formatting ---------------------------------------------------------------------------------


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


# --- SVG charts ---------------------------------------------------------------------------------


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
    # x axis: every k-th edge labelled so at most ~11 labels
    parts.append(
        f'<line class="axis" x1="{plot.x0}" y1="{plot.y0}" x2="{plot.x1}" y2="{plot.y0}"/>'
    )
    step = max(1, math.ceil(len(edges_f) / 11))
    label = _edge_format(edges_f[step] - edges_f[0] if len(edges_f) > step else hi - lo)
    for value in edges_f[::step]:
        x = plot.sx(value, lo, hi)
        parts.append(
            f'<line class="axis" x1="{x:.1f}" y1="{plot.y0}" x2="{x:.1f}" y2="{plot.y0 + 4}"/>'
            f'<text x="{x:.1f}" y="{plot.y0 + 17}" text-anchor="middle">{_e(label(value))}</text>'
        )
    parts.append(
        f'<text class="label" x="{(plot.x0 + plot.x1) / 2}" y="{plot.height - 6}" '
        f'text-anchor="middle">score</text>'
    )
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
    out, run = [], []

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
    medians = [_num(t.get("median")) for t in trend]
    p10s = [_num(t.get("p10")) for t in trend]
    shares = [_num(t.get("share_below")) for t in trend]
    failed = [_num(t.get("failed")) for t in trend]
    n = len(trend)

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
    scores = (
        f'<svg id="trend-scores" role="img" viewBox="0 0 {plot.width} {plot.height}" '
        f'width="{plot.width}" height="{plot.height}" aria-label="median and p10 per run">'
        f"{''.join(parts)}</svg>"
    )

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
    health = (
        f'<svg id="trend-health" role="img" viewBox="0 0 {plot.width} {plot.height}" '
        f'width="{plot.width}" height="{plot.height}" aria-label="share below threshold and '
        f'failures per run">{"".join(parts)}</svg>'
    )
    return scores + health


# --- sections -----------------------------------------------------------------------------------


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    attrs: str = "",
    numeric: Container[int] = frozenset(),
) -> str:
    """A plain table; cells are already-escaped HTML; columns in ``numeric`` align right."""
    head = "".join(
        f"<th{' class=num' if i in numeric else ''}>{h}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _header(s: Mapping) -> str:
    library = s.get("library") or "(unknown library)"
    sha = str(s.get("model_sha256") or "")
    model = _e(s.get("model") or "unknown model") + (f" <code>{_e(sha[:12])}</code>" if sha else "")
    rng = _list(s.get("score_range"))
    rng_text = (
        f"{_g(float(rng[0]))}\u2013{_g(float(rng[1]))}"
        if len(rng) == 2 and all(_num(v) is not None for v in rng)
        else "not declared"
    )
    name = str(s.get("score_name") or "score")
    words = _direction_words(s.get("score_direction"))
    described = name if words in name else f"{name}; {words}"
    score = f"{_e(described)}; range {_e(rng_text)}"
    items = [
        ("run", f"<code>{_e(s.get('run_id') or _DASH)}</code>"),
        ("finished", _e(s.get("finished_at") or _DASH)),
        ("model", model),
        ("score", score),
        ("state", f"<code>{_e(s.get('state') or _DASH)}</code>"),
    ]
    meta = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in items)
    return f"<header><h1>deepiqa audit \u2014 {_e(library)}</h1><dl class=meta>{meta}</dl></header>"


def _card(label: str, value: str, detail: str = "", cls: str = "") -> str:
    detail_html = f'<div class="detail">{detail}</div>' if detail else ""
    return (
        f'<div class="card {cls}"><div class="value">{value}</div>'
        f'<div class="label">{label}</div>{detail_html}</div>'
    )


def _alert_status(alert: Mapping) -> str:
    if not alert.get("fired"):
        return ""
    if alert.get("status") == "firing":
        return (
            f"firing since run <code>{_e(alert.get('since_run'))}</code> ({_e(alert.get('since'))})"
        )
    return "<b>new</b>" if alert.get("status") == "new" else ""


def _headline(s: Mapping) -> str:
    counts = _dict(s.get("counts"))
    lib = _dict(s.get("library_stats"))
    errors = _dict(s.get("errors"))
    threshold = _num(s.get("threshold"))
    alerts = [a for a in _list(s.get("alerts")) if isinstance(a, Mapping)]
    fired = [a for a in alerts if a.get("fired")]
    alerted = bool(s.get("alerted")) or bool(fired)
    by_code = ", ".join(f"{_e(k)} {_count(v)}" for k, v in sorted(errors.items()))
    below_label = (
        f"below threshold {_e(_g(threshold))}"
        if threshold is not None
        else "below threshold (none set)"
    )
    below_value = _share(lib.get("share_below")) if threshold is not None else _DASH
    cards = [
        _card("images in the library", _count(counts.get("library"))),
        _card("new", _count(counts.get("new"))),
        _card("changed", _count(counts.get("changed"))),
        _card("removed", _count(counts.get("removed"))),
        _card("unchanged (carried forward)", _count(counts.get("unchanged"))),
        _card("scored this run", _count(counts.get("scored"))),
        _card(
            "failed this run",
            _count(counts.get("failed")),
            by_code,
            "warn" if (_num(counts.get("failed")) or 0) > 0 else "",
        ),
        _card("library median", _score(lib.get("median"))),
        _card("library p10", _score(lib.get("p10"))),
        _card(below_label, below_value),
        _card(
            "alerts",
            f"{len(fired)} fired" if fired else "alert" if alerted else "no alert",
            ", ".join(_e(a.get("rule")) for a in fired),
            "bad" if alerted else "good",
        ),
    ]
    if alerts:
        rows = [
            (
                f"<code>{_e(a.get('rule'))}</code>",
                _e(a.get("metric") or ""),
                _e(_g(v)) if (v := _num(a.get("value"))) is not None else _DASH,
                '<span class="fired">yes</span>' if a.get("fired") else "no",
                _alert_status(a),
            )
            for a in alerts
        ]
        table = _table(["rule", "metric", "value", "fired", "since"], rows, ' id="alerts"', {2})
    else:
        table = '<p id="alerts" class="note">no alert rules configured</p>'
    return f'<section><h2>Headline</h2><div class="cards">{"".join(cards)}</div>{table}</section>'


def _histogram_section(s: Mapping) -> str:
    scored = _num(_dict(s.get("counts")).get("scored"))
    run_empty = not scored
    note = (
        '<p class="note">no images scored in this run; the library only</p>' if scored == 0 else ""
    )
    svg = _histogram_svg(_dict(s.get("histogram")), _num(s.get("threshold")), run_empty)
    rows = [
        (
            label,
            _count(stats.get("scored")),
            *(_score(stats.get(k)) for k in ("median", "p10", "p90", "mean")),
        )
        for label, stats in (
            ("library", _dict(s.get("library_stats"))),
            ("this run", _dict(s.get("run_stats"))),
        )
        if stats
    ]
    table = (
        _table(["", "scored", "median", "p10", "p90", "mean"], rows, ' id="stats"', {1, 2, 3, 4, 5})
        if rows
        else ""
    )
    return f"<section><h2>Scores</h2>{note}<div class=chart>{svg}</div>{table}</section>"


_SORT_HEADERS = (
    ("folder", "text"),
    ("images", "num"),
    ("median", "num"),
    ("p10", "num"),
    ("below threshold", "num"),
    ("failed", "num"),
)


def _folders_section(s: Mapping, extras: Mapping) -> str:
    folders = [f for f in _list(s.get("folders")) if isinstance(f, Mapping)]
    threshold = _num(s.get("threshold"))
    truncated = bool(s.get("folders_truncated") or extras.get("folders_truncated"))
    heads = []
    for name, kind in _SORT_HEADERS:
        if name == "below threshold" and threshold is not None:
            name = f"below {_g(threshold)}"
        heads.append(f'<th data-type="{kind}" class="{kind}">{_e(name)}</th>')
    rows = []
    for f in folders:
        cells = [(_e(f.get("folder")), _e(f.get("folder") or ""), "text")]
        for key, fmt in (
            ("count", _count),
            ("median", _score),
            ("p10", _score),
            ("share_below", _share),
            ("failed", _count),
        ):
            value = _num(f.get(key))
            cells.append((fmt(value), "" if value is None else repr(value), "num"))
        rows.append(
            "<tr>"
            + "".join(f'<td class="{k}" data-v="{_e(v)}">{text}</td>' for text, v, k in cells)
            + "</tr>"
        )
    total = _num(s.get("folders_total"))
    of = f" of {int(total):,}" if total is not None and total > len(folders) else ""
    note = (
        f'<p class="note">the table shows the {len(folders):,} largest folders{of}</p>'
        if truncated
        else ""
    )
    if not folders:
        return '<section><h2>Folders</h2><p class="note" id="folders">no folders</p></section>'
    hint = '<p class="note hint">click a column header to sort</p>'
    return (
        f"<section><h2>Folders</h2>{note}{hint}"
        f'<table id="folders" class="sortable"><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _gallery(
    items: Sequence[Mapping], element_id: str, title: str, caption: str, max_thumb: int
) -> str:
    tiles = []
    for i, item in enumerate(items, start=1):
        uri = item.get("uri") or ""
        src = _data_uri(item.get("thumbnail"))
        if src:
            picture = f'<img src="{src}" alt="{_e(uri)}" loading="eager">'
        else:
            reason = item.get("note") or (
                "no thumbnail"
                if item.get("thumbnail") is None
                else "thumbnail in an unknown format"
            )
            picture = f'<div class="placeholder">{_e(reason)}</div>'
        tiles.append(
            f'<figure class="tile">{picture}<figcaption><span class="rank">#{i}</span> '
            f'<b class="score">{_score(item.get("score"))}</b>'
            f'<span class="uri">{_e(uri)}</span></figcaption></figure>'
        )
    body = "".join(tiles) or '<p class="note">none</p>'
    return (
        f"<section><h2>{_e(title)}</h2><p class=note>{caption}</p>"
        f'<div class="gallery" id="{element_id}" style="--thumb:{max_thumb}px">{body}</div>'
        f"</section>"
    )


def _changes_section(s: Mapping, extras: Mapping) -> str:
    """What changed since the previous run: counts, the top changed (before -> after, worst
    drop first) and lowest new images with thumbnails, then every list as a table."""
    changes = _dict(s.get("changes"))
    if not changes:
        return ""
    names = {
        "new": "new",
        "changed": "changed (worst drop first)",
        "removed": "removed",
        "newly_failing": "newly failing",
        "recovered": "recovered",
    }
    counts = "".join(
        _card(label, _count(_dict(changes.get(k)).get("count"))) for k, label in names.items()
    )
    tiles = []
    for item in _list(extras.get("changed")):
        src = _data_uri(item.get("thumbnail"))
        picture = (
            f'<img src="{src}" alt="{_e(item.get("uri"))}">'
            if src
            else f'<div class="placeholder">{_e(item.get("note") or "no thumbnail")}</div>'
        )
        move = f"{_score(item.get('before'))} \u2192 {_score(item.get('score'))}"
        tiles.append(
            f'<figure class="tile">{picture}<figcaption><b class="score">{move}</b>'
            f'<span class="uri">{_e(item.get("uri"))}</span></figcaption></figure>'
        )
    gallery = (
        f'<div class="gallery" id="changed-gallery" style="--thumb:{THUMBNAIL_SIZE}px">'
        f"{''.join(tiles)}</div>"
        if tiles
        else ""
    )
    tables = []
    columns = {
        "changed": (["image", "before", "after", "drop"], ["before", "score", "drop"]),
        "new": (["image", "score", "error"], ["score"]),
        "removed": (["image", "last score"], ["score"]),
        "newly_failing": (["image", "before", "error"], ["before"]),
        "recovered": (["image", "error before", "score"], ["score"]),
    }
    for key, (headers, scores) in columns.items():
        block = _dict(changes.get(key))
        rows = [r for r in _list(block.get("rows")) if isinstance(r, Mapping)]
        if not rows:
            continue
        body = []
        for r in rows:
            cells = [f"<code>{_e(r.get('uri'))}</code>"]
            for h in headers[1:]:
                field = {
                    "before": "before",
                    "after": "score",
                    "drop": "drop",
                    "score": "score",
                    "last score": "score",
                    "error": "error_code",
                    "error before": "before_error",
                }[h]
                value = r.get(field)
                cells.append(
                    _score(value) if field in scores or field == "score" else _e(value or _DASH)
                )
            body.append(cells)
        more = int(_num(block.get("count")) or 0) - len(rows)
        note = (
            f'<p class="note">and {more:,} more (summary.json lists the first {len(rows)})</p>'
            if more > 0
            else ""
        )
        tables.append(
            f"<h3>{_e(names[key])}</h3>"
            + _table(headers, body, f' id="changes-{key}"', set(range(1, len(headers))))
            + note
        )
    return (
        '<section><h2>What changed since the previous run</h2><div class="cards">'
        f"{counts}</div>{gallery}{''.join(tables)}</section>"
    )


def _galleries(s: Mapping, extras: Mapping) -> str:
    worst = [w for w in _list(extras.get("worst")) if isinstance(w, Mapping)]
    best = [b for b in _list(extras.get("best")) if isinstance(b, Mapping)]
    direction = s.get("score_direction")
    low, high = "lowest scores", "highest scores"
    if direction == "lower_better":
        low, high = high, low
    elif direction not in ("higher_better", "lower_better"):
        low, high = "lowest scores (direction unknown)", "highest scores (direction unknown)"
    size = THUMBNAIL_SIZE
    return _gallery(worst, "worst", f"Worst {len(worst)}", low, size) + _gallery(
        best, "best", f"Best {len(best)}", high, size
    )


def _maps_section(extras: Mapping) -> str:
    maps = [m for m in _list(extras.get("maps")) if isinstance(m, Mapping)]
    figures = []
    for m in maps:
        png = m.get("png")
        if isinstance(png, bytes | bytearray):
            data, width, height, zoom = _page_map(bytes(png))
        else:
            data, width, height, zoom = png, 0, 0, 1
        src = _data_uri(data)
        if src:
            size = f' width="{width}" height="{height}"' if width else ""
            zoomed = ' class="small"' if zoom > 1 else ""
            picture = f'<img src="{src}"{size}{zoomed} alt="quality map of {_e(m.get("uri"))}">'
        else:
            picture = '<div class="placeholder">map missing or too large to show</div>'
        figures.append(
            f"<figure>{picture}<figcaption><b>{_score(m.get('score'))}</b> "
            f'<span class="uri">{_e(m.get("uri"))}</span></figcaption></figure>'
        )
    body = "".join(figures) or '<p class="note">no quality maps in this run</p>'
    return (
        "<section><h2>Quality maps of the worst</h2>"
        '<p class="note">where the network saw low quality (middle) and which patches counted '
        "most (right)</p>"
        f'<div id="maps" class="maps">{body}</div></section>'
    )


def _errors_section(s: Mapping, extras: Mapping) -> str:
    errors = _dict(s.get("errors"))
    examples = [r for r in _list(extras.get("error_rows")) if isinstance(r, Mapping)]
    if not errors and not examples:
        return (
            '<section><h2>Errors</h2><div id="errors"><p class="note">no image failed in this '
            "run</p></div></section>"
        )
    by_code = sorted(errors.items(), key=lambda kv: (-(_num(kv[1]) or 0), str(kv[0])))
    counts = _table(
        ["error code", "images"],
        [(f"<code>{_e(k)}</code>", _count(v)) for k, v in by_code],
        "",
        {1},
    )
    rows = [
        (
            f'<span class="uri">{_e(r.get("uri") or r.get("id"))}</span>',
            f"<code>{_e(r.get('error_code'))}</code>",
            _e(str(r.get("error_message") or "")[:400]),
        )
        for r in examples
    ]
    sample = (
        f"<h3>Examples</h3>{_table(['image', 'error code', 'message'], rows, ' class=examples')}"
        if rows
        else ""
    )
    return f'<section><h2>Errors</h2><div id="errors">{counts}{sample}</div></section>'


def _trend_section(s: Mapping, extras: Mapping) -> str:
    trend = [t for t in _list(extras.get("trend")) if isinstance(t, Mapping)]
    if len(trend) < 2:
        body = '<p class="note">the trend appears from the second run</p>'
    else:
        body = _trend_svgs(trend, _num(s.get("threshold")))
    return (
        f"<section><h2>Trend</h2>"
        f'<div id="trend" class="chart" data-runs="{len(trend)}">{body}</div></section>'
    )


def _footer(s: Mapping) -> str:
    def rows(mapping: Mapping) -> list[tuple[str, str]]:
        return [
            (
                f"<code>{_e(k)}</code>",
                f"<code>{_e(v if isinstance(v, str) else json.dumps(v, default=str))}</code>",
            )
            for k, v in mapping.items()
        ]

    times = [
        ("started", _e(s.get("started_at") or _DASH)),
        ("finished", _e(s.get("finished_at") or _DASH)),
        ("seconds", _e(_score(s.get("seconds")))),
    ]
    parts = [
        "<h2>Run</h2>",
        _table(["", ""], times, " class=kv"),
    ]
    arguments = _dict(s.get("arguments"))
    if arguments:
        parts += ["<h3>Arguments</h3>", _table(["argument", "value"], rows(arguments), " class=kv")]
    versions = _dict(s.get("versions"))
    if versions:
        parts += ["<h3>Versions</h3>", _table(["package", "version"], rows(versions), " class=kv")]
    return f"<footer>{''.join(parts)}</footer>"


# --- page ---------------------------------------------------------------------------------------


def _asset(name: str) -> str:
    """A file of the report kept beside this module (edited as CSS/JS, shipped as package data;
    read from a release zip too)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


_CSS = _asset("report.css")
# Sorts a table body by the clicked column's data-v values (numbers or text, blanks last).
_SCRIPT = _asset("report.js")


def _csp() -> str:
    """No fetches at all: images only from data: URIs, the one inline script pinned by hash."""
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def render_report(summary: dict, extras: dict) -> str:
    """The whole ``report.html`` as text; never fetches, never raises on missing keys."""
    s = _dict(summary)
    x = _dict(extras)
    title = f"deepiqa audit \u2014 {s.get('library') or 'library'}"
    sections = [
        _header(s),
        _headline(s),
        _changes_section(s, x),
        _histogram_section(s),
        _folders_section(s, x),
        _galleries(s, x),
        _maps_section(x),
        _errors_section(s, x),
        _trend_section(s, x),
        _footer(s),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp())}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main><script>{_SCRIPT}</script></body></html>\n"
    )


def write_report(path: str | Path, summary: dict, extras: dict) -> int:
    """Write the report (UTF-8) to a local path; returns the bytes written."""
    data = render_report(summary, extras).encode("utf-8")
    Path(path).write_bytes(data)
    return len(data)
