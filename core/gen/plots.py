"""Figures drawn with matplotlib, the one plotting code of the project: ``gen report``'s curves, the
benchmarks' plots and the toy experiment's scatter grid.

- `PlotLine` and `PlotPanel` describe a chart as data (x, y, labels, log axes); `plot_panels` draws
  panels side by side in one figure, with one legend for the figure and one colour per label in every
  panel, so that a run (or a solver) is the same colour wherever it appears.
- `pixel_figure` is a blank figure of an exact size in pixels, for layouts placed pixel by pixel (the
  toy grid places its axes with `pixel_axes`).
- `figure_png` and `figure_image` render a figure.

Figures are `matplotlib.figure.Figure` objects on the Agg canvas, never ``pyplot``: pyplot keeps a
process-wide list of open figures and a chosen GUI backend, neither of which a command line, a test or a
thread pool wants.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import attrs
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator, ScalarFormatter
from PIL import Image

#: Matplotlib's default colour cycle (tab10), given to labels in the order they first appear.
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")  # fmt: skip


#: Values beyond this are gaps too: an axis spanning 1e308 overflows when matplotlib adds its margins.
LARGEST = 1e300


def _floats(values: Sequence[float | None]) -> tuple[float, ...]:
    """None (a value not logged), infinities and numbers too large to draw become NaN, which matplotlib
    leaves as a gap in the line."""
    return tuple(math.nan if v is None or not abs(float(v)) <= LARGEST else float(v) for v in values)


@attrs.frozen(kw_only=True)
class PlotLine:
    """One line of a chart: ``y`` against ``x``; a None or NaN in ``y`` is a gap."""

    label: str
    x: tuple[float, ...] = attrs.field(converter=_floats)
    y: tuple[float, ...] = attrs.field(converter=_floats)
    dashed: bool = False
    markers: bool = True
    #: A matplotlib colour; None: the figure's colour of ``label``.
    colour: str | None = None

    def __attrs_post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"line {self.label!r}: {len(self.x)} x values and {len(self.y)} y values")


@attrs.frozen(kw_only=True)
class PlotPanel:
    """One chart (an axes) of a figure."""

    lines: tuple[PlotLine, ...] = attrs.field(converter=tuple)
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    log_x: bool = False
    log_y: bool = False
    #: Ticks at these x values, labelled as given (e.g. the step counts of a sweep); None: matplotlib's.
    x_ticks: tuple[float, ...] | None = None
    #: Shown in the middle of an empty panel (a value that was never measured).
    empty_text: str = "nothing logged"


def colour_of_labels(panels: Sequence[PlotPanel], given: Mapping[str, str] | None = None) -> dict[str, str]:
    """A colour per line label over all ``panels`` (``given`` first, then the cycle in order of appearance)."""
    colours = dict(given or {})
    for panel in panels:
        for line in panel.lines:
            if line.label not in colours:
                colours[line.label] = line.colour or COLOURS[len(colours) % len(COLOURS)]
    return colours


def _positive(values: Sequence[float]) -> bool:
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0


def _log_axis(axis: Axis, values: Sequence[float]) -> None:
    """A log axis labelled in plain numbers: 1, 2 and 5 of each decade where the values span two decades
    or less (a loss from 0.06 to 0.9 would get a single labelled tick otherwise), the decades beyond."""
    finite = [v for v in values if math.isfinite(v)]
    decades = math.log10(max(finite) / min(finite)) if finite else 0.0
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 2 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def _draw_panel(ax: Axes, panel: PlotPanel, colours: Mapping[str, str]) -> None:
    drawn = [line for line in panel.lines if any(math.isfinite(v) for v in line.y)]
    for line in drawn:
        ax.plot(
            line.x,
            line.y,
            label=line.label,
            color=line.colour or colours[line.label],
            linestyle="--" if line.dashed else "-",
            marker="o" if line.markers and len(line.x) <= 40 else None,  # markers only where few points
            markersize=3.5,
            linewidth=1.4,
        )
    # y given: matplotlib then skips measuring the axis below the title (half of a figure's drawing time).
    ax.set_title(panel.title, fontsize=10, y=1.0, pad=5)
    ax.set_xlabel(panel.xlabel, fontsize=9)
    ax.set_ylabel(panel.ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    if not drawn:
        ax.set(xticks=[], yticks=[])
        ax.text(0.5, 0.5, panel.empty_text, ha="center", va="center", transform=ax.transAxes, color="0.4",
                fontsize=9, wrap=True)  # fmt: skip
        return
    ax.grid(True, alpha=0.3, linewidth=0.6)
    xs = [x for line in drawn for x in line.x]
    ys = [y for line in drawn for y in line.y]
    # A log axis only where every value is positive: a zero loss or a negative score keeps it linear.
    if panel.log_x and _positive(xs):
        ax.set_xscale("log")
        _log_axis(ax.xaxis, xs)
    if panel.log_y and _positive(ys):
        ax.set_yscale("log")
        _log_axis(ax.yaxis, ys)
    for axis in (ax.xaxis, ax.yaxis):
        formatter = axis.get_major_formatter()
        if isinstance(formatter, ScalarFormatter):
            formatter.set_useOffset(False)  # 0.99999 rather than "1e-5 + 9.999e-1" above the axis
    if panel.x_ticks is not None:
        ax.set_xticks(panel.x_ticks, [f"{t:g}" for t in panel.x_ticks])
        ax.xaxis.set_minor_locator(NullLocator())


#: Margins of a panel in inches, around its axes: room for the tick labels and the axis titles. Fixed
#: rather than measured (matplotlib's constrained layout): measuring draws every text twice, which made a
#: report of six figures take seconds.
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 0.85, 0.2, 0.35, 0.55
#: The legend's room right of the panels: a handle, then about this many inches per character of a label.
LEGEND_BASE, LEGEND_PER_CHAR, LEGEND_MAX_CHARS = 0.7, 0.07, 48


def plot_panels(
    panels: Sequence[PlotPanel],
    *,
    columns: int = 2,
    panel_size: tuple[float, float] = (4.6, 3.0),
    title: str = "",
    colours: Mapping[str, str] | None = None,
    legend: bool = True,
    dpi: int = 100,
) -> Figure:
    """The ``panels`` in a grid of ``columns``, each ``panel_size`` inches (axes and their margins); one
    legend for the figure, right of the panels, when the lines have more than one label.

    Args:
        panels: The charts, row by row.
        columns: Panels per row (fewer when there are fewer panels).
        panel_size: (width, height) of one panel in inches.
        title: Above the whole figure.
        colours: A colour for some labels (e.g. one per run); the others take the cycle.
        legend: Draw the legend.
        dpi: Pixels per inch when rendered.
    """
    if not panels:
        raise ValueError("plot_panels needs at least one panel")
    columns = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / columns)
    colour = colour_of_labels(panels, colours)
    labels = [label for label in colour if any(line.label == label for p in panels for line in p.lines)]
    with_legend = legend and len(labels) > 1
    longest = min(max((len(label) for label in labels), default=0), LEGEND_MAX_CHARS)
    legend_w = LEGEND_BASE + LEGEND_PER_CHAR * longest if with_legend else 0.0
    title_h = 0.35 if title else 0.0
    pw, ph = panel_size
    width, height = pw * columns + legend_w, ph * rows + title_h
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    for k, panel in enumerate(panels):
        r, c = divmod(k, columns)
        left, top = c * pw + MARGIN_LEFT, title_h + r * ph + MARGIN_TOP
        w, h = pw - MARGIN_LEFT - MARGIN_RIGHT, ph - MARGIN_TOP - MARGIN_BOTTOM
        ax = fig.add_axes((left / width, 1 - (top + h) / height, w / width, h / height))
        _draw_panel(ax, panel, colour)
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.05 / height, va="top")
    if with_legend:
        handles: dict[str, object] = {}
        for ax in fig.axes:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(label, handle)
        ordered = [label for label in labels if label in handles]
        shown = [k if len(k) <= LEGEND_MAX_CHARS else k[: LEGEND_MAX_CHARS - 1] + "\u2026" for k in ordered]
        fig.legend(
            [handles[k] for k in ordered],
            shown,
            loc="upper left",
            bbox_to_anchor=((pw * columns) / width, 1 - (title_h + MARGIN_TOP) / height),
            fontsize=8,
            frameon=False,
            borderaxespad=0.0,
        )
    return fig


def pixel_figure(width: int, height: int, *, dpi: int = 100, background: str = "white") -> Figure:
    """A blank figure that renders to exactly ``width`` x ``height`` pixels."""
    # A hair over the size: the canvas truncates width * dpi / dpi to an integer, and 29 / 100 * 100 is
    # 28.999999999999996; the extra millionth of a pixel moves nothing that is drawn.
    fig = Figure(figsize=((width + 1e-6) / dpi, (height + 1e-6) / dpi), dpi=dpi, facecolor=background)
    FigureCanvasAgg(fig)
    return fig


def pixel_axes(fig: Figure, left: float, top: float, width: float, height: float) -> Axes:
    """Axes covering the pixels [left, left + width) x [top, top + height) of a `pixel_figure`, counted
    from the top-left corner as an image is."""
    fig_w, fig_h = fig.canvas.get_width_height()
    return fig.add_axes((left / fig_w, 1 - (top + height) / fig_h, width / fig_w, height / fig_h))


def pixel_text(fig: Figure, x: float, y: float, text: str, *, size_px: float, colour: str = "black") -> None:
    """``text`` centred on the pixel (x, y) of a `pixel_figure` (from the top-left), ``size_px`` tall."""
    fig_w, fig_h = fig.canvas.get_width_height()
    points = size_px * 72 / fig.dpi
    fig.text(x / fig_w, 1 - y / fig_h, text, ha="center", va="center", fontsize=points, color=colour)


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, facecolor=fig.get_facecolor())
    return buffer.getvalue()


def figure_image(fig: Figure) -> Image.Image:
    """The figure rendered as an RGB PIL image, of the figure's size in pixels."""
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)  # every figure of this module is on the Agg canvas
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())


__all__ = [
    "COLOURS",
    "PlotLine",
    "PlotPanel",
    "colour_of_labels",
    "figure_image",
    "figure_png",
    "pixel_axes",
    "pixel_figure",
    "pixel_text",
    "plot_panels",
]
