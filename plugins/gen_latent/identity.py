"""The ``identity`` autoencoder: pixel space, the default of every recipe."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class IdentityAutoencoder:
    """Pixel space: encode and decode return their input; the model's space is the data's."""

    def latent_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(image_shape)

    def image_shape(self, latent_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(latent_shape)

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x

    def decode(self, z: Tensor) -> Tensor:
        return z

    def identity(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return "IdentityAutoencoder()"
