"""``shapes``: a synthetic class-conditional image dataset with an analytic oracle (the CPU demo's data).

Every class is a distinct colour *and* a shape (circle, square, triangle, ring, plus, star, ellipse,
then the shapes repeat with new colours) drawn on a black background at a random position, scale and
rotation (``max_rotation`` bounds the rotation; 0 keeps every shape in one orientation). Images are
rendered on the fly, vectorised over the batch, from signed distance functions with one pixel of
anti-aliasing: a batch of 256 images of 32x32 takes a few milliseconds.

Sample ``j`` of the dataset is a pure function of ``(config.seed, j)`` (a counter-based hash, no RNG
state) and its class is ``j % num_classes`` (exactly balanced). The training order is the shared
epoch-permutation stream (`gen_data.stream`): what a global batch holds depends only on the seeds,
whatever the number of ranks or the per-rank batch size that split it.

The oracle labels an image without learning: the colour of the brightest foreground pixels picks the
nearest class colour, and rotation-invariant moments of the foreground mask (angular harmonics 2..5,
spread, a hole at the centroid) pick the nearest shape; an image counts as correct when the colour
gives its label and the shape agrees with that class's shape.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import attrs
import numpy as np
import torch
from attrs import validators as v

import gen
from gen_data.stream import indexed_batches, indexed_pass

#: Class colours in [0, 1] RGB, most distinct first: the 7 non-black corners of the RGB cube
#: (>= 1.0 apart), the 6 face centres (>= 0.707 from everything before), the cube centre and the 12
#: edge midpoints (>= 0.5 apart). Up to 13 classes the colours are >= 0.7 apart and from the background.
PALETTE: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
    (1.0, 1.0, 0.0),
    (1.0, 0.0, 1.0),
    (0.0, 1.0, 1.0),
    (1.0, 1.0, 1.0),
    (1.0, 0.5, 0.5),
    (0.5, 1.0, 0.5),
    (0.5, 0.5, 1.0),
    (0.0, 0.5, 0.5),
    (0.5, 0.0, 0.5),
    (0.5, 0.5, 0.0),
    (0.5, 0.5, 0.5),
    (1.0, 0.5, 0.0),
    (1.0, 0.0, 0.5),
    (0.5, 1.0, 0.0),
    (0.0, 1.0, 0.5),
    (0.0, 0.5, 1.0),
    (0.5, 0.0, 1.0),
    (1.0, 1.0, 0.5),
    (1.0, 0.5, 1.0),
    (0.5, 1.0, 1.0),
    (0.5, 0.0, 0.0),
    (0.0, 0.5, 0.0),
    (0.0, 0.0, 0.5),
)
MAX_CLASSES = len(PALETTE)
BACKGROUND = (0.0, 0.0, 0.0)

#: Shapes, in the order classes use them (class ``i`` draws ``SHAPES[i % len(SHAPES)]``).
SHAPES = ("circle", "square", "triangle", "ring", "plus", "star", "ellipse")

_RING_MID, _RING_HALF = 0.7, 0.3  # ring: radii 0.4..1.0
_PLUS_LEN, _PLUS_HALF = 0.95, 0.3  # plus: arms of half-length 0.95 and half-width 0.3
_STAR_INNER = 0.45  # star: inner vertices at radius 0.45
_ELLIPSE_B = 0.5  # ellipse: semi-axes 1 and 0.5


@attrs.frozen(kw_only=True)
class ShapesConfig:
    """Synthetic coloured shapes: each class a distinct colour and shape on a black background."""

    image_size: int = gen.field(32, doc="Image side in pixels.", validator=v.ge(8))
    num_classes: int = gen.field(
        10,
        doc=f"Classes (each a distinct colour and shape); at most {MAX_CLASSES}.",
        validator=v.in_(range(1, MAX_CLASSES + 1)),
    )
    num_samples: int = gen.field(50_000, doc="Images in the dataset (one epoch).", validator=v.ge(1))
    seed: int = gen.field(0, doc="Which images the dataset holds (the training order has its own seed).")
    min_scale: float = gen.field(
        0.22, doc="Smallest shape radius as a fraction of the image side.", validator=v.gt(0)
    )
    max_scale: float = gen.field(
        0.36, doc="Largest shape radius as a fraction of the image side.", validator=v.le(0.5)
    )
    max_rotation: float = gen.field(
        360.0,
        doc="Rotations are drawn uniformly from [0, max_rotation) degrees: 360 turns shapes any way, "
        "0 keeps each shape in one fixed orientation.",
        validator=[v.ge(0), v.le(360)],
    )

    def spec(self) -> gen.DataSpec:
        """The samples' shape and classes, known without rendering anything."""
        return gen.DataSpec(shape=(3, self.image_size, self.image_size), num_classes=self.num_classes)

    def __attrs_post_init__(self) -> None:
        if self.min_scale > self.max_scale:
            raise ValueError(
                f"min_scale ({self.min_scale}) must not exceed max_scale ({self.max_scale}); swap or adjust them"
            )
        if self.min_scale * self.image_size < 3:
            raise ValueError(
                f"min_scale * image_size = {self.min_scale * self.image_size:.1f} px is too small to draw a "
                "recognisable shape; raise min_scale or image_size (at least 3 px)"
            )


