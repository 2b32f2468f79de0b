"""`gen sample` and the model sampler under it: outputs, determinism across batch sizes and processes,
defaults, EMA choice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.images import make_grid, to_uint8
from gen.protocols import DataSpec
from gen.runs import checkpoint as ckpt
from gen.runs.run_dir import load_checkpoint
from gen.sampling.files import image_name, write_adm_npz
from gen.sampling.model import ModelSampler, class_labels, shard
from gen.sampling.noise import sample_noise
from gen_flow.sampling import sample_flow as sample

runner = CliRunner()


def npz(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def test_checkpoint_records_the_data_spec(run):
    meta = ckpt.read_meta(ckpt.latest_checkpoint(run))
    assert meta.data_spec == DataSpec(shape=(3, 4, 4), num_classes=3)
    checkpoint = load_checkpoint(run)
    assert checkpoint.spec.shape == (3, 4, 4) and checkpoint.spec.num_classes == 3
    assert checkpoint.step == 6 and checkpoint.default_ema() == 0.9
    assert load_checkpoint(checkpoint.path).path == checkpoint.path  # a checkpoint directory works too


def test_npz_folder_and_grid_hold_the_same_images(cli, run, tmp_path):
    cli("sample", run, "--num", 5, "--out", tmp_path / "s.npz")
    arrays = npz(tmp_path / "s.npz")
    assert arrays["arr_0"].shape == (5, 4, 4, 3) and arrays["arr_0"].dtype == np.uint8
    assert arrays["arr_1"].tolist() == [0, 0, 1, 1, 2]  # balanced, class-major: i * K // N

    cli("sample", run, "--num", 5, "--out", tmp_path / "folder")
    names = sorted(p.name for p in (tmp_path / "folder").iterdir())
    assert names == ["000000_0.png", "000001_0.png", "000002_1.png", "000003_1.png", "000004_2.png"]
    for i, name in enumerate(names):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "folder" / name)), arrays["arr_0"][i])

    cli("sample", run, "--num", 5, "--out", tmp_path / "grid.png")
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert np.array_equal(grid, make_grid(arrays["arr_0"], labels=arrays["arr_1"]))  # a class per row
    assert grid.shape == (3 * 6 + 2, 2 * 6 + 2, 3)  # 3 rows of up to 2 tiles of 4 x 4
    assert not list(tmp_path.glob(".*"))  # no temporary parts left behind


def test_per_class_grid_has_one_row_per_class(cli, run, tmp_path):
    cli("sample", run, "--per-class", 2, "--out", tmp_path / "g.png")
    assert np.asarray(Image.open(tmp_path / "g.png")).shape == (3 * 6 + 2, 2 * 6 + 2, 3)
    cli("sample", run, "--per-class", 2, "--out", tmp_path / "g.npz")
    assert npz(tmp_path / "g.npz")["arr_1"].tolist() == [0, 0, 1, 1, 2, 2]
    cli("sample", run, "--num", 4, "--labels", "2,0", "--out", tmp_path / "l.npz")
    assert npz(tmp_path / "l.npz")["arr_1"].tolist() == [2, 0, 2, 0]


def test_batch_size_does_not_change_the_images(cli, run, tmp_path, same_images):
    outs = []
    for b in (1, 3, 64):
        cli("sample", run, "--num", 7, "--batch-size", b, "--out", tmp_path / f"b{b}.npz")
        outs.append(npz(tmp_path / f"b{b}.npz")["arr_0"])
    same_images(outs[0], outs[1])  # other batch shapes, so other float32 kernels: equal up to rounding
    same_images(outs[0], outs[2])
    cli("sample", run, "--num", 7, "--seed", 1, "--out", tmp_path / "s1.npz")
    assert not np.array_equal(outs[0], npz(tmp_path / "s1.npz")["arr_0"])


def test_images_are_the_driver_samples_of_the_first_ema_with_the_recipe_settings(cli, run, tmp_path):
    cli("sample", run, "--num", 4, "--seed", 3, "--out", tmp_path / "a.npz")
    checkpoint = load_checkpoint(run)
    net = ModelSampler.from_checkpoint(checkpoint).model
    net.load_state_dict(ckpt.load_weights(checkpoint.path, 0.9))
    labels = torch.tensor([0, 0, 1, 2])
    noise = sample_noise(range(4), (3, 4, 4), seed=3)
    x = sample(net, noise, labels, prediction="x", sampler="euler", steps=4, cfg=2.0, num_classes=3)
    assert np.array_equal(npz(tmp_path / "a.npz")["arr_0"], to_uint8(x))
    # The explicit settings equal the defaults; other settings give other images.
    cli("sample", run, "--num", 4, "--seed", 3, "--ema", "0.9", "--cfg", 2, "--steps", 4, "--sampler", "euler",
        "--interval", "0,1", "--out", tmp_path / "b.npz")  # fmt: skip
    assert np.array_equal(npz(tmp_path / "b.npz")["arr_0"], to_uint8(x))
    for option in (
        ["--ema", "none"],
        ["--ema", "0.5"],
        ["--cfg", "1"],
        ["--steps", "2"],
        ["--interval", "0.5,1"],
        ["--grid", "edm"],
    ):
        cli("sample", run, "--num", 4, "--seed", 3, *option, "--out", tmp_path / "c.npz")
        assert not np.array_equal(npz(tmp_path / "c.npz")["arr_0"], to_uint8(x)), option


def test_two_ranks_draw_disjoint_slices_that_make_the_whole(run, tmp_path, same_images):
    for n in (0, 1, 5, 7, 50_000):
        for world in (1, 2, 3, 8):
            parts = [shard(n, r, world) for r in range(world)]
            assert [i for p in parts for i in p] == list(range(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    checkpoint = load_checkpoint(run)
    sampler = ModelSampler.from_checkpoint(checkpoint)
    settings = sampler.settings()
    labels = class_labels(7, 3)

    def images(indices, batch):
        return np.concatenate(
            [x for _, x in sampler.images(indices, labels, settings, seed=0, batch_size=batch)]
        )

    whole = images(range(7), 7)
    ranks = [images(shard(7, r, 2), 2) for r in range(2)]
    assert [len(r) for r in ranks] == [3, 4]
    same_images(np.concatenate(ranks), whole)  # batches of 2 and of 7: equal up to float32 rounding
    # Rank 0 assembles the npz from the ranks' parts, streamed (a copy: bit for bit).
    write_adm_npz(tmp_path / "w.npz", ranks, labels)
    got = npz(tmp_path / "w.npz")
    assert np.array_equal(got["arr_0"], np.concatenate(ranks)) and np.array_equal(got["arr_1"], labels)


def test_labels_and_names():
    assert class_labels(50_000, 1000).tolist()[:51] == [0] * 50 + [1]
    assert np.bincount(class_labels(50_000, 1000)).tolist() == [50] * 1000
    assert class_labels(3, 0).tolist() == [0, 0, 0]
    assert image_name(12, 7, 100) == "000012_7.png" and image_name(12, None, 10**7) == "0000012.png"


def test_grid_option_names_a_grid_or_gives_its_table(cli, run, tmp_path):
    """--grid edm and --grid '{ name = "shifted", ... }' are the driver's samples on those grids."""
    checkpoint = load_checkpoint(run)
    net = ModelSampler.from_checkpoint(checkpoint).model
    net.load_state_dict(ckpt.load_weights(checkpoint.path, 0.9))
    noise = sample_noise(range(4), (3, 4, 4), seed=3)
    for option, grid in (
        ("edm", "edm"),
        ('{ name = "shifted", shift = 2.0 }', {"name": "shifted", "shift": 2.0}),
        ('{name="density", edges=[0, 0.5, 1], density=[3, 1]}', {"name": "density", "edges": [0, 0.5, 1],
                                                                 "density": [3, 1]}),
    ):  # fmt: skip
        cli("sample", run, "--num", 4, "--seed", 3, "--sampler", "deis_pc", "--grid", option,
            "--out", tmp_path / "g.npz")  # fmt: skip
        if isinstance(grid, dict):
            options = {k: tuple(v) if isinstance(v, list) else v for k, v in grid.items() if k != "name"}
            config = gen.resolve_config("time_grid", grid["name"], **options)
            grid = gen.ComponentSpec(kind="time_grid", name=grid["name"], config=config)
        x = sample(net, noise, torch.tensor([0, 0, 1, 2]), prediction="x", sampler="deis_pc", steps=4,
                   cfg=2.0, num_classes=3, grid=grid)  # fmt: skip
        assert np.array_equal(npz(tmp_path / "g.npz")["arr_0"], to_uint8(x)), option


