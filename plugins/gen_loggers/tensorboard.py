"""The ``tensorboard`` logger: the metrics lines as scalars, the sample grids as images and the scores,
in ``RUN/tensorboard``.

Written through ``torch.utils.tensorboard``, which needs the ``tensorboard`` package
(``pip install 'gen[tensorboard]'``); view with ``tensorboard --logdir RUN/tensorboard``. A resume purges
the events after the step it resumes from, so that the curves of a killed run's last, retrained steps
are not drawn twice.
"""

from __future__ import annotations

from typing import Any

import gen
from gen_loggers.scalars import scalars


def require_tensorboard() -> None:
    """Fail before training starts, not at the first metrics line, when the package is missing."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise gen.GenError(
            "the tensorboard logger (train.loggers, or train.tensorboard = true) needs the tensorboard "
            "package: pip install 'gen[tensorboard]', or leave the logger out"
        ) from None


def build_tensorboard(config: None) -> TensorBoardLogger:
    """TensorBoard event files in RUN/tensorboard: scalars, sample grids, scores."""
    require_tensorboard()
    return TensorBoardLogger()


class TensorBoardLogger:
    """Writes one run's scalars, grids and scores to ``RUN/tensorboard`` (rank 0)."""

    def __init__(self) -> None:
        self.writer: Any = None

    def open(self, run: gen.RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # Events logged after the resumed checkpoint (a killed run's last steps) are dropped: the steps
        # are trained again and logged anew.
        purge = run.step + 1 if run.resumed else None
        self.writer = SummaryWriter(log_dir=str(run.files.tensorboard_dir), purge_step=purge)

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        """The scalars of one metrics line (``train/loss``, ``loss_by_t/0.00-0.25``...)."""
        for tag, value in scalars(values).items():
            self.writer.add_scalar(tag, value, step)

    def image(self, step: int, tag: str, image: Any) -> None:
        """An (H, W, C) uint8 image, e.g. a sample grid (tag ``samples``)."""
        self.writer.add_image(tag, image, step, dataformats="HWC")

    def scores(self, step: int, scores: dict[str, float], record: dict[str, Any]) -> None:
        for name, value in scores.items():
            self.writer.add_scalar(f"eval/{name}", value, step)

    def close(self, ok: bool) -> None:
        if self.writer is not None:
            self.writer.close()
