"""DINOv2 ViT-L/14 in plain torch: the feature space of FD-DINOv2 (EDM2's metric).

The network is DINOv2's ``DinoVisionTransformer`` as its torch hub builds ``dinov2_vitl14``: patch 14,
width 1024, 24 blocks of 16 heads, MLP ratio 4, layer scale, LayerNorm eps 1e-6, a 37 × 37 grid of
position embeddings (trained at 518 px) interpolated bicubically to the input's grid with DINOv2's
0.1 offset. The parameter names are DINOv2's, so ``dinov2_vitl14_pretrain.pth`` loads as is. The feature
is the normalised class token (1024-d), what the hub model returns.

Preprocessing is EDM2's (``DINOv2Detector``, resize mode ``torch``): uint8 images resized to 224 × 224
bicubically with antialiasing, scaled to [0, 1], normalised with ImageNet's mean and standard deviation.

The weights are never downloaded: ``--dinov2-weights PATH``, ``$GEN_DINOV2_WEIGHTS``, or the file the
torch hub (and EDM2, through dnnlib's cache) downloaded before.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gen.errors import DamagedFileError, GenError
from gen.metrics.features import find_weights, hub_checkpoint_dirs
from gen.tensor_files import read_safetensors, read_torch

DINOV2_NAME = "dinov2_vitl14_pretrain.pth"
DINOV2_URL = f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/{DINOV2_NAME}"
DINOV2_ENV = "GEN_DINOV2_WEIGHTS"
DINOV2_ID = "dinov2-vitl14"
INPUT_SIZE = 224  # EDM2 resizes every image to 224 x 224 (16 x 16 patches)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VIT_L14 = {"embed_dim": 1024, "depth": 24, "num_heads": 16, "patch_size": 14, "img_size": 518}

_override: list[nn.Module] = []


class Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` projection (DINOv2's names)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, N, D) -> (B, N, D)."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, N, D / heads)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block with layer scale: ``x + ls1(attn(norm1(x)))``, ``x + ls2(mlp(norm2(x)))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * mlp_ratio)
        self.ls2 = LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, H / p * W / p, D), row-major over the patch grid."""
        return self.proj(x).flatten(2).transpose(1, 2)