# -- counter-based random numbers ---------------------------------------------------------------------


def _hash_uniform(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """Uniform [0, 1) float64 (N,) that is a pure function of (seed, index, stream)."""
    with np.errstate(over="ignore"):
        x = index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= np.uint64((seed * 0x632BE59BD9B4E019 + stream * 0x85EBCA77C2B2AE63) & ((1 << 64) - 1))
        for _ in range(2):  # two splitmix64 finalisers: index and seed bits fully mixed
            x ^= x >> np.uint64(30)
            x *= np.uint64(0xBF58476D1CE4E5B9)
            x ^= x >> np.uint64(27)
            x *= np.uint64(0x94D049BB133111EB)
            x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


# -- rendering ----------------------------------------------------------------------------------------


def _shape_sdf(shape: str, u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) of a unit-size shape at local coordinates (u, w), any shape."""
    if shape == "circle":
        return torch.sqrt(u * u + w * w) - 1.0
    if shape == "ring":
        return (torch.sqrt(u * u + w * w) - _RING_MID).abs() - _RING_HALF
    if shape in ("square", "triangle"):
        n = 4 if shape == "square" else 3
        sector = 2 * math.pi / n
        r = torch.sqrt(u * u + w * w)
        a = torch.remainder(torch.atan2(w, u), sector) - sector / 2
        return r * torch.cos(a) - math.cos(math.pi / n)  # distance to the sector's edge line
    if shape == "plus":
        au, aw = u.abs(), w.abs()
        arm1 = torch.maximum(au - _PLUS_LEN, aw - _PLUS_HALF)
        arm2 = torch.maximum(au - _PLUS_HALF, aw - _PLUS_LEN)
        return torch.minimum(arm1, arm2)
    if shape == "star":
        sector = 2 * math.pi / 5
        r = torch.sqrt(u * u + w * w)
        a = torch.remainder(torch.atan2(w, u), sector)
        a = torch.minimum(a, sector - a)  # fold onto [0, pi/5]: tip at angle 0, inner vertex at pi/5
        px, py = r * torch.cos(a), r * torch.sin(a)
        bx, by = _STAR_INNER * math.cos(sector / 2), _STAR_INNER * math.sin(sector / 2)
        nx, ny = by, 1.0 - bx  # outward normal of the edge tip (1, 0) -> inner vertex (bx, by)
        norm = math.hypot(nx, ny)
        return ((px - 1.0) * nx + py * ny) / norm
    if shape == "ellipse":
        b = _ELLIPSE_B
        k = torch.sqrt(u * u + (w / b) ** 2)
        grad = torch.sqrt(u * u + (w / (b * b)) ** 2).clamp_min(1e-6)
        return k * (k - 1.0) / grad  # first-order distance to the ellipse k = 1
    raise ValueError(f"unknown shape {shape!r}")


def render_shapes(
    labels: np.ndarray,
    centers: np.ndarray,
    radii: np.ndarray,
    angles: np.ndarray,
    *,
    image_size: int,
) -> torch.Tensor:
    """Render one shape per image.

    Args:
        labels: (N,) int class ids (colour ``PALETTE[y]``, shape ``SHAPES[y % 7]``).
        centers: (N, 2) shape centres (x, y) in pixels.
        radii: (N,) circumradii in pixels.
        angles: (N,) rotations in radians.
        image_size: Image side S.

    Returns:
        (N, 3, S, S) float32 images in [-1, 1].
    """
    n, s = len(labels), image_size
    shape_ids = labels % len(SHAPES)
    order = np.argsort(shape_ids, kind="stable")  # group by shape: each group is a contiguous slice
    bounds = np.searchsorted(shape_ids[order], np.arange(len(SHAPES) + 1))
    coords = torch.arange(s, dtype=torch.float32) + 0.5  # pixel centres
    gy, gx = coords.view(s, 1), coords.view(1, s)
    cx = torch.as_tensor(centers[order, 0], dtype=torch.float32).view(n, 1, 1)
    cy = torch.as_tensor(centers[order, 1], dtype=torch.float32).view(n, 1, 1)
    inv_r = torch.as_tensor(1.0 / radii[order], dtype=torch.float32).view(n, 1, 1)
    cos = torch.as_tensor(np.cos(angles[order]), dtype=torch.float32).view(n, 1, 1) * inv_r
    sin = torch.as_tensor(np.sin(angles[order]), dtype=torch.float32).view(n, 1, 1) * inv_r
    dx, dy = gx - cx, gy - cy  # (N, S, S)
    u = dx * cos + dy * sin  # (N, S, S) shape-local coordinates, unit = radius
    w = dy * cos - dx * sin
    coverage = torch.empty(n, s, s)
    for sid, shape in enumerate(SHAPES):
        a, b = int(bounds[sid]), int(bounds[sid + 1])
        if a == b:
            continue
        sdf = _shape_sdf(shape, u[a:b], w[a:b]).div_(inv_r[a:b])  # (n_s, S, S) in pixels
        coverage[a:b] = sdf.neg_().add_(0.5).clamp_(0.0, 1.0)  # one pixel of anti-aliasing
    alpha = coverage[torch.from_numpy(np.argsort(order))].unsqueeze(1)  # (N, 1, S, S), original order
    colour = torch.tensor(PALETTE, dtype=torch.float32)[torch.from_numpy(labels.astype(np.int64))]  # (N, 3)
    background = torch.tensor(BACKGROUND, dtype=torch.float32).view(1, 3, 1, 1)
    image = background + alpha * (colour.view(n, 3, 1, 1) - background)  # (N, 3, S, S) in [0, 1]
    return image.mul_(2.0).sub_(1.0)


# -- the oracle ---------------------------------------------------------------------------------------


def _shape_features(alpha: np.ndarray) -> np.ndarray:
    """Rotation- and scale-invariant features (N, 6) of soft masks (N, S, S).

    Features: hole (1 - coverage at the centroid), angular harmonics |sum a z^n| / sum a |z|^n for
    n = 2..5 (n-fold symmetry: ellipse 2, triangle 3, square and plus 4, star 5), and the spread
    sum a |z|^2 / (sum a)^2 * 2 pi (1 for a disc; larger for shapes that reach out).
    """
    n, s, _ = alpha.shape
    coords = np.arange(s, dtype=np.float64) + 0.5
    mass = alpha.sum(axis=(1, 2)) + 1e-9  # (N,)
    cx = (alpha * coords[None, None, :]).sum(axis=(1, 2)) / mass
    cy = (alpha * coords[None, :, None]).sum(axis=(1, 2)) / mass
    z = (coords[None, None, :] - cx[:, None, None]) + 1j * (
        coords[None, :, None] - cy[:, None, None]
    )  # (N,S,S)
    r = np.abs(z)
    feats = np.zeros((n, 6))
    # coverage at the centroid, bilinear
    x0 = np.clip(cx - 0.5, 0, s - 1.001)
    y0 = np.clip(cy - 0.5, 0, s - 1.001)
    ix, iy = np.floor(x0).astype(int), np.floor(y0).astype(int)
    fx, fy = x0 - ix, y0 - iy
    rows = np.arange(n)
    centre = (
        alpha[rows, iy, ix] * (1 - fx) * (1 - fy)
        + alpha[rows, iy, ix + 1] * fx * (1 - fy)
        + alpha[rows, iy + 1, ix] * (1 - fx) * fy
        + alpha[rows, iy + 1, ix + 1] * fx * fy
    )
    feats[:, 0] = 1.0 - centre
    zn = np.ones_like(z)
    rn = np.ones_like(r)
    for order in range(1, 6):
        zn = zn * z
        rn = rn * r
        if order >= 2:
            num = np.abs((alpha * zn).sum(axis=(1, 2)))
            den = (alpha * rn).sum(axis=(1, 2)) + 1e-9
            feats[:, order - 1] = num / den
    feats[:, 5] = (alpha * r * r).sum(axis=(1, 2)) / (mass * mass) * 2 * math.pi
    return feats


_PROTOTYPES: np.ndarray | None = None
_FEATURE_SCALE = np.array([0.5, 0.05, 0.05, 0.05, 0.05, 0.05])


def _prototypes() -> np.ndarray:
    """Features (num_shapes, 6) of each shape rendered large and averaged over rotations."""
    global _PROTOTYPES
    if _PROTOTYPES is None:
        rotations = 8
        labels = np.repeat(np.arange(len(SHAPES)), rotations)
        angles = np.tile(np.linspace(0, 2 * math.pi, rotations, endpoint=False) + 0.1, len(SHAPES))
        size = 64
        centers = np.full((len(labels), 2), size / 2)
        radii = np.full(len(labels), size * 0.4)
        images = render_shapes(labels, centers, radii, angles, image_size=size)
        alpha = ((images + 1) / 2).numpy().max(axis=1)  # every shape colour has a channel at 1
        _PROTOTYPES = _shape_features(alpha).reshape(len(SHAPES), rotations, -1).mean(axis=1)
    return _PROTOTYPES


def oracle_labels(x: torch.Tensor, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label images by analysis (in chunks of 512 images, to bound memory).

    Args:
        x: (N, 3, H, W) images in [-1, 1].
        num_classes: How many palette colours are classes.

    Returns:
        ``(label, colour_label, shape_id)``, each (N,) int64: the colour's class, the nearest shape
        (index into `SHAPES`), and the oracle label: the colour's class when the shape agrees
        with it, else -1. Images without a foreground get -1 everywhere.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images (N, 3, H, W), got shape {tuple(x.shape)}")
    parts = [_oracle_chunk(x[i : i + 512], num_classes) for i in range(0, x.shape[0], 512)]
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]


def _oracle_chunk(x: torch.Tensor, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy().astype(np.float64)  # (N, 3, H, W)
    n = img.shape[0]
    background = np.asarray(BACKGROUND).reshape(1, 3, 1, 1)
    diff = img - background
    dist = np.sqrt((diff**2).sum(axis=1))  # (N, H, W) distance from the background colour
    peak = dist.reshape(n, -1).max(axis=1)  # (N,)
    core = dist >= 0.8 * peak[:, None, None]  # the shape's interior: its most saturated pixels
    colour = (diff * core[:, None]).sum(axis=(2, 3)) / core.sum(axis=(1, 2))[:, None] + background.reshape(
        1, 3
    )
    palette = np.asarray(PALETTE[:num_classes])  # (K, 3)
    colour_label = ((colour[:, None, :] - palette[None]) ** 2).sum(axis=-1).argmin(axis=1)  # (N,)
    # Soft mask: each pixel's position between the background and the class colour.
    fg = palette[colour_label] - np.asarray(BACKGROUND)  # (N, 3)
    alpha = (diff * fg[:, :, None, None]).sum(axis=1) / (fg**2).sum(axis=1)[:, None, None]
    # Sharpen to ignore faint noise: below 0.3 of the way to the colour is background, above 0.7 shape.
    alpha = np.clip((alpha - 0.3) / 0.4, 0.0, 1.0)  # (N, H, W)
    feats = _shape_features(alpha)
    proto = _prototypes()
    dist_shape = (((feats[:, None, :] - proto[None]) / _FEATURE_SCALE) ** 2).sum(axis=-1)  # (N, num_shapes)
    shape_id = dist_shape.argmin(axis=1)
    empty = peak < 0.25
    label = np.where(shape_id == colour_label % len(SHAPES), colour_label, -1)
    label[empty] = -1
    colour_label[empty] = -1
    shape_id[empty] = -1
    return label.astype(np.int64), colour_label.astype(np.int64), shape_id.astype(np.int64)


# -- the dataset --------------------------------------------------------------------------------------


class ShapesDataset:
    """The ``shapes`` dataset (see the module docstring)."""

    #: Which score of `evaluate_samples` says which samples are best (``gen eval --metric data``).
    primary_metric = ("oracle_accuracy", "max")

    def __init__(self, config: ShapesConfig):
        self.config = config
        self.spec = config.spec()

    @property
    def num_samples(self) -> int:
        return self.config.num_samples

    def __len__(self) -> int:
        return self.config.num_samples

    def render(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``indices`` (N,) of the dataset: images (N, 3, S, S) in [-1, 1], labels (N,) int64."""
        cfg = self.config
        indices = np.asarray(indices, dtype=np.int64)
        s = cfg.image_size
        labels = indices % cfg.num_classes
        radii = s * (cfg.min_scale + (cfg.max_scale - cfg.min_scale) * _hash_uniform(cfg.seed, indices, 0))
        free = s - 2 * radii  # the shape stays inside the image
        centers = np.stack(
            [
                radii + free * _hash_uniform(cfg.seed, indices, 1),
                radii + free * _hash_uniform(cfg.seed, indices, 2),
            ],
            axis=1,
        )
        angles = math.radians(cfg.max_rotation) * _hash_uniform(cfg.seed, indices, 3)  # radians(360) == 2 pi
        x = render_shapes(labels, centers, radii, angles, image_size=s)
        return x, torch.from_numpy(labels)

    def train_batches(
        self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless batches ``(x (B, 3, S, S) in [-1, 1], y (B,) int64)``; see `gen_data.stream`."""
        return indexed_batches(
            self.render, self.config.num_samples, batch_size,
            seed=seed, rank=rank, world_size=world_size, start_batch=start_batch,
        )  # fmt: skip

    def iter_images(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the dataset in index order (the last batch may be smaller)."""
        return indexed_pass(self.render, self.config.num_samples, batch_size)

    def evaluate_samples(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Score images against their intended labels with the analytic oracle.

        Returns:
            ``oracle_accuracy`` (colour gives ``y`` and the shape agrees), ``color_accuracy`` and
            ``shape_accuracy`` (the shape is ``y``'s shape), each a fraction in [0, 1].
        """
        label, colour_label, shape_id = oracle_labels(x, self.config.num_classes)
        target = y.detach().cpu().numpy().astype(np.int64)
        return {
            "oracle_accuracy": float((label == target).mean()),
            "color_accuracy": float((colour_label == target).mean()),
            "shape_accuracy": float((shape_id == target % len(SHAPES)).mean()),
        }


def build_shapes(config: ShapesConfig) -> ShapesDataset:
    """Synthetic coloured shapes (the embedded default dataset), with an analytic oracle."""
    return ShapesDataset(config)
