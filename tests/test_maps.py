"""Quality-map pictures: panel placement, the labels band, absolute vs relative colour scales."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deepiqa_core.maps import _GAP, _RAMP, EMBED_MAX_WIDTH, colorize, map_png, render_map
from deepiqa_core.patches import grid_for
from deepiqa_core.scoring import PatchMap

from .conftest import make_image


def patch_map(height: int, width: int, quality: list[float], weight: list[float]) -> PatchMap:
    grid = grid_for(height, width, 32)
    assert len(grid.positions()[0]) == len(quality) == len(weight)
    return PatchMap(grid, np.array(quality, dtype=np.float64), np.array(weight, dtype=np.float64))


def colour_at(picture: np.ndarray, panel: int, width: int, y: int, x: int) -> np.ndarray:
    """The colour at (y, x) of panel 0/1/2 (image, quality, weight) of an image ``width`` wide;
    narrow images sit centred in wider columns."""
    col = (picture.shape[1] - 2 * _GAP) // 3
    return picture[y, panel * (col + _GAP) + (col - width) // 2 + x].astype(int)


def test_panels_keep_their_places_and_a_labels_band_is_added_below():
    image = make_image(64, 128, seed=1)
    pm = patch_map(64, 128, [10, 20, 30, 40, 50, 60, 70, 80], [1.0] * 8)
    picture = render_map(image, pm, score=42.0, score_range=(0, 100), label="wadiqam-nr")
    assert picture.shape[1] == 3 * 128 + 2 * _GAP
    assert picture.shape[0] > 64 + 30  # label line, colour bar, ticks, score line
    assert np.array_equal(picture[:64, :128], image)
    band = picture[64:]
    dark = (band.max(axis=2) < 120).sum()
    assert dark > 200  # text was drawn in the band (white otherwise)
    ramp_colours = {tuple(int(c) for c in _RAMP[i]) for i in (0, -1)}
    band_colours = {tuple(int(c) for c in px) for px in band.reshape(-1, 3)}
    assert ramp_colours <= band_colours  # a colour bar with both ends of the ramp


def test_quality_colours_are_absolute_when_the_score_range_is_known():
    """The same local quality gets the same colour in two images whose other patches differ."""
    a_img, b_img = np.full((32, 64, 3), 128, np.uint8), np.full((32, 64, 3), 128, np.uint8)
    a = render_map(a_img, patch_map(32, 64, [50, 10], [1, 2]), score_range=(0, 100))
    b = render_map(b_img, patch_map(32, 64, [50, 90], [1, 2]), score_range=(0, 100))
    assert np.array_equal(colour_at(a, 1, 64, 16, 16), colour_at(b, 1, 64, 16, 16))
    # and it is the ramp's middle colour (50 on 0..100), blended 75 % over grey 128
    expected = 0.75 * _RAMP[2] + 0.25 * 128
    assert np.abs(colour_at(a, 1, 64, 16, 16) - expected).max() <= 1
    assert not np.array_equal(colour_at(a, 1, 64, 16, 48), colour_at(b, 1, 64, 16, 48))


def test_without_a_score_range_quality_colours_are_relative():
    img = np.full((32, 64, 3), 128, np.uint8)
    a = render_map(img, patch_map(32, 64, [50, 10], [1, 2]))
    b = render_map(img, patch_map(32, 64, [50, 90], [1, 2]))
    # 50 is the top of a's range and the bottom of b's: opposite ends of the ramp
    top, bottom = 0.75 * _RAMP[-1] + 32, 0.75 * _RAMP[0] + 32
    assert np.abs(colour_at(a, 1, 64, 16, 16) - top).max() <= 1
    assert np.abs(colour_at(b, 1, 64, 16, 16) - bottom).max() <= 1


def test_weights_are_always_relative():
    img = np.full((32, 64, 3), 128, np.uint8)
    small = render_map(img, patch_map(32, 64, [50, 50], [0.1, 0.2]), score_range=(0, 100))
    large = render_map(img, patch_map(32, 64, [50, 50], [10, 20]), score_range=(0, 100))
    assert np.array_equal(small[:32], large[:32])  # only the ratio matters


def test_scores_outside_the_range_clip_to_the_end_colours():
    values = np.array([-5.0, 0.0, 100.0, 250.0])
    rgb = colorize(values, 0.0, 100.0)
    assert np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[2], rgb[3])
    assert np.array_equal(rgb[1], _RAMP[0].astype(np.uint8))
    assert np.array_equal(rgb[3], _RAMP[-1].astype(np.uint8))


def test_the_score_and_model_change_the_band_only():
    image = make_image(64, 96, seed=2)
    pm = patch_map(64, 96, [30, 40, 50, 60, 70, 80], [1, 2, 3, 4, 5, 6])
    plain = render_map(image, pm, score_range=(0, 100))
    with_score = render_map(image, pm, score=42.1, score_range=(0, 100), label="wadiqam-nr")
    assert np.array_equal(plain[:64], with_score[:64])
    assert with_score.shape[0] > plain.shape[0]  # an extra line for "score 42.1 (wadiqam-nr)"


@pytest.mark.parametrize("size", [(32, 32), (33, 40), (600, 900)])
def test_small_and_large_images_render_with_the_image_intact(size):
    h, w = size
    image = make_image(h, w, seed=3)
    n = len(grid_for(h, w, 32).positions()[0])
    pm = patch_map(h, w, list(np.linspace(20, 80, n)), list(np.linspace(1, 2, n)))
    picture = render_map(image, pm, score=55.5, score_range=(0, 100), label="m")
    col = (picture.shape[1] - 2 * _GAP) // 3
    assert col >= w and picture.shape[0] > h
    x = (col - w) // 2  # narrow images are centred in columns wide enough for the labels
    assert np.array_equal(picture[:h, x : x + w], image)


def test_map_png_is_a_png_of_the_picture():
    image = make_image(32, 64, seed=4)
    data = map_png(image, patch_map(32, 64, [1, 2], [1, 2]), score=1.5)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_max_width_reduces_large_images_by_an_integer_factor():
    h, w = 320, 640
    image = np.full((h, w, 3), 100, np.uint8)  # flat, so a colour depends on the map alone
    n = len(grid_for(h, w, 32).positions()[0])
    quality = list(np.linspace(0, 100, n))
    pm = patch_map(h, w, quality, [1.0] * n)
    full = render_map(image, pm, score_range=(0, 100))
    small = render_map(image, pm, score_range=(0, 100), max_width=1000)
    assert full.shape[1] == 3 * 640 + 2 * _GAP
    assert small.shape[1] == 3 * 320 + 2 * _GAP  # factor 2: 1936 px does not fit in 1000
    # the last patch (quality 100, bottom right) keeps its colour at half the size
    assert np.array_equal(colour_at(small, 1, 320, 150, 310), colour_at(full, 1, 640, 300, 620))
    assert render_map(image, pm, max_width=5000).shape == render_map(image, pm).shape


def test_map_png_is_limited_to_a_page_width_by_default():
    h, w = 96, 640
    n = len(grid_for(h, w, 32).positions()[0])
    pm = patch_map(h, w, [50.0] * n, [1.0] * n)
    image = make_image(h, w, seed=6)
    default = Image.open(io.BytesIO(map_png(image, pm)))
    assert default.width == 3 * 320 + 2 * _GAP  # 1936 px reduced by 2 to fit EMBED_MAX_WIDTH
    assert default.width <= EMBED_MAX_WIDTH
    full = Image.open(io.BytesIO(map_png(image, pm, max_width=None)))
    assert full.width == 3 * 640 + 2 * _GAP
