"""`gen.plots`, the one plotting code: panels of lines with one legend and one colour per label, log axes
only where they can be, figures of an exact size in pixels."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

import gen
from gen.plots import COLOURS, PlotLine, PlotPanel, colour_of_labels, figure_image, figure_png, plot_panels


def test_a_label_is_one_colour_in_every_panel_and_given_colours_win():
    panels = [
        PlotPanel(lines=[PlotLine(label="a", x=[1], y=[1]), PlotLine(label="b", x=[1], y=[2])]),
        PlotPanel(lines=[PlotLine(label="c", x=[1], y=[1]), PlotLine(label="a", x=[1], y=[3])]),
    ]
    assert colour_of_labels(panels) == {"a": COLOURS[0], "b": COLOURS[1], "c": COLOURS[2]}
    assert colour_of_labels(panels, {"b": "black"}) == {"b": "black", "a": COLOURS[1], "c": COLOURS[2]}
    fig = plot_panels(panels, columns=2, colours={"b": "black"})
    colour = {line.get_label(): line.get_color() for ax in fig.axes for line in ax.get_lines()}
    assert colour == {"a": COLOURS[1], "b": "black", "c": COLOURS[2]}
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["b", "a", "c"]  # one legend, once each


def test_none_is_a_gap_and_a_log_axis_needs_positive_values():
    line = PlotLine(label="loss", x=[1, 2, 3], y=[1.0, None, 0.5])
    assert math.isnan(line.y[1])
    zero = PlotLine(label="x", x=[1, 2], y=[0.0, 1.0])
    fig = plot_panels([PlotPanel(lines=[line], log_y=True), PlotPanel(lines=[zero], log_y=True)])
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "linear"]  # a zero keeps the axis linear
    with pytest.raises(ValueError, match="3 x values and 2 y values"):
        PlotLine(label="bad", x=[1, 2, 3], y=[1, 2])


def test_an_empty_panel_says_so():
    fig = plot_panels(
        [PlotPanel(lines=[PlotLine(label="mfu", x=[1, 2], y=[None, None])], empty_text="not measured")]
    )
    assert [t.get_text() for t in fig.axes[0].texts] == ["not measured"]


def test_rendered_as_png_and_as_an_image():
    fig = plot_panels([PlotPanel(lines=[PlotLine(label="a", x=[1, 2, 3], y=[3, 1, 2])], title="t")], dpi=50)
    png = figure_png(fig)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == figure_image(fig).size
    pixels = np.asarray(figure_image(fig))
    assert pixels.shape[2] == 3 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # not blank


@pytest.mark.parametrize("size", [(29, 31), (590, 584), (1001, 3)])
def test_a_pixel_figure_is_exactly_its_size(size):
    fig = gen.pixel_figure(*size)
    ax = gen.pixel_axes(fig, 0, 0, size[0], size[1])
    ax.set_axis_off()
    assert gen.figure_image(fig).size == size
