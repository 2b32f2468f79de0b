"""The pieces of the toy grid that need no training: finding the checkpoint, loading its weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import gen
from gen_toy.experiment import latest_checkpoint, load_sampling_model

REPO = Path(__file__).resolve().parents[3]
RECIPE = REPO / "recipes" / "toy" / "manifold.toml"


def fake_checkpoint(
    run_dir: Path, step: int, files: dict[str, dict[str, torch.Tensor]], complete=True
) -> Path:
    path = run_dir / "checkpoints" / f"step_{step:08d}"
    path.mkdir(parents=True)
    for name, tensors in files.items():
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / name))
    if complete:
        (path / "meta.json").write_text("{}")
    return path


def test_latest_checkpoint_is_the_highest_complete_step(tmp_path):
    fake_checkpoint(tmp_path, 5, {})
    newest = fake_checkpoint(tmp_path, 20, {})
    fake_checkpoint(tmp_path, 30, {}, complete=False)  # a write that never finished
    (tmp_path / "checkpoints" / ".step_00000040.tmp").mkdir()
    assert latest_checkpoint(tmp_path) == newest
    with pytest.raises(gen.GenError, match="no checkpoint"):
        latest_checkpoint(tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("overrides", "weights"), [([], "model"), (["train.ema_decays=[0.9, 0.5]"], "ema_0.9")]
)
def test_sampling_model_loads_the_weights_the_engine_samples_with(tmp_path, overrides, weights):
    recipe = gen.load_recipe(RECIPE, ["data.dim=8", "backbone.hidden=16", *overrides])
    spec = gen.DataSpec(shape=(8,), num_classes=0)
    torch.manual_seed(0)
    states = {
        name: {
            k: torch.randn_like(v)
            for k, v in gen.build("backbone", "mlp", input_dim=8, hidden=16).state_dict().items()
        }
        for name in ("model", "ema_0.9", "ema_0.5")
    }
    fake_checkpoint(tmp_path, 10, {f"{name}.safetensors": s for name, s in states.items()})
    net = load_sampling_model(recipe, spec, tmp_path)
    assert not net.training and net.config.input_dim == 8
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, states[weights][k])
    z = torch.randn(3, 8)
    assert np.isfinite(net(z, torch.rand(3), None).detach().numpy()).all()
