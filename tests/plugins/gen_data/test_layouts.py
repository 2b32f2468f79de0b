"""Data of any layout: flat (unconditional) folders, labels from CSV or JSON files, 1/3/4 channels, and the
warning for images smaller than ``image_size``."""

from __future__ import annotations

import itertools
import json
import tarfile
import warnings
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen_data import ImageFolderConfig, WebDatasetConfig, folders

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]


def take(iterator, n):
    return list(itertools.islice(iterator, n))


def build(root, **fields):
    return gen.build(
        "dataset", "imagefolder", root=str(root), **{"image_size": 16, "num_workers": 0, **fields}
    )


def gray(value: int, size: int = 16) -> Image.Image:
    """A grayscale image whose top-left pixel is ``value``; the left half is brighter (so a flip shows)."""
    arr = np.full((size, size), value, dtype=np.uint8)
    arr[:, : size // 2] = np.minimum(value + 100, 255)
    return Image.fromarray(arr, mode="L")


def write_flat(root, n: int, *, size: int = 16) -> dict[str, int]:
    """``n`` grayscale images directly in ``root``, image ``i`` of value ``i``; returns {name: value}."""
    root.mkdir(parents=True, exist_ok=True)
    names = {}
    for i in range(n):
        gray(i, size).save(root / f"img{i:03d}.png")
        names[f"img{i:03d}.png"] = i
    return names


def values(x: torch.Tensor) -> list[int]:
    """The top-right pixel of each image (B, C, H, W) in [-1, 1] as uint8: the image's value when unflipped."""
    return ((x[:, 0, 0, -1] + 1) * 127.5).round().to(torch.int64).tolist()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


# -- flat folders ---------------------------------------------------------------------------------------


def test_flat_folder_is_one_unconditional_dataset(tmp_path):
    write_flat(tmp_path / "ffhq", 10)
    ds = build(tmp_path / "ffhq", random_flip=False)
    assert ds.classes == [] and ds.spec == gen.DataSpec(shape=(3, 16, 16), num_classes=0)
    assert ds.num_samples == 10
    batches = take(ds.train_batches(5, seed=0), 2)  # one epoch
    assert sorted(v for x, _ in batches for v in values(x)) == list(range(10))
    assert all(y.tolist() == [0] * 5 for _, y in batches)


def test_flat_folder_resumes_exactly(tmp_path):
    write_flat(tmp_path / "flat", 7)
    ds = build(tmp_path / "flat")
    run = take(ds.train_batches(3, seed=4), 6)  # 18 positions: more than two epochs of 7
    resumed = take(build(tmp_path / "flat").train_batches(3, seed=4, start_batch=4), 2)
    for (xa, ya), (xb, yb) in zip(run[4:], resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_layouts_auto_classes_and_flat(tmp_path):
    # nested folders without images at the top: classes, as before
    for name in ("b", "a"):
        write_flat(tmp_path / "nested" / name, 2)
    ds = build(tmp_path / "nested")
    assert ds.classes == ["a", "b"] and ds.spec.num_classes == 2
    # layout = "flat" takes every image under root, sub-folders too (FFHQ's 00000/, 01000/, ...)
    flat = build(tmp_path / "nested", layout="flat")
    assert flat.spec.num_classes == 0 and flat.num_samples == 4
    # images and sub-folders at the top: auto refuses and names both choices; classes leaves the top out
    write_flat(tmp_path / "nested", 3)
    with pytest.raises(
        gen.GenError, match=r"holds both images \(3, e.g. img000.png\) and sub-folders \(2, e.g. a\)"
    ):
        build(tmp_path / "nested")
    assert build(tmp_path / "nested", layout="classes").num_samples == 4
    assert build(tmp_path / "nested", layout="flat").num_samples == 7
    # hidden files and folders are never read
    (tmp_path / "nested" / ".cache").mkdir()
    gray(0).save(tmp_path / "nested" / ".cache" / "x.png")
    assert build(tmp_path / "nested", layout="flat").num_samples == 7


def test_a_flat_folder_trains_end_to_end_in_grayscale(cli, tmp_path):
    write_flat(tmp_path / "faces", 8)
    recipe = tmp_path / "flat.toml"  # the demo recipe with its data replaced
    recipe.write_text(
        f"""
extends = {json.dumps(str(REPO / "recipes" / "demo.toml"))}
[data]
name = "imagefolder"
root = {json.dumps(str(tmp_path / "faces"))}
image_size = 16
channels = 1
random_flip = false
num_workers = 0
"""
    )
    tiny = ["backbone.patch_size=4", "backbone.bottleneck_dim=32"]
    backbone = gen.load_recipe(recipe, overrides=tiny).backbone.config
    assert (backbone.in_channels, backbone.input_size, backbone.num_classes) == (1, 16, 0)
    run = tmp_path / "run"
    steps = ["train.steps=2", "train.global_batch=4", "train.grid_samples=0", "train.eval_samples=0"]
    steps.append("train.log_every=1")
    cli("train", recipe, *tiny, *steps, "--run-dir", run)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2] and all(np.isfinite(m["loss"]) for m in metrics)


# -- channels -------------------------------------------------------------------------------------------


def test_one_channel_samples_and_backbone_at_recipe_load(tmp_path):
    write_flat(tmp_path / "digits", 4)
    Image.new("RGB", (16, 16), (255, 0, 0)).save(tmp_path / "digits" / "red.png")  # colour -> luma
    ds = build(tmp_path / "digits", channels=1, random_flip=False)
    assert ds.spec.shape == (1, 16, 16)
    x, _ = next(ds.train_batches(5, seed=0))
    assert x.shape == (5, 1, 16, 16)
    assert sorted(values(x)) == [0, 1, 2, 3, 76]  # ITU-R 601 luma of pure red: 0.299 * 255
    (x_pass,) = [x for x, _ in ds.iter_images(8)]
    assert x_pass.shape == (5, 1, 16, 16)
    # the shape is known without the folder (ShapeFromConfig): in_channels follows channels
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        """
[backbone]
name = "jit"
patch_size = 4
hidden_size = 32
depth = 1
num_heads = 2
bottleneck_dim = 16
in_context_len = 0
[data]
name = "imagefolder"
root = "/not/on/this/machine"
image_size = 16
channels = 1
[train]
steps = 1
"""
    )
    assert gen.load_recipe(recipe).backbone.config.in_channels == 1
    assert gen.load_recipe(recipe, overrides=["data.channels=4"]).backbone.config.in_channels == 4
    assert ImageFolderConfig(channels=1, image_size=8).sample_shape() == (1, 8, 8)


