"""The toy grid figure, drawn with `gen`'s plotting code (matplotlib): one scatter panel of 2-D points
per (row, column) cell, placed pixel by pixel so that a point's pixel is known (`panel_origin`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

import gen

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Pixels of one square panel, of the margins that hold the labels, and of the gap between panels.
PANEL = 240
LEFT = 90
TOP = 40
BOTTOM_TEXT = 22
GAP = 10
#: The panels show [-EXTENT, EXTENT]^2 (the spiral reaches radius 1).
EXTENT = 1.35

BACKGROUND = (255, 255, 255)
FRAME = (40, 40, 40)
TEXT = (20, 20, 20)
REFERENCE = (200, 200, 200)
POINTS = (31, 90, 180)

#: Marker diameters in pixels: wide enough that the pixel under a point's centre is fully covered by
#: the antialiased disc, so it has exactly the point's colour.
POINT_PX = 3.0
REFERENCE_PX = 2.0


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def figure_size(rows: int, cols: int) -> tuple[int, int]:
    """(width, height) in pixels of a grid of ``rows`` x ``cols`` panels."""
    cell_h = PANEL + BOTTOM_TEXT + GAP
    return LEFT + cols * (PANEL + GAP), TOP + rows * cell_h


def panel_origin(row: int, col: int) -> tuple[int, int]:
    """Top-left pixel of the panel at (row, col)."""
    return LEFT + col * (PANEL + GAP), TOP + row * (PANEL + BOTTOM_TEXT + GAP)


#: Pixels per data unit: -EXTENT and EXTENT land on the panel's first and last pixel.
SCALE = (PANEL - 1) / (2 * EXTENT)
#: The axes' limits. Agg rounds a marker's centre to a whole pixel, so the axes (which span the
#: panel's PANEL pixels) map data to the pixel index itself: x from -EXTENT (the first pixel) to one
#: pixel past EXTENT, y (which counts up from the bottom) from one pixel below -EXTENT to EXTENT. Agg
#: rounds a half up the screen; the y axis is moved down a thousandth of a pixel so that a point half-way
#: between two rows lands on the lower row, as one half-way between two columns lands on the right one.
_HALF = 1e-3 / SCALE
XLIM = (-EXTENT, EXTENT + 1 / SCALE)
YLIM = (-EXTENT - 1 / SCALE + _HALF, EXTENT + _HALF)


def draw_grid(
    panels: Sequence[Sequence[np.ndarray]],
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    notes: Sequence[Sequence[str]] | None = None,
    reference: np.ndarray | Sequence[np.ndarray] | None = None,
) -> Image.Image:
    """Scatter plots of 2-D points in a grid of square panels with axis boxes and labels.

    Args:
        panels: ``panels[r][c]`` is an array (N, 2) of points for row r, column c.
        row_labels: One label per row, written left of the row.
        col_labels: One label per column, written above it.
        notes: Optional ``notes[r][c]``, a short line under each panel (e.g. a score).
        reference: Optional light-grey points (M, 2) drawn under every panel's points (the data), or
            one such array per column.

    Returns:
        An RGB image of size `figure_size` (rows, cols). Points outside the axis box are not drawn.
    """
    rows, cols = len(panels), len(col_labels)
    if len(row_labels) != rows or any(len(r) != cols for r in panels):
        raise ValueError(f"panels must be {len(row_labels)} rows x {cols} columns to match the labels")
    fig = gen.pixel_figure(*figure_size(rows, cols), background=_hex(BACKGROUND))
    for c, label in enumerate(col_labels):
        x0, _ = panel_origin(0, c)
        gen.pixel_text(fig, x0 + PANEL / 2, TOP / 2, label, size_px=18, colour=_hex(TEXT))
    for r in range(rows):
        x0, y0 = panel_origin(r, 0)
        gen.pixel_text(fig, LEFT / 2, y0 + PANEL / 2, row_labels[r], size_px=18, colour=_hex(TEXT))
        for c in range(cols):
            x0, y0 = panel_origin(r, c)
            ax = gen.pixel_axes(fig, x0, y0, PANEL, PANEL)
            ax.set(xlim=XLIM, ylim=YLIM, xticks=[], yticks=[])
            ax.set_facecolor(_hex(BACKGROUND))
            for spine in ax.spines.values():
                spine.set_color(_hex(FRAME))
            ref = reference[c] if isinstance(reference, (list, tuple)) else reference
            if ref is not None:
                _scatter(ax, np.asarray(ref, dtype=np.float64), REFERENCE, REFERENCE_PX, fig.dpi, zorder=1)
            _scatter(ax, np.asarray(panels[r][c], dtype=np.float64), POINTS, POINT_PX, fig.dpi, zorder=2)
            if notes is not None and notes[r][c]:
                y = y0 + PANEL + BOTTOM_TEXT / 2
                gen.pixel_text(fig, x0 + PANEL / 2, y, notes[r][c], size_px=13, colour=_hex(TEXT))
    return gen.figure_image(fig)


def _scatter(
    ax: Axes, points: np.ndarray, colour: tuple[int, int, int], diameter_px: float, dpi: float, zorder: int
) -> None:
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {points.shape}")
    points = points[np.isfinite(points).all(axis=1)]
    size = (diameter_px * 72 / dpi) ** 2  # a marker's area in points squared
    # Clipped to the axes: a point off the axis box is not drawn (the note under the panel counts them).
    ax.scatter(points[:, 0], points[:, 1], s=size, c=_hex(colour), linewidths=0, zorder=zorder)
