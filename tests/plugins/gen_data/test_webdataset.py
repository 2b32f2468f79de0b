"""``webdataset``: labels, epochs, rank and worker splitting, resume, flips, corrupt samples and errors."""

from __future__ import annotations

import io
import itertools
import logging
import tarfile

import numpy as np
import pytest
import torch
import webdataset
from PIL import Image

import gen
from gen_data.shards import decode_sample
from gen_data.transforms import center_crop_arr, to_uint8_chw


def take(iterator, n):
    return list(itertools.islice(iterator, n))


def build(urls, **fields):
    fields = {"image_size": 32, "num_workers": 0, "random_flip": False, **fields}
    return gen.build("dataset", "webdataset", urls=urls, **fields)


def ids_of(batches, helpers):
    ids, labels = [], []
    for x, y in batches:
        i, lab, _ = helpers.decode_ids(x)
        assert lab == y.tolist()  # the cls part matches the image
        ids += i
        labels += y.tolist()
    return ids, labels


def test_spec_counts_and_one_epoch_sees_every_sample_once(shards, helpers):
    folder, truth = shards
    ds = build(str(folder))
    assert ds.spec == gen.DataSpec(shape=(3, 32, 32), num_classes=3)  # from classes.json
    assert ds.num_samples == 48 and len(ds.shards) == 4
    batches = take(ds.train_batches(8, seed=0), 6)  # 48 // 8 = 6 batches per epoch
    for x, y in batches:
        assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    ids, labels = ids_of(batches, helpers)
    assert sorted(ids) == list(range(48))
    assert all(truth[i] == lab for i, lab in zip(ids, labels, strict=True))
    assert ids != sorted(ids)  # shuffled


def test_brace_pattern_and_list_of_paths(shards):
    folder, _ = shards
    pattern = build(str(folder / "shard-{000000..000003}.tar"))
    listed = build(tuple(str(folder / f"shard-{i:06d}.tar") for i in range(4)))
    assert pattern.shards == listed.shards and pattern.num_samples == 48


def test_two_ranks_read_disjoint_shards_with_equal_batch_counts(shards, helpers):
    folder, _ = shards
    ds = build(str(folder))
    seen = []
    for rank in range(2):
        plan = ds.plan(4, seed=0, rank=rank, world_size=2)
        assert plan.batches_per_epoch == 6
        seen.append(ids_of(take(ds.train_batches(4, seed=0, rank=rank, world_size=2), 6), helpers)[0])
    assert set(seen[0]).isdisjoint(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(48))


def test_unequal_shards_still_give_every_rank_the_same_batches(tmp_path, helpers):
    helpers.write_shards(tmp_path / "s", 3, 12, 3)  # 3 shards over 2 ranks: 24 and 12 samples
    ds = build(str(tmp_path / "s"))
    plans = [ds.plan(4, seed=0, rank=r, world_size=2) for r in range(2)]
    assert {len(p.shards) for p in plans} == {1, 2}
    assert set(plans[0].shards).isdisjoint(plans[1].shards)
    assert plans[0].batches_per_epoch == plans[1].batches_per_epoch == 4
    ids = [ids_of(take(ds.train_batches(4, seed=0, rank=r, world_size=2), 8), helpers)[0] for r in range(2)]
    assert set(ids[0]).isdisjoint(ids[1])  # the short rank repeats its own samples, never the other's


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 4 workers on a 2-core machine
@pytest.mark.parametrize(("num_workers", "num_samples"), [(0, None), (2, None), (4, 16)])
def test_stream_is_deterministic_and_resumes(shards, num_workers, num_samples):
    # (4, 16): 4 readers but 2 batches per epoch, so some readers own no batch in some epochs
    folder, _ = shards
    ds = build(
        str(folder), num_workers=num_workers, num_samples=num_samples, shuffle_buffer=16, random_flip=True
    )
    run = [x for x, _ in take(ds.train_batches(8, seed=5), 14)]  # crosses two epoch boundaries
    again = [x for x, _ in take(ds.train_batches(8, seed=5), 14)]
    assert all(torch.equal(a, b) for a, b in zip(run, again, strict=True))
    for start in (3, 7):
        resumed = [x for x, _ in take(ds.train_batches(8, seed=5, start_batch=start), 4)]
        assert all(torch.equal(a, b) for a, b in zip(run[start : start + 4], resumed, strict=True))
    other = torch.cat([x for x, _ in take(ds.train_batches(8, seed=6), 6)])
    assert not torch.equal(other, torch.cat(run[:6]))


