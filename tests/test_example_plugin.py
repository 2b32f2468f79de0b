"""The third-party example plugin (examples/gen-example-plugin), installed into the environment.

`make install` installs it (`pip install --no-deps -e examples/gen-example-plugin`); these tests drive it
the way a user would: through its entry point and the `gen` command line.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import gen

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "gen-example-plugin"
RECIPE = EXAMPLE / "recipes" / "example.toml"

# A few steps of a tiny model: the recipe's components end to end, not its quality.
TINY = [
    "train.steps=3",
    "train.global_batch=8",
    "train.warmup_steps=1",
    "train.log_every=1",
    "train.ema_decays=[0.9]",
    "train.grid_samples=4",
    "train.eval_samples=8",
    "data.image_size=16",
    "data.num_samples=64",
    "backbone.width=16",
    "backbone.depth=1",
    "sample.steps=2",
]


def gen_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gen", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_plugin_is_listed_by_gen_plugins():
    out = gen_cli("plugins", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    plugins = {p["name"]: p for p in data["plugins"]}
    assert "gen_example" in plugins, "install it: pip install --no-deps -e examples/gen-example-plugin"
    example = plugins["gen_example"]
    assert example["version"] == "0.1.0"
    assert example["hooks"] == [
        "register_backbones",
        "register_commands",
        "register_samplers",
        "register_schedules",
    ]
    assert example["components"] == {
        "backbone": ["patch_mixer"],
        "schedule": ["mode"],
        "sampler": ["midpoint", "rk4"],
    }
    assert [e for e in data["errors"] if e["plugin"] == "gen_example"] == []


def test_plugin_source_uses_only_the_public_api():
    public = set(gen.__all__)
    bad = []
    for path in sorted((EXAMPLE / "src").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top = node.module.split(".")[0]
                if node.module.startswith("gen.") or (top.startswith("gen_") and top != "gen_example"):
                    bad.append(f"{path.name}:{node.lineno} imports {node.module}")
                if node.module == "gen":
                    bad += [
                        f"{path.name}:{node.lineno} gen.{a.name}" for a in node.names if a.name not in public
                    ]
            elif isinstance(node, ast.Import):
                bad += [
                    f"{path.name}:{node.lineno} {a.name}" for a in node.names if a.name.startswith("gen.")
                ]
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "gen"
            ):
                if node.attr not in public:
                    bad.append(f"{path.name}:{node.lineno} uses gen.{node.attr}")
    assert bad == []


def test_train_and_sample_with_the_example_recipe(tmp_path):
    run = tmp_path / "run"
    out = gen_cli("train", str(RECIPE), *TINY, "--run-dir", str(run))
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert all(np.isfinite(m["loss"]) for m in metrics)
    assert (run / "samples" / "final.png").is_file()  # drawn with the recipe's sampler, rk4
    scores = json.loads((run / "eval.json").read_text())
    assert scores["num_samples"] == 8 and 0.0 <= scores["oracle_accuracy"] <= 1.0
    resolved = gen.load_recipe(run / "recipe.toml")  # the run's recipe, resolved and loadable
    assert (resolved.backbone.name, resolved.sample.sampler.name) == ("patch_mixer", "rk4")

    # Sample from the checkpoint with the plugin's other sampler, as ADM arrays.
    arrays = tmp_path / "samples.npz"
    out = gen_cli(
        "sample", str(run), "--out", str(arrays), "--num", "4", "--steps", "2", "--sampler", "midpoint"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    images = np.load(arrays)["arr_0"]
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.uint8
