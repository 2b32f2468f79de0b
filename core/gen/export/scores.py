"""The scores a run measured of one checkpoint, for its model card: the training-time scores
(``eval.jsonl``, the dataset's metric) and the ``gen eval`` results (``eval/results.jsonl``: FID, IS,
KID...), each with the settings it was measured with.

Only what the run recorded is read (nothing is sampled); a line cut short by a kill is skipped, as every
reader of those logs does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import attrs

from gen.runs.run_dir import RunDir
from gen.sampling.settings import SETTING_COLUMNS

#: Keys of a record that say how a score was measured, in the order a table shows them.
SETTING_KEYS: tuple[str, ...] = (*SETTING_COLUMNS, "num_samples", "num_images", "seed", "features")
#: Keys that are neither a setting a reader needs nor a score (a digest, the wall time, the step).
_LEFT_OUT = ("step", "reference", "labels", "seconds", "time", "checkpoint")


@attrs.frozen
class ScoreTable:
    """Scores of one source at one step.

    Attributes:
        title: Where they come from, for a heading (``Training-time scores (eval.jsonl)``).
        source: The file, relative to the run directory.
        rows: One dict per measurement: settings first (`SETTING_KEYS` that it has), then scores.
        scores: The score columns, in first-seen order.
    """

    title: str
    source: str
    rows: list[dict[str, Any]]
    scores: list[str]

    @property
    def settings(self) -> list[str]:
        """The setting columns some row has, in `SETTING_KEYS` order."""
        return [k for k in SETTING_KEYS if any(k in r for r in self.rows)]


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if isinstance(record, dict):
            out.append(record)
    return out


def _is_score(key: str, value: Any) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and key not in SETTING_KEYS and key not in _LEFT_OUT and math.isfinite(value)


def _row(record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    settings = {k: record[k] for k in SETTING_KEYS if k in record}
    scores = [k for k, v in record.items() if _is_score(k, v) and not k.startswith("screen_")]
    return {**settings, **{k: record[k] for k in scores}}, scores


def _table(title: str, source: str, records: list[dict[str, Any]]) -> ScoreTable | None:
    rows, columns = [], {}
    for record in records:
        row, scores = _row(record)
        if scores:
            rows.append(row)
            columns.update(dict.fromkeys(scores))
    return ScoreTable(title, source, rows, list(columns)) if rows else None


def training_scores(run: RunDir, step: int) -> ScoreTable | None:
    """The lines of ``eval.jsonl`` of ``step`` (training scores each checkpoint step it was asked to)."""
    records = [r for r in _lines(run.eval_log) if r.get("step") == step]
    source = run.eval_log.relative_to(run.path).as_posix()
    return _table(f"Scores measured during training ({source})", source, records)


def evaluation_scores(run: RunDir, step: int) -> ScoreTable | None:
    """The ``gen eval`` results of ``step`` (the latest of each key: a result measured again replaces the
    earlier one, as ``gen eval`` reuses it)."""
    log = run.results_dir / "results.jsonl"
    latest: dict[str, dict[str, Any]] = {}
    for r in _lines(log):
        key, result = r.get("key"), r.get("result")
        if isinstance(key, dict) and isinstance(result, dict) and key.get("step") == step:
            latest[json.dumps(key, sort_keys=True)] = {**key, **result}
    source = log.relative_to(run.path).as_posix()
    return _table(f"Scores measured by gen eval ({source})", source, list(latest.values()))


def recorded_scores(run: RunDir, step: int) -> list[ScoreTable]:
    """Every table of scores the run holds for ``step`` (none: an empty list)."""
    return [t for t in (training_scores(run, step), evaluation_scores(run, step)) if t is not None]


__all__ = ["SETTING_KEYS", "ScoreTable", "evaluation_scores", "recorded_scores", "training_scores"]
