"""Optional TensorBoard logging (``train.tensorboard = true``): the metrics of ``metrics.jsonl`` as
scalars, the sample grids as images and the final scores, under ``RUN/tensorboard``.

Written through ``torch.utils.tensorboard``, which needs the ``tensorboard`` package
(``pip install 'gen[tensorboard]'``); view with ``tensorboard --logdir RUN/tensorboard``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gen.errors import GenError

#: metrics.jsonl key -> TensorBoard tag
SCALARS = {
    "loss": "train/loss",
    "grad_norm": "train/grad_norm",
    "lr": "train/lr",
    "images_per_s": "perf/images_per_s",
    "peak_memory_mb": "perf/peak_memory_mb",
}


def require_tensorboard() -> None:
    """Fail before training starts, not at the first log line, when the package is missing."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise GenError(
            "train.tensorboard = true needs the tensorboard package: pip install 'gen[tensorboard]' "
            "(or set train.tensorboard = false)"
        ) from None


class TensorBoardLog:
    """Writes one run's scalars and grids to ``log_dir`` (rank 0 only)."""

    def __init__(self, log_dir: Path):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def metrics(self, line: dict[str, Any]) -> None:
        """One ``metrics.jsonl`` line: the scalars, and the loss of each t-bin as ``loss_by_t/LO-HI``."""
        step = line["step"]
        for key, tag in SCALARS.items():
            if line.get(key) is not None:
                self.writer.add_scalar(tag, line[key], step)
        bins = line.get("loss_by_t") or []
        for i, value in enumerate(bins):
            if value is not None:
                lo, hi = i / len(bins), (i + 1) / len(bins)
                self.writer.add_scalar(f"loss_by_t/{lo:.2f}-{hi:.2f}", value, step)

    def grid(self, image: np.ndarray, step: int) -> None:
        """A sample grid, (H, W, C) uint8."""
        self.writer.add_image("samples", image, step, dataformats="HWC")

    def scores(self, scores: dict[str, float], step: int) -> None:
        for name, value in scores.items():
            self.writer.add_scalar(f"eval/{name}", value, step)

    def close(self) -> None:
        self.writer.close()
