"""``manifold``: the paper's toy experiment (Figure 2), a 2-D spiral embedded in D dimensions.

Points ``s`` on a planar spiral of unit scale are lifted to ``x = s @ P.T`` by a fixed ``P`` (D, 2) with
orthonormal columns (the Q of a seeded Gaussian's QR). The data thus lie on a 2-D plane of R^D; a model
that predicts the clean ``x`` only has to output points of that plane, while ε- or v-prediction must
output full-dimensional noise, which is what breaks as D grows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import attrs
import numpy as np
import torch
from attrs import validators as v

import gen
from gen_data.stream import indexed_batches, indexed_pass, mix_seed

#: Turns of the spiral and its radius range (the outer end sits at radius 1).
SPIRAL_TURNS = 2.0
SPIRAL_R0 = 0.15


@attrs.frozen(kw_only=True)
class ManifoldConfig:
    """A 2-D spiral embedded in D dimensions by a random orthonormal projection (JiT Figure 2)."""

    dim: int = gen.field(16, doc="Ambient dimension D of the observed vectors (>= 2).", validator=v.ge(2))
    seed: int = gen.field(0, doc="Seed of the projection matrix and of the dataset's points.")
    noise: float = gen.field(
        0.0, doc="Std of Gaussian jitter added to the 2-D points (before the lift).", validator=v.ge(0)
    )
    num_samples: int = gen.field(50_000, doc="Points in the dataset (one epoch).", validator=v.ge(1))

    def spec(self) -> gen.DataSpec:
        """Vectors of dimension ``dim``, unconditional."""
        return gen.DataSpec(shape=(self.dim,), num_classes=0)


def spiral(u: torch.Tensor) -> torch.Tensor:
    """Points (N, 2) of the spiral at parameters u (N,) in [0, 1].

    Angle ``2 pi * turns * u``, radius ``r0 + (1 - r0) * u`` (an Archimedean spiral of outer radius 1).
    """
    angle = 2 * math.pi * SPIRAL_TURNS * u
    radius = SPIRAL_R0 + (1 - SPIRAL_R0) * u
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)  # (N, 2)


def projection_matrix(dim: int, seed: int) -> torch.Tensor:
    """P (dim, 2) float64 with orthonormal columns: the Q of a seeded Gaussian's reduced QR."""
    g = torch.Generator().manual_seed(mix_seed(seed, 0x5EED))
    gaussian = torch.randn(dim, 2, generator=g, dtype=torch.float64)  # (D, 2)
    q, r = torch.linalg.qr(gaussian)  # q (D, 2)
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # unique sign convention


class ManifoldDataset:
    """The ``manifold`` dataset: x (B, D) float32, y (B,) zeros (unconditional)."""

    def __init__(self, config: ManifoldConfig):
        self.config = config
        self.spec = config.spec()
        self.projection = projection_matrix(config.dim, config.seed)  # (D, 2) float64
        # The dataset's points, drawn once: parameters along the spiral and the jitter.
        g = torch.Generator().manual_seed(mix_seed(config.seed, 1))
        u = torch.rand(config.num_samples, generator=g, dtype=torch.float64)  # (N,)
        points = spiral(u)  # (N, 2)
        if config.noise > 0:
            points = points + config.noise * torch.randn(points.shape, generator=g, dtype=torch.float64)
        self.points = points  # (N, 2) float64
        # A dense polyline of the spiral for distances (spacing ~1e-3 along the curve).
        self._curve = spiral(torch.linspace(0, 1, 20_001, dtype=torch.float64))  # (M, 2)

    @property
    def num_samples(self) -> int:
        return self.config.num_samples

    def __len__(self) -> int:
        return self.config.num_samples

    def lift(self, points: torch.Tensor) -> torch.Tensor:
        """2-D points (N, 2) -> embedded vectors (N, D) float32."""
        return (points.to(torch.float64) @ self.projection.T).to(torch.float32)  # (N, D)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Embedded vectors (N, D) -> their 2-D coordinates (N, 2) on the plane (float32)."""
        return (x.detach().to(torch.float64).cpu() @ self.projection).to(torch.float32)  # (N, 2)

    def off_manifold(self, x: torch.Tensor) -> torch.Tensor:
        """Squared norm (N,) of the component of x orthogonal to the data plane."""
        xd = x.detach().to(torch.float64).cpu()  # (N, D)
        residual = xd - (xd @ self.projection) @ self.projection.T  # (N, D)
        return residual.pow(2).sum(dim=1)

    def distance_to_spiral(self, points: torch.Tensor) -> torch.Tensor:
        """Euclidean distance (N,) of 2-D points (N, 2) to the spiral curve (a dense polyline)."""
        pts = points.detach().to(torch.float64).cpu()
        out = torch.empty(len(pts), dtype=torch.float64)
        for i in range(0, len(pts), 256):  # bound the (chunk, M) distance matrix to ~40 MB
            out[i : i + 256] = torch.cdist(pts[i : i + 256], self._curve).min(dim=1).values
        return out

    def _batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.lift(self.points[torch.from_numpy(indices)])  # (B, D)
        return x, torch.zeros(len(indices), dtype=torch.int64)

    def train_batches(
        self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless batches ``(x (B, D) float32, y (B,) zeros)``; see `gen_data.stream`."""
        return indexed_batches(
            self._batch, self.config.num_samples, batch_size,
            seed=seed, rank=rank, world_size=world_size, start_batch=start_batch,
        )  # fmt: skip

    def iter_images(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the points in index order (the last batch may be smaller)."""
        return indexed_pass(self._batch, self.config.num_samples, batch_size)

    #: Which score of `evaluate_samples` says which samples are best.
    primary_metric = ("spiral_distance", "min")

    def evaluate_samples(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """How close generated vectors (N, D) are to the data manifold.

        Returns:
            ``spiral_distance``: mean distance of the projected 2-D points to the spiral;
            ``off_manifold``: mean squared norm of the part of x orthogonal to the data plane;
            ``spiral_distance_p90``: the 90th percentile of the distance.
        """
        dist = self.distance_to_spiral(self.project(x))
        return {
            "spiral_distance": float(dist.mean()),
            "spiral_distance_p90": float(torch.quantile(dist, 0.9)),
            "off_manifold": float(self.off_manifold(x).mean()),
        }


def build_manifold(config: ManifoldConfig) -> ManifoldDataset:
    """Toy experiment: a 2-D spiral embedded in D dimensions by a random orthonormal matrix."""
    return ManifoldDataset(config)
