"""A feature space that needs no download: a fixed random convolutional network, for ``--metric
fd_random`` (the Fréchet distance in it).

FID, KID and FD-DINOv2 need weights from the internet, and ``--metric data`` needs a dataset with an
oracle; offline, an image folder had no metric at all. This network's weights are drawn once from a
constant seed (numpy's PCG64, the same numbers on every machine), so the features are the same
everywhere and for every run: scores in it rank models and settings of one dataset against one
reference, as FID would. They are **not comparable with published FID or FD numbers**, nor with
another feature space's: the name (``fd_random``), the results' ``fd_random_features`` and ``gen eval``'s
note say so.

The network: images resized to 64 × 64 (bilinear, antialiased), scaled to [-1, 1], four 3 × 3 stride-2
convolutions of 32, 64, 128 and 256 channels with He-scaled Gaussian weights, no bias, each followed
by a ReLU; the feature is the spatial mean of every layer's output, concatenated (480-d), times
`SCALE`: colour and edges from the first layers, larger structure from the last. (The means are about
0.1 apart; the scale puts distances in the units and tens, where the results table's three decimals
tell models apart.) Random convolutional features are a
known stand-in for learned ones in distribution tests (e.g. Naeem et al., 2020), weaker at semantics.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The seed of the weights; with `WIDTHS`, `INPUT_SIZE` and `SCALE` it names the space (`RANDOM_FEATURES_ID`).
SEED = 20250101
WIDTHS = (32, 64, 128, 256)
INPUT_SIZE = 64
SCALE = 10.0
RANDOM_FEATURES_ID = f"random-conv-{INPUT_SIZE}px-{'-'.join(map(str, WIDTHS))}-x{SCALE:g}-seed{SEED}"


class RandomConvFeatures(nn.Module):
    """uint8 images (B, 3, H, W) -> (B, 480) features of a fixed random network (see the module doc).

    Args:
        seed: The weights' seed; another one is another feature space.
    """

    def __init__(self, seed: int = SEED):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.convs = nn.ModuleList()
        c_in = 3
        for c_out in WIDTHS:
            conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False)
            fan_in = c_in * 9
            weight = rng.standard_normal((c_out, c_in, 3, 3)) * np.sqrt(2.0 / fan_in)  # He: variance kept
            conv.weight.data = torch.from_numpy(weight.astype(np.float32))
            conv.requires_grad_(False)
            self.convs.append(conv)
            c_in = c_out

    @property
    def num_features(self) -> int:
        return sum(WIDTHS)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) uint8 -> (B, 480) float32."""
        x = images.float() / 127.5 - 1.0
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(
                x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False
            )
        means = []
        for conv in self.convs:
            x = F.relu(conv(x))
            means.append(x.mean(dim=(2, 3)))  # (B, C)
        return SCALE * torch.cat(means, dim=1)


def random_features_id(module: nn.Module) -> str:
    """Names the space in result keys: this network at its constant seed, or another module by class."""
    if isinstance(module, RandomConvFeatures) and module.seed == SEED:
        return RANDOM_FEATURES_ID
    return f"custom:{type(module).__qualname__}"


__all__ = ["RANDOM_FEATURES_ID", "SCALE", "SEED", "RandomConvFeatures", "random_features_id"]
