"""The feature extractors of the metrics and the features of a batch, each network run once.

The FID Inception-v3 (FID, IS, KID, precision/recall, sFID) and DINOv2 ViT-L/14 (FD-DINOv2) take weights
from local files, never downloaded: the Inception from ``--inception-weights``, ``$GEN_INCEPTION_WEIGHTS``
or where torch-fidelity and pytorch-fid keep it (torch hub's ``checkpoints`` folder). Tests and other
feature spaces swap the Inception with `use_feature_extractor`; results name the feature space they
were computed in (`extractor_id`).

Feature spaces (the keys of `Extractors.extract`): ``pool`` (B, 2048) Inception pool features,
``logits`` (B, 1008) its unbiased logits, ``spatial`` (B, 2023) sFID's ``mixed_6/conv`` features,
``dinov2`` (B, 1024) DINOv2's class token, ``random`` (B, 480) a fixed random network's features
(`gen.metrics.random_features`: no download, not comparable with published numbers).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor, nn

from gen.errors import DamagedFileError, GenError
from gen.metrics.inception import FIDInceptionV3
from gen.tensor_files import read_safetensors, read_torch

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_NAME}"
WEIGHTS_ENV = "GEN_INCEPTION_WEIGHTS"
#: The same TensorFlow graph as pytorch-fid downloads it (same parameter names).
PYTORCH_FID_NAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_ID = "fid-inception-2015-12-05"

POOL, LOGITS, SPATIAL, DINOV2, RANDOM = "pool", "logits", "spatial", "dinov2", "random"
INCEPTION_SPACES = frozenset({POOL, LOGITS, SPATIAL})

_override: list[nn.Module] = []


@contextlib.contextmanager
def use_feature_extractor(module: nn.Module) -> Iterator[nn.Module]:
    """Use ``module`` instead of the FID Inception inside this block (tests, other feature spaces).

    ``module(images)`` takes (B, 3, H, W) uint8 and returns ``(features (B, D), logits (B, K))``, or
    ``(features, logits, spatial (B, S))`` to serve sFID as well.
    """
    _override.append(module)
    try:
        yield module
    finally:
        _override.remove(module)


def hub_checkpoint_dirs() -> list[Path]:
    """Where ``torch.hub`` keeps downloaded weights (torch-fidelity, pytorch-fid and DINOv2 use it):
    ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME``) and ``~/.cache/torch/hub/checkpoints``."""
    dirs = [
        Path(torch.hub.get_dir()) / "checkpoints",
        Path.home() / ".cache" / "torch" / "hub" / "checkpoints",
    ]
    return list(dict.fromkeys(dirs))


def find_weights(
    given: str | Path | None, env: str, names: Collection[str], dirs: Collection[Path]
) -> tuple[Path | None, str]:
    """A weights file: ``given``, else ``$env``, else the first of ``names`` in ``dirs``.

    Returns:
        (the file or None, what was looked at, as the start of an error message).

    Raises:
        GenError: ``given`` or ``$env`` names a file that does not exist.
    """
    for value, what in ((given, ""), (os.environ.get(env), f"${env}=")):
        if value:
            if Path(value).is_file():
                return Path(value), ""
            raise GenError(f"{what}{value} does not exist")
    for folder in dirs:
        for name in names:
            if (folder / name).is_file():
                return folder / name, ""
    return None, f"not in {', '.join(str(d) for d in dirs)}"


def weights_path(path: str | Path | None = None) -> Path:
    """The Inception weights file: ``path``, else ``$GEN_INCEPTION_WEIGHTS``, else torch-fidelity's or
    pytorch-fid's download in torch hub's cache; a clear error naming where it looked when missing."""
    try:
        found, looked = find_weights(
            path, WEIGHTS_ENV, (WEIGHTS_NAME, PYTORCH_FID_NAME), hub_checkpoint_dirs()
        )
    except GenError as e:
        raise GenError(
            f"{e}: FID/IS need the FID Inception-v3 weights {WEIGHTS_NAME} (download it from {WEIGHTS_URL})"
        ) from None
    if found is not None:
        return found
    raise GenError(
        f"FID/IS need the FID Inception-v3 weights {WEIGHTS_NAME} ({looked}; download it from {WEIGHTS_URL}) "
        f"and pass --inception-weights PATH or set {WEIGHTS_ENV}=PATH; without a download, --metric fd_random "
        "--ref REAL_IMAGES scores in a fixed random network's features (not comparable with published FID)"
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
    """The feature extractor in use: an override from `use_feature_extractor`, else the FID Inception."""
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


@attrs.frozen(eq=False)
class Extractors:
    """The networks of one evaluation; `extract` runs each at most once per batch.

    Attributes:
        inception: ``module(uint8 (B, 3, H, W)) -> (pool, logits[, spatial])`` (None: not needed).
        dinov2: ``module(uint8 (B, 3, H, W)) -> (B, D)`` (None: not needed).
        random: ``module(uint8 (B, 3, H, W)) -> (B, D)``, the fixed random network (None: not needed).
        device: Where the images go.
    """

    inception: nn.Module | None = None
    dinov2: nn.Module | None = None
    random: nn.Module | None = None
    device: torch.device = attrs.field(
        default=None, converter=lambda d: torch.device("cpu" if d is None else d)
    )

    def gives_spatial(self) -> bool:
        """Whether the Inception (or its stand-in) gives sFID's spatial features."""
        if self.inception is None:
            return False
        if isinstance(self.inception, FIDInceptionV3):
            return True
        with torch.no_grad():  # a stand-in says it by what it returns
            probe = self.inception(torch.zeros(2, 3, 16, 16, dtype=torch.uint8, device=self.device))
        return len(probe) >= 3

    @torch.no_grad()
    def extract(self, images: np.ndarray | Tensor, spaces: Collection[str]) -> dict[str, Tensor]:
        """The features of (B, H, W, C) uint8 images in ``spaces`` (``pool``, ``logits``, ``spatial``,
        ``dinov2``, ``random``); ``spatial`` is left out when the Inception's stand-in does not give it."""
        x = to_nchw(images, self.device)  # (B, 3, H, W)
        out: dict[str, Tensor] = {}
        if INCEPTION_SPACES & set(spaces):
            if self.inception is None:
                raise GenError("these metrics need the FID Inception, and none was loaded")
            if isinstance(self.inception, FIDInceptionV3):
                outputs = self.inception(x, spatial=SPATIAL in spaces)
            else:
                outputs = self.inception(x)
            out.update(zip((POOL, LOGITS, SPATIAL), outputs, strict=False))
        if DINOV2 in spaces:
            if self.dinov2 is None:
                raise GenError("FD-DINOv2 needs the DINOv2 network, and none was loaded")
            out[DINOV2] = self.dinov2(x)
        if RANDOM in spaces:
            if self.random is None:
                raise GenError("fd_random needs the random feature network, and none was built")
            out[RANDOM] = self.random(x)
        return {k: v for k, v in out.items() if k in spaces}


__all__ = [
    "DINOV2",
    "INCEPTION_ID",
    "LOGITS",
    "POOL",
    "PYTORCH_FID_NAME",
    "RANDOM",
    "SPATIAL",
    "WEIGHTS_ENV",
    "WEIGHTS_NAME",
    "WEIGHTS_URL",
    "Extractors",
    "extractor_id",
    "feature_extractor",
    "find_weights",
    "hub_checkpoint_dirs",
    "load_inception",
    "to_nchw",
    "use_feature_extractor",
    "weights_path",
]
