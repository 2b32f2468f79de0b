"""The ``jsonl`` logger: the run directory's own record, which ``gen`` reads back.

- ``metrics.jsonl``: one JSON line per metrics line, exactly as the engine made it;
- ``eval.jsonl``: one line per score (step, sample count, seed, sampling settings, the scores);
- ``eval.json``: the latest of them, indented.

A line cut short by a kill is skipped by the readers (``gen.RunDir.last_metrics``). The grids are PNG
files in ``RUN/samples`` already, written by the engine, so this logger ignores images.
"""

from __future__ import annotations

import json
from typing import Any

import gen


class JsonlLogger:
    """Appends the run's metrics and scores to its JSON Lines files (rank 0)."""

    def __init__(self) -> None:
        self.files: gen.RunDir | None = None

    def open(self, run: gen.RunInfo) -> None:
        self.files = run.files

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        self.files.append_json(self.files.metrics_file, values)

    def image(self, step: int, tag: str, image: Any) -> None:
        """Nothing: the engine writes the grids to ``RUN/samples`` itself."""

    def scores(self, step: int, scores: dict[str, float], record: dict[str, Any]) -> None:
        self.files.append_json(self.files.eval_log, record)  # every score of the run
        self.files.eval_latest.write_text(json.dumps(record, indent=2))  # the latest score

    def close(self, ok: bool) -> None:
        """Nothing to flush: every line was written whole when it came."""
