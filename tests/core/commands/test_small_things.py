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
