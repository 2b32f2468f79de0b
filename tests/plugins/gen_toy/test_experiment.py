"""The toy grid's cells, in process: training one (gen.train), sampling it (gen.ModelSampler), failures."""

from __future__ import annotations

import inspect
import json
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import gen
from gen_flow.sampling import sample_flow
from gen_toy import experiment
from gen_toy.experiment import Cell, grid_ema, run_grid, sample_cell, torch_threads, train_cell

REPO = Path(__file__).resolve().parents[3]
RECIPE = REPO / "recipes" / "toy" / "manifold.toml"
TINY = ["backbone.hidden=16", "backbone.depth=2", "train.global_batch=32", "train.log_every=2"]


def tiny_recipe(cell: Cell, *extra: str) -> gen.Recipe:
    return gen.load_recipe(RECIPE, [*cell.overrides(3), *TINY, *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, tuple]:
    """One tiny cell with two EMAs, the second the grid's, trained in process."""
    run_dir = tmp_path_factory.mktemp("cell") / "x_D8"
    recipe = tiny_recipe(Cell("x", 8), "train.ema_decays=[0.9, 0.5]", "train.grid_ema=0.5")
    return run_dir, train_cell(recipe, Cell("x", 8), run_dir, measure_cpu=True)


def test_no_subprocess():
    assert "subprocess" not in inspect.getsource(experiment)


def test_the_toy_recipe_samples_without_guidance():
    # ModelSampler uses the recipe's [sample] section; unguided, it draws what gen.sample drew before.
    assert gen.load_recipe(RECIPE).sample.cfg == 1.0


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ([], "none"),
        (["train.ema_decays=[0.9, 0.5]"], "default"),
        (["train.ema_decays=[0.9, 0.5]", "train.grid_ema=0.5"], "0.5"),
    ],
)
def test_grid_ema_names_the_engines_grid_weights(overrides, name):
    assert grid_ema(gen.load_recipe(RECIPE, overrides)) == name


def test_train_cell_trains_in_process(trained):
    run_dir, (seconds, cpu, loss) = trained
    assert seconds > 0 and cpu is not None and cpu > 0
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines() if s.strip()]
    assert loss == float(lines[-1]["loss"])  # the summary's last logged loss
    log = (run_dir / "train.log").read_text()
    assert "training mlp for 3 steps" in log and "done: step 3" in log
    assert gen.load_checkpoint(str(run_dir)).ema_decays == (0.9, 0.5)


def test_sample_cell_draws_what_the_engine_draws(trained):
    run_dir, _ = trained
    drawn = sample_cell(run_dir, 32)
    samples = drawn["samples"]
    assert samples.shape == (32, 8) and samples.dtype == torch.float32

    sampler = gen.ModelSampler.from_checkpoint(str(run_dir))
    labels = torch.zeros(32, dtype=torch.long)

    def draw(ema: str) -> torch.Tensor:
        settings = sampler.settings(ema)
        return torch.cat([x for _, x in sampler.generate(range(32), labels, settings, seed=0, batch_size=7)])

    assert sampler.recipe.train.seed == 0
    # The grid EMA in batches of 7, where the cell drew 32 at once: other float32 kernels. The samples (|x| <
    # 0.33) end 99 network evaluations; batches of 1 and 32 differ by 3e-8 (1 ulp). atol allows 30 times
    # that, far below what the other EMAs change (>= 1.2e-4).
    torch.testing.assert_close(samples, draw("0.5"), rtol=0, atol=1e-6)
    assert (samples - draw("0.9")).abs().max() > 1e-5 and (samples - draw("none")).abs().max() > 1e-5

    # The same function of (seed, index) as the plugin's former path: sample_noise + sample, unguided.
    checkpoint = gen.load_checkpoint(str(run_dir))
    net = gen.build("backbone", "mlp", input_dim=8, hidden=16, depth=2)
    net.load_state_dict(checkpoint.load_weights(0.5))
    recipe = checkpoint.recipe
    noise = gen.sample_noise(range(32), (8,), seed=0, noise_scale=recipe.objective.noise_scale)
    with torch.no_grad():
        before = sample_flow(
            net.eval(),
            noise,
            None,
            prediction="x",
            sampler=recipe.sample.sampler,
            steps=recipe.sample.steps,
            t_eps=recipe.objective.t_eps,
            num_classes=0,
        )
    torch.testing.assert_close(samples, before, rtol=0, atol=0)

    dataset = recipe.data.build()
    assert drawn["scores"] == {k: float(v) for k, v in dataset.evaluate_samples(samples, labels).items()}
    torch.testing.assert_close(drawn["points"], dataset.project(samples))


