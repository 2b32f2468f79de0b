"""Small random stand-ins for the metrics' networks, images to score, and no weights from the machine.

Every test here runs with empty weight caches: ``$TORCH_HOME``, ``$HOME`` and EDM2's ``$DNNLIB_CACHE_DIR``
point into the test's folder, and ``$GEN_INCEPTION_WEIGHTS`` and ``$GEN_DINOV2_WEIGHTS`` are unset, so
that a developer's downloaded weights never change what a test sees.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen.metrics import DINOv2ViT, use_dinov2_extractor, use_feature_extractor


class TinySpatialInception(torch.nn.Module):
    """A fixed random conv net: uint8 (B, 3, H, W) -> (pool (B, 6), logits (B, 10), spatial (B, 8))."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.head = torch.nn.Linear(6, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, images):
        x = (images.float() - 128) / 128
        h = torch.tanh(self.conv(x))  # (B, 6, H, W)
        spatial = torch.nn.functional.adaptive_avg_pool2d(h[:, :2], 2).flatten(1)  # (B, 8)
        pooled = h.mean((2, 3))
        return pooled, 3 * self.head(pooled), spatial


def tiny_vit(img_size: int = 56, **arch) -> DINOv2ViT:
    """DINOv2's architecture at width 16, 2 blocks of 2 heads, with every parameter random."""
    net = DINOv2ViT(**{"embed_dim": 16, "depth": 2, "num_heads": 2, "img_size": img_size, **arch})
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            scale = 1.0 if name.endswith(("gamma", "norm1.weight", "norm2.weight", "norm.weight")) else 0.3
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return net


@pytest.fixture(autouse=True)
def no_weights_on_this_machine(tmp_path, monkeypatch):
    for name in ("TORCH_HOME", "HOME", "DNNLIB_CACHE_DIR"):
        monkeypatch.setenv(name, str(tmp_path / f"env_{name.lower()}"))
    monkeypatch.delenv("GEN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("GEN_DINOV2_WEIGHTS", raising=False)


@pytest.fixture
def tiny_inception():
    with use_feature_extractor(TinySpatialInception()) as module:
        yield module


@pytest.fixture
def make_vit():
    """``make_vit(img_size=56, **arch)``: DINOv2's architecture, tiny and random (:func:`tiny_vit`)."""
    return tiny_vit


@pytest.fixture
def tiny_dinov2():
    with use_dinov2_extractor(tiny_vit()) as module:
        yield module


@pytest.fixture
def images_npz():
    """``images_npz(path, n, seed, size=8, shift=0)``: an ADM-layout ``.npz`` of random uint8 images."""

    def make(path, n, seed, size=8, shift=0):
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 200, size=(n, size, size, 3)) + shift
        np.savez(path, arr_0=x.clip(0, 255).astype(np.uint8))
        return path

    return make


@pytest.fixture
def features_of():
    """``features_of(module, path)``: the module's outputs on the images of an ``.npz``, as float64."""

    def extract(module, path):
        with np.load(path) as data:
            x = torch.from_numpy(data["arr_0"]).permute(0, 3, 1, 2).contiguous()
        with torch.no_grad():
            out = module(x)
        return tuple(o.double() for o in out) if isinstance(out, tuple) else out.double()

    return extract


@pytest.fixture
def frechet_numpy():
    """Independent Fréchet distance: tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2), all symmetric (eigh)."""

    def distance(a, b):
        mu1, mu2 = a.mean(0), b.mean(0)
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        w, v = np.linalg.eigh(s1)
        root = (v * np.sqrt(w.clip(0))) @ v.T
        inner = np.linalg.eigvalsh(root @ s2 @ root).clip(0)
        return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(inner).sum())

    return distance