def test_sample_errors_are_one_line(run, tmp_path):
    cases = {
        ("--ema", "0.7"): "no such EMA; choose one of: 0.9, 0.5, none",
        ("--labels", "5"): "--labels must be class ids in [0, 3)",
        ("--interval", "0.5"): "give LOW,HIGH",
        ("--sampler", "eulr"): "euler",
        ("--grid", "shifed"): "unknown time_grid 'shifed'; did you mean 'shifted'?",
        ("--grid", '{ name = "shifted", shift = 0.0 }'): "[sample.grid] shift: must be > 0",
        ("--grid", "{ name = "): "--grid '{ name =': not a TOML inline table",
    }
    for option, message in cases.items():
        result = runner.invoke(app, ["sample", str(run), *option, "--out", str(tmp_path / "x.png")])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output, result.output
    result = runner.invoke(app, ["sample", str(run), "--out", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2 and ".png (a grid) or .npz" in result.output
    result = runner.invoke(app, ["sample", str(tmp_path), "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "neither a run directory" in result.output


def test_run_without_data_spec_in_meta_asks_the_dataset(run, tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(run, copy)
    meta_file = ckpt.latest_checkpoint(copy) / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["data_spec"]
    meta_file.write_text(json.dumps(meta))
    assert load_checkpoint(copy).spec == load_checkpoint(run).spec


def test_a_model_of_vectors_is_scored_by_its_data_metric_and_refused_by_sample_and_fid(tmp_path):
    from gen.recipe import load_recipe
    from gen.training.engine import train

    recipe = Path(__file__).resolve().parents[3] / "recipes" / "toy" / "manifold.toml"
    run = tmp_path / "toy"
    overrides = [
        "data.dim=8",
        "backbone.hidden=16",
        "train.steps=2",
        "train.global_batch=8",
        "train.eval_samples=0",
    ]
    train(load_recipe(recipe, overrides), run)
    for args, message in (
        (
            ["sample", run, "--num", 4, "--out", tmp_path / "s.npz"],
            "not images, and gen sample writes images",
        ),
        (["eval", run, "--num", 4], "not images, and FID scores images; score it with --metric data"),
    ):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 2 and "Traceback" not in result.output
        line = " ".join(result.output.split())
        assert "the model draws vectors of shape (8,)" in line and message in line, line
        assert "eval 1/1" not in line  # refused before any sampling starts
    assert not (tmp_path / "s.npz").exists()
    result = runner.invoke(app, ["eval", str(run), "--num", "4", "--metric", "data"])
    assert result.exit_code == 0, result.output
    table = json.loads((run / "eval" / "step_00000002.json").read_text())
    assert table["rows"][0]["num_images"] == 4 and table["rows"][0]["spiral_distance"] > 0


def test_a_copied_checkpoint_folder_samples_on_its_own(cli, run, tmp_path):
    import shutil

    copy = tmp_path / "elsewhere" / "step_6"
    shutil.copytree(ckpt.latest_checkpoint(run), copy)  # without its run directory
    assert (copy / "recipe.toml").is_file()
    cli("sample", copy, "--num", 3, "--out", tmp_path / "c.npz")
    cli("sample", run, "--num", 3, "--out", tmp_path / "r.npz")
    assert np.array_equal(npz(tmp_path / "c.npz")["arr_0"], npz(tmp_path / "r.npz")["arr_0"])


def test_gen_load_samples_in_one_call_what_gen_sample_draws(cli, run, tmp_path):
    import gen

    model = gen.load(run)
    assert model.checkpoint.step == 6 and model.spec.num_classes == 3
    x = model.sample(num=4, seed=3)  # (4, 3, 4, 4), balanced labels as gen sample --num 4
    cli("sample", run, "--num", 4, "--seed", 3, "--out", tmp_path / "a.npz")
    assert np.array_equal(to_uint8(x), npz(tmp_path / "a.npz")["arr_0"])
    y = model.sample([2, 0], seed=3, ema=0.5, cfg=1.0, steps=2)
    cli("sample", run, "--labels", "2,0", "--num", 2, "--seed", 3, "--ema", "0.5", "--cfg", 1, "--steps", 2,
        "--out", tmp_path / "b.npz")  # fmt: skip
    assert np.array_equal(to_uint8(y), npz(tmp_path / "b.npz")["arr_0"])
    with pytest.raises(gen.GenError, match="no such EMA"):
        model.sample([0], ema=0.7)
    with pytest.raises(gen.RecipeError, match=r"\[sample\] steps: must be >= 1"):
        model.sample([0], steps=0)
    with pytest.raises(gen.GenError, match="give labels, or num"):
        model.sample()
    with pytest.raises(gen.GenError, match=r"class ids in \[0, 3\), got \[0, 12\]"):
        model.sample([0, 12])  # the line gen sample --labels 0,12 prints, not an IndexError
