"""Quality maps: a picture of the local quality y_i and weights alpha_i over an image.

The picture has three panels side by side -- the image, local quality, patch weight -- and a
white band underneath with each panel's label, a colour bar with tick labels, and the image's
score. Each map is blended over a greyscale copy of the image; pixels outside the scored grid
(right/bottom remainder) stay grey. With the default stride each patch is a 32x32 block; with
overlapping patches each pixel shows the mean of the patches that cover it.

Colour scales: local quality is on the model's own score scale, so when that range is known
(``score_range``, e.g. 0..100) a colour means the same value in every map and maps of different
images can be compared side by side; without it the quality map runs from the image's own minimum
to its maximum and says "relative". Patch weights have no meaningful absolute unit, so that map is
always relative (lowest weight dark blue, highest yellow). Values outside the range are clipped.

The panels keep their places from the unlabelled layout (image at x=0, then an 8 px gap per
panel) whenever the image is wide enough for the labels; narrower images are centred in wider
columns. ``--map`` draws at full size; ``map_png`` (for embedding in the audit report) reduces
large images by an integer factor so the picture is at most EMBED_MAX_WIDTH px wide.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from .batch import BatchScorer, ImageRow, RowResult, load_image
from .models import PATCH_SIZE
from .outputs import MAP_FORMATS, MAP_TAG
from .patches import grid_for
from .scoring import PatchMap

# A short perceptually ordered ramp (dark blue -> teal -> green -> yellow).
_RAMP = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64
)
_GAP = 8
EMBED_MAX_WIDTH = 1500  # map_png's default: wide enough for a page, small enough to embed
_INK = (30, 30, 30)
_MUTED = (110, 110, 110)
_DIRECTION_WORDS = {"higher_better": "higher is better", "lower_better": "lower is better"}
Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def colorize(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Map values to RGB uint8 along the ramp: ``lo`` -> first colour, ``hi`` -> last.

    ``lo``/``hi`` default to the values' own min/max (a relative scale); pass a fixed range for an
    absolute one. Values outside are clipped to the end colours.
    """
    lo = float(np.nanmin(values)) if lo is None else float(lo)
    hi = float(np.nanmax(values)) if hi is None else float(hi)
    # one value everywhere: the middle colour, where the colour bar puts its single tick
    t = np.full(np.shape(values), 0.5) if hi <= lo else (values - lo) / (hi - lo)
    pos = np.clip(np.nan_to_num(t), 0, 1) * (len(_RAMP) - 1)
    stops = np.arange(len(_RAMP))
    rgb = np.stack([np.interp(pos, stops, _RAMP[:, c]) for c in range(3)], axis=-1)
    return rgb.astype(np.uint8)


