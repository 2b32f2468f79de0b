"""The package is a gen plugin: found through its entry point, its recipe validates, its command runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gen

from gen_example.commands import solver_errors

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "example.toml"


def test_components_are_registered_by_this_plugin():
    expected = {
        "backbone": ["patch_mixer"],
        "sampler": ["midpoint", "rk4"],
        "schedule": ["mode"],
    }
    for kind, names in expected.items():
        for name in names:
            assert gen.get_registry(kind).get(name).plugin == "gen_example"


def test_descriptions_come_from_the_factory_docstring_when_not_given():
    component = gen.get_registry("backbone").get("patch_mixer")
    assert (
        component.description
        == "MLP-Mixer on pixel patches with adaLN-Zero conditioning (a small, fast baseline)."
    )


def test_the_recipe_validates_and_uses_the_plugin():
    recipe = gen.load_recipe(RECIPE)
    assert recipe.backbone.name == "patch_mixer"
    assert recipe.sample.sampler.name == "rk4"
    assert recipe.objective.schedule.name == "mode"
    assert recipe.data.name == "shapes"


def test_solver_errors_show_the_expected_orders():
    rows = solver_errors("euler", [8, 16])
    assert rows[0]["evaluations"] == 8 and rows[1]["order"] is not None
    assert 0.8 < rows[1]["order"] < 1.2
    rk4 = solver_errors("rk4", [8, 16])
    assert rk4[1]["max_error"] < rows[1]["max_error"] / 100


def test_command_through_the_gen_cli():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gen",
            "example",
            "solver-error",
            "--steps",
            "4",
            "--steps",
            "8",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    assert {"euler", "heun", "midpoint", "rk4"} <= set(data)
    assert [r["steps"] for r in data["midpoint"]] == [4, 8]


def test_bad_steps_is_a_one_line_error():
    out = subprocess.run(
        [sys.executable, "-m", "gen", "example", "solver-error", "--steps", "0"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert (
        out.stderr.strip().splitlines()[-1]
        == "error: --steps must be positive integers, e.g. --steps 8 --steps 16"
    )
