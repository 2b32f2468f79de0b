"""Improved precision and recall (k-NN manifolds, k = 3): point sets whose answer is known, a brute-force
numpy reimplementation, and ``gen eval --metric pr``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gen.commands import app
from gen.metrics import precision_recall
from gen.metrics.precision_recall import knn_radii

runner = CliRunner()


def pr_numpy(real, fake, k=3):
    """The definition, brute force in float64: radius = distance to the k-th nearest other point of the
    same set; a point counts when it lies within the radius of some point of the other set."""

    def dist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    def radii(a):
        return np.sort(dist(a, a), axis=1)[:, k]  # column 0 is the point itself

    precision = (dist(fake, real) <= radii(real)[None, :]).any(1).mean()
    recall = (dist(real, fake) <= radii(fake)[None, :]).any(1).mean()
    return float(precision), float(recall)


def grid(n, offset=0.0):
    """n points on a line, 1 apart: every point's 3rd nearest neighbour is 2 away (3 for the two ends)."""
    return torch.stack(
        [torch.arange(n, dtype=torch.float64) + offset, torch.zeros(n, dtype=torch.float64)], 1
    )


def test_radii_are_the_distance_to_the_kth_other_point():
    # Squared: 4 inside the line, 9 at its ends (their 3rd neighbour is 3 away).
    assert knn_radii(grid(8).float()).tolist() == [9.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 9.0]


def test_known_answers():
    rng = np.random.default_rng(0)
    real = torch.from_numpy(rng.normal(size=(40, 5)))
    assert precision_recall(real, real.clone()) == (1.0, 1.0)  # identical sets
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)  # disjoint, far apart
    # A subset: every sample is a real point (precision 1); the real points far from it are missed.
    two = torch.cat([grid(20), grid(20, offset=1000.0)])
    precision, recall = precision_recall(two, grid(20))
    assert precision == 1.0 and recall == 0.5
    # The samples shifted by half a step: inside the real balls (radius 2), and vice versa.
    assert precision_recall(grid(20), grid(20, offset=0.5)) == (1.0, 1.0)


def test_precision_recall_equal_the_brute_force_definition():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(70, 6))
    fake = rng.normal(0.8, 0.8, size=(55, 6))
    expected = pr_numpy(real, fake)
    assert precision_recall(torch.from_numpy(real), torch.from_numpy(fake)) == pytest.approx(
        expected, abs=1e-12
    )
    assert 0.1 < expected[0] < 0.95 and 0.1 < expected[1] < 0.95  # neither trivial
    assert pr_numpy(real, fake, k=5) != expected
    assert precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=5) == pytest.approx(
        pr_numpy(real, fake, k=5), abs=1e-12
    )


def test_gen_eval_precision_recall(cli, tiny_inception, images_npz, features_of, tmp_path):
    a = images_npz(tmp_path / "a.npz", 40, 0)
    b = images_npz(tmp_path / "b.npz", 30, 1, shift=30)
    cli("eval", "ref-stats", a, tmp_path / "ref.npz", "--metric", "pr")
    cli("eval", b, "--ref", tmp_path / "ref.npz", "--metric", "pr", "--out", tmp_path / "pr.json")
    table = json.loads((tmp_path / "pr.json").read_text())
    row = table["rows"][0]
    real = features_of(tiny_inception, a)[0].numpy().astype(np.float16).astype(np.float64)
    fake = features_of(tiny_inception, b)[0].numpy()
    assert (row["precision"], row["recall"]) == pytest.approx(pr_numpy(real, fake), abs=1e-12)
    assert table["pr_neighbors"] == 3 and row["num_images"] == 30
    cli("eval", a, "--ref", a, "--metric", "pr", "--out", tmp_path / "self.json")
    self_row = json.loads((tmp_path / "self.json").read_text())["rows"][0]
    assert (self_row["precision"], self_row["recall"]) == (1.0, 1.0)


def test_precision_recall_need_more_than_k_images(tiny_inception, images_npz, tmp_path):
    a = images_npz(tmp_path / "a.npz", 3, 0)
    result = runner.invoke(app, ["eval", str(a), "--ref", str(a), "--metric", "pr"])
    assert result.exit_code == 2
    assert "holds 3 images: precision/recall need k + 1 = 4 images; give at least 4" in result.output