def patch_field(
    patch_map: PatchMap, values: np.ndarray, height: int, width: int, step: int = 1
) -> np.ndarray:
    """Per-pixel mean of ``values`` over the patches covering each pixel (NaN where none do).

    ``step`` > 1 computes it on an image reduced by that factor (``height``/``width`` are then
    the reduced size): a patch covers the reduced pixels its full-size square touches.
    """
    total = np.zeros((height, width))
    count = np.zeros((height, width))
    ys, xs = patch_map.positions()
    for y, x, v in zip(ys, xs, values, strict=True):
        rows = slice(y // step, -(-(y + PATCH_SIZE) // step))
        cols = slice(x // step, -(-(x + PATCH_SIZE) // step))
        total[rows, cols] += v
        count[rows, cols] += 1
    with np.errstate(invalid="ignore"):
        return total / count


def _fixed(score_range: Sequence[float] | None) -> tuple[float, float] | None:
    """The model's declared score range if it is usable as a colour scale (finite, hi > lo)."""
    if score_range is None or len(score_range) != 2:
        return None
    lo, hi = float(score_range[0]), float(score_range[1])
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) and hi > lo else None


def _own_range(values: np.ndarray) -> tuple[float, float]:
    """The values' finite min/max (a relative scale); (0, 1) when there is none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


def _overlay(
    gray: np.ndarray, patch_map: PatchMap, values: np.ndarray, lo: float, hi: float, step: int
) -> np.ndarray:
    """The map coloured on [lo, hi], 75 % over the greyscale image; uncovered pixels grey."""
    h, w = gray.shape[:2]
    field = patch_field(patch_map, np.asarray(values, dtype=np.float64), h, w, step)
    covered = ~np.isnan(field)
    colours = colorize(np.where(covered, field, lo), lo, hi)
    blend = np.where(covered[..., None], 0.75 * colours + 0.25 * gray, 0.5 * gray)
    return blend.astype(np.uint8)


def _font(size: int) -> Font:
    """Pillow's bundled font at ``size`` px; the fixed bitmap font where sizing is unsupported."""
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
    except (TypeError, OSError, ImportError, AttributeError):
        return ImageFont.load_default()


def _text_size(font: Font, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return int(math.ceil(right - left)), int(math.ceil(bottom - top))


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _ticks(lo: float, hi: float, room: int, font: Font) -> list[tuple[float, str]]:
    """Evenly spaced tick labels on [lo, hi]: five if they fit in ``room`` px, else three, else
    just the ends (labels that touch are unreadable)."""
    for n in (5, 3):
        ticks = [(v, _fmt(v)) for v in np.linspace(lo, hi, n)]
        widest = max(_text_size(font, text)[0] for _, text in ticks)
        if widest * n * 1.6 <= room:
            return ticks
    return [(lo, _fmt(lo)), (hi, _fmt(hi))]


_PANEL_LABELS = ("image", "local quality", "patch weight")


def _caption_layout(w: int, score_line: str) -> tuple[Font, int, int, int, int, int, int]:
    """The font and the sizes under the panels for an image ``w`` wide: (font, pad, panel
    width, text line, bar height, score marker, band height)."""
    size = int(np.clip(round(w / 24), 11, 48))
    font = _font(size)
    pad = max(4, size // 2)
    widest = max(_text_size(font, t)[0] for t in _PANEL_LABELS) + 2 * pad
    col = max(w, widest, math.ceil((_text_size(font, score_line)[0] + 2 * pad - 2 * _GAP) / 3))
    line = _text_size(font, "Hg0")[1] + pad // 2
    bar = max(8, size)
    tip = max(4, bar // 2)  # the score marker above the quality bar
    band = pad + line + tip + 2 + bar + 2 + line + (pad + line if score_line else 0) + pad
    return font, pad, col, line, bar, tip, band


def _side_by_side(panels: list[np.ndarray], col: int, band: int) -> Image.Image:
    """The panels centred in columns ``col`` wide, on white, with ``band`` rows below."""
    h, w = panels[0].shape[:2]
    canvas = np.full((h + band, 3 * col + 2 * _GAP, 3), 255, dtype=np.uint8)
    offset = (col - w) // 2
    for i, panel in enumerate(panels):
        x = i * (col + _GAP) + offset
        canvas[:h, x : x + w] = panel
    return Image.fromarray(canvas)


def render_map(
    image: np.ndarray,
    patch_map: PatchMap,
    *,
    score: float | None = None,
    score_range: Sequence[float] | None = None,
    label: str | None = None,
    direction: str | None = None,
    max_width: int | None = None,
) -> np.ndarray:
    """The labelled three-panel picture as an (H + band, >= 3W + gaps, 3) uint8 array.

    ``score`` is printed (and marked on the quality colour bar), ``label`` names the model,
    ``score_range`` fixes the quality colours to the model's scale, ``direction``
    ("higher_better"/"lower_better") is spelled out next to the colour bar. ``max_width``
    reduces a large image by an integer factor first (box average), so a 12-megapixel photo
    does not become a 36-megapixel picture when it is only to be looked at.
    """
    image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    step = 1
    if max_width is not None:
        step = max(1, math.ceil((3 * image.shape[1] + 2 * _GAP) / max(max_width, 1)))
    if step > 1:
        image = np.asarray(Image.fromarray(image).reduce(step))
    h, w = image.shape[:2]
    gray = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)
    quality = np.asarray(patch_map.quality, dtype=np.float64)
    weight = np.asarray(patch_map.weight, dtype=np.float64)
    fixed = _fixed(score_range)
    absolute = fixed is not None
    q_lo, q_hi = fixed or _own_range(quality)
    w_lo, w_hi = _own_range(weight)
    panels = [
        image,
        _overlay(gray, patch_map, quality, q_lo, q_hi, step),
        _overlay(gray, patch_map, weight, w_lo, w_hi, step),
    ]

    has_score = score is not None and math.isfinite(score)
    name = f"score {score:.1f}" if has_score else ""
    if label:
        name = f"{name} ({label})" if name else label
    score_line = ", ".join(p for p in (name, _DIRECTION_WORDS.get(direction or "", "")) if p)
    font, pad, col, line, bar, tip, band = _caption_layout(w, score_line)

    picture = _side_by_side(panels, col, band)
    draw = ImageDraw.Draw(picture)
    y_label = h + pad
    y_bar = y_label + line + tip + 2
    y_ticks = y_bar + bar + 2
    for i, text in enumerate(_PANEL_LABELS):
        x0 = i * (col + _GAP)
        tw = _text_size(font, text)[0]
        draw.text((x0 + (col - tw) // 2, y_label), text, fill=_INK, font=font)
    bars = _Bars(draw, picture, font, col, pad, bar, tip, y_bar, y_ticks)
    bars.draw(1, q_lo, q_hi, not absolute, score if has_score else None)
    bars.draw(2, w_lo, w_hi, True, None)
    if score_line:
        draw.text((pad, y_ticks + line + pad), score_line, fill=_INK, font=font)
    return np.asarray(picture)


@dataclass
class _Bars:
    """The colour bars under the quality and weight panels: a ramp, its ticks, the score mark."""

    pen: ImageDraw.ImageDraw
    picture: Image.Image
    font: Font
    col: int  # a panel's width
    pad: int
    bar: int  # the bar's height
    tip: int  # the score marker's size
    y_bar: int
    y_ticks: int

    def draw(self, panel: int, lo: float, hi: float, relative: bool, score: float | None) -> None:
        """Panel 1 (quality) or 2 (weight): the bar from ``lo`` to ``hi`` with its labels."""
        room = max(2, self.col - 2 * self.pad)
        ramp = colorize(np.linspace(0.0, 1.0, room), 0.0, 1.0)
        strip = np.repeat(ramp[None, :, :], self.bar, axis=0)
        x0 = panel * (self.col + _GAP)
        left, y_bar = x0 + self.pad, self.y_bar
        self.picture.paste(Image.fromarray(strip), (left, y_bar))
        frame = (left - 1, y_bar - 1, left + strip.shape[1], y_bar + self.bar)
        self.pen.rectangle(frame, outline=_MUTED)  # around the bar: its end colours show
        for value, text in self._ticks(panel, lo, hi, relative, room):
            t = 0.5 if hi <= lo else (value - lo) / (hi - lo)
            x = left + round(t * (room - 1))
            tw = _text_size(self.font, text)[0]
            tx = min(max(x - tw // 2, x0), x0 + self.col - tw)
            self.pen.line((x, y_bar + self.bar - 3, x, y_bar + self.bar + 1), fill=_INK)
            fill = _MUTED if relative else _INK
            self.pen.text((tx, self.y_ticks), text, fill=fill, font=self.font)
        if score is not None and lo <= score <= hi:
            t = 0.0 if hi <= lo else (score - lo) / (hi - lo)
            x, tip = left + round(t * (room - 1)), self.tip
            self.pen.polygon(
                [(x - tip, y_bar - tip), (x + tip, y_bar - tip), (x, y_bar)], fill=_INK
            )

    def _ticks(
        self, panel: int, lo: float, hi: float, relative: bool, room: int
    ) -> list[tuple[float, str]]:
        if hi <= lo:  # one value everywhere (e.g. a single patch): one tick in the middle
            return [(lo, "uniform" if panel == 2 else _fmt(lo))]
        if relative:  # the ends, and the word "relative" in the middle when it fits
            ends = ("low", "high") if panel == 2 else (_fmt(lo), _fmt(hi))  # alphas: no unit
            words = [ends[0], "relative", ends[1]]
            widths = [_text_size(self.font, t)[0] for t in words]
            if max(widths[0], widths[2]) + widths[1] / 2 + 4 > self.col / 2:  # ends hug edges
                words[1] = "rel."
            return list(zip((lo, (lo + hi) / 2, hi), words, strict=True))
        return _ticks(lo, hi, room, self.font)


def map_png(
    image: np.ndarray,
    patch_map: PatchMap,
    *,
    score: float | None = None,
    score_range: Sequence[float] | None = None,
    label: str | None = None,
    direction: str | None = None,
    max_width: int | None = EMBED_MAX_WIDTH,
) -> bytes:
    """The picture as PNG bytes, for embedding (the audit report) rather than a file; by default
    at most EMBED_MAX_WIDTH px wide (a 4000x3000 photo at full size: ~36 s and ~85 MB of PNG)."""
    picture = render_map(
        image,
        patch_map,
        score=score,
        score_range=score_range,
        label=label,
        direction=direction,
        max_width=max_width,
    )
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    return buf.getvalue()


def save_map(
    image: np.ndarray,
    patch_map: PatchMap,
    path: str | Path,
    *,
    score: float | None = None,
    score_range: Sequence[float] | None = None,
    label: str | None = None,
    direction: str | None = None,
) -> None:
    """Write the picture to ``path`` (PNG or JPEG, from the suffix), tagged as deepiqa's
    (``outputs.MAP_TAG``) so that a later run may replace it and nothing else."""
    picture = render_map(
        image, patch_map, score=score, score_range=score_range, label=label, direction=direction
    )
    fmt = MAP_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"a map is written as {sorted(MAP_FORMATS)}, not {path}")
    if fmt == "PNG":
        info = PngInfo()
        info.add_text("Software", MAP_TAG)
        Image.fromarray(picture).save(path, format=fmt, pnginfo=info)
    else:
        Image.fromarray(picture).save(path, format=fmt, comment=MAP_TAG.encode(), quality=92)


def score_for_map(
    batch: BatchScorer, row: ImageRow
) -> tuple[RowResult, tuple[np.ndarray, PatchMap] | None]:
    """Score one row as every other (same errors), with patch outputs; when it scored, also its
    decoded image and patch map, ready for ``save_map`` / ``map_png`` (``deepiqa score --map``
    and the audit report's maps)."""
    config = replace(batch.config, with_patches=True)
    scorer = BatchScorer(batch.scorer, batch.model_name, batch.model_sha256, config)
    scorer.score_range = batch.score_range
    result = scorer.score_rows([row])[0]
    if result.error_code is not None:
        return result, None
    image = load_image(row.uri, row.image, config)
    grid = grid_for(image.shape[0], image.shape[1], config.stride)
    assert result.patch_quality is not None and result.patch_weight is not None  # with_patches
    return result, (image, PatchMap(grid, result.patch_quality, result.patch_weight))