def test_workers_split_shards_within_an_epoch(shards, helpers):
    folder, _ = shards
    ds = build(str(folder), num_workers=2)
    assert ds.plan(8, seed=0).readers == 2
    ids, _ = ids_of(take(ds.train_batches(8, seed=0), 6), helpers)
    assert sorted(ids) == list(range(48))
    # more workers than shards: readers are capped at the shard count instead of failing
    assert build(str(folder), num_workers=16).plan(8, seed=0).readers == 4


def test_random_flip_mirrors_images(shards, helpers):
    folder, truth = shards
    ds = build(str(folder), random_flip=True)
    x = torch.cat([b for b, _ in take(ds.train_batches(8, seed=0), 6)])
    ids, _, flipped = helpers.decode_ids(x)
    assert 8 <= sum(flipped) <= 40
    for img, i, f in zip(x, ids, flipped, strict=True):
        expected = to_uint8_chw(helpers.id_image(i, truth[i]), flip=f)
        assert torch.equal(((img + 1) * 127.5).round().to(torch.uint8), expected)


def test_corrupt_sample_is_skipped_counted_and_reported(tmp_path, helpers, caplog):
    truth = helpers.write_shards(tmp_path / "s", 2, 10, 2, corrupt_ids=(7,))
    ds = build(str(tmp_path / "s"))
    with caplog.at_level(logging.WARNING, logger="gen_data"):
        ids, _ = ids_of(take(ds.train_batches(5, seed=0), 4), helpers)  # one epoch: 20 positions
    assert 7 not in ids and set(ids) == set(truth) - {7}
    assert ds.skipped == 1
    assert "000007" in caplog.text and "skipped 1 corrupt" in caplog.text


def test_truncated_shard_keeps_its_good_samples(tmp_path, helpers):
    helpers.write_shards(tmp_path / "s", 2, 10, 2)
    path = tmp_path / "s" / "shard-000001.tar"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    ds = build(str(tmp_path / "s"), num_samples=20)
    ids, _ = ids_of(take(ds.train_batches(5, seed=0), 8), helpers)
    assert set(range(10)) <= set(ids) and set(ids) < set(range(20))
    assert ds.skipped >= 1


def test_out_of_range_label_is_a_corrupt_sample(shards, helpers):
    folder, _ = shards
    ds = build(str(folder), num_classes=2)  # class 2 exists in the shards
    ids, labels = ids_of(take(ds.train_batches(8, seed=0), 4), helpers)
    assert set(labels) == {0, 1} and ds.skipped > 0


def test_iter_images_is_one_pass(shards, helpers):
    folder, truth = shards
    for workers in (0, 2):
        ds = build(str(folder), num_workers=workers, random_flip=True)
        batches = list(ds.iter_images(10))
        ids, labels = ids_of(batches, helpers)
        assert sorted(ids) == list(range(48))
        assert not any(helpers.decode_ids(torch.cat([x for x, _ in batches]))[2])  # never flipped


def test_missing_shard_fails_at_start_with_its_path(shards):
    folder, _ = shards
    missing = folder / "shard-000009.tar"
    with pytest.raises(gen.GenError, match=f"shard not found: {missing}"):
        build((str(folder / "shard-000000.tar"), str(missing)))
    with pytest.raises(gen.GenError, match="shard-000004.tar"):
        build(str(folder / "shard-{000000..000004}.tar"))


