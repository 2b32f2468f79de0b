"""The FID Inception-v3 network ("2015-12-05" TensorFlow graph) in plain torch.

This is the network every published FID and Inception Score on ImageNet is measured with: the
TensorFlow Inception graph of 2015-12-05 as ported by pytorch-fid and torch-fidelity (weights file
``weights-inception-2015-12-05-6726825d.pth``). It differs from torchvision's Inception-v3 in 1008
output classes, average pools that ignore padding, and a max pool in the last block; the parameter
names here are torch-fidelity's, so its weights file loads as is.

Preprocessing is torch-fidelity's: uint8 images, a TensorFlow-1.x bilinear resize to 299 × 299 (no
antialiasing, no half-pixel offset), then ``(x - 128) / 128``.

The same pass gives sFID's spatial features on request (``forward(images, spatial=True)``): the graph's
``mixed_6/conv`` (torch-fidelity's ``Mixed_6d.branch1x1``), first 7 channels, as ADM's evaluator keeps them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

INPUT_SIZE = 299
NUM_FEATURES = 2048  # the pool features FID uses
NUM_LOGITS = 1008  # the TensorFlow graph's classes (1000 ImageNet classes and 8 unused)
SPATIAL_CHANNELS = 7  # sFID: the first channels of mixed_6/conv, as the ADM evaluation suite keeps them
NUM_SPATIAL = 17 * 17 * SPATIAL_CHANNELS  # 2023


def resize_bilinear_tf1(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize exactly as TensorFlow 1.x ``resize_bilinear(align_corners=False)`` does it.

    Output pixel i samples the input at ``i * in / out`` (no half-pixel offset), which is what the FID
    Inception graph saw; ``F.interpolate`` samples at ``(i + 0.5) * in / out - 0.5`` and gives other
    features. Bit-exact with torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x`` on CPU.

    Args:
        x: (B, C, H, W) floating point images.
        size: (out_h, out_w).

    Returns:
        (B, C, out_h, out_w).
    """
    out_h, out_w = size

    def grid(n_in: int, n_out: int) -> tuple[Tensor, Tensor, Tensor]:
        pos = torch.arange(n_out, dtype=x.dtype, device=x.device) * torch.tensor(n_in / n_out)  # (n_out,)
        lo = pos.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo, hi, pos - lo.float()

    y_lo, y_hi, dy = grid(x.shape[2], out_h)
    x_lo, x_hi, dx = grid(x.shape[3], out_w)
    top, bottom = x[:, :, y_lo, :], x[:, :, y_hi, :]  # (B, C, out_h, W)
    in_00, in_01 = top[:, :, :, x_lo], top[:, :, :, x_hi]  # (B, C, out_h, out_w)
    in_10, in_11 = bottom[:, :, :, x_lo], bottom[:, :, :, x_hi]
    dx = dx.view(1, 1, 1, out_w)
    in_0 = in_00 + (in_01 - in_00) * dx
    in_1 = in_10 + (in_11 - in_10) * dx
    return in_0 + (in_1 - in_0) * dy.view(1, 1, out_h, 1)


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as TensorFlow), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: Tensor) -> Tensor:
    # TensorFlow's average pool leaves the zero padding out of the mean.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3(x)
        b3d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b3d, bp], 1)


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = layer(b7d)
        bp = self.branch_pool(_avg_pool(x))
        return torch.cat([b1, b7, b7d, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class InceptionE(nn.Module):
    """The last two blocks; the TensorFlow graph pools with max in the second one (``max_pool=True``)."""

    def __init__(self, in_channels: int, *, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, b3d, bp], 1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3: uint8 images in, (pool features, unbiased logits) out.

    ``forward`` returns the 2048-d pool features (FID) and the 1008 logits without the final bias
    (torch-fidelity's ``logits_unbiased``, which its Inception Score uses). Load weights with
    `gen.evaluation.load_inception`; the module never leaves eval mode.
    """

    num_features = NUM_FEATURES
    num_logits = NUM_LOGITS

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.AvgPool = nn.AdaptiveAvgPool2d(output_size=(1, 1))
        self.fc = nn.Linear(NUM_FEATURES, NUM_LOGITS)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FIDInceptionV3:  # noqa: ARG002 - batch norm stays frozen
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor, *, spatial: bool = False) -> tuple[Tensor, ...]:
        """Features of uint8 images.

        Args:
            images: (B, 3, H, W) uint8, any H and W (resized to 299 × 299).
            spatial: Also return sFID's spatial features.

        Returns:
            (B, 2048) float32 pool features and (B, 1008) float32 logits without the fc bias; with
            ``spatial``, third, the (B, 2023) float32 spatial features: the first 7 channels of the
            TensorFlow graph's ``mixed_6/conv`` (the 1 × 1 branch of ``Mixed_6d``, after its ReLU),
            flattened in TensorFlow's (17, 17, 7) order, so that ADM's ``mu_s`` and ``sigma_s`` apply.
        """
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) uint8 images, got {tuple(images.shape)} {images.dtype}")
        x = resize_bilinear_tf1(images.float(), (INPUT_SIZE, INPUT_SIZE))  # (B, 3, 299, 299)
        x = (x - 128) / 128
        x = self.Conv2d_1a_3x3(x)  # (B, 32, 149, 149)
        x = self.Conv2d_2a_3x3(x)  # (B, 32, 147, 147)
        x = self.Conv2d_2b_3x3(x)  # (B, 64, 147, 147)
        x = self.MaxPool_1(x)  # (B, 64, 73, 73)
        x = self.Conv2d_3b_1x1(x)  # (B, 80, 73, 73)
        x = self.Conv2d_4a_3x3(x)  # (B, 192, 71, 71)
        x = self.MaxPool_2(x)  # (B, 192, 35, 35)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))  # (B, 288, 35, 35)
        x = self.Mixed_6a(x)  # (B, 768, 17, 17)
        x = self.Mixed_6c(self.Mixed_6b(x))  # (B, 768, 17, 17)
        if (
            spatial
        ):  # mixed_6/conv:0 is Mixed_6d's 1 x 1 branch; (B, 7, 17, 17) -> (B, 17, 17, 7) -> (B, 2023)
            s = self.Mixed_6d.branch1x1(x)[:, :SPATIAL_CHANNELS]
            s = s.permute(0, 2, 3, 1).flatten(1).float()
        x = self.Mixed_6e(self.Mixed_6d(x))  # (B, 768, 17, 17)
        x = self.Mixed_7a(x)  # (B, 1280, 8, 8)
        x = self.Mixed_7c(self.Mixed_7b(x))  # (B, 2048, 8, 8)
        features = torch.flatten(self.AvgPool(x), 1)  # (B, 2048)
        logits = features @ self.fc.weight.T  # (B, 1008), torch-fidelity's "logits_unbiased"
        if spatial:
            return features.float(), logits.float(), s
        return features.float(), logits.float()


__all__ = [
    "INPUT_SIZE",
    "NUM_FEATURES",
    "NUM_LOGITS",
    "NUM_SPATIAL",
    "SPATIAL_CHANNELS",
    "FIDInceptionV3",
    "resize_bilinear_tf1",
]
