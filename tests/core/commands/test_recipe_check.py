"""`gen recipe check` rejects what `gen train` would reject before any work, and data-derived backbone
fields are resolved from every dataset's config at load."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from PIL import Image
from typer.testing import CliRunner

from gen.commands import app
from gen.recipe import load_recipe

runner = CliRunner()

DEMO = """
[backbone]
name = "jit"
patch_size = 8
hidden_size = 32
depth = 2
num_heads = 2
bottleneck_dim = 16
in_context_len = 0

[data]
name = "shapes"
image_size = 32

[train]
steps = 10
global_batch = 8
eval_samples = 16
"""


def write(tmp_path, text, name="r.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def check(*args):
    result = runner.invoke(app, ["recipe", "check", *map(str, args)])
    return result.exit_code, " ".join(result.output.split())


def train(tmp_path, *args):
    result = runner.invoke(app, ["train", *map(str, args), "--run-dir", str(tmp_path / "run")])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "objective.prediction='epsilon'",
            "[objective] prediction: unknown prediction 'epsilon'; did you mean 'eps'?",
        ),
        ("train.micro_batch=3", "[train]: micro_batch (3) does not divide global_batch (8)"),
        ("train.lr=inf", "[train] lr: expected a finite number, got inf"),
        ("sample.cfg=nan", "[sample] cfg: expected a finite number, got nan"),
        ("objective.schedule.mean=-inf", "[objective.schedule] mean: expected a finite number, got -inf"),
    ],
)
def test_check_and_train_reject_the_same_recipe_with_the_same_line(tmp_path, override, message):
    recipe = write(tmp_path, DEMO)
    # gen train takes the override on its command line; gen recipe check reads files, so the same value
    # goes into a recipe that extends the first.
    key, _, value = override.partition("=")
    *section, name = key.split(".")
    derived = write(tmp_path, f'extends = "r.toml"\n[{".".join(section)}]\n{name} = {value}\n', "d.toml")
    code, text = check(derived)
    assert code == 2 and message in text, text
    code, text = train(tmp_path, recipe, override)
    assert code == 2 and message in text, text
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_micro_batch_is_checked_for_the_stated_world_size(tmp_path):
    recipe = write(tmp_path, DEMO + "micro_batch = 4\n")
    assert check(recipe)[0] == 0
    code, text = check(recipe, "--world-size", 4)
    assert code == 2 and text.startswith(
        f"error: {recipe}: train.micro_batch = 4 does not divide the per-process batch 2"
    )
    code, text = check(recipe, "--world-size", 3)
    assert code == 2 and text.startswith(
        f"error: {recipe}: train.global_batch = 8 does not split over 3 processes"
    )


def test_eval_samples_needs_a_dataset_metric_in_check_as_in_train(tmp_path):
    folder = tmp_path / "images" / "cat"
    folder.mkdir(parents=True)
    Image.new("RGB", (40, 40), (200, 10, 10)).save(folder / "a.png")
    recipe = write(
        tmp_path,
        DEMO.replace(
            'name = "shapes"', f'name = "imagefolder"\nroot = "{tmp_path / "images"}"\nnum_workers = 0'
        ),
    )
    code, text = check(recipe)
    assert code == 2 and "train.eval_samples = 16: [data] imagefolder has no metric of its own" in text
    code, text = train(tmp_path, recipe)
    assert code == 2 and "train.eval_samples = 16: [data] imagefolder has no metric of its own" in text


def test_image_size_of_the_data_is_used_before_the_backbone_default(tmp_path):
    # 48 px with 12 px patches: valid, though the backbone's default input_size (256) is not a multiple of 12.
    recipe = write(
        tmp_path,
        DEMO.replace("patch_size = 8", "patch_size = 12").replace("image_size = 32", "image_size = 48"),
    )
    assert check(recipe) == (0, f"ok: {recipe}")
    backbone = load_recipe(recipe).backbone.config
    assert (backbone.input_size, backbone.in_channels, backbone.num_classes) == (48, 3, 10)


def test_imagefolder_and_webdataset_configs_fill_the_backbone(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / "images" / name).mkdir(parents=True)
    folder = write(
        tmp_path,
        f"""
        [backbone]
        name = "jit"
        preset = "B/16"
        [data]
        name = "imagefolder"
        root = "{tmp_path / "images"}"
        image_size = 64
        [train]
        steps = 1
        """,
        "folder.toml",
    )
    config = load_recipe(folder).backbone.config
    assert (config.input_size, config.num_classes) == (64, 3)  # classes counted from the sub-folders
    # Not on this machine: the shape is still known, the classes come from the data at train time.
    missing = load_recipe(
        folder, [f"data.root='{tmp_path / 'elsewhere'}'", "data.image_size=48", "backbone.patch_size=12"]
    )
    assert missing.backbone.config.input_size == 48

    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "train-000000.tar").write_bytes(b"")
    (shards / "classes.json").write_text(json.dumps({"x": 0, "y": 1, "z": 6}))
    web = load_recipe(folder, ["data={name='webdataset', urls='" + str(shards) + "', image_size=32}"])
    assert (web.backbone.config.input_size, web.backbone.config.num_classes) == (32, 7)
    stated = load_recipe(
        folder, ["data={name='webdataset', urls='pipe:cat x.tar', image_size=32, num_classes=5}"]
    )
    assert stated.backbone.config.num_classes == 5


def test_loggers_and_init_from_are_checked_as_in_train(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import now raises ImportError
    recipe = write(tmp_path, DEMO + 'loggers = ["wandb"]\n')
    message = "the wandb logger (train.loggers) needs the wandb package: pip install 'gen[wandb]'"
    code, text = check(recipe)
    assert code == 2 and message in text, text
    code, text = train(tmp_path, recipe)
    assert code == 2 and message in text, text
    missing = tmp_path / "nowhere"
    recipe = write(tmp_path, DEMO + f'init_from = "{missing}"\n', "i.toml")
    message = f"train.init_from = '{missing}': {missing} is neither a run directory with checkpoints"
    code, text = check(recipe)
    assert code == 2 and message in text, text
    code, text = train(tmp_path, recipe)
    assert code == 2 and message in text, text


def test_check_takes_overrides_as_train_does(tmp_path):
    recipe = write(tmp_path, DEMO)
    code, out = check(recipe, "train.stpes=100")
    assert code == 2
    assert out.startswith(f"error: {recipe}: [train] stpes: unknown key; did you mean 'steps'?")
    assert "ok:" not in out and "not found" not in out
    assert check(recipe, "train.steps=100", "sample.cfg=2.5") == (0, f"ok: {recipe}")
    code, out = check(recipe, "train.micro_batch=3")  # an override that only the plan refuses
    assert code == 2 and "micro_batch (3) does not divide global_batch (8)" in out
    assert check("train.steps=100")[0] == 2


def folder_recipe(tmp_path, root, name="folder.toml"):
    return write(
        tmp_path,
        DEMO.replace('name = "shapes"', f'name = "imagefolder"\nroot = "{root}"\nnum_workers = 0').replace(
            "eval_samples = 16", "eval_samples = 0"
        ),
        name,
    )


def test_a_missing_data_folder_is_one_line_with_the_nearest_one_in_check_and_train(tmp_path):
    images = tmp_path / "images" / "cat"
    images.mkdir(parents=True)
    Image.new("RGB", (40, 40), (200, 10, 10)).save(images / "a.png")
    recipe = folder_recipe(tmp_path, tmp_path / "imagse")
    line = (
        f"{recipe}: [data] root: {tmp_path / 'imagse'} does not exist (did you mean {tmp_path / 'images'}?)"
    )
    code, text = check(recipe)
    assert code == 2 and text.startswith(f"error: {line}; ") and "--no-data-check" in text, text
    assert text.count("error:") == 1 and "Traceback" not in text
    # Checked away from its data: the rest of the recipe is still checked.
    assert check(recipe, "--no-data-check") == (0, f"ok: {recipe}")
    code, text = check(recipe, "--no-data-check", "train.micro_batch=3")
    assert code == 2 and "micro_batch (3) does not divide" in text
    # gen train says the same line (with its own fix), before any work, instead of the dataset's own.
    code, text = train(tmp_path, recipe)
    assert code == 2 and text.startswith(f"error: {line}; ") and "data.root='PATH'" in text, text
    assert "folder not found" not in text and "Traceback" not in text
    assert not (tmp_path / "run" / "checkpoints").exists()
    # A path below a misspelt folder: the folder is corrected and the rest kept where it exists.
    code, text = check(folder_recipe(tmp_path, tmp_path / "imagse" / "cat", "deep.toml"))
    assert f"did you mean {images}?" in text, text
    # Nothing alike: no guess.
    code, text = check(folder_recipe(tmp_path, tmp_path / "zzzz", "far.toml"))
    assert code == 2 and "does not exist; fix the path" in text and "did you mean" not in text, text


def test_missing_labels_file_and_shards_are_named_by_their_key(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "images" / "a.png")
    recipe = folder_recipe(tmp_path, tmp_path / "images")
    code, text = check(recipe, "data.labels='label.csv'")
    assert code == 2 and f"[data] labels: {tmp_path / 'images' / 'label.csv'} does not exist" in text, text
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(3):
        (shards / f"train-{i:06d}.tar").write_bytes(b"")
    web = f"data={{name='webdataset', urls='{shards}/train-{{000000..000004}}.tar', num_classes=2, image_size=32}}"
    code, text = check(recipe, web)
    assert code == 2 and "[data] urls: 2 of 5 paths do not exist, the first " in text, text
    assert f"{shards}/train-000003.tar does not exist" in text
    remote = "data={name='webdataset', urls='pipe:cat x.tar', num_classes=2, image_size=32}"
    assert check(recipe, remote) == (0, f"ok: {recipe}")  # remote shards are not looked for


def test_a_warm_up_as_long_as_the_run_warns_in_check(tmp_path):
    write(tmp_path, DEMO.replace("steps = 10", "steps = 1000\nwarmup_steps = 200"), "long.toml")
    short = write(tmp_path, 'extends = "long.toml"\n[train]\nsteps = 100\n', "short.toml")
    code, text = check(short)
    assert code == 0 and text.startswith(
        f"ok: {short} warning: {short}: the warm-up (200 steps) is not shorter than the run (100 steps)"
    ), text
    assert "lower train.warmup_steps" in text
    assert check(short, "train.warmup_steps=10") == (0, f"ok: {short}")
