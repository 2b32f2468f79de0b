"""The charts and tables of ``gen eval``'s results (``RUN/eval/results.jsonl``): each score against a
swept setting (FID against CFG, accuracy against the number of steps, against the EMA), one line per
combination of the other settings that vary (and per run).

A record's key holds the sampling settings (`gen.sampling.settings.SETTING_COLUMNS`), the checkpoint's
step, and what makes two scores comparable at all (seed, reference statistics, features, labels, the
number of images): records are grouped by the latter, and only the settings (and the step) are swept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from gen.plots import PlotLine, PlotPanel
from gen.power_ema import EmaLength, parse_ema
from gen.report.content import Chart, Table, cell
from gen.report.run_logs import RunLogs, finite_or_none, is_number
from gen.sampling.settings import SETTING_COLUMNS

#: The swept keys: the sampling settings and the checkpoint's step.
SWEPT = ("step", *SETTING_COLUMNS)
#: Result keys that are no score.
NOT_SCORES = ("num_images", "seconds")
#: The order in which swept settings are tried as the x axis.
X_ORDER = ("cfg", "steps", "ema", "as_decay", "step")
#: Axis titles of the settings.
AXIS = {"cfg": "guidance scale (cfg)", "steps": "sampling steps", "step": "checkpoint step"}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def as_number(key: str, value: Any) -> float | None:
    """A setting's value as a position on an x axis: a number, an EMA decay or a power EMA's length;
    None for anything else (a list, a name, the raw weights)."""
    if is_number(value):
        return float(value)
    if key == "ema" and isinstance(value, str):
        try:
            ema = parse_ema(value)
        except ValueError:
            return None
        return ema.sigma_rel if isinstance(ema, EmaLength) else ema
    return None


def _axis_title(key: str, values: Sequence[Any]) -> str:
    if key == "ema":
        lengths = all(str(v).startswith("phema_") for v in values)
        return "EMA length (sigma_rel)" if lengths else "EMA decay"
    return AXIS.get(key, key)


def _x_keys(rows: Sequence[dict[str, Any]], varying: Sequence[str]) -> list[str]:
    """The varying settings that can be an x axis: every value a number of one kind."""
    out = []
    for key in sorted(varying, key=lambda k: (X_ORDER.index(k) if k in X_ORDER else len(X_ORDER), k)):
        values = [row.get(key) for row in rows]
        if key == "ema" and len({str(v).startswith("phema_") for v in values}) > 1:
            continue  # decays and lengths are not on one axis
        if all(as_number(key, v) is not None for v in values):
            out.append(key)
    return out


def _latest(run: RunLogs) -> list[tuple[dict[str, Any], dict[str, Any], list[str]]]:
    """(context, row, scores) of each combination once, its latest score (``--force`` scores a
    combination again): the context is the key less the swept settings; the row is the key, the result
    and the run's name; the scores are the result's numbers."""
    latest = {_canonical(r["key"]): r for r in run.results}
    out = []
    for record in latest.values():
        key, result = record["key"], record["result"]
        context = {k: v for k, v in key.items() if k not in SWEPT}
        scores = [k for k, v in result.items() if is_number(v) and k not in NOT_SCORES and k not in key]
        out.append((context, {**key, **result, "run": run.name}, scores))
    return out


def _context_title(context: dict[str, Any]) -> str:
    parts = [f"{k} {cell(v)}" for k, v in context.items() if v is not None and k != "num_images"]
    images = context.get("num_images")
    return ", ".join([*([f"{images} images"] if images is not None else []), *parts])


@attrs.frozen
class SweepGroup:
    """The records that compare (same seed, reference, features, labels, number of images): their
    charts (one per swept setting that can be an x axis) and the table of every record."""

    title: str
    charts: list[Chart]
    table: Table


def _order(value: Any) -> tuple[int, float, str]:
    """Sorts numbers as numbers (2 before 16), then everything else by its JSON."""
    return (0, float(value), "") if is_number(value) else (1, 0.0, _canonical(value))


def sweep_groups(runs: Sequence[RunLogs]) -> list[SweepGroup]:
    """The ``gen eval`` results of ``runs``, one group per kind of comparable records (see `SweepGroup`)."""
    groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]], dict[str, None]]] = {}
    for run in runs:
        for context, row, scores in _latest(run):
            group = groups.setdefault(_canonical(context), (context, [], {}))
            group[1].append(row)
            group[2].update(dict.fromkeys(scores))
    out = []
    for number, (context, rows, score_keys) in enumerate(groups.values(), 1):
        scores = list(score_keys)
        present = [k for k in SWEPT if any(k in row for row in rows)]
        varying = [k for k in present if len({_canonical(row.get(k)) for row in rows}) > 1]
        several_runs = len({row["run"] for row in rows}) > 1
        title = _context_title(context)
        if len(runs) > 1:  # which runs a group holds, when the report holds several
            title = ", ".join(dict.fromkeys(row["run"] for row in rows)) + ": " + title
        charts = [
            _chart(f"sweep-{number}-{x}", title, rows, x, varying, scores, several_runs)
            for x in _x_keys(rows, varying)
        ]
        shown = [k for k in present if k in varying or k in ("ema", "cfg", "steps", "sampler")]
        rows_sorted = sorted(rows, key=lambda r: [(0, 0.0, r["run"]), *(_order(r.get(k)) for k in shown)])
        table = Table(
            columns=["run", *shown, *scores],
            rows=[
                [r["run"], *(cell(r.get(k)) for k in shown), *(cell(r.get(s)) for s in scores)]
                for r in rows_sorted
            ],
            caption=f"Every record of this kind in eval/results.jsonl ({len(rows)}).",
        )
        out.append(SweepGroup(title, charts, table))
    return out


def _chart(
    chart_id: str,
    title: str,
    rows: Sequence[dict[str, Any]],
    x: str,
    varying: Sequence[str],
    scores: Sequence[str],
    several_runs: bool,
) -> Chart:
    """``score`` against ``x``, one panel per score, one line per (run, the other varying settings)."""
    others = [k for k in varying if k != x]
    lines: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        parts = ([row["run"]] if several_runs else []) + [f"{k} {cell(row.get(k))}" for k in others]
        lines.setdefault(" · ".join(parts) or row["run"], []).append(row)
    xs = sorted({as_number(x, row.get(x)) for row in rows})  # type: ignore[type-var]
    spread = xs[0] > 0 and xs[-1] / xs[0] >= 8  # 1, 2, 4, ... 32 steps: a log axis spaces them evenly
    panels = []
    for score in scores:
        plotted = []
        for label, members in lines.items():
            points = sorted((as_number(x, r.get(x)), finite_or_none(r.get(score))) for r in members)
            plotted.append(PlotLine(label=label, x=[p[0] for p in points], y=[p[1] for p in points]))
        panels.append(
            PlotPanel(
                lines=plotted,
                title=score,
                xlabel=_axis_title(x, [row.get(x) for row in rows]),
                log_x=spread and x != "step",
                x_ticks=tuple(xs) if len(xs) <= 8 else None,  # type: ignore[arg-type]
            )
        )
    by = f", one line per {', '.join(others)}" if others else ""
    return Chart(
        id=chart_id,
        title=f"Against {_axis_title(x, [row.get(x) for row in rows])}",
        panels=panels,
        columns=3,
        caption=f"gen eval ({title}): each score against {x}{by}.",
    )


__all__ = ["AXIS", "NOT_SCORES", "SWEPT", "X_ORDER", "SweepGroup", "as_number", "sweep_groups"]
