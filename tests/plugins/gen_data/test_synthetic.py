"""``synthetic``: its spec at recipe load, keyed and resumable streams, rank splits and labels."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

import gen

REPO = Path(__file__).resolve().parents[3]
#: Endless (every draw new) and a finite set of 12 samples (epochs of 12).
SIZES = [0, 12]


def take(iterator, n):
    return list(itertools.islice(iterator, n))


def cat(batches):
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def test_spec_defaults_and_size_capability():
    ds = gen.build("dataset", "synthetic")
    assert ds.spec == gen.DataSpec(shape=(3, 32, 32), num_classes=10)
    assert isinstance(ds, gen.Dataset) and not isinstance(ds, gen.KnowsSize)  # endless: no epochs
    x, y = next(ds.train_batches(64, seed=0))
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (64,) and y.dtype == torch.int64
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05  # standard normal
    sized = gen.build("dataset", "synthetic", shape=[5], num_classes=0, num_samples=7)
    assert isinstance(sized, gen.KnowsSize) and sized.num_samples == len(sized) == 7
    assert sized.spec == gen.DataSpec(shape=(5,), num_classes=0)
    assert isinstance(gen.resolve_config("dataset", "synthetic"), gen.SpecFromConfig)


@pytest.mark.parametrize("fields", [{"shape": []}, {"shape": [4, 0, 32]}, {"num_classes": -1}])
def test_bad_config_is_a_recipe_error(fields):
    with pytest.raises(gen.RecipeError):
        gen.build("dataset", "synthetic", **fields)


def test_recipe_load_fills_the_backbone_from_the_config():
    overrides = ["data={name='synthetic', shape=[4, 32, 32], num_classes=1000}", "autoencoder.name=identity"]
    backbone = gen.load_recipe(REPO / "recipes" / "dit_xl2.toml", overrides).backbone.config
    assert (backbone.in_channels, backbone.input_size, backbone.num_classes) == (4, 32, 1000)
    assert backbone.out_channels == 8  # DDPM's learned variance doubles the data's channels


@pytest.mark.parametrize("num_samples", SIZES)
def test_deterministic_and_seed_dependent(num_samples):
    ds = gen.build("dataset", "synthetic", shape=[2, 4, 4], num_samples=num_samples)
    a = cat(take(ds.train_batches(6, seed=3), 3))
    b = cat(take(ds.train_batches(6, seed=3), 3))
    c = cat(take(ds.train_batches(6, seed=4), 3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    other = gen.build("dataset", "synthetic", shape=[2, 4, 4], num_samples=num_samples, seed=1)
    assert not torch.equal(a[0], cat(take(other.train_batches(6, seed=3), 3))[0])


@pytest.mark.parametrize("num_samples", SIZES)
def test_resume_at_start_batch_is_the_same_batch(num_samples):
    ds = gen.build("dataset", "synthetic", shape=[3], num_samples=num_samples)
    stream = take(ds.train_batches(5, seed=0), 6)  # 30 samples: past two epochs of the finite set
    for k in (1, 4):
        x, y = next(ds.train_batches(5, seed=0, start_batch=k))
        assert torch.equal(x, stream[k][0]) and torch.equal(y, stream[k][1])


@pytest.mark.parametrize("num_samples", SIZES)
def test_ranks_split_the_single_process_global_batch(num_samples):
    ds = gen.build("dataset", "synthetic", shape=[3, 2, 2], num_samples=num_samples)
    single_x, single_y = cat(take(ds.train_batches(8, seed=1), 3))
    ranks = [take(ds.train_batches(2, seed=1, rank=r, world_size=4), 3) for r in range(4)]
    x = torch.cat([ranks[r][k][0] for k in range(3) for r in range(4)])
    y = torch.cat([ranks[r][k][1] for k in range(3) for r in range(4)])
    assert torch.equal(x, single_x) and torch.equal(y, single_y)
    first = torch.cat([ranks[r][0][0] for r in range(4)]).flatten(1)  # one global batch, within an epoch
    assert torch.unique(first, dim=0).shape[0] == 8  # the ranks hold disjoint samples


def test_finite_set_epochs_hold_every_sample_once():
    ds = gen.build("dataset", "synthetic", shape=[3], num_samples=12)
    x, _ = cat(take(ds.train_batches(4, seed=0), 6))  # two epochs, each a new permutation of the set
    first, second = x[:12], x[12:]
    assert torch.unique(first, dim=0).shape[0] == 12 and not torch.equal(first, second)
    assert torch.equal(torch.unique(first, dim=0), torch.unique(second, dim=0))


def test_labels_cover_the_classes_and_unconditional_is_zero():
    ds = gen.build("dataset", "synthetic", shape=[1], num_classes=3)
    _, y = cat(take(ds.train_batches(100, seed=0), 2))
    assert y.min() >= 0 and y.max() < 3 and set(y.tolist()) == {0, 1, 2}
    unconditional = gen.build("dataset", "synthetic", shape=[1], num_classes=0, num_samples=5)
    _, y = next(unconditional.train_batches(10, seed=0))
    assert torch.equal(y, torch.zeros(10, dtype=torch.int64))


def test_bad_stream_arguments():
    ds = gen.build("dataset", "synthetic", shape=[1])
    with pytest.raises(ValueError, match="rank"):
        next(ds.train_batches(2, seed=0, rank=2, world_size=2))