def test_a_failing_training_is_one_generror_line(trained):
    run_dir, _ = trained  # holds a checkpoint: the engine refuses to train into it again
    with pytest.raises(gen.GenError) as info:
        train_cell(tiny_recipe(Cell("x", 8)), Cell("x", 8), run_dir, measure_cpu=False)
    message = str(info.value)
    assert message.startswith("training x_D8 failed: ") and "\n" not in message
    assert message.endswith(f"(full log: {run_dir / 'train.log'})")
    assert isinstance(info.value.__cause__, gen.GenError)


def test_an_unexpected_error_is_named_and_logged(tmp_path, monkeypatch):
    def boom(recipe, run_dir, *, console):
        console.print("set up")
        raise RuntimeError("kernel exploded\nsecond line")

    monkeypatch.setattr(gen, "train", boom)
    with pytest.raises(gen.GenError) as info:
        train_cell(tiny_recipe(Cell("v", 2)), Cell("v", 2), tmp_path, measure_cpu=False)
    assert str(info.value) == (
        f"training v_D2 failed: RuntimeError: kernel exploded (full log: {tmp_path / 'train.log'})"
    )
    log = (tmp_path / "train.log").read_text()
    assert "set up" in log and "Traceback" in log and "kernel exploded" in log


def test_a_stopped_training_ends_the_grid(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "train", lambda *a, **k: {"step": 2, "metrics": {}, "stopped": True})
    with pytest.raises(gen.GenError, match=r"^training v_D2 was stopped by a signal at step 2;"):
        train_cell(tiny_recipe(Cell("v", 2)), Cell("v", 2), tmp_path, measure_cpu=True)


def test_torch_threads_apply_to_new_threads_and_are_restored():
    before = torch.get_num_threads()
    seen = []
    with torch_threads(1):
        worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        worker.start()
        worker.join()
        assert torch.get_num_threads() == 1
    assert seen == [1] and torch.get_num_threads() == before


def test_parallel_cells_match_sequential_ones(tmp_path, monkeypatch):
    started = []
    popen = subprocess.Popen

    def watch(args, *rest, **kwargs):  # the engine may run `git rev-parse` for its provenance
        started.append(args)
        return popen(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", watch)
    threads = torch.get_num_threads()
    kw = {"predictions": ["x", "v", "eps"], "dims": [2, 3], "steps": 3, "num_samples": 16}
    one = run_grid(RECIPE, out=tmp_path / "one", jobs=1, **kw)
    # Cells set up while others train and while finished ones are sampled: the same weights all the same.
    two = run_grid(RECIPE, out=tmp_path / "two", jobs=2, **kw)
    assert torch.get_num_threads() == threads
    assert all(str(args[0]) == "git" for args in started), started  # no `python -m gen train`
    for a, b in zip(one["cells"], two["cells"], strict=True):
        assert a["train_cpu_seconds"] is not None and b["train_cpu_seconds"] is None
        assert {k: v for k, v in a.items() if "seconds" not in k} == {
            k: v for k, v in b.items() if "seconds" not in k
        }
    with np.load(tmp_path / "one" / "samples.npz") as x, np.load(tmp_path / "two" / "samples.npz") as y:
        assert x.files == y.files
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key])
