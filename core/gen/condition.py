"""Class labels as the condition of a batch: what the engine and the sampler hand a process.

A backbone takes ``net(z, t, y)`` with ``y`` the (B,) int64 class ids and ``num_classes`` the null label
of classifier-free guidance (an unconditional model has no classes and labels every sample 0). A
process sees only the members of `gen.Condition`, so another kind of condition can replace this one
without changing the processes.
"""

from __future__ import annotations

import torch
from torch import Tensor


class ClassLabels:
    """The class ids of B samples and the null label (a `gen.Condition`).

    Args:
        labels: (B,) int64 class ids in [0, num_classes], ``num_classes`` meaning "no class".
        num_classes: Classes of the model; 0 = unconditional.
    """

    def __init__(self, labels: Tensor, num_classes: int):
        self.labels = labels
        self.num_classes = num_classes

    @classmethod
    def null(cls, n: int, num_classes: int, device: torch.device | str | None = None) -> ClassLabels:
        """``n`` samples of no class (the null label; 0 for an unconditional model)."""
        return cls(torch.full((n,), num_classes, dtype=torch.long, device=device), num_classes)

    @property
    def y(self) -> Tensor:
        """(B,) the labels, as the backbone takes them."""
        return self.labels

    @property
    def guidable(self) -> bool:
        """Whether there is a null label to guide against (the model has classes)."""
        return self.num_classes > 0

    @property
    def is_null(self) -> Tensor:
        """(B,) bool: which samples have the null label (dropped for CFG, or an unconditional model's)."""
        return self.labels == self.num_classes

    def with_null(self) -> Tensor:
        """(2B,) these labels, then B null labels: the conditional and unconditional pass as one batch."""
        return torch.cat([self.labels, torch.full_like(self.labels, self.num_classes)])

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __repr__(self) -> str:
        return f"ClassLabels({self.labels.tolist()}, num_classes={self.num_classes})"


__all__ = ["ClassLabels"]
