"""The precision policy of forward passes, for training and sampling alike.

``auto`` is bf16 autocast on CUDA. On a CPU it is bf16 only where the CPU multiplies bf16 matrices in
hardware (AMX-BF16, AVX-512 BF16; `cpu_bf16_units`) **and** the model's matrices are wide enough for that
to pay (`CPU_BF16_MIN_WIDTH`): measured on a 2-core Intel Xeon with AMX (issue #34), bf16 ran the
demo's JiT (width 128) at 0.78x of fp32's speed, a JiT of width 384 at 1.31x and JiT-B/16 (768) at 5.2x;
emulated bf16 on a CPU without such units is several times slower than fp32 at any size. Elsewhere
``auto`` is fp32. `describe_precision` is the reason the commands print.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Literal

import torch
from torch import nn

Precision = Literal["auto", "fp32", "bf16"]

#: The width (the smaller side of the model's largest weight matrix) from which ``auto`` uses bf16 on a
#: CPU with bf16 units: between the measured 128 (slower in bf16) and 384 (faster).
CPU_BF16_MIN_WIDTH = 256

#: /proc/cpuinfo flags of hardware bf16 matrix arithmetic, and how the header names them.
_BF16_FLAGS = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX-512 BF16"}


@functools.cache
def cpu_bf16_units(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The CPU's bf16 matrix units by name (``AMX-BF16`` first), or None (none, or not Linux)."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return None
    return next((name for flag, name in _BF16_FLAGS.items() if flag in flags), None)


def matrix_width(model: nn.Module) -> int:
    """The smaller side of ``model``'s largest weight matrix (768 for JiT-B: its MLP's 768 x 3072), 0
    without one: how wide the matrix products are that decide whether bf16 pays on a CPU."""
    shapes = [p.shape for p in model.parameters() if p.ndim == 2]
    return min(max(shapes, key=lambda s: s[0] * s[1])) if shapes else 0


def resolve_precision(precision: str, device: torch.device, width: int | None = None) -> str:
    """``fp32`` or ``bf16``: ``auto`` as the module docstring says (on a CPU, fp32 unless ``width``, the
    model's `matrix_width`, is given and reaches `CPU_BF16_MIN_WIDTH` on a CPU with bf16 units)."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    if device.type == "cpu" and width is not None and width >= CPU_BF16_MIN_WIDTH and cpu_bf16_units():
        return "bf16"
    return "fp32"


def describe_precision(precision: str, device: torch.device, width: int | None = None) -> str:
    """What `resolve_precision` chose and why, for the first line of ``gen train`` and ``gen sample``:
    ``bf16 (auto: AMX-BF16, width 768 >= 256)``, ``fp32 (auto: no bf16 units in this CPU)``."""
    chosen = resolve_precision(precision, device, width)
    if precision != "auto":
        return chosen
    if device.type != "cpu":
        return f"{chosen} (auto: {device.type})"
    units = cpu_bf16_units()
    if units is None:
        return f"{chosen} (auto: no bf16 units in this CPU)"
    if width is None or width < CPU_BF16_MIN_WIDTH:
        return f"{chosen} (auto: {units}, but width {width} < {CPU_BF16_MIN_WIDTH}: faster in fp32)"
    return f"{chosen} (auto: {units}, width {width} >= {CPU_BF16_MIN_WIDTH})"


def autocast(
    precision: str, device: torch.device, width: int | None = None
) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (a no-op context for fp32)."""
    if resolve_precision(precision, device, width) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


__all__ = [
    "CPU_BF16_MIN_WIDTH",
    "Precision",
    "autocast",
    "cpu_bf16_units",
    "describe_precision",
    "matrix_width",
    "resolve_precision",
]
