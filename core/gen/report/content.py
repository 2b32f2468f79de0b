"""The report's content as data: charts (panels of lines, drawn later by `gen.plots`) and tables. The
modules that read a run's logs produce these, so that what a report shows is tested without drawing it."""

from __future__ import annotations

import json
import math
from typing import Any

import attrs

from gen.plots import PlotPanel


@attrs.frozen(kw_only=True)
class Chart:
    """One figure of the report.

    Attributes:
        id: Unique in the report: the figure's HTML id (``loss``, ``sweep-1-cfg``).
        title: Its heading.
        panels: The charts side by side, row by row.
        columns: Panels per row.
        caption: What it shows, under it.
    """

    id: str
    title: str
    panels: tuple[PlotPanel, ...] = attrs.field(converter=tuple)
    columns: int = 2
    caption: str = ""
    #: (width, height) of one panel in inches; a chart of one panel is drawn wider.
    panel_size: tuple[float, float] = (4.0, 2.8)


#: The size of the panel of a chart that has only one.
WIDE = (7.5, 3.4)


@attrs.frozen(kw_only=True)
class Table:
    """A table of text cells: ``rows`` of as many cells as ``columns``."""

    columns: tuple[str, ...] = attrs.field(converter=tuple)
    rows: tuple[tuple[str, ...], ...] = attrs.field(converter=lambda rows: tuple(map(tuple, rows)))
    caption: str = ""


def cell(value: Any) -> str:
    """A value as a table shows it: 4 significant digits for floats, lists joined by commas, None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


__all__ = ["WIDE", "Chart", "Table", "cell"]
