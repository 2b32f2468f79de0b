"""``shapes``: determinism, rank/batch-size independence, the oracle's accuracy and its failure modes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import gen
from gen_data.shapes import PALETTE, SHAPES, ShapesConfig, ShapesDataset, oracle_labels


def take(iterator, n):
    return list(itertools.islice(iterator, n))


def test_spec_and_defaults():
    ds = gen.build("dataset", "shapes")
    assert ds.spec == gen.DataSpec(shape=(3, 32, 32), num_classes=10)
    assert ds.num_samples == 50_000
    x, y = next(ds.train_batches(16, seed=0))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    assert x.min() >= -1 and x.max() <= 1
    assert (x == -1).float().mean() > 0.4  # mostly black background


def test_deterministic_and_seed_dependent():
    ds = ShapesDataset(ShapesConfig(num_samples=100))
    a = take(ds.train_batches(8, seed=3), 3)
    b = take(ds.train_batches(8, seed=3), 3)
    c = take(ds.train_batches(8, seed=4), 3)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[0][0], c[0][0])
    other_data = ShapesDataset(ShapesConfig(num_samples=100, seed=1))
    assert not torch.equal(other_data.render(np.arange(4))[0], ds.render(np.arange(4))[0])


def test_rank_and_batch_size_independent_and_resumable():
    ds = ShapesDataset(ShapesConfig(num_samples=40))
    single = torch.cat([x for x, _ in take(ds.train_batches(8, seed=0), 10)])  # 80 samples, 2 epochs
    r0 = take(ds.train_batches(4, seed=0, rank=0, world_size=2), 10)
    r1 = take(ds.train_batches(4, seed=0, rank=1, world_size=2), 10)
    interleaved = torch.cat([torch.cat([a[0], b[0]]) for a, b in zip(r0, r1, strict=True)])
    assert torch.equal(single, interleaved)
    resumed = take(ds.train_batches(8, seed=0, start_batch=7), 3)
    assert torch.equal(torch.cat([x for x, _ in resumed]), single[56:80])
    # Within an epoch (40 samples) the ranks see disjoint images, and each epoch holds every sample once.
    epoch0 = single[:40].view(40, -1)
    assert torch.unique(epoch0, dim=0).shape[0] == 40


def test_classes_balanced_and_colours_match_labels():
    ds = ShapesDataset(ShapesConfig(num_classes=7, num_samples=70))
    x, y = ds.render(np.arange(70))
    assert torch.equal(torch.bincount(y), torch.full((7,), 10))
    img = (x + 1) / 2
    brightest = img.flatten(2).max(dim=2).values  # (N, 3): the shape's colour
    torch.testing.assert_close(brightest, torch.tensor(PALETTE)[y], atol=1e-6, rtol=0)


@pytest.mark.parametrize("num_classes", [10, 26])
def test_oracle_labels_real_images(num_classes):
    ds = ShapesDataset(ShapesConfig(num_classes=num_classes, num_samples=2000))
    x, y = ds.render(np.arange(2000))
    scores = ds.evaluate_samples(x, y)
    assert scores["oracle_accuracy"] >= 0.99
    assert scores["color_accuracy"] >= 0.99 and scores["shape_accuracy"] >= 0.99


def test_oracle_tolerates_noise_and_other_sizes():
    torch.manual_seed(0)
    for size in (16, 64):
        ds = ShapesDataset(ShapesConfig(image_size=size, num_samples=300))
        x, y = ds.render(np.arange(300))
        noisy = (x + 0.1 * torch.randn_like(x)).clamp(-1, 1)
        assert ds.evaluate_samples(noisy, y)["oracle_accuracy"] >= 0.97


def test_oracle_rejects_wrong_labels_noise_and_blank_images():
    ds = ShapesDataset(ShapesConfig(num_samples=500))
    x, y = ds.render(np.arange(500))
    assert ds.evaluate_samples(x, (y + 1) % 10)["oracle_accuracy"] == 0.0
    noise = torch.rand_like(x) * 2 - 1
    assert ds.evaluate_samples(noise, y)["oracle_accuracy"] < 0.2
    blank = torch.full_like(x[:4], -1.0)
    label, colour, shape = oracle_labels(blank, 10)
    assert (label == -1).all() and (colour == -1).all() and (shape == -1).all()


def test_oracle_checks_shape_not_only_colour():
    # A red (class 0) image that shows a square (class 1's shape) is not recognised as class 0.
    ds = ShapesDataset(ShapesConfig(num_samples=20))
    x, y = ds.render(np.arange(20))
    square = x[(y == 1).nonzero()[0, 0]].clone()  # green square
    red_square = square[[1, 0, 2]]  # swap red and green: the black background stays black
    label, colour, shape = oracle_labels(red_square[None], 10)
    assert colour[0] == 0 and shape[0] == SHAPES.index("square") and label[0] == -1


def test_config_errors():
    with pytest.raises(gen.RecipeError, match="min_scale"):
        gen.build("dataset", "shapes", min_scale=0.4, max_scale=0.3)
    with pytest.raises(gen.RecipeError, match="num_classes"):
        gen.build("dataset", "shapes", num_classes=27)
    with pytest.raises(gen.RecipeError, match="too small"):
        gen.build("dataset", "shapes", image_size=8, min_scale=0.2)


def test_iter_images_is_one_pass():
    ds = ShapesDataset(ShapesConfig(num_samples=23))
    batches = list(ds.iter_images(10))
    assert [len(y) for _, y in batches] == [10, 10, 3]
    x, _ = ds.render(np.arange(23))
    assert torch.equal(torch.cat([b[0] for b in batches]), x)


def _square_orientations(x: torch.Tensor) -> torch.Tensor:
    """Orientation (N,) in radians, modulo a quarter turn, of the squares x (N, 3, S, S): arg(sum a z^4) / 4."""
    alpha = ((x + 1) / 2).amax(dim=1).double()  # (N, S, S)
    coords = torch.arange(x.shape[-1], dtype=torch.float64) + 0.5
    mass = alpha.sum(dim=(1, 2))
    cx = (alpha * coords).sum(dim=(1, 2)) / mass
    cy = (alpha * coords[:, None]).sum(dim=(1, 2)) / mass
    z = torch.complex(coords - cx[:, None, None], coords[:, None] - cy[:, None, None])  # (N, S, S)
    return torch.angle((alpha * z**4).sum(dim=(1, 2))) / 4


def test_max_rotation_bounds_the_orientation_and_keeps_positions_and_sizes():
    any_way = ShapesDataset(ShapesConfig(num_samples=200))
    assert any_way.config.max_rotation == 360.0
    upright = ShapesDataset(ShapesConfig(num_samples=200, max_rotation=0))
    x_any, y = any_way.render(np.arange(200))
    x_upright, _ = upright.render(np.arange(200))
    # Position and size come from their own random streams: circles (rotation-free) are the same.
    circles = y % 7 == 0
    torch.testing.assert_close(x_upright[circles], x_any[circles], atol=1e-5, rtol=0)  # float rounding only
    squares = y % 7 == 1
    fixed, turned = _square_orientations(x_upright[squares]), _square_orientations(x_any[squares])
    assert fixed.std() < 0.02  # one orientation, up to anti-aliasing
    assert turned.std() > 0.3  # a quarter turn spread uniformly has std 0.45
    assert upright.evaluate_samples(x_upright, y)["oracle_accuracy"] >= 0.99
    with pytest.raises(gen.RecipeError, match="max_rotation"):
        gen.build("dataset", "shapes", max_rotation=400)
