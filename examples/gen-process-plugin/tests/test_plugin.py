"""The package is a gen plugin: its process and sampler are registered, its recipe
validates, and a model trains and samples through the `gen` command line."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import gen
import pytest

from gen_vp.process import VPCosineProcess

PACKAGE = Path(__file__).resolve().parents[1]
RECIPE = PACKAGE / "recipes" / "vp_shapes.toml"

# A few steps of a tiny model: the process end to end through the CLI, not its quality.
TINY = [
    "train.steps=20",
    "train.global_batch=8",
    "train.warmup_steps=1",
    "train.log_every=10",
    "train.ckpt_every=20",
    "train.ema_decays=[0.9]",
    "train.grid_samples=4",
    "train.eval_samples=8",
    "data.num_samples=64",
    "backbone.hidden_size=16",
    "backbone.num_heads=2",
    "backbone.depth=1",
    "sample.steps=4",
]


def gen_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "gen", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_components_are_registered_by_this_plugin():
    process = gen.get_registry("process").get("vp_cosine")
    sampler = gen.get_registry("sampler").get("vp_ddim")
    assert process.plugin == sampler.plugin == "gen_vp"
    assert sampler.process == "vp_cosine" and process.process is None


def test_source_uses_only_the_public_api():
    public, bad = set(gen.__all__), []
    for path in sorted((PACKAGE / "src").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top = node.module.split(".")[0]
                if node.module.startswith("gen.") or (
                    top.startswith("gen_") and top != "gen_vp"
                ):
                    bad.append(f"{path.name}:{node.lineno} imports {node.module}")
                if node.module == "gen":
                    bad += [f"{path.name}: gen.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                bad += [
                    f"{path.name}:{node.lineno} imports {a.name}"
                    for a in node.names
                    if a.name.startswith("gen.") or a.name.startswith("gen_")
                ]
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "gen"
                and node.attr not in public
            ):
                bad.append(f"{path.name}:{node.lineno} uses gen.{node.attr}")
    assert bad == []


def test_the_recipe_validates_and_uses_the_plugin():
    recipe = gen.load_recipe(RECIPE)
    process = recipe.objective.build_process()
    assert isinstance(process, VPCosineProcess) and process.prediction == "v"
    assert (process.config.t_min, process.config.t_max) == (0.02, 0.98)
    assert recipe.sample.sampler.name == "vp_ddim"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            'objective.prediction="x"',
            r'prediction = "x", loss = "eps": the vp_cosine process regresses its '
            r'prediction, eps or v; set prediction = "eps" and loss = "eps" '
            r'\(or both "v"\)',
        ),
        ('objective.loss="eps"', r'prediction = "v", loss = "eps"'),
        (
            "objective.noise_scale=2.0",
            r"noise_scale = 2.0 applies to the flow process only; remove it \(process "
            r'"vp_cosine"\)',
        ),
        ("objective.multiscale=[2]", r"multiscale = \[2\] applies to the flow"),
        ('objective.schedule="uniform"', r'schedule = "uniform" applies to the flow'),
        (
            "objective.schedule.mean=0.0",
            r'schedule = "logit_normal" applies to the flow',
        ),
        ("objective.process.t_min=0.99", r"t_min = 0.99 must be below t_max = 0.98"),
        ("objective.process.t_min=0", r"process.t_min = 0 with prediction = \"eps\""),
        (
            'sample.guidance="auto"',
            r"guidance = 'auto' \(autoguidance\) guides the flow",
        ),
        ("sample.split_interval=true", r"split_interval cuts the flow's ODE"),
        (
            'sample.sampler="heun"',
            r"sampler 'heun' samples the flow process, not the vp_cosine process",
        ),
    ],
)
def test_keys_the_process_cannot_honour_are_one_line_errors(override, message):
    overrides = [override]
    if override == 'objective.prediction="x"':
        overrides.append('objective.loss="eps"')
    if override == "objective.process.t_min=0":
        overrides += ['objective.prediction="eps"', 'objective.loss="eps"']
    with pytest.raises(gen.RecipeError, match=message) as error:
        gen.load_recipe(RECIPE, overrides)
    assert "\n" not in str(error.value)


def test_the_process_itself_refuses_a_sampler_not_its_own():
    sampler = gen.get_registry("sampler").get("euler")  # the flow's, marked flow
    assert sampler.process == "flow"
    process = gen.load_recipe(RECIPE).objective.build_process()
    with pytest.raises(
        ValueError, match="sampler 'euler' does not sample the vp_cosine"
    ):
        process.check_sample(gen.SampleConfig(sampler="euler"))


def test_components_command_lists_the_process_and_its_sampler():
    out = gen_cli("components", "process", "--json")
    assert out.returncode == 0, out.stderr
    processes = {c["name"]: c for c in json.loads(out.stdout)["process"]}
    assert processes["vp_cosine"]["plugin"] == "gen_vp"
    assert [f["name"] for f in processes["vp_cosine"]["fields"]] == ["t_min", "t_max"]
    out = gen_cli("components", "sampler")
    assert out.returncode == 0, out.stderr
    assert "sampler 'vp_ddim' (gen_vp, process vp_cosine)" in out.stdout


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("vp") / "run"
    out = gen_cli("train", str(RECIPE), "--run-dir", str(run), *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    return run


def test_train_through_the_cli(run_dir):
    lines = [
        json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert [m["step"] for m in lines if "loss" in m] == [10, 20]
    assert (run_dir / "samples" / "final.png").is_file()
    scores = json.loads((run_dir / "eval.json").read_text())
    assert scores["sampler"] == "vp_ddim" and scores["num_samples"] == 8
    # The run's resolved recipe spells out every default of [objective]: it loads.
    resolved = gen.load_recipe(run_dir / "recipe.toml")
    assert "schedule" in (run_dir / "recipe.toml").read_text()
    assert resolved.objective.build_process().prediction == "v"


def test_sample_through_the_cli(run_dir, tmp_path):
    out = gen_cli(
        "sample", str(run_dir), "--num", "4", "--out", str(tmp_path / "x.png")
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_flow_sampler_is_refused_in_one_line(run_dir, tmp_path):
    out = gen_cli(
        *("sample", str(run_dir), "--num", "4", "--out", str(tmp_path / "y.png")),
        *("--sampler", "heun"),
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    [line] = [x for x in out.stderr.splitlines() if x.strip()]
    assert line.startswith("error: ")
    assert "'heun' samples the flow process, not the vp_cosine process" in line
    assert "vp_ddim" in line and not (tmp_path / "y.png").exists()
