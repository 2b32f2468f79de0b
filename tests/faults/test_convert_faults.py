"""``gen convert`` killed in the middle: nothing half-written is left under a final name, and running it again
gives the same run directory as a conversion never killed (DiT, and JiT with ``--recipe``: both write
through `gen.export_checkpoint`)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import torch

import gen
from gen.runs import checkpoint as ckpt

DIT = dict(input_size=8, in_channels=3, out_channels=6, num_classes=10, patch_size=2, hidden_size=64, depth=2)
JIT = dict(input_size=16, patch_size=4, hidden_size=32, depth=2, num_heads=2, bottleneck_dim=8,
           in_context_len=0, num_classes=5)  # fmt: skip

RECIPE = """\
[backbone]
name = "{name}"

[data]
name = "shapes"
image_size = {size}
num_classes = {classes}
min_scale = 0.4
max_scale = 0.5
{objective}
[sample]
steps = 2

[train]
steps = 1
"""
DDPM = '\n[objective]\nprediction = "eps"\nloss = "eps"\nprocess = { name = "ddpm", learn_sigma = true }\n'


def released(tmp_path: Path, name: str) -> tuple[Path, Path, list]:
    """A published checkpoint of a tiny model, its recipe, and the options of ``gen convert NAME``."""
    torch.manual_seed(0)
    recipe = tmp_path / f"{name}.toml"
    if name == "dit":
        state = gen.build("backbone", "dit", num_heads=4, **DIT).state_dict()
        torch.save(state, tmp_path / "DiT-tiny.pt")
        recipe.write_text(RECIPE.format(name="dit", size=8, classes=10, objective=DDPM))
        return tmp_path / "DiT-tiny.pt", recipe, ["--num-heads", 4]
    state = {f"net.{k}": v for k, v in gen.build("backbone", "jit", **JIT).state_dict().items()}
    args = argparse.Namespace(model="JiT-B/16")
    torch.save({"model": state, "model_ema1": state, "model_ema2": state, "args": args}, tmp_path / "jit.pth")
    recipe.write_text(RECIPE.format(name="jit", size=16, classes=5, objective=""))
    return tmp_path / "jit.pth", recipe, ["--num-heads", 2]


def contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path (the recipes' header lines name the folder: dropped)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            out[str(p.relative_to(folder))] = (
                b"\n".join(data.splitlines()[1:]) if p.suffix == ".toml" else data
            )
    return out


@pytest.mark.parametrize("name", ["dit", "jit"])
@pytest.mark.parametrize("where", ["weights", "recipe"])
def test_a_kill_during_convert_leaves_no_half_file_and_a_rerun_converts_the_same(
    g, tmp_path, monkeypatch, name, where
):
    source, recipe, options = released(tmp_path, name)
    straight = tmp_path / "straight"
    g.succeeds("convert", name, source, straight, "--recipe", recipe, *options)

    out = tmp_path / "out"
    real_save, real_write = ckpt.save_file, Path.write_text

    def killed_save(tensors, path, *args, **kwargs):
        real_save(tensors, path, *args, **kwargs)
        with open(path, "r+b") as f:
            f.truncate(f.seek(0, 2) // 2)
        raise KeyboardInterrupt

    def killed_write(self, data, *args, **kwargs):
        if Path(self).parent == out:  # the run's recipe.toml, half written
            real_write(self, data[: len(data) // 2], *args, **kwargs)
            raise KeyboardInterrupt
        return real_write(self, data, *args, **kwargs)

    if where == "weights":
        monkeypatch.setattr(ckpt, "save_file", killed_save)
    else:
        monkeypatch.setattr(Path, "write_text", killed_write)
    assert g.invoke("convert", name, source, out, "--recipe", recipe, *options).exit_code != 0
    # Under a final name only whole files (the run's recipe, when the kill came after it), never the
    # checkpoint's, which is renamed into place once complete.
    finals = {k: v for k, v in contents(out).items() if not k.startswith(".") and ".tmp" not in k}
    assert set(finals) <= {"recipe.toml"} and all(v == contents(straight)[k] for k, v in finals.items())
    monkeypatch.undo()
    g.succeeds("convert", name, source, out, "--recipe", recipe, *options)
    assert contents(out) == contents(straight)


def test_a_kill_during_convert_jit_without_a_recipe_leaves_no_half_file(g, tmp_path, monkeypatch):
    import safetensors.torch

    source, _, options = released(tmp_path, "jit")
    real_save = safetensors.torch.save_file

    def killed(tensors, path, *args, **kwargs):
        real_save(tensors, path, *args, **kwargs)
        with open(path, "r+b") as f:
            f.truncate(f.seek(0, 2) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", killed)
    out = tmp_path / "out"
    assert g.invoke("convert", "jit", source, out, *options).exit_code != 0
    assert not (out / "model.safetensors").exists()
    monkeypatch.undo()
    shutil.rmtree(out, ignore_errors=True)
