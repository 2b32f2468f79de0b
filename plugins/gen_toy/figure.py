"""The toy grid figure, drawn with PIL: one scatter panel of 2-D points per (row, column) cell."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the bitmap font has one size
        return ImageFont.load_default()


def figure_size(rows: int, cols: int) -> tuple[int, int]:
    """(width, height) in pixels of a grid of ``rows`` x ``cols`` panels."""
    cell_h = PANEL + BOTTOM_TEXT + GAP
    return LEFT + cols * (PANEL + GAP), TOP + rows * cell_h


def panel_origin(row: int, col: int) -> tuple[int, int]:
    """Top-left pixel of the panel at (row, col)."""
    return LEFT + col * (PANEL + GAP), TOP + row * (PANEL + BOTTOM_TEXT + GAP)


def _to_pixels(points: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """2-D points (N, 2) -> integer pixel coordinates (N, 2) in the panel at (x0, y0); y points up."""
    scale = (PANEL - 1) / (2 * EXTENT)
    px = x0 + (points[:, 0] + EXTENT) * scale
    py = y0 + (EXTENT - points[:, 1]) * scale
    return np.rint(np.stack([px, py], axis=1))


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
    image = Image.new("RGB", figure_size(rows, cols), BACKGROUND)
    draw = ImageDraw.Draw(image)
    label_font, note_font = _font(18), _font(13)
    for c, label in enumerate(col_labels):
        x0, _ = panel_origin(0, c)
        draw.text((x0 + PANEL / 2, TOP / 2), label, fill=TEXT, font=label_font, anchor="mm")
    for r in range(rows):
        x0, y0 = panel_origin(r, 0)
        draw.text((LEFT / 2, y0 + PANEL / 2), row_labels[r], fill=TEXT, font=label_font, anchor="mm")
        for c in range(cols):
            x0, y0 = panel_origin(r, c)
            ref = reference[c] if isinstance(reference, (list, tuple)) else reference
            if ref is not None:
                _scatter(draw, np.asarray(ref, dtype=np.float64), x0, y0, REFERENCE, radius=0)
            _scatter(draw, np.asarray(panels[r][c], dtype=np.float64), x0, y0, POINTS, radius=1)
            draw.rectangle((x0, y0, x0 + PANEL - 1, y0 + PANEL - 1), outline=FRAME, width=1)
            if notes is not None and notes[r][c]:
                draw.text(
                    (x0 + PANEL / 2, y0 + PANEL + BOTTOM_TEXT / 2),
                    notes[r][c],
                    fill=TEXT,
                    font=note_font,
                    anchor="mm",
                )
    return image


def _scatter(draw: ImageDraw.ImageDraw, points: np.ndarray, x0: int, y0: int, color, radius: int) -> None:
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {points.shape}")
    pixels = _to_pixels(points[np.isfinite(points).all(axis=1)], x0, y0)
    inside = (
        (pixels[:, 0] >= x0 + radius)
        & (pixels[:, 0] <= x0 + PANEL - 1 - radius)
        & (pixels[:, 1] >= y0 + radius)
        & (pixels[:, 1] <= y0 + PANEL - 1 - radius)
    )
    for px, py in pixels[inside].tolist():
        if radius == 0:
            draw.point((px, py), fill=color)
        else:
            draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=color)
