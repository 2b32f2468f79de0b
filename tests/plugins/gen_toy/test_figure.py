"""The PIL grid figure: size, where points land, what is left out."""

from __future__ import annotations

import numpy as np
import pytest

from gen_toy.experiment import outside_fraction
from gen_toy.figure import EXTENT, PANEL, POINTS, REFERENCE, draw_grid, figure_size, panel_origin


def test_size_follows_rows_and_columns():
    panels = [[np.zeros((1, 2))] * 4 for _ in range(3)]
    image = draw_grid(panels, row_labels=["x", "eps", "v"], col_labels=["2", "8", "16", "512"])
    assert image.size == figure_size(3, 4)
    w1, h1 = figure_size(1, 1)
    w2, h2 = figure_size(2, 3)
    assert (w2 - w1, h2 - h1) == (2 * (w1 - figure_size(1, 0)[0]), h1 - figure_size(0, 1)[1])


def test_points_land_where_they_should():
    # The origin maps to the panel centre; (EXTENT, EXTENT) to the top-right corner (y points up).
    pts = np.array([[0.0, 0.0], [EXTENT * 0.9, EXTENT * 0.9]])
    image = draw_grid([[pts, np.zeros((0, 2))]], row_labels=["r"], col_labels=["a", "b"])
    x0, y0 = panel_origin(0, 0)
    centre = (x0 + (PANEL - 1) / 2, y0 + (PANEL - 1) / 2)
    assert image.getpixel((round(centre[0]), round(centre[1]))) == POINTS
    scale = (PANEL - 1) / (2 * EXTENT)
    corner = (round(x0 + 1.9 * EXTENT * scale), round(y0 + 0.1 * EXTENT * scale))
    assert image.getpixel(corner) == POINTS
    # Nothing in the empty second panel's centre.
    x1, y1 = panel_origin(0, 1)
    assert image.getpixel((x1 + PANEL // 2, y1 + PANEL // 2)) == (255, 255, 255)


def test_reference_is_drawn_under_the_points_and_far_points_are_left_out():
    ref = np.array([[0.5, 0.0]])
    far = np.array([[10.0, 10.0], [np.nan, 0.0]])
    image = draw_grid([[far]], row_labels=["r"], col_labels=["c"], reference=ref)
    x0, y0 = panel_origin(0, 0)
    scale = (PANEL - 1) / (2 * EXTENT)
    assert image.getpixel((round(x0 + (0.5 + EXTENT) * scale), round(y0 + EXTENT * scale))) == REFERENCE
    assert POINTS not in {c for _, c in image.getcolors(maxcolors=1 << 16)}
    assert outside_fraction(far) == 1.0
    assert outside_fraction(np.array([[0.0, 0.0], [5.0, 0.0]])) == 0.5


def test_label_count_must_match():
    with pytest.raises(ValueError, match="rows"):
        draw_grid([[np.zeros((1, 2))]], row_labels=["a", "b"], col_labels=["c"])
