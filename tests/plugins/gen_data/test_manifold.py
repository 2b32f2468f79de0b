"""``manifold``: an orthonormal lift of a planar spiral, its projection and the sample metrics."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import gen
from gen_data.manifold import ManifoldConfig, ManifoldDataset, projection_matrix, spiral


@pytest.mark.parametrize("dim", [2, 3, 16, 512])
def test_projection_has_orthonormal_columns(dim):
    p = projection_matrix(dim, seed=0)
    assert p.shape == (dim, 2) and p.dtype == torch.float64
    torch.testing.assert_close(p.T @ p, torch.eye(2, dtype=torch.float64), atol=1e-12, rtol=0)


def test_projection_depends_on_seed_only():
    torch.testing.assert_close(projection_matrix(8, 3), projection_matrix(8, 3), atol=0, rtol=0)
    assert not torch.allclose(projection_matrix(8, 3), projection_matrix(8, 4))


def test_spiral_has_unit_scale():
    pts = spiral(torch.linspace(0, 1, 1001, dtype=torch.float64))
    radius = pts.norm(dim=1)
    assert math.isclose(float(radius.max()), 1.0, abs_tol=1e-12)
    assert (radius[1:] > radius[:-1]).all()  # moves outward


def test_lift_project_round_trip_and_zero_off_manifold():
    ds = ManifoldDataset(ManifoldConfig(dim=32, num_samples=200))
    x, y = next(ds.train_batches(64, seed=0))
    assert x.shape == (64, 32) and x.dtype == torch.float32 and (y == 0).all()
    assert ds.spec == gen.DataSpec(shape=(32,), num_classes=0)
    pts = ds.project(x)
    torch.testing.assert_close(ds.lift(pts), x, atol=1e-6, rtol=0)
    assert float(ds.off_manifold(x).max()) < 1e-10
    # noise-free data lies on the spiral
    assert float(ds.distance_to_spiral(pts).max()) < 1e-3


def test_evaluate_samples_separates_data_from_noise():
    ds = ManifoldDataset(ManifoldConfig(dim=16, num_samples=500))
    x, y = next(ds.iter_images(500))
    good = ds.evaluate_samples(x, y)
    assert good["spiral_distance"] < 1e-3 and good["off_manifold"] < 1e-10
    noise = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    bad = ds.evaluate_samples(noise, y)
    assert bad["spiral_distance"] > 0.05 and bad["spiral_distance_p90"] > bad["spiral_distance"] * 0.9
    assert bad["off_manifold"] == pytest.approx(14.0, rel=0.15)  # chi-square with 14 dof
    # pushing data off the plane shows up in off_manifold only
    p = ds.projection.to(torch.float32)
    normal = torch.randn(16, generator=torch.Generator().manual_seed(1))
    normal = normal - p @ (p.T @ normal)
    normal = normal / normal.norm()
    shifted = ds.evaluate_samples(x + 0.5 * normal, y)
    assert shifted["off_manifold"] == pytest.approx(0.25, rel=1e-4)
    assert shifted["spiral_distance"] < 1e-3


def test_noise_jitters_points_and_stream_is_deterministic():
    ds = ManifoldDataset(ManifoldConfig(dim=4, noise=0.05, num_samples=1000))
    x, y = next(ds.iter_images(1000))
    mean = ds.evaluate_samples(x, y)["spiral_distance"]
    assert 0.01 < mean < 0.05
    a = list(itertools.islice(ds.train_batches(10, seed=1, start_batch=3), 2))
    b = list(itertools.islice(ds.train_batches(10, seed=1), 5))[3:]
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b, strict=True))


def test_built_through_registry():
    ds = gen.build("dataset", "manifold", dim=2, num_samples=10)
    assert ds.spec.shape == (2,) and ds.num_samples == 10
    with pytest.raises(gen.RecipeError, match="dim"):
        gen.build("dataset", "manifold", dim=1)
