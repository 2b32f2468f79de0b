"""The start noise of sampling: sample i's noise is a function of (seed, i) alone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from gen.seeds import key_seed


def noise_seed(seed: int, index: int) -> int:
    """The seed of sample ``index``'s noise: `gen.seeds.key_seed` of (seed, index), 64 bits."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return key_seed(seed, index, bits=64)


def sample_noise(
    indices: Iterable[int],
    shape: tuple[int, ...],
    *,
    seed: int,
    noise_scale: float = 1.0,
    device: Any = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Start noise for the given sample indices: sample i's noise depends only on (seed, i).

    So the images of a run do not depend on the batch size, the number of processes, or the device
    (the noise is drawn on the CPU, then moved).

    Args:
        indices: Global sample indices (e.g. ``range(start, start + batch)``).
        shape: One sample's shape, (C, H, W) or (D,).
        seed: The run's sampling seed (>= 0).
        noise_scale: Std of the noise (the objective's ``noise_scale``).

    Returns:
        (len(indices), *shape) noise.
    """
    rows = []
    for i in indices:
        g = torch.Generator().manual_seed(noise_seed(seed, int(i)))
        rows.append(torch.randn(shape, generator=g, dtype=torch.float32))  # (*shape,)
    if not rows:
        return torch.empty((0, *shape), dtype=dtype, device=device)
    return (torch.stack(rows) * noise_scale).to(device=device, dtype=dtype)  # (N, *shape)


__all__ = ["noise_seed", "sample_noise"]