def test_rgba_keeps_its_alpha(tmp_path):
    (tmp_path / "icons").mkdir()
    Image.new("RGBA", (16, 16), (10, 20, 30, 40)).save(tmp_path / "icons" / "a.png")
    Image.new("RGB", (16, 16), (50, 60, 70)).save(tmp_path / "icons" / "b.png")  # opaque alpha added
    ds = build(tmp_path / "icons", channels=4, random_flip=False)
    assert ds.spec.shape == (4, 16, 16)
    x, _ = next(ds.train_batches(2, seed=0))
    u8 = ((x + 1) * 127.5).round().to(torch.int64)[:, :, 0, 0].tolist()
    assert sorted(u8) == [[10, 20, 30, 40], [50, 60, 70, 255]]


def test_pack_keeps_one_channel_and_webdataset_reads_it_back(tmp_path):
    write_flat(tmp_path / "src", 6)
    result = invoke(
        "data", "pack", tmp_path / "src", tmp_path / "out", "--size", 16, "--channels", 1, "--workers", 1
    )
    assert result.exit_code == 0, result.output
    assert "wrote 6 samples (unconditional: no classes) in 1 shard(s)" in result.output
    assert "read them with channels = 1" in result.output
    assert json.loads((tmp_path / "out" / "classes.json").read_text()) == {}
    with tarfile.open(tmp_path / "out" / "shard-000000.tar") as tar:
        png = next(m for m in tar if m.name.endswith(".png"))
        assert Image.open(tar.extractfile(png)).mode == "L"
    web = gen.build(
        "dataset", "webdataset", urls=str(tmp_path / "out"), image_size=16, channels=1, num_workers=0
    )
    assert web.spec == gen.DataSpec(shape=(1, 16, 16), num_classes=0)
    x = torch.cat([x for x, _ in web.iter_images(4)])
    folder = torch.cat([x for x, _ in build(tmp_path / "src", channels=1).iter_images(4)])
    assert x.shape == (6, 1, 16, 16) and sorted(values(x)) == sorted(values(folder)) == list(range(6))
    streamed, _ = next(web.train_batches(3, seed=0))
    assert streamed.shape == (3, 1, 16, 16)
    rgba = invoke("data", "pack", tmp_path / "src", tmp_path / "o2", "--channels", 4, "--format", "jpg")
    assert rgba.exit_code == 2
    assert rgba.output.strip().splitlines() == [
        "error: --format jpg cannot store 4 channels (RGBA); use --format png or webp"
    ]


