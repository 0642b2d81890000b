import numpy as np
import pytest
import torch

from deepiqa_core import grid_for
from deepiqa_core.patches import cut_grid


@pytest.mark.parametrize(
    ("height", "width", "stride", "rows", "cols"),
    [
        (384, 512, 32, 12, 16),  # 192 patches, not the ports' 165
        (32, 32, 32, 1, 1),
        (63, 95, 32, 1, 2),
        (64, 96, 32, 2, 3),
        (1080, 1920, 32, 33, 60),
        (64, 64, 16, 3, 3),
        (40, 33, 1, 9, 2),
        (31, 500, 32, 0, 0),
    ],
)
def test_full_grid_uses_the_authors_count(height, width, stride, rows, cols) -> None:
    grid = grid_for(height, width, stride)
    assert (grid.rows, grid.cols) == (rows, cols)
    assert grid.count == rows * cols


def test_positions_are_row_major_from_the_origin() -> None:
    ys, xs = grid_for(64, 96).positions()
    assert ys.tolist() == [0, 0, 0, 32, 32, 32]
    assert xs.tolist() == [0, 32, 64, 0, 32, 64]


def test_cut_grid_returns_the_pixels_at_each_position_scaled_to_unit_range() -> None:
    image = torch.randint(0, 256, (70, 90, 3), dtype=torch.uint8)
    grid = grid_for(70, 90, stride=20)
    patches = cut_grid(image, grid, 0, grid.rows)
    ys, xs = grid.positions()
    assert patches.shape == (grid.count, 3, 32, 32)
    for k, (y, x) in enumerate(zip(ys, xs, strict=True)):
        expected = image[y : y + 32, x : x + 32].permute(2, 0, 1).float() / 255
        assert torch.equal(patches[k], expected)


def test_cut_grid_sub_rectangle_matches_the_full_cut() -> None:
    image = torch.randint(0, 256, (128, 160, 3), dtype=torch.uint8)
    grid = grid_for(128, 160)
    full = cut_grid(image, grid, 0, grid.rows).view(grid.rows, grid.cols, 3, 32, 32)
    part = cut_grid(image, grid, 1, 3, 2, 4).view(2, 2, 3, 32, 32)
    assert torch.equal(part, full[1:3, 2:4])


def test_invalid_stride_is_refused() -> None:
    with pytest.raises(ValueError):
        grid_for(64, 64, 0)
    assert np.all(np.asarray(grid_for(64, 64, 32).positions()) >= 0)
