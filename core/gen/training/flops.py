"""Model FLOP utilisation: the FLOPs a training sample costs, and what the device could do.

The FLOPs are counted once per run, by ``torch.utils.flop_counter`` on the *meta* device (no memory, no
compute): one forward and one backward of the backbone on one sample, the matrix products, convolutions
and attention that dominate (JiT-B/16 at 256 px: 151.3 GFLOP). MFU is then ``images/s × FLOPs per
image / peak FLOP/s``, the definition of PaLM (Chowdhery et al., 2022): the model's FLOPs, not the
hardware's (recomputation under activation checkpointing does not count).

The peak comes from a table of dense bf16/fp32 tensor-core peaks of common GPUs, matched by device name,
or from ``GEN_PEAK_TFLOPS`` (the override for anything else, including CPUs).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from gen.protocols import DataSpec
from gen.recipe import Recipe, build_backbone

#: Dense peak TFLOP/s (bf16, fp32 without TF32), by a substring of ``torch.cuda.get_device_name``.
#: From the vendors' data sheets (SXM parts where there are several).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.0, "fp32": 67.0},
    "H100": {"bf16": 989.0, "fp32": 67.0},
    "A100": {"bf16": 312.0, "fp32": 19.5},
    "L40S": {"bf16": 362.0, "fp32": 91.6},
    "A10G": {"bf16": 70.0, "fp32": 31.2},
    "RTX 4090": {"bf16": 165.0, "fp32": 82.6},
    "V100": {"bf16": 125.0, "fp32": 15.7},  # fp16 tensor cores: V100 has no bf16
}

PEAK_ENV = "GEN_PEAK_TFLOPS"


def flops_per_sample(recipe: Recipe, spec: DataSpec) -> float:
    """FLOPs of one forward and one backward of the recipe's backbone on one sample of ``spec`` (the
    evaluations a process adds, such as a MeanFlow's JVP and guidance passes, are not counted)."""
    scalars = recipe.objective.build_process().backbone_fields(spec).get("scalar_inputs", ())
    with torch.device("meta"):
        return count_flops(build_backbone(recipe, spec), spec.shape, scalars)


def count_flops(net: torch.nn.Module, shape: tuple[int, ...], scalars: tuple[str, ...] = ()) -> float:
    """FLOPs of ``net(z, t, y, **scalars)`` forward and backward for one sample ``z`` of ``shape`` (the
    inputs need no gradient, as in training). Put ``net`` on the meta device to count without computing."""
    device = next(net.parameters()).device
    z = torch.zeros(1, *shape, device=device)  # (1, *shape)
    t = torch.full((1,), 0.5, device=device)
    y = torch.zeros(1, dtype=torch.long, device=device)
    extra = {name: torch.full((1,), 0.5, device=device) for name in scalars}
    with FlopCounterMode(display=False) as counter:
        net(z, t, y, **extra).float().sum().backward()
    return float(counter.get_total_flops())


def peak_flops(device: torch.device, precision: str) -> float | None:
    """The device's peak FLOP/s at ``precision`` (``bf16`` or ``fp32``): ``GEN_PEAK_TFLOPS`` if set,
    else the table's entry for a known GPU; None when unknown (MFU is then not reported)."""
    if os.environ.get(PEAK_ENV):
        return float(os.environ[PEAK_ENV]) * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_TFLOPS.items():
        if key in name:
            return peaks["bf16" if precision == "bf16" else "fp32"] * 1e12
    return None


def mfu(images_per_s: float, flops_per_image: float, peak: float | None) -> float | None:
    """Model FLOP utilisation in [0, 1] (None without a peak)."""
    return None if peak is None else images_per_s * flops_per_image / peak


def describe_peak(device: torch.device, precision: str) -> dict[str, Any]:
    """For logs: the peak used and where it came from."""
    peak = peak_flops(device, precision)
    source = PEAK_ENV if os.environ.get(PEAK_ENV) else ("table" if peak else "unknown")
    return {"peak_tflops": None if peak is None else peak / 1e12, "peak_source": source}


__all__ = ["PEAK_ENV", "PEAK_TFLOPS", "count_flops", "describe_peak", "flops_per_sample", "mfu", "peak_flops"]