# -- labels from a file ---------------------------------------------------------------------------------


def labelled_folder(root, labels_text: str, name: str = "labels.csv"):
    write_flat(root / "a", 2)  # a/img000.png, a/img001.png
    write_flat(root, 1)  # img000.png
    (root / name).write_text(labels_text)
    return root


def label_of(ds) -> dict[int, int]:
    """{image value: label} over one pass."""
    out = {}
    for x, y in ds.iter_images(8):
        for v, lab in zip(values(x), y.tolist(), strict=True):
            out.setdefault(v, []).append(lab)
    return out


@pytest.mark.parametrize(
    ("name", "text", "classes", "expected"),
    [
        ("labels.csv", "a/img000.png,2\na/img001.png,0\nimg000.png,1\n", ["0", "1", "2"], [2, 0, 1]),
        (
            "labels.csv",
            "filename,label\na/img000.png,dog\n\na/img001.png,cat\n./img000.png,dog\n",
            ["cat", "dog"],
            [1, 0, 1],
        ),
        (
            "labels.json",
            '{"a/img000.png": "zebra", "a/img001.png": "ant", "img000.png": "ant"}',
            ["ant", "zebra"],
            [1, 0, 0],
        ),
        (
            "labels.json",
            '[["a/img000.png", 1], ["a/img001.png", "3"], ["img000.png", 0]]',
            ["0", "1", "2", "3"],
            [1, 3, 0],
        ),
    ],
)
def test_labels_from_csv_or_json(tmp_path, name, text, classes, expected):
    root = labelled_folder(tmp_path / "data", text, name)
    ds = build(root, labels=name, random_flip=False)
    assert ds.classes == classes and ds.spec.num_classes == len(classes)
    # the samples in path order: a/img000.png, a/img001.png, img000.png
    labels = torch.cat([y for _, y in ds.iter_images(8)]).tolist()
    assert labels == expected
    assert ImageFolderConfig(root=str(root), labels=name).spec().num_classes == len(classes)  # recipe load
    with pytest.raises(gen.GenError, match='leave layout at "auto"'):
        gen.build("dataset", "imagefolder", root=str(root), labels=name, layout="flat")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a/img000.png,0\na/img001.png,0\nimg000.png,0\ngone.png,1\n",
            "labels.csv line 4: gone.png is not in {root}; remove the row or add the image",
        ),
        (
            "a/img000.png,0\na/img001.png,0\n",
            "1 image(s) under {root} are not listed in {root}/labels.csv (first: img000.png); add a row for each or move them out of the folder",
        ),
        (
            "a/img000.png,0\na/img001.png\nimg000.png,0\n",
            "labels.csv line 2: expected 2 fields `filename,label`, got 1: 'a/img001.png'",
        ),
        (
            "a/img000.png,0\na/img001.png,0,1\n",
            "labels.csv line 2: expected 2 fields `filename,label`, got 3",
        ),
        ("a/img000.png,0\na/img001.png, \n", "labels.csv line 2: a/img001.png has an empty label"),
        (
            "a/img000.png,0\na/img000.png,1\n",
            "labels.csv line 2: a/img000.png is listed again (first at line 1)",
        ),
        (
            "a/img000.png,0\na/img001.png,cat\n",
            "labels.csv line 2: labels mix class ids ('0' at line 1) and class names ('cat' at line 2)",
        ),
        ("a/img000.png,-1\n", "labels.csv line 1: class id -1 is out of range"),
        (
            "a/img000.png,0\n../img000.png,0\n",
            "labels.csv line 2: '../img000.png' must be a path relative to the dataset root",
        ),
        ("a/img000.png,0\nnotes.txt,0\n", "labels.csv line 2: 'notes.txt' is not an image file"),
        ("filename,label\n", "labels.csv lists no images"),
    ],
)
def test_each_bad_labels_file_is_one_line(tmp_path, text, message):
    root = labelled_folder(tmp_path / "data", text)
    result = invoke("data", "info", root, "--labels", "labels.csv")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: imagefolder: ")
    assert message.format(root=root) in lines[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a/img000.png": 0,\n "a/img000.png": 1}', "'a/img000.png' is listed twice"),
        ('{"a/img000.png": 0,\n "img000.png": }', "labels.json line 2: not valid JSON"),
        (
            '[["a/img000.png", 0], ["img000.png"]]',
            'labels.json entry 1: expected a pair ["file name", label], got ["img000.png"]',
        ),
        (
            '{"a/img000.png": 1.5}',
            "labels.json entry 'a/img000.png': the label must be an integer or a class name, got 1.5",
        ),
        ('"a/img000.png"', "must hold an object"),
    ],
)
def test_each_bad_json_labels_file_is_one_line(tmp_path, text, message):
    root = labelled_folder(tmp_path / "data", text, "labels.json")
    result = invoke("data", "info", root, "--labels", "labels.json")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_missing_labels_file_and_info_on_folders(tmp_path):
    write_flat(tmp_path / "flat", 3)
    result = invoke("data", "info", tmp_path / "flat", "--labels", "nope.csv")
    assert result.output.strip().splitlines() == [
        f"error: imagefolder: labels file not found: {tmp_path / 'flat' / 'nope.csv'} (a relative `labels` is "
        "read from `root`)"
    ]
    result = invoke("data", "info", tmp_path / "flat")
    assert result.exit_code == 0 and "imagefolder: 3 samples, unconditional" in result.output
    root = labelled_folder(tmp_path / "lab", "a/img000.png,x\na/img001.png,y\nimg000.png,y\n")
    result = invoke("data", "info", root, "--labels", "labels.csv")
    assert result.exit_code == 0 and "imagefolder: 3 samples, 2 classes" in result.output


