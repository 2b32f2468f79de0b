"""Every recipe mistake is one clear line through the CLI, exit code 2, no traceback."""

from __future__ import annotations

import textwrap

import pytest
from typer.testing import CliRunner

from gen.commands import app

runner = CliRunner()

GOOD = """
[backbone]
name = "toynet"
width = 16

[data]
name = "toyset"

[train]
steps = 10
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


CASES = [
    # (id, recipe text, overrides, expected stderr line with {f} for the file)
    (
        "unknown key",
        GOOD + "[objective]\nzzz = 3\n",
        [],
        "{f}: [objective] zzz: unknown key. Known keys: {objective_keys}",
    ),
    (
        "unknown key with close match",
        GOOD.replace("width = 16", "widht = 16"),
        [],
        "{f}: [backbone] widht: unknown key; did you mean 'width'? Known keys: act, bias, extra, "
        "input_dim, interval, limit, mode, num_classes, ratio, scales, tag, width",
    ),
    (
        "wrong type",
        GOOD.replace("width = 16", 'width = "16"'),
        [],
        "{f}: [backbone] width: expected int, got str '16'",
    ),
    (
        "float for int",
        GOOD.replace("width = 16", "width = 1.5"),
        [],
        "{f}: [backbone] width: expected int, got float 1.5",
    ),
    (
        "out of range",
        GOOD.replace("width = 16", "width = 0"),
        [],
        "{f}: [backbone] width: must be >= 1: 0",
    ),
    (
        "value not among the choices",
        GOOD.replace("width = 16", 'mode = "zzz"'),
        [],
        "{f}: [backbone] mode: must be in ('fast', 'slow') (got 'zzz')",
    ),
    (
        "literal",
        GOOD.replace("width = 16", 'act = "tanh"'),
        [],
        "{f}: [backbone] act: expected 'relu' | 'gelu', got str 'tanh'",
    ),
    (
        "tuple length",
        GOOD.replace("width = 16", "interval = [0.1]"),
        [],
        "{f}: [backbone] interval: expected tuple[float, float], got list [0.1]",
    ),
    (
        "cross-field check",
        GOOD.replace("width = 16", "width = 2\nlimit = 3"),
        [],
        "{f}: [backbone]: limit (3) must not exceed width (2)",
    ),
    (
        "unknown component",
        GOOD.replace('"toynet"', '"toynt"'),
        [],
        "{f}: [backbone] name: unknown backbone 'toynt'; did you mean 'toynet'? Known backbones: toynet",
    ),
    (
        "missing name",
        GOOD.replace('name = "toynet"', ""),
        [],
        "{f}: [backbone] name: missing `name`: set it to one of: toynet",
    ),
    (
        "missing section",
        '[data]\nname = "toyset"\n[train]\nsteps = 1\n',
        [],
        "{f}: missing section [backbone]: add it with name = one of: toynet",
    ),
    (
        "unknown section",
        GOOD + "[smaple]\nsteps = 3\n",
        [],
        "{f}: smaple: unknown key; did you mean 'sample'? Known keys: autoencoder, backbone, data, loss_terms, objective, sample, train",
    ),
    (
        "component without options",
        GOOD + "[sample.sampler]\nname = 'heun'\norder = 2\n",
        [],
        "{f}: [sample.sampler] order: sampler 'heun' takes no options; remove order",
    ),
    (
        "nested component key",
        GOOD + "[objective.schedule]\nmean = -0.8\n",
        [],
        "{f}: [objective.schedule] mean: unknown key. Known keys: low",
    ),
    (
        "section not a table",
        "sample = 3\n" + GOOD,
        [],
        "{f}: [sample]: must be a table, got int 3",
    ),
    (
        "bad TOML",
        GOOD + "[sample\n",
        [],
        "{f}: invalid TOML: Expected ']' at the end of a table declaration (at line 11, column 8)",
    ),
    (
        "override wrong type",
        GOOD,
        ["train.steps=ten"],
        "{f}: [train] steps: expected int | None, got str 'ten'",
    ),
    (
        "override unknown key",
        GOOD,
        ["train.step=10"],
        "{f}: [train] step: unknown key; did you mean 'steps'? Known keys: {train_keys}",
    ),
    (
        "malformed override",
        GOOD,
        ["train.steps"],
        "bad override 'train.steps': write SECTION.KEY=VALUE, e.g. train.lr=1e-4 or backbone.preset='L/16'",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_recipe_is_one_line_exit_2(toy_host, tmp_path, case):
    from gen.objective import ObjectiveConfig
    from gen.train_config import TrainConfig

    _, text, overrides, expected = case
    path = write(tmp_path, "r.toml", text)
    result = runner.invoke(app, ["recipe", "show", str(path), *overrides])
    train_keys = ", ".join(sorted(a.name for a in TrainConfig.__attrs_attrs__))
    objective_keys = ", ".join(sorted(a.name for a in ObjectiveConfig.__attrs_attrs__))
    expected = expected.format(f=path, train_keys=train_keys, objective_keys=objective_keys)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {expected}\n"
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_missing_file(toy_host, tmp_path):
    result = runner.invoke(app, ["recipe", "show", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.toml'}: recipe file not found; check the path\n"


def test_missing_extends_names_the_child(toy_host, tmp_path):
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\n')
    result = runner.invoke(app, ["recipe", "check", str(child)])
    assert result.exit_code == 2
    missing = tmp_path / "base.toml"
    assert result.stderr == (
        f"error: {missing}: recipe file not found (extended by {child.resolve()}); check the path\n"
    )


def test_extends_cycle(toy_host, tmp_path):
    a = write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    b = write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    result = runner.invoke(app, ["recipe", "show", str(a)])
    assert result.exit_code == 2
    chain = f"{a.resolve()} -> {b.resolve()} -> {a.resolve()}"
    assert result.stderr == f"error: {a}: `extends` cycle: {chain}; remove one of the `extends`\n"


def test_debug_shows_the_traceback(toy_host, tmp_path):
    path = write(tmp_path, "r.toml", GOOD.replace("width = 16", "width = 0"))
    result = runner.invoke(app, ["--debug", "recipe", "show", str(path)])
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "RecipeError"


def test_check_reports_each_file(toy_host, tmp_path):
    good = write(tmp_path, "good.toml", GOOD)
    bad = write(tmp_path, "bad.toml", GOOD.replace("width = 16", "width = 0"))
    result = runner.invoke(app, ["recipe", "check", str(good), str(bad)])
    assert result.exit_code == 2
    assert result.stdout == f"ok: {good}\n"
    assert result.stderr == f"error: {bad}: [backbone] width: must be >= 1: 0\n"


def test_train_needs_steps_or_epochs(toy_host, tmp_path):
    path = write(tmp_path, "r.toml", GOOD.replace("steps = 10", "epochs = 2\nsteps = 3"))
    result = runner.invoke(app, ["recipe", "check", str(path)])
    assert result.exit_code == 2
    assert (
        result.stderr == f"error: {path}: [train]: set exactly one of steps and epochs (e.g. steps = 1000)\n"
    )
