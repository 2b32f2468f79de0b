"""A metrics line as named scalars, for the loggers that draw curves (TensorBoard, W&B)."""

from __future__ import annotations

from typing import Any

#: metrics line key -> scalar name; other numeric keys (loss terms such as ``loss_vb``) go to ``train/``.
TAGS = {
    "loss": "train/loss",
    "grad_norm": "train/grad_norm",
    "lr": "train/lr",
    "images_per_s": "perf/images_per_s",
    "mfu": "perf/mfu",
    "peak_memory_mb": "perf/peak_memory_mb",
}
NOT_SCALARS = ("step", "time")


def scalars(values: dict[str, Any]) -> dict[str, float]:
    """``{tag: value}`` of one metrics line: the keys of `TAGS`, any other number as ``train/KEY``,
    and the loss of each t-bin as ``loss_by_t/LO-HI`` (bins without samples and unknown values left out).

    Example:
        >>> scalars({"step": 3, "loss": 0.5, "loss_by_t": [0.9, None], "mfu": None})
        {'train/loss': 0.5, 'loss_by_t/0.00-0.50': 0.9}
    """
    out: dict[str, float] = {}
    for key, value in values.items():
        if key in NOT_SCALARS or value is None:
            continue
        if key == "loss_by_t":
            for i, v in enumerate(value):
                if v is not None:
                    out[f"loss_by_t/{i / len(value):.2f}-{(i + 1) / len(value):.2f}"] = float(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[TAGS.get(key, f"train/{key}")] = float(value)
    return out
