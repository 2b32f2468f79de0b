"""The charts of training: every value of ``metrics.jsonl`` against step (the loss, the loss per range of
t, the learning rate, throughput and MFU, then any other number a process or a loss term logs), and
every score of ``eval.jsonl`` against step. Several runs share the axes, one line per run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gen.plots import PlotLine, PlotPanel
from gen.report.content import WIDE, Chart, Table, cell
from gen.report.run_logs import RunLogs, finite_or_none, is_number
from gen.sampling.settings import SETTING_COLUMNS

#: Keys of a metrics line that are no curve: the x axis and the wall-clock time.
NOT_PLOTTED = ("step", "time")
#: The keys with a chart of their own, in the order of the report.
OWN_CHARTS = ("loss", "loss_by_t", "lr", "images_per_s", "mfu")
#: Keys of an ``eval.jsonl`` line that say how the samples were drawn and counted, not how they scored.
EVAL_CONTEXT = ("step", "num_samples", "num_images", "seed", "seconds", "time", *SETTING_COLUMNS)


def _line(run: RunLogs, rows: Sequence[dict[str, Any]], value: Any, label: str | None = None) -> PlotLine:
    """``value(row)`` against step over ``rows``; what is not a finite number is a gap."""
    return PlotLine(
        label=label or run.name,
        x=[row["step"] for row in rows],
        y=[finite_or_none(value(row)) for row in rows],
    )


def _logs(run: RunLogs, key: str) -> bool:
    """Whether any metrics line of ``run`` has ``key`` (a run that never logs it gets no line)."""
    return any(key in row for row in run.metrics)


def _panel(runs: Sequence[RunLogs], key: str, title: str, **options: Any) -> PlotPanel:
    lines = [_line(r, r.metrics, lambda row, k=key: row.get(k)) for r in runs if _logs(r, key)]
    return PlotPanel(lines=lines, title=title, xlabel="step", **options)


def _numeric_keys(runs: Sequence[RunLogs]) -> tuple[list[str], list[str]]:
    """(numeric keys, list-of-numbers keys) of the metrics lines, in the order they first appear."""
    scalars: dict[str, None] = {}
    lists: dict[str, None] = {}
    for run in runs:
        for row in run.metrics:
            for key, value in row.items():
                if key in NOT_PLOTTED:
                    continue
                if is_number(value):
                    scalars.setdefault(key)
                elif isinstance(value, list) and value and all(v is None or is_number(v) for v in value):
                    lists.setdefault(key)
    return list(scalars), list(lists)


def loss_by_t_chart(runs: Sequence[RunLogs]) -> Chart | None:
    """The loss of each range of t against step (one panel per range) and against t at the last line."""
    rows = [(r, [row for row in r.metrics if isinstance(row.get("loss_by_t"), list)]) for r in runs]
    rows = [(r, lines) for r, lines in rows if lines]
    if not rows:
        return None
    bins = max(len(row["loss_by_t"]) for _, lines in rows for row in lines)
    if bins == 0:
        return None

    def part(i: int):  # noqa: ANN202
        return lambda row: row["loss_by_t"][i] if i < len(row["loss_by_t"]) else None

    panels = [
        PlotPanel(
            lines=[_line(r, lines, part(i)) for r, lines in rows],
            title=f"loss at t in [{i / bins:g}, {(i + 1) / bins:g}{']' if i == bins - 1 else ')'}",
            xlabel="step",
            log_y=True,
        )
        for i in range(bins)
    ]
    centres = [(i + 0.5) / bins for i in range(bins)]
    last = [
        PlotLine(label=r.name, x=centres, y=[finite_or_none(v) for v in lines[-1]["loss_by_t"]][:bins])
        for r, lines in rows
        if len(lines[-1]["loss_by_t"]) == bins
    ]
    steps = ", ".join(f"{lines[-1]['step']}" for _, lines in rows)
    panels.append(PlotPanel(lines=last, title=f"loss against t at step {steps}", xlabel="t", log_y=True))
    return Chart(
        id="loss-by-t",
        title="Loss by time",
        panels=panels,
        columns=3,
        caption="The loss of the samples whose t fell in each range (t = 0 is pure noise, t = 1 the data), "
        "averaged over each logging window; the last panel is the last logged window.",
    )


def training_charts(runs: Sequence[RunLogs]) -> list[Chart]:
    """The charts of ``metrics.jsonl`` (none when no run has logged a line)."""
    if not any(r.metrics for r in runs):
        return []
    charts = [
        Chart(
            id="loss",
            title="Loss",
            panels=[_panel(runs, "loss", "training loss", log_y=True)],
            columns=1,
            panel_size=WIDE,
            caption="The training loss, averaged over the train.log_every steps before each point.",
        )
    ]
    by_t = loss_by_t_chart(runs)
    if by_t is not None:
        charts.append(by_t)
    charts.append(
        Chart(
            id="lr",
            title="Learning rate",
            panels=[_panel(runs, "lr", "learning rate")],
            columns=1,
            panel_size=WIDE,
        )
    )
    mfu = [
        _line(r, r.metrics, lambda row: row["mfu"] * 100 if is_number(row.get("mfu")) else None)
        for r in runs
        if _logs(r, "mfu")
    ]
    charts.append(
        Chart(
            id="throughput",
            title="Throughput",
            panels=[
                _panel(runs, "images_per_s", "images per second"),
                PlotPanel(
                    lines=mfu,
                    title="model FLOPs utilisation (%)",
                    xlabel="step",
                    empty_text="not measured:\nthe device's peak FLOP/s\nis unknown (a CPU)",
                ),
            ],
            caption="Training images per second (all processes) and MFU, the model's FLOPs per second "
            "over the device's peak.",
        )
    )
    scalars, lists = _numeric_keys(runs)
    other = [_panel(runs, key, key) for key in scalars if key not in OWN_CHARTS]
    for key in (k for k in lists if k not in OWN_CHARTS):
        size = max(len(row[key]) for r in runs for row in r.metrics if isinstance(row.get(key), list))
        other.append(
            PlotPanel(
                lines=[
                    _line(r, r.metrics, lambda row, k=key, i=i: _item(row.get(k), i), f"{r.name} [{i}]")
                    for r in runs
                    if _logs(r, key)
                    for i in range(size)
                ],
                title=key,
                xlabel="step",
            )
        )
    if other:
        charts.append(
            Chart(
                id="other-metrics",
                title="Other logged values",
                panels=other,
                columns=3,
                caption="Every other number of metrics.jsonl, by its key (gradient norm, peak memory in "
                "MiB, the terms and statistics a process or a loss term logs).",
            )
        )
    return charts


def _item(value: Any, i: int) -> Any:
    return value[i] if isinstance(value, list) and i < len(value) else None


def eval_charts(runs: Sequence[RunLogs]) -> tuple[list[Chart], list[Table]]:
    """Every score of ``eval.jsonl`` against step, one panel per score; a line per run (and per way of
    sampling, where a run scored several); and the table of every line."""
    rows = [(r, row) for r in runs for row in r.evals]
    if not rows:
        return [], []
    scores = list(
        dict.fromkeys(k for _, row in rows for k, v in row.items() if k not in EVAL_CONTEXT and is_number(v))
    )
    settings = [
        k for k in EVAL_CONTEXT if k not in ("step", "seconds", "time") and any(k in row for _, row in rows)
    ]

    def signature(row: dict[str, Any], keys: Sequence[str]) -> str:
        return json.dumps([row.get(k) for k in keys], sort_keys=True)

    # Settings that vary within a run name its lines; those that only differ between runs (each run
    # samples its own way) go to the caption, so that one run is one line of its colour.
    within = [k for k in settings if any(len({signature(row, [k]) for row in r.evals}) > 1 for r in runs)]
    series: dict[tuple[str, str], tuple[RunLogs, list[dict[str, Any]], str]] = {}
    for run, row in rows:
        label = " · ".join([run.name, *(f"{k} {cell(row.get(k))}" for k in within)])
        series.setdefault((run.name, signature(row, within)), (run, [], label))[1].append(row)
    panels = [
        PlotPanel(
            lines=[
                _line(run, lines, lambda row, s=score: row.get(s), label)
                for run, lines, label in series.values()
            ],
            title=score,
            xlabel="step",
        )
        for score in scores
    ]
    shared = [k for k in settings if k not in within and len({signature(row, [k]) for _, row in rows}) == 1]
    per_run = [k for k in settings if k not in within and k not in shared]
    how = [", ".join(f"{k} {cell(rows[0][1].get(k))}" for k in shared)]
    how += [
        f"{r.name}: " + ", ".join(f"{k} {cell(r.evals[0].get(k))}" for k in per_run)
        for r in runs
        if r.evals and per_run
    ]
    chart = Chart(
        id="evaluation",
        title="Scores during training",
        panels=panels,
        columns=3,
        caption=f"eval.jsonl: the dataset's metric on samples drawn during training ({'; '.join(h for h in how if h)}).",
    )
    shown = [k for k in settings if k not in shared]
    table = Table(
        columns=["run", "step", *shown, *scores],
        rows=[
            [
                run.name,
                cell(row["step"]),
                *(cell(row.get(k)) for k in shown),
                *(cell(row.get(s)) for s in scores),
            ]
            for run, row in rows
        ],
        caption="Every line of eval.jsonl.",
    )
    return ([chart] if scores else []), [table]


__all__ = ["EVAL_CONTEXT", "NOT_PLOTTED", "OWN_CHARTS", "eval_charts", "loss_by_t_chart", "training_charts"]
