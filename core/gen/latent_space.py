"""The space a model works in: the data's pixels, or the latents of an autoencoder (DiT, SiT).

A recipe's ``[autoencoder]`` (default ``identity``) decides it. Three cases, one owner:

- pixel data and ``identity``: the model sees the data as it is;
- pixel data and a VAE: training encodes each batch on the device (`OnlineEncoded`), the model's
  `DataSpec` is the latents' (``model_spec``);
- latent data (``gen data encode``; a dataset that is `gen.protocols.EncodedData`): the data must
  have been encoded by the recipe's autoencoder (`check_encoded_by`), and is used as it is.

Sampling decodes with the same autoencoder before anything is written or scored
(`gen.ModelSampler`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from gen.components import ComponentSpec, build_component
from gen.errors import GenError
from gen.protocols import Autoencoder, Dataset, DataSpec, EncodedData
from gen.seeds import key_seed

#: The key stream of the posterior samples of online encoding (beside the engine's streams).
ENCODE_DRAWS = 7


def build_autoencoder(section: ComponentSpec | str) -> Autoencoder:
    """The autoencoder a recipe's ``[autoencoder]`` section selects (weights load on first use)."""
    return build_component("autoencoder", section)


def in_pixel_space(autoencoder: Autoencoder) -> bool:
    """True for ``identity``: the model's space is the data's."""
    return autoencoder.identity() == {}


def describe(identity: dict[str, Any]) -> str:
    """``sd_vae (latent_channels 4, scale 0.18215, ...)`` or ``pixel space`` for an empty identity."""
    if not identity:
        return "pixel space (autoencoder identity)"
    rest = ", ".join(f"{k} {v}" for k, v in identity.items() if k != "name")
    return f"{identity.get('name', '?')} ({rest})"


def check_encoded_by(autoencoder: Autoencoder, dataset: Any, *, data_name: str) -> None:
    """Raise `gen.GenError` when latent data was made by another autoencoder than the recipe's
    (other channels, scale, shift or factor); pixel data fits every autoencoder."""
    if not isinstance(dataset, EncodedData):
        return
    made_by, wanted = dict(dataset.encoded_by), autoencoder.identity()
    if made_by == wanted:
        return
    if not wanted:
        raise GenError(
            f"[data] {data_name} holds latents encoded by {describe(made_by)}, but the recipe trains in pixel "
            f"space; add an [autoencoder] section with name = {made_by.get('name')!r} and its path"
        )
    differ = sorted(k for k in {*made_by, *wanted} if made_by.get(k) != wanted.get(k))
    raise GenError(
        f"[data] {data_name} holds latents encoded by {describe(made_by)}, but [autoencoder] is "
        f"{describe(wanted)} (they differ in {', '.join(differ)}); use the autoencoder the data was encoded "
        "with, or encode the images again with gen data encode"
    )


def model_spec(autoencoder: Autoencoder, data: DataSpec, *, encoded: bool = False) -> DataSpec:
    """The `DataSpec` of what the model sees: the data's, or its images' latents.

    Args:
        autoencoder: The recipe's autoencoder.
        data: The dataset's spec.
        encoded: The data are latents already (an `EncodedData` dataset).
    """
    if encoded or in_pixel_space(autoencoder):
        return data
    if not data.is_image:
        raise GenError(f"[autoencoder] encodes images, but the data are vectors of shape {data.shape}")
    try:
        shape = autoencoder.latent_shape(tuple(data.shape))
    except ValueError as e:
        raise GenError(f"[autoencoder] {e}") from None
    return DataSpec(shape=shape, num_classes=data.num_classes)


class OnlineEncoded:
    """Pixel data seen through an autoencoder: each training batch is encoded on ``device``.

    The posterior sample of batch ``k`` of rank ``r`` is keyed by ``(seed, ENCODE_DRAWS, r, k)``, so a
    resumed run encodes the batches it continues with exactly as an uninterrupted one would.

    Args:
        dataset: The pixel dataset.
        autoencoder: Encodes (B, C, H, W) images in [-1, 1] to (B, c, h, w) latents.
        device: Where to encode (the training device).
    """

    def __init__(self, dataset: Dataset, autoencoder: Autoencoder, device: Any):
        self.dataset, self.autoencoder, self.device = dataset, autoencoder, torch.device(device)
        self.spec = model_spec(autoencoder, dataset.spec)

    def train_batches(
        self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]:
        stream = self.dataset.train_batches(
            batch_size, seed=seed, rank=rank, world_size=world_size, start_batch=start_batch
        )
        for k, (x, y) in enumerate(stream, start=start_batch):
            g = torch.Generator(device=self.device).manual_seed(key_seed(seed, ENCODE_DRAWS, rank, k))
            with torch.no_grad():
                z = self.autoencoder.encode(x.to(self.device, non_blocking=True), generator=g)  # (B, c, h, w)
            yield z.float(), y


def training_data(dataset: Dataset, autoencoder: Autoencoder, *, data_name: str, device: Any) -> Any:
    """What the engine trains on: ``dataset`` itself (pixel space, or latents checked against the
    autoencoder) or `OnlineEncoded` pixels."""
    check_encoded_by(autoencoder, dataset, data_name=data_name)
    if isinstance(dataset, EncodedData) or in_pixel_space(autoencoder):
        return dataset
    return OnlineEncoded(dataset, autoencoder, device)


__all__ = [
    "OnlineEncoded",
    "build_autoencoder",
    "check_encoded_by",
    "describe",
    "in_pixel_space",
    "model_spec",
    "training_data",
]