# -- images smaller than image_size ---------------------------------------------------------------------


def test_smaller_images_warn_once_with_the_count(tmp_path):
    write_flat(tmp_path / "mixed", 5, size=16)
    for i in range(3):
        gray(i, 8).save(tmp_path / "mixed" / f"small{i}.png")
    Image.new("L", (40, 12)).save(tmp_path / "mixed" / "wide.png")  # short side 12 < 16
    with pytest.warns(UserWarning) as record:
        ds = build(tmp_path / "mixed")
    smaller = [str(w.message) for w in record if "smaller than image_size" in str(w.message)]
    assert smaller == [
        f"imagefolder {tmp_path / 'mixed'}: 4 of 9 images are smaller than image_size = 16 (short side) and "
        "are upscaled (BICUBIC); lower image_size, or set check_sizes = false to skip this check"
    ]
    assert ds.smaller == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build(tmp_path / "mixed").smaller == 4  # the same dataset again: warned once already
        assert build(tmp_path / "mixed", image_size=8).smaller == 0  # none below 8: no warning
        assert build(tmp_path / "mixed", check_sizes=False).smaller is None
    result = invoke("data", "pack", tmp_path / "mixed", tmp_path / "out", "--size", 16, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert (
        "warning: 4 of 9 images were smaller than --size 16 (short side) and were upscaled" in result.output
    )


def test_the_size_check_over_worker_processes_counts_the_same(tmp_path, monkeypatch):
    write_flat(tmp_path / "f", 3, size=16)
    gray(0, 8).save(tmp_path / "f" / "small.png")
    (tmp_path / "f" / "broken.png").write_bytes(b"not an image")  # the stream's to report, not counted
    paths = folders.walk_images(tmp_path / "f")
    monkeypatch.setattr(folders, "_PARALLEL_SIZE_CHECK", 0)
    assert folders.count_smaller(paths, 16, workers=2) == folders.count_smaller(paths, 16) == 1


def test_random_flip_is_stated_plainly():
    for config in (ImageFolderConfig, WebDatasetConfig):
        doc = attrs.fields(config).random_flip.metadata["doc"]
        assert "On by default" in doc and "digits" in doc and "random_flip = false" in doc


def test_encode_takes_a_flat_folder_as_unconditional(cli, tiny_vae_dir, tmp_path):
    write_flat(tmp_path / "flat", 3)
    out = tmp_path / "latents"
    cli("data", "encode", tmp_path / "flat", out, "--vae", tiny_vae_dir, "--image-size", 16, "--workers", 1)
    meta = json.loads((out / "latents.json").read_text())
    assert meta["num_samples"] == 3 and meta["num_classes"] == 0