class DINOv2ViT(nn.Module):
    """DINOv2's vision transformer (ViT-L/14 by default): uint8 images in, the class token out.

    Args:
        embed_dim: Width D.
        depth: Blocks.
        num_heads: Attention heads.
        patch_size: Patch side p.
        img_size: The training resolution, which sets the grid of position embeddings.
        input_size: Images are resized to ``input_size`` square first (EDM2: 224).
    """

    def __init__(
        self,
        *,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        patch_size: int = 14,
        img_size: int = 518,
        input_size: int = INPUT_SIZE,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.input_size = input_size
        self.num_features = embed_dim
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))  # training only; in the weights file
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def position_embeddings(self, rows: int, cols: int) -> Tensor:
        """(1, 1 + rows * cols, D): the class token's and the patch grid's, interpolated as DINOv2 does
        (bicubic with ``scale_factor = (rows + 0.1) / M``, no antialiasing) when the grid differs."""
        n = self.pos_embed.shape[1] - 1
        if n == rows * cols and rows == cols:
            return self.pos_embed
        m = math.isqrt(n)
        grid = self.pos_embed[:, 1:].float().reshape(1, m, m, -1).permute(0, 3, 1, 2)  # (1, D, M, M)
        grid = F.interpolate(grid, scale_factor=((rows + 0.1) / m, (cols + 0.1) / m), mode="bicubic")
        if grid.shape[-2:] != (rows, cols):
            raise ValueError(
                f"position embeddings interpolated to {tuple(grid.shape[-2:])}, not {(rows, cols)}"
            )
        grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([self.pos_embed[:, :1], grid.to(self.pos_embed.dtype)], dim=1)

    def preprocess(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) uint8 -> (B, 3, S, S) float32 normalised (EDM2's resize mode ``torch``)."""
        x = F.interpolate(images.float(), size=(self.input_size,) * 2, mode="bicubic", antialias=True)
        return (x / 255 - self.mean) / self.std

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """The normalised class token of uint8 images.

        Args:
            images: (B, 3, H, W) uint8, any H and W.

        Returns:
            (B, D) float32.
        """
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) uint8 images, got {tuple(images.shape)} {images.dtype}")
        x = self.preprocess(images)
        rows, cols = x.shape[2] // self.patch_size, x.shape[3] // self.patch_size
        tokens = self.patch_embed(x)  # (B, rows * cols, D)
        tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1)
        tokens = tokens + self.position_embeddings(rows, cols)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 0].float()

    @torch.no_grad()
    def patch_tokens(self, images: Tensor, size: int) -> Tensor:
        """The normalised patch tokens of float images (DINOv2's ``x_norm_patchtokens``), as REPA feeds
        its encoder: [-1, 1] to [0, 1], ImageNet's normalisation, then a bicubic resize to ``size``.

        Args:
            images: (B, 3, H, W) float in [-1, 1].
            size: The side the encoder sees (REPA: 224 at 256 px).

        Returns:
            (B, (size / p)², D) in the images' dtype (or autocast's), row-major over the patch grid.
        """
        x = ((images + 1) / 2 - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        x = F.interpolate(x, size=(size, size), mode="bicubic")
        rows, cols = size // self.patch_size, size // self.patch_size
        tokens = self.patch_embed(x)  # (B, rows * cols, D)
        tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1).to(tokens.dtype), tokens], dim=1)
        tokens = tokens + self.position_embeddings(rows, cols).to(tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 1:]


@contextlib.contextmanager
def use_dinov2_extractor(module: nn.Module) -> Iterator[nn.Module]:
    """Use ``module`` instead of DINOv2 ViT-L/14 inside this block (tests, other feature spaces):
    ``module(uint8 (B, 3, H, W)) -> (B, D)``."""
    _override.append(module)
    try:
        yield module
    finally:
        _override.remove(module)


def dinov2_dirs() -> list[Path]:
    """Where DINOv2's weights may already be: torch hub's cache and EDM2's (dnnlib's) copy of it."""
    dnnlib = Path(os.environ.get("DNNLIB_CACHE_DIR") or Path.home() / ".cache" / "dnnlib")
    return list(dict.fromkeys([*hub_checkpoint_dirs(), dnnlib / "torch_hub" / "checkpoints"]))


def dinov2_weights_path(path: str | Path | None = None) -> Path:
    """The DINOv2 weights file: ``path``, else ``$GEN_DINOV2_WEIGHTS``, else a torch hub download; a
    clear error naming where it looked when missing."""
    what = f"FD-DINOv2 needs the DINOv2 ViT-L/14 weights {DINOV2_NAME}"
    try:
        found, looked = find_weights(path, DINOV2_ENV, (DINOV2_NAME,), dinov2_dirs())
    except GenError as e:
        raise GenError(f"{e}: {what} (download it from {DINOV2_URL})") from None
    if found is not None:
        return found
    raise GenError(
        f"{what} ({looked}; download it from {DINOV2_URL}) and pass --dinov2-weights PATH or set "
        f"{DINOV2_ENV}=PATH"
    )


def load_dinov2(path: str | Path | None = None, device: Any = None, **arch: int) -> DINOv2ViT:
    """DINOv2 (ViT-L/14, or ``arch``: the keyword arguments of `DINOv2ViT`) with weights from a
    ``.pth`` (loaded with ``weights_only=True``) or ``.safetensors`` file with DINOv2's parameter names."""
    file = dinov2_weights_path(path)
    try:
        state = read_safetensors(file) if file.suffix == ".safetensors" else read_torch(file)
    except DamagedFileError as e:
        raise DamagedFileError(
            file, e.problem, f"these are not usable DINOv2 weights: download {DINOV2_URL}"
        ) from None
    if not isinstance(state, dict):
        raise GenError(f"{file} holds a {type(state).__name__}, not a state dict; download {DINOV2_URL}")
    return _with_state(file, state, {**VIT_L14, **arch}, f"DINOv2 ViT-L/14 ({DINOV2_NAME})").to(device)


