"""Which samples a sampling draws: the indices of each process (`shard`) and the label of each index
(`class_labels`), so that sample ``i`` is a function of ``(seed, i)`` alone whatever the batch size or
the number of processes."""

from __future__ import annotations

import numpy as np

from gen.errors import GenError


def shard(n: int, rank: int, world_size: int) -> range:
    """The indices rank ``rank`` of ``world_size`` generates: ``[rank n / W, (rank + 1) n / W)``.

    The slices are contiguous, disjoint, cover ``range(n)`` and differ in size by at most one.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    return range(rank * n // world_size, (rank + 1) * n // world_size)


def class_labels(
    n: int | None, num_classes: int, *, labels: list[int] | None = None, per_class: int | None = None
) -> np.ndarray:
    """The label of every sample index, (N,) int64.

    - ``labels``: the list repeated (sample i gets ``labels[i % len(labels)]``);
    - ``per_class``: ``per_class`` images of each class, class-major (N = per_class * num_classes);
    - neither: balanced and class-major, sample i gets ``i * K // N`` (for N = 50 000 and K = 1000
      that is 50 images per class, as the JiT evaluation draws them).

    An unconditional model (K = 0) labels every sample with the null label 0.
    """
    if labels is not None and per_class is not None:
        raise GenError("give either --labels or --per-class, not both")
    if num_classes == 0:
        if labels is not None or per_class is not None:
            raise GenError("the model is unconditional (no classes); drop --labels/--per-class")
        return np.zeros(n or 0, dtype=np.int64)
    if per_class is not None:
        if per_class < 1:
            raise GenError(f"--per-class must be >= 1, got {per_class}")
        return np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
    if n is None or n < 1:
        raise GenError(f"--num must be >= 1, got {n}")
    if labels is not None:
        bad = [y for y in labels if not 0 <= y < num_classes]
        if not labels or bad:
            raise GenError(f"--labels must be class ids in [0, {num_classes}), got {labels}")
        return np.resize(np.asarray(labels, dtype=np.int64), n)
    return (np.arange(n, dtype=np.int64) * num_classes) // n


__all__ = ["class_labels", "shard"]
