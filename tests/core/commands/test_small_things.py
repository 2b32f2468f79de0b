"""Small things people hit (issue #18): each through the CLI."""

from __future__ import annotations

import gen


def test_sample_every_and_eval_every_zero_mean_only_at_the_end():
    recipe = gen.load_recipe("recipes/demo.toml", ["train.sample_every=0", "train.eval_every=0"])
    assert recipe.train.sample_every == 0 and recipe.train.eval_every == 0


def test_components_of_one_name(cli):
    out = cli("components", "backbone", "jit").output
    assert "backbone 'jit'" in out and "backbone 'dit'" not in out


def test_train_help_shows_the_run_directory_default(cli):
    from typer.testing import CliRunner

    from gen.commands import app

    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert "default: runs/<recipe name>" in out


def test_a_run_shorter_than_its_warm_up_says_so(tmp_path, capsys):
    from rich.console import Console

    recipe = gen.load_recipe(
        "recipes/demo.toml",
        ["train.steps=3", "train.warmup_steps=200", "train.global_batch=4", "data.image_size=16",
         "backbone.patch_size=4", "backbone.bottleneck_dim=32", "train.eval_samples=0", "train.grid_samples=0"],
    )  # fmt: skip
    console = Console(file=(tmp_path / "log.txt").open("w"), width=300)
    gen.train(recipe, tmp_path / "run", console=console)
    console.file.close()
    text = (tmp_path / "log.txt").read_text()
    assert "warning: the warm-up (200 steps) is not shorter than the run (3 steps)" in text
    assert "lower train.warmup_steps" in text