def _with_state(file: Path, state: dict[str, Tensor], arch: dict[str, int], what: str) -> DINOv2ViT:
    """A `DINOv2ViT` of ``arch`` holding ``state`` (read from ``file``), float32 on the CPU; a file of
    another architecture is one line naming it and the key."""
    with torch.device("meta"):
        net = DINOv2ViT(**arch)
    try:
        missing, _ = net.load_state_dict(state, strict=False, assign=True)  # as the hub, extra keys pass
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise GenError(f"{file} is not {what}: {first}") from None
    if missing:
        raise GenError(f"{file} is not {what}: it lacks {', '.join(missing[:3])}")
    net.mean, net.std = (
        torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
        torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
    )
    return net.float()


def load_dinov2_encoder(path: str | Path, device: Any = None) -> DINOv2ViT:
    """A DINOv2 ViT of any size (S, B, L/14, or a small one a test saves) from a local weights file with
    DINOv2's parameter names (``.safetensors``, else a torch file read with ``weights_only=True``): its
    width, depth, patch and position grid are read from the tensors, its heads are width / 64 as in
    every DINOv2. Frozen, in eval mode, float32 on ``device``. Nothing is looked for elsewhere.

    Raises:
        gen.errors.DamagedFileError: the file is missing or damaged (one line naming it).
        GenError: it holds no DINOv2 ViT (one line naming the file and the key).
    """
    file = Path(path)
    state = read_safetensors(file) if file.suffix == ".safetensors" else read_torch(file)
    what = "a DINOv2 ViT (DINOv2's parameter names)"
    if not isinstance(state, dict):
        raise GenError(f"{file} holds a {type(state).__name__}, not {what}'s state dict")
    for key in ("cls_token", "pos_embed", "patch_embed.proj.weight"):
        if not isinstance(state.get(key), Tensor):
            raise GenError(f"{file} lacks {key}: it is not {what}")
    width, patch = state["cls_token"].shape[-1], state["patch_embed.proj.weight"].shape[-1]
    depth = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("blocks.")), default=-1)
    grid = math.isqrt(state["pos_embed"].shape[1] - 1)
    arch = dict(embed_dim=width, depth=depth, num_heads=max(1, width // 64), patch_size=patch)
    return _with_state(file, state, {**arch, "img_size": grid * patch}, what).to(device)


def dinov2_extractor(weights: str | Path | None = None, device: Any = None) -> nn.Module:
    """The DINOv2 network in use: an override from `use_dinov2_extractor`, else ViT-L/14 from
    ``weights``."""
    if _override:
        return _override[-1].to(device)
    return load_dinov2(weights, device)


def dinov2_id(module: nn.Module) -> str:
    """Names the DINOv2 feature space in result keys: ViT-L/14, or another module by class."""
    if (
        isinstance(module, DINOv2ViT)
        and module.num_features == VIT_L14["embed_dim"]
        and len(module.blocks) == 24
    ):
        return DINOV2_ID
    return f"custom:{type(module).__qualname__}"


__all__ = [
    "DINOV2_ENV",
    "DINOV2_ID",
    "DINOV2_NAME",
    "DINOV2_URL",
    "VIT_L14",
    "DINOv2ViT",
    "dinov2_extractor",
    "dinov2_id",
    "dinov2_weights_path",
    "load_dinov2",
    "load_dinov2_encoder",
    "use_dinov2_extractor",
]
