"""The ``latents`` dataset on latents that ``gen data encode`` wrote with a tiny random VAE."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import gen
from gen.protocols import EncodedData

pytest.importorskip("diffusers")

NUM_IMAGES = 7


@pytest.fixture(scope="module")
def encoded(cli, tiny_vae_dir, tmp_path_factory):
    """{"flip": folder, "no_flip": folder}: 7 random 16 x 16 images of 2 classes, encoded (posterior mean)
    with and without their flips into shards of 3."""
    root = tmp_path_factory.mktemp("latents")
    rng = np.random.default_rng(0)
    for i in range(NUM_IMAGES):
        (root / "src" / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
            root / "src" / f"class{i % 2}" / f"{i}.png"
        )
    folders = {}
    for name, flip in (("flip", "--flip"), ("no_flip", "--no-flip")):
        folders[name] = root / name
        cli(
            "data", "encode", root / "src", folders[name], "--vae", tiny_vae_dir, "--image-size", 16,
            "--shard-size", 3, "--set", "encode_mode=mean", "--workers", 1, flip,
        )  # fmt: skip
    return folders


def build(root, **fields):
    return gen.build("dataset", "latents", root=str(root), **fields)


def rows(x: torch.Tensor, ds) -> list[tuple[int, int]]:
    """(sample, view) of each latent of a batch x (B, c, h, w), found among the stored ones."""
    stored = {
        (i, v): torch.from_numpy(ds.read(i)[v]) for i in range(len(ds)) for v in range(ds.read(i).shape[0])
    }
    found = []
    for z in x:
        found.append(next(key for key, s in stored.items() if torch.equal(s, z)))
    return found


def take(stream, n):
    return [(x.clone(), y.clone()) for x, y in itertools.islice(stream, n)]


def test_spec_identity_and_capabilities(encoded, tiny_vae_dir):
    ds = build(encoded["flip"])
    vae = gen.build("autoencoder", "sd_vae", path=str(tiny_vae_dir))
    assert ds.spec == gen.DataSpec(shape=(4, 8, 8), num_classes=2)
    assert ds.encoded_by == vae.identity() and ds.image_shape == (3, 16, 16) and ds.flipped
    assert isinstance(ds, gen.Dataset) and isinstance(ds, EncodedData) and isinstance(ds, gen.KnowsSize)
    assert ds.num_samples == len(ds) == NUM_IMAGES and not isinstance(ds, gen.ListsImages)
    config = gen.resolve_config("dataset", "latents", root=str(encoded["flip"]))
    assert isinstance(config, gen.SpecFromConfig) and config.spec() == ds.spec
    assert isinstance(config, EncodedData) and config.encoded_by == ds.encoded_by
    missing = gen.resolve_config("dataset", "latents", root=str(encoded["flip"] / "absent"))
    assert missing.spec() is None and missing.encoded_by == {}  # recipes load on machines without the data


def test_batches_hold_the_stored_latents_and_labels(encoded):
    ds = build(encoded["flip"], random_flip=False)
    x, y = next(ds.train_batches(NUM_IMAGES, seed=0))  # one batch = one epoch: every sample once
    assert x.shape == (NUM_IMAGES, 4, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    found = rows(x, ds)
    assert sorted(i for i, _ in found) == list(range(NUM_IMAGES)) and {v for _, v in found} == {0}
    labels = json.loads((encoded["flip"] / "latents.json").read_text())["classes"]
    assert labels == {"class0": 0, "class1": 1}
    # folder order: class0 holds images 0, 2, 4, 6 (samples 0..3), class1 the others (samples 4..6)
    assert [int(y[k]) for k in range(NUM_IMAGES)] == [int(i >= 4) for i, _ in found]


def test_stream_is_deterministic_and_resumes_exactly(encoded):
    ds = build(encoded["flip"])
    first = take(ds.train_batches(3, seed=5), 6)
    again = take(build(encoded["flip"]).train_batches(3, seed=5), 6)
    resumed = take(ds.train_batches(3, seed=5, start_batch=4), 2)
    other = take(ds.train_batches(3, seed=6), 6)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first[4:], resumed, strict=True)
    )
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_ranks_split_an_epoch(encoded):
    ds = build(encoded["flip"], random_flip=False)
    seen = [rows(next(ds.train_batches(3, seed=1, rank=r, world_size=2))[0], ds) for r in (0, 1)]
    assert not {i for i, _ in seen[0]} & {i for i, _ in seen[1]}


def test_random_flip_draws_both_versions(encoded):
    ds = build(encoded["flip"])
    found = [key for x, _ in take(ds.train_batches(4, seed=0), 8) for key in rows(x, ds)]
    assert {v for _, v in found} == {0, 1}
    assert sum(v for _, v in found) not in (0, len(found))


def test_no_flip_latents(encoded):
    with pytest.raises(gen.GenError, match="without flips.*random_flip = false"):
        build(encoded["no_flip"])
    ds = build(encoded["no_flip"], random_flip=False)
    assert not ds.flipped and ds.read(0).shape == (1, 4, 8, 8)
    # the stored latent of an image is the same whether its flip was encoded too
    torch.testing.assert_close(
        torch.from_numpy(ds.read(3)[0]), torch.from_numpy(build(encoded["flip"]).read(3)[0])
    )


def one_line(info) -> str:
    text = str(info.value)
    assert "\n" not in text
    return text


def test_missing_and_damaged_data_are_one_line(encoded, tmp_path):
    with pytest.raises(gen.GenError) as info:
        build(tmp_path / "nowhere")
    assert f"{tmp_path / 'nowhere' / 'latents.json'} not found" in one_line(
        info
    ) and "gen data encode" in one_line(info)
    with pytest.raises(gen.GenError, match="set `root`"):
        build("")
    copy = tmp_path / "copy"
    shutil.copytree(encoded["flip"], copy)
    (copy / "latents.json").write_text("{ damaged")
    with pytest.raises(gen.GenError) as info:
        build(copy)
    assert "latents.json is damaged" in one_line(info) and "gen data encode" in one_line(info)
    shutil.copy(encoded["flip"] / "latents.json", copy / "latents.json")
    shard = copy / "shard-000001.tar"
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(gen.GenError) as info:
        build(copy)
    assert f"{shard} is truncated" in one_line(info)
    (copy / "index.npy").unlink()
    with pytest.raises(gen.GenError, match="cannot read .*index.npy"):
        build(copy)


def test_a_pickled_copy_reads_on_its_own(encoded):
    import pickle

    ds = build(encoded["flip"])
    ds.read(0)  # opens a shard
    copy = pickle.loads(pickle.dumps(ds))  # as a spawned DataLoader worker would receive it
    del ds
    assert copy.read(0).shape == (2, 4, 8, 8)


def test_stream_arguments_are_checked(encoded):
    ds = build(encoded["flip"])
    with pytest.raises(ValueError, match="start_batch"):
        ds.train_batches(2, seed=0, start_batch=-1)
    with pytest.raises(ValueError, match="rank"):
        ds.train_batches(2, seed=0, rank=2, world_size=2)