def test_configuration_errors(shards, tmp_path, helpers):
    folder, _ = shards
    with pytest.raises(gen.GenError, match="set `urls`"):
        build("")
    (folder / "classes.json").unlink()
    with pytest.raises(gen.GenError, match="set num_classes"):
        build(str(folder))
    ds = build(str(folder), num_classes=3)
    with pytest.raises(gen.GenError, match="4 shard.*5 ranks"):
        next(ds.train_batches(2, seed=0, rank=0, world_size=5))
    with pytest.raises(gen.GenError, match="set num_samples"):
        build(f"pipe:cat {folder}/shard-000000.tar", num_classes=3)


def test_remote_pipe_url_streams(shards, helpers):
    folder, _ = shards
    ds = build(f"pipe:cat {folder}/shard-{{000000..000001}}.tar", num_classes=3, num_samples=24)
    ids, _ = ids_of(take(ds.train_batches(8, seed=0), 3), helpers)
    assert sorted(ids) == list(range(24))


def test_large_jpeg_is_center_cropped(tmp_path):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (90, 140, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    with webdataset.TarWriter(str(tmp_path / "a.tar"), encoder=False) as sink:
        sink.write({"__key__": "x0", "jpg": buffer.getvalue(), "cls": b"1"})
    ds = build(str(tmp_path / "a.tar"), num_classes=2, image_size=40)
    x, y = next(ds.train_batches(1, seed=0))
    decoded = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    expected = to_uint8_chw(center_crop_arr(decoded, 40))
    assert y.tolist() == [1]
    assert torch.equal(((x[0] + 1) * 127.5).round().to(torch.uint8), expected)
    image_u8, label = decode_sample({"jpg": buffer.getvalue(), "cls": b" 1\n"}, 40, 2, True)
    assert label == 1 and torch.equal(image_u8, expected.flip(-1))


@pytest.mark.parametrize("num_samples", [None, 10])
def test_shards_that_are_not_tar_files_are_refused_at_once_with_one_line(tmp_path, num_samples):
    (tmp_path / "s").mkdir()
    for i in range(2):
        (tmp_path / "s" / f"shard-00000{i}.tar").write_bytes(b"this is not a tar file" * 100)
    with pytest.raises(gen.GenError) as error:
        build(str(tmp_path / "s"), num_classes=2, num_samples=num_samples)
    message = str(error.value)
    assert "\n" not in message and message.startswith(
        f"webdataset: 2 of 2 shard(s) are not tar files: {tmp_path / 's' / 'shard-000000.tar'}, "
        f"{tmp_path / 's' / 'shard-000001.tar'} (ReadError: "
    )


@pytest.mark.parametrize("num_workers", [0, 2])
def test_shards_that_yield_no_sample_fail_with_one_line(tmp_path, helpers, num_workers):
    (tmp_path / "s").mkdir()
    for i in range(2):  # tar files, but empty
        tarfile.open(tmp_path / "s" / f"shard-00000{i}.tar", "w").close()
    with pytest.raises(gen.GenError, match="no samples in 2 shard"):
        build(str(tmp_path / "s"), num_classes=2)
    ds = build(str(tmp_path / "s"), num_classes=2, num_samples=10, num_workers=num_workers)
    with pytest.raises(gen.GenError) as error:
        next(ds.train_batches(2, seed=0))
    message = str(error.value)
    assert "\n" not in message and message.startswith("webdataset: no samples could be read from shards")


def test_corrupt_samples_are_counted_across_workers(tmp_path, helpers):
    helpers.write_shards(tmp_path / "s", 2, 10, 2, corrupt_ids=(3, 14))
    ds = build(str(tmp_path / "s"), num_workers=2)
    ids, _ = ids_of(take(ds.train_batches(5, seed=0), 4), helpers)
    assert not {3, 14} & set(ids)
    assert ds.skipped == 2
