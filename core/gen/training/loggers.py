"""The loggers of a run: ``jsonl`` (always), then ``train.loggers`` — registered components of the kind
``logger`` (``register_loggers``), built and called on rank 0 only.

They hear of the run where the host already looks — each metrics line (every ``train.log_every``
steps, after the one all-reduce), each sample grid and each score — so that no training step waits
for a logger. ``jsonl`` is always on because the run directory's own record (``metrics.jsonl``,
``eval.jsonl``, ``eval.json``) is what ``gen`` reads back (a resume of a finished run reports its last
loss from it); naming it in ``train.loggers`` changes nothing. ``train.tensorboard = true`` is shorthand
for adding ``tensorboard``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from gen import distributed
from gen.components import ComponentSpec, validate_component
from gen.distributed import DistInfo
from gen.errors import GenError
from gen.plugins import get_registry
from gen.protocols import Logger
from gen.runs.run_dir import RunDir
from gen.train_config import TrainConfig

ALWAYS = "jsonl"


@attrs.frozen(kw_only=True)
class RunInfo:
    """What a logger is told of the run it logs ([`gen.Logger.open`][]).

    Attributes:
        files: The run directory, its files by name (``files.path``, ``files.metrics_file``...).
        config: The resolved recipe as a plain table (sections and keys as ``recipe.toml`` has them).
        step: The step training starts from: 0, or the step of the checkpoint it resumed.
        total_steps: The step it trains to.
        resumed: Whether it continues from a checkpoint of this run.
    """

    files: RunDir
    config: dict[str, Any]
    step: int
    total_steps: int
    resumed: bool

    @property
    def path(self) -> Path:
        """The run directory."""
        return self.files.path

    @property
    def name(self) -> str:
        """The run directory's name (what a dashboard can call the run)."""
        return self.files.path.resolve().name


def selected(cfg: TrainConfig) -> list[ComponentSpec]:
    """``jsonl``, then the loggers of ``train.loggers``, then ``tensorboard`` for ``train.tensorboard``."""
    try:
        specs = [validate_component("logger", ALWAYS, section="train.loggers", file=None)]
    except GenError:
        raise GenError(
            "the jsonl logger, which writes RUN/metrics.jsonl and is always on, is not registered: install "
            "gen with its first-party plugins (gen_loggers), and list gen_loggers in GEN_PLUGINS if set"
        ) from None
    specs += [spec for spec in cfg.loggers if spec.name != ALWAYS]
    if cfg.tensorboard and "tensorboard" not in {spec.name for spec in specs}:
        specs.append(validate_component("logger", "tensorboard", section="train.tensorboard", file=None))
    return specs


def build_logger(spec: ComponentSpec) -> Logger:
    """One logger from its validated selection; a factory that returns something else is one line."""
    logger = spec.build()
    if not isinstance(logger, Logger):
        lacks = [
            m
            for m in ("open", "metrics", "image", "scores", "close")
            if not callable(getattr(logger, m, None))
        ]
        plugin = get_registry("logger").get(spec.name).plugin
        raise GenError(
            f"logger {spec.name!r} (plugin {plugin!r}) built a {type(logger).__name__}, which is not a gen.Logger: "
            f"it lacks {', '.join(lacks)}"
        )
    return logger


class RunLoggers:
    """The loggers of one run, called in the order they were selected (rank 0 holds them; the other
    ranks hold none, so that every call is a no-op there).

    A logger that cannot start stops the run before its first step (`open`: one line, on every rank);
    one that raises later is left out with one ``warn`` line and the run goes on, since the run's
    results — checkpoints, grids, the ``jsonl`` record while it can write — do not depend on it.

    Args:
        loggers: ``(name, logger)`` pairs.
        warn: Where the line of a logger left out goes (default: stderr).
    """

    def __init__(
        self, loggers: list[tuple[str, Logger]] | None = None, warn: Callable[[str], None] | None = None
    ):
        self.loggers = list(loggers or [])
        self.opened: list[tuple[str, Logger]] = []  # close() closes these only, never an unopened one
        self.warn = warn or (lambda text: print(text, file=sys.stderr))

    @classmethod
    def build(cls, cfg: TrainConfig, dist: DistInfo, warn: Callable[[str], None] | None = None) -> RunLoggers:
        """The loggers of ``cfg`` on rank 0, before any work: one that cannot be built (its package is
        missing) is the same one-line error on every rank."""
        loggers, error = [], None
        if dist.is_main:
            try:
                loggers = [(spec.name, build_logger(spec)) for spec in selected(cfg)]
            except GenError as e:
                error = str(e)
        error = distributed.all_gather_objects(error, dist)[0]
        if error is not None:
            raise GenError(error)
        return cls(loggers, warn)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.loggers]

    def open(self, run: RunInfo, dist: DistInfo) -> None:
        """Open the loggers (rank 0). A logger that cannot start (no login, no network) is the same one
        line on every rank: every rank calls this, a collective that also serves as a barrier."""
        error = None
        try:
            for name, logger in self.loggers:
                try:
                    logger.open(run)
                except GenError:
                    raise
                except Exception as e:  # noqa: BLE001 - a plugin's failure, in one line: nothing trained yet
                    raise GenError(
                        f"the {name} logger could not start: {_said(e)}; fix that, or leave {name} out of "
                        "train.loggers"
                    ) from None
                self.opened.append((name, logger))
        except GenError as e:
            error = str(e)
        error = distributed.all_gather_objects(error, dist)[0]
        if error is not None:
            raise GenError(error)

    def _each(self, step: int, call: Callable[[Logger], None]) -> None:
        """``call`` on every logger; one that raises is left out with a warning (see the class doc)."""
        for name, logger in list(self.loggers):
            try:
                call(logger)
            except Exception as e:  # noqa: BLE001 - a dashboard never costs a run
                self.loggers = [(n, x) for n, x in self.loggers if x is not logger]
                self.warn(
                    f"warning: the {name} logger failed at step {step} ({_said(e)}); it is left out for the "
                    "rest of the run, which goes on"
                )

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        """One metrics line (``values`` is the line of ``metrics.jsonl``, ``step`` included)."""
        self._each(step, lambda logger: logger.metrics(step, values))

    def image(self, step: int, tag: str, image: Any) -> None:
        """An (H, W, C) uint8 image, e.g. a sample grid (tag ``samples``)."""
        self._each(step, lambda logger: logger.image(step, tag, image))

    def scores(self, step: int, scores: dict[str, float], record: dict[str, Any]) -> None:
        self._each(step, lambda logger: logger.scores(step, scores, record))

    def close(self, ok: bool) -> list[str]:
        """Close every opened logger, even after one fails to: the run's results are on disk whatever a
        logger does, so a failure to close is returned as a line to warn with, never raised over the run's
        end (or over the error that ended it, ``ok`` False)."""
        problems = []
        for name, logger in self.opened:
            try:
                logger.close(ok)
            except Exception as e:  # noqa: BLE001 - the others still close
                problems.append(f"the {name} logger did not close: {type(e).__name__}: {e}")
        self.loggers, self.opened = [], []
        return problems


def _said(error: Exception) -> str:
    """An exception as ``Type: its message`` on one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


__all__ = ["ALWAYS", "RunInfo", "RunLoggers", "build_logger", "selected"]
