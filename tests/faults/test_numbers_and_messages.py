"""Non-finite numbers refused through the CLI, and messages that used to mislead: a changed EMA list on
``--resume``, a directory given as a recipe, a UTF-8 byte-order mark, shards that are not tar files."""

from __future__ import annotations

import json
import shutil

import pytest

from gen.runs import checkpoint as ckpt


@pytest.fixture
def copy(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    return run


# -- non-finite numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_sample_and_eval_refuse_a_non_finite_guidance_scale(g, trained, tmp_path, value):
    for args in (
        ("sample", trained, "--num", 2, "--out", tmp_path / "s.png", "--cfg", value),
        ("eval", trained, "--metric", "data", "--num", 2, "--cfg", f"1.0,{value}"),
    ):
        message = g.fails(*args)
        assert message == f"[sample] cfg: expected a finite number, got {float(value)}"
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("key", ["train.lr", "train.weight_decay", "sample.cfg", "objective.noise_scale"])
def test_train_refuses_non_finite_overrides(g, train_env, tmp_path, key):
    message = g.fails("train", train_env, f"{key}=inf", "--run-dir", tmp_path / "run")
    section, name = key.rsplit(".", 1)
    assert message == f"{train_env}: [{section}] {name}: expected a finite number, got inf"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_train_refuses_non_finite_recipe_values(g, train_env, tmp_path, value):
    recipe = tmp_path / "nan.toml"
    recipe.write_text(train_env.read_text().replace("lr = 1e-3", f"lr = {value}"))
    assert g.fails("train", recipe, "--run-dir", tmp_path / "run") == (
        f"{recipe}: [train] lr: expected a finite number, got {float(value)}"
    )
    assert not (tmp_path / "run").exists()


# -- messages that used to mislead ------------------------------------------------------------------------


def test_resume_with_other_emas_says_the_lists_differ(g, train_env, copy):
    message = g.fails("train", train_env, "train.ema_decays=[0.9, 0.25]", "--run-dir", copy, "--resume")
    assert message == (
        f"--resume: the recipe's train.ema_decays [0.9, 0.25] differ from the checkpoint's [0.9, 0.5] "
        f"({ckpt.checkpoint_dir(copy, 6)} has no EMA 0.25); set train.ema_decays = [0.9, 0.5] to resume, "
        "or start a new run in another --run-dir"
    )
    assert "incomplete" not in message


def test_a_directory_given_as_a_recipe(g, tmp_path):
    assert g.fails("train", tmp_path) == f"{tmp_path}: is a directory, not a recipe file; give a .toml file"
    assert g.fails("recipe", "show", tmp_path).endswith(
        "is a directory, not a recipe file; give a .toml file"
    )


def test_a_recipe_with_a_byte_order_mark_is_read(g, train_env, tmp_path):
    recipe = tmp_path / "bom.toml"
    recipe.write_bytes(b"\xef\xbb\xbf" + train_env.read_bytes())  # as Notepad writes UTF-8
    result = g.succeeds("recipe", "show", recipe)
    assert 'name = "tinymlp"' in result.stdout


def test_shards_that_are_not_tar_files_are_refused_before_training(g, train_env, tmp_path):
    import webdataset

    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(4):
        with webdataset.TarWriter(str(shards / f"shard-{i:06d}.tar"), encoder=False) as sink:
            for j in range(4):
                sink.write({"__key__": f"{i}_{j}", "ppm": b"P6 4 4 255\n" + bytes(48), "cls": b"0"})
    (shards / "classes.json").write_text(json.dumps({"a": 0, "b": 1}))
    (shards / "shard-000002.tar").write_bytes(b"<html>403 Forbidden</html>" * 40)  # a failed download
    (shards / "shard-000003.tar").write_bytes(b"")
    recipe = tmp_path / "shards.toml"
    recipe.write_text(
        train_env.read_text().replace(
            '[data]\nname = "blobs"',
            f'[data]\nname = "webdataset"\nurls = "{shards}"\nimage_size = 4\nnum_workers = 0',
        )
    )
    message = g.fails("train", recipe, "--run-dir", tmp_path / "run")
    assert message.startswith(
        f"webdataset: 2 of 4 shard(s) are not tar files: {shards / 'shard-000002.tar'}, "
        f"{shards / 'shard-000003.tar'} (ReadError: "
    )
    assert message.endswith("); remove them from urls or pack them again (`gen data pack`)")
    assert not (tmp_path / "run" / "checkpoints").exists()
