"""``[[loss_terms]]`` in recipes: each mistake one line through ``gen recipe check``, and a resolved
recipe that prints and loads back the same."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.recipe import recipe_to_toml

runner = CliRunner()

BASE = """
[backbone]
name = "jit"
patch_size = 4
hidden_size = 32
depth = 2
num_heads = 2
in_context_len = 0

[data]
name = "shapes"
image_size = 16
num_classes = 3

[train]
steps = 2
"""


def check(tmp_path, terms: str, extra: str = ""):
    path = tmp_path / "r.toml"
    path.write_text(terms + BASE + extra)  # top-level keys first
    return path, runner.invoke(app, ["recipe", "check", str(path)])


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        (
            '[[loss_terms]]\nname = "repa"\nweight = -1.0\nencoder_path = "e.pth"\n',
            "[loss_terms.0] weight: must be > 0, got -1.0",
        ),
        (
            '[[loss_terms]]\nname = "repa"\nweight = "big"\nencoder_path = "e.pth"\n',
            "[loss_terms.0] weight: expected float, got str 'big'",
        ),
        (
            '[[loss_terms]]\nname = "repa"\nt_range = [0.8, 0.2]\nencoder_path = "e.pth"\n',
            "[loss_terms.0] t_range: must satisfy 0 <= low <= high <= 1, got [0.8, 0.2]",
        ),
        (
            '[[loss_terms]]\nname = "repa"\nlayr = 4\nencoder_path = "e.pth"\n',
            "[loss_terms.0] layr: unknown key; did you mean 'layer'?",
        ),
        (
            '[[loss_terms]]\nname = "repa"\nlayer = 0\nencoder_path = "e.pth"\n',
            "[loss_terms.0] layer: must be >= 1",
        ),
        ('[[loss_terms]]\nname = "repa"\n', "[loss_terms.0]: repa needs encoder_path"),
        (
            '[[loss_terms]]\nname = "repaa"\n',
            "[loss_terms.0] name: unknown loss_term 'repaa'; did you mean 'repa'?",
        ),
        ("[[loss_terms]]\nweight = 1.0\n", "[loss_terms.0] name: missing `name`"),
        ('loss_terms = "repa"\n', "loss_terms: expected a list of tables ([[loss_terms]])"),
        (
            '[[loss_terms]]\nname = "repa"\nencoder_path = "e.pth"\n[[loss_terms]]\nname = "repa"\nencoder_path = "f.pth"\n',
            "loss_terms: loss term 'repa' is listed twice",
        ),
    ],
)
def test_a_bad_term_table_is_one_line(tmp_path, terms, message):
    path, result = check(tmp_path, terms)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {path}: {message}"), result.output
    assert result.output.strip().count("\n") == 0  # one line, no traceback


def test_terms_on_a_process_that_shows_them_nothing_are_refused_at_load(tmp_path):
    extra = '[objective]\nprediction = "x"\n[objective.process]\nname = "meanflow"\n[sample]\nsampler = "meanflow"\n'
    path, result = check(tmp_path, '[[loss_terms]]\nname = "repa"\nencoder_path = "e.pth"\n', extra)
    assert result.exit_code == 2, result.output
    assert "loss_terms: the meanflow process does not show loss terms its prediction" in result.output


def test_a_resolved_recipe_prints_its_terms_and_loads_back_the_same(tmp_path):
    path, result = check(
        tmp_path,
        '[[loss_terms]]\nname = "repa"\nweight = 0.5\nt_range = [0.0, 0.7]\nencoder_path = "e.pth"\n',
    )
    assert result.exit_code == 0, result.output
    recipe = gen.load_recipe(path)
    (term,) = recipe.loss_terms
    assert (term.name, term.weight, term.t_range, term.config.layer) == ("repa", 0.5, (0.0, 0.7), 8)
    text = recipe_to_toml(recipe)
    assert "[[loss_terms]]" in text and "weight = 0.5" in text
    again = tmp_path / "again.toml"
    again.write_text(text)
    assert gen.load_recipe(again) == recipe
