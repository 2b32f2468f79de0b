"""``gen data pack`` and ``gen data info`` through the real ``gen`` command line."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

import gen
from gen.commands import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_pack_then_read_back(tmp_path, helpers):
    truth = helpers.write_folder(tmp_path / "src", {"cat": 7, "dog": 6}, corrupt=("dog",))
    # one larger image, so that pack's center crop shows: 96 x 64 -> 32 x 32
    big = np.zeros((64, 96, 3), dtype=np.uint8)
    big[:, 16:80] = 200
    Image.fromarray(big).save(tmp_path / "src" / "cat" / "wide.png")
    result = invoke(
        "data", "pack", tmp_path / "src", tmp_path / "out", "--size", 32, "--shard-size", 5, "--workers", 2
    )
    assert result.exit_code == 0, result.output
    assert "wrote 14 samples of 2 classes in 3 shard(s)" in result.output
    assert "skipped 1 unreadable" in result.output and "zz_broken.png" in result.output
    assert json.loads((tmp_path / "out" / "classes.json").read_text()) == {"cat": 0, "dog": 1}
    names = []
    for shard in sorted((tmp_path / "out").glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            names += tar.getnames()
    keys = {n.split(".")[0] for n in names}
    assert len(keys) == 14 and all(n.count(".") == 1 for n in names)  # keys carry no dots
    ds = gen.build("dataset", "webdataset", urls=str(tmp_path / "out"), image_size=32, num_workers=0)
    assert ds.num_samples == 14 and ds.spec.num_classes == 2
    x = torch.cat([b for b, _ in ds.iter_images(100)])
    y = torch.cat([lab for _, lab in ds.iter_images(100)])
    ids, labels, _ = helpers.decode_ids(x)
    wide = [i for i, v in enumerate(x[:, 1, 0, 0].tolist()) if v > 0.5]  # green = 200 only in the wide one
    assert len(wide) == 1
    assert torch.equal(
        ((x[wide[0]] + 1) * 127.5).round().to(torch.uint8), torch.full((3, 32, 32), 200, dtype=torch.uint8)
    )
    others = [(i, lab) for k, (i, lab) in enumerate(zip(ids, y.tolist(), strict=True)) if k != wide[0]]
    assert sorted(i for i, _ in others) == sorted(truth) and all(truth[i] == lab for i, lab in others)


def test_pack_refuses_to_overwrite_and_reports_bad_input(tmp_path, helpers):
    helpers.write_folder(tmp_path / "src", {"a": 2})
    assert (
        invoke("data", "pack", tmp_path / "src", tmp_path / "out", "--size", 32, "--workers", 1).exit_code
        == 0
    )
    again = invoke("data", "pack", tmp_path / "src", tmp_path / "out", "--size", 32, "--workers", 1)
    assert again.exit_code == 2 and "already holds shards" in again.output
    missing = invoke("data", "pack", tmp_path / "nope", tmp_path / "out2")
    assert missing.exit_code == 2
    assert missing.output.strip().splitlines() == [
        f"error: imagefolder: folder not found: {tmp_path / 'nope'}"
    ]
    bad_format = invoke("data", "pack", tmp_path / "src", tmp_path / "out3", "--format", "gif")
    assert bad_format.exit_code == 2 and "--format must be png, jpg or webp" in bad_format.output


def test_info_on_shards_and_folder_with_grid(tmp_path, helpers):
    helpers.write_shards(tmp_path / "shards", 2, 5, 3)
    grid = tmp_path / "grid.png"
    result = invoke("data", "info", tmp_path / "shards", "--grid", grid, "--grid-count", 4, "--grid-size", 16)
    assert result.exit_code == 0, result.output
    assert "webdataset: 10 samples, 3 classes in 2 shard(s)" in result.output
    assert "class0" in result.output and "per class: min 3, median 3, max 4" in result.output
    # ids 0..3, labels 0, 1, 2, 0: a class per row (gen.make_grid), 3 rows of up to 2 tiles of 16 px
    assert Image.open(grid).size == (2 * 18 + 2, 3 * 18 + 2)
    helpers.write_folder(tmp_path / "folder", {"x": 3, "y": 5})
    result = invoke("data", "info", tmp_path / "folder")
    assert result.exit_code == 0, result.output
    assert "imagefolder: 8 samples, 2 classes" in result.output
    assert not (tmp_path / "folder.png").exists()


def tile(grid, row, col, size=16, pad=2):
    """The tile at (row, col) of a grid of ``size`` px tiles with ``pad`` px of padding."""
    top, left = pad + row * (size + pad), pad + col * (size + pad)
    return grid[top : top + size, left : left + size]


def padding_mask(grid, cells, size=16, pad=2):
    """True outside the tiles at ``cells`` ((row, col) pairs): the padding and the empty cells."""
    mask = np.ones(grid.shape[:2], dtype=bool)
    for row, col in cells:
        top, left = pad + row * (size + pad), pad + col * (size + pad)
        mask[top : top + size, left : left + size] = False
    return mask


def test_info_grid_has_a_class_per_row_and_the_padding_of_make_grid(tmp_path, helpers):
    helpers.write_shards(tmp_path / "shards", 2, 5, 3)  # id images, label = id % 3
    grid = tmp_path / "grid.png"
    result = invoke("data", "info", tmp_path / "shards", "--grid", grid, "--grid-count", 7, "--grid-size", 16)
    assert result.exit_code == 0, result.output
    image = np.asarray(Image.open(grid))
    rows = [[0, 3, 6], [1, 4], [2, 5]]  # the first 7 samples, class k in row k, in their order
    assert image.shape == (3 * 18 + 2, 3 * 18 + 2, 3)
    for row, ids in enumerate(rows):
        for col, sample_id in enumerate(ids):
            assert tile(image, row, col)[8, 8, :2].tolist() == [sample_id, 50 * row]  # red id, green label
    cells = [(r, c) for r, ids in enumerate(rows) for c in range(len(ids))]
    assert (image[padding_mask(image, cells)] == gen.images.PAD_VALUE).all()  # empty cells too
    assert gen.images.PAD_VALUE == 255 and np.array_equal(
        gen.make_grid(np.zeros((1, 1, 1, 3), np.uint8), pad=1)[0, 0], [255, 255, 255]
    )  # make_grid's default: the same white

    helpers.write_folder(tmp_path / "folder", {"x": 3, "y": 5})  # ids 0-2 class 0, 3-7 class 1
    result = invoke("data", "info", tmp_path / "folder", "--grid", grid, "--grid-size", 16)
    assert result.exit_code == 0, result.output
    image = np.asarray(Image.open(grid))
    assert image.shape == (2 * 18 + 2, 5 * 18 + 2, 3)  # rows of 3 and 5 images
    assert [tile(image, 0, c)[8, 8, 0] for c in range(3)] == [0, 1, 2]
    assert [tile(image, 1, c)[8, 8, 0] for c in range(5)] == [3, 4, 5, 6, 7]
    cells = [(0, c) for c in range(3)] + [(1, c) for c in range(5)]
    assert (image[padding_mask(image, cells)] == 255).all()


def test_info_errors_are_one_line(tmp_path):
    result = invoke("data", "info", tmp_path / "shard-{000000..000001}.tar")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: webdataset: shard not found: {tmp_path / 'shard-000000.tar'}"
    ]
