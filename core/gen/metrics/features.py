"""The feature extractor of FID and IS: the FID Inception-v3 with weights from a local file.

The weights are not downloaded: give the file with ``--inception-weights`` or the environment variable
``GEN_INCEPTION_WEIGHTS``. Tests and other feature spaces swap the network with
:func:`use_feature_extractor`; results name the feature space they were computed in (:func:`extractor_id`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gen.errors import DamagedFileError, GenError
from gen.metrics.inception import FIDInceptionV3
from gen.tensor_files import read_safetensors, read_torch

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_NAME}"
WEIGHTS_ENV = "GEN_INCEPTION_WEIGHTS"
INCEPTION_ID = "fid-inception-2015-12-05"

_override: list[nn.Module] = []


@contextlib.contextmanager
def use_feature_extractor(module: nn.Module) -> Iterator[nn.Module]:
    """Use ``module`` instead of the FID Inception inside this block (tests, other feature spaces).

    ``module(images)`` takes (B, 3, H, W) uint8 and returns ``(features (B, D), logits (B, K))``.
    """
    _override.append(module)
    try:
        yield module
    finally:
        _override.remove(module)


def weights_path(path: str | Path | None = None) -> Path:
    """The Inception weights file: ``path``, else ``$GEN_INCEPTION_WEIGHTS``; a clear error when missing."""
    given = path or os.environ.get(WEIGHTS_ENV)
    if given and Path(given).is_file():
        return Path(given)
    where = f"{given} does not exist; " if given else ""
    raise GenError(
        f"FID/IS need the FID Inception-v3 weights {WEIGHTS_NAME} ({where}download it from {WEIGHTS_URL}) "
        f"and pass --inception-weights PATH or set {WEIGHTS_ENV}=PATH"
    )


def load_inception(path: str | Path | None = None, device: Any = None) -> FIDInceptionV3:
    """The FID Inception-v3 with weights from a ``.pth`` (loaded with ``weights_only=True``) or
    ``.safetensors`` file with torch-fidelity's parameter names."""
    file = weights_path(path)
    try:
        state = read_safetensors(file) if file.suffix == ".safetensors" else read_torch(file)
    except DamagedFileError as e:  # a corrupt or foreign file, or Python objects refused: one line
        raise DamagedFileError(
            file, e.problem, f"these are not usable Inception weights: download {WEIGHTS_URL}"
        ) from None
    if not isinstance(state, dict):
        raise GenError(f"{file} holds a {type(state).__name__}, not a state dict; download {WEIGHTS_URL}")
    net = FIDInceptionV3()
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise GenError(f"{file} is not the FID Inception-v3 ({WEIGHTS_NAME}): {first}") from None
    return net.to(device)


def feature_extractor(weights: str | Path | None = None, device: Any = None) -> nn.Module:
    """The feature extractor in use: an override from :func:`use_feature_extractor`, else the FID Inception."""
    if _override:
        return _override[-1].to(device)
    return load_inception(weights, device)


def extractor_id(extractor: nn.Module) -> str:
    """Names the feature space in result keys: the FID Inception, or another module by class."""
    return INCEPTION_ID if isinstance(extractor, FIDInceptionV3) else f"custom:{type(extractor).__qualname__}"


def to_nchw(images: np.ndarray | Tensor, device: Any) -> Tensor:
    """(B, H, W, C) uint8 images as the (B, 3, H, W) uint8 batch the feature extractor takes."""
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise GenError(f"expected N x H x W x C uint8 images, got {tuple(x.shape)} {x.dtype}")
    x = x.to(device).permute(0, 3, 1, 2)  # (B, C, H, W)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)  # grey images: the Inception sees three equal channels
    if x.shape[1] != 3:
        raise GenError(f"images need 1 or 3 channels for FID/IS, got {x.shape[1]}")
    return x.contiguous()
