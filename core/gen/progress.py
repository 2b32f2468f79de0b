"""The progress bar of every long command (training, sampling, scoring), on rank 0 only."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(console: Console, enabled: bool, label: str, *, info: bool = False) -> Progress:
    """A rich progress bar counting items (images, steps); ``info`` adds a ``{task.fields[info]}`` column
    (the training loss). Disabled (drawn nowhere) where ``enabled`` is false: ranks other than 0."""
    columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn()]
    if info:
        columns.append(TextColumn("{task.fields[info]}"))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, console=console, disable=not enabled)


__all__ = ["progress_bar"]
