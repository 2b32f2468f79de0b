"""The ``repa`` loss term: its formula on hand-computed cases, the gradients it sends, and a tiny JiT run
with it end to end (metrics by name, exact resume, what checkpoints hold, one-line errors)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.training.engine import train
from gen.training.loss_terms import LossTerms
from gen_losses.repa import RepaTerm, negative_cosine

runner = CliRunner()

RECIPE = """
[backbone]
name = "jit"
patch_size = 4
hidden_size = 32
depth = 2
num_heads = 2
bottleneck_dim = 8
in_context_len = 2
in_context_start = 0

[data]
name = "shapes"
image_size = 16
num_classes = 3
num_samples = 64

[[loss_terms]]
name = "repa"
weight = 0.5
layer = 1
encoder_path = "{encoder}"
encoder_size = {size}
projector_dim = 16

[train]
steps = 4
global_batch = 8
lr = 1e-3
warmup_steps = 1
log_every = 1
ckpt_every = 2
sample_every = 0
grid_samples = 0
eval_samples = 0
ema_decays = [0.9]
"""


def tiny_encoder(path, *, size=8, patch=2, width=64):
    """A randomly initialised DINOv2 ViT of one block, saved as DINOv2's names would be."""
    torch.manual_seed(0)
    net = gen.DINOv2ViT(
        embed_dim=width, depth=1, num_heads=1, patch_size=patch, img_size=size, input_size=size
    )
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.2)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("repa")
    encoder = tiny_encoder(folder / "encoder.safetensors")
    path = folder / "repa.toml"
    path.write_text(RECIPE.format(encoder=encoder, size=8))
    return path


@pytest.fixture(scope="module")
def run(recipe_file, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train(load_recipe(recipe_file), run_dir)
    return run_dir


def test_negative_cosine_on_known_vectors():
    projected = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[2.0, 0.0], [0.0, 3.0]]])  # (B=2, N=2, E=2)
    target = torch.tensor([[[3.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, -1.0]]])
    # sample 0: cos = 1 and 1/sqrt(2); sample 1: cos = 0 and -1
    expected = torch.tensor([-(1 + 1 / math.sqrt(2)) / 2, -(0 - 1) / 2])
    torch.testing.assert_close(negative_cosine(projected, target), expected)


def test_the_encoder_loads_from_its_file_with_its_shapes_read_from_the_tensors(tmp_path):
    encoder = gen.load_dinov2_encoder(tiny_encoder(tmp_path / "e.safetensors", size=8, patch=2, width=64))
    assert (encoder.num_features, encoder.patch_size, len(encoder.blocks)) == (64, 2, 1)
    assert not any(p.requires_grad for p in encoder.parameters()) and not encoder.training
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    assert encoder.patch_tokens(images, 8).shape == (3, 16, 64)  # a 4 x 4 grid of patches of 2


def built(recipe_file, overrides=()):
    recipe = load_recipe(recipe_file, list(overrides))
    spec = gen.DataSpec(shape=(3, 16, 16), num_classes=3)
    torch.manual_seed(0)
    from gen.recipe import build_backbone

    net = build_backbone(recipe, spec)
    terms = LossTerms.build(recipe, net, spec, torch.device("cpu"), False)
    return recipe, net, terms


def test_gradients_reach_the_backbone_and_the_projector_never_the_encoder(recipe_file):
    recipe, net, terms = built(recipe_file)
    objective = gen.Objective(recipe.objective, num_classes=3)
    x, y = torch.rand(4, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 3])
    loss, stats = objective.loss_at(
        net, x, y, torch.tensor([0.2, 0.4, 0.6, 0.8]), torch.randn_like(x), terms=terms.active
    )
    loss.backward()
    term = terms.terms[0]
    assert isinstance(term, RepaTerm) and isinstance(term, gen.LossTerm)
    assert all(p.grad is not None for p in terms.module.parameters())
    assert all(p.grad is None and not p.requires_grad for p in term.encoder.parameters())
    assert net.blocks[0].attn.qkv.weight.grad is not None
    assert stats["repa"].shape == (4,) and bool((stats["repa"].abs() <= 1).all())
    # the projector is not in the backbone: its weights file and EMAs never see it
    assert not any("proj" in k and k.startswith("loss_terms") for k in net.state_dict())


def test_the_term_adds_weight_times_its_value_per_sample(recipe_file):
    recipe, net, terms = built(recipe_file)
    objective = gen.Objective(recipe.objective, num_classes=3)
    x, y, eps = torch.rand(4, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 3]), torch.randn(4, 3, 16, 16)
    t = torch.tensor([0.2, 0.4, 0.6, 0.8])
    plain, base = objective.loss_at(net, x, y, t, eps)
    with_term, stats = objective.loss_at(net, x, y, t, eps, terms=terms.active)
    torch.testing.assert_close(stats["loss"], base["loss"])  # the process's loss is logged as it was
    torch.testing.assert_close(with_term, plain + 0.5 * stats["repa"].mean())


def test_a_run_logs_the_term_by_name_and_checkpoints_the_projector_apart(run):
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(-1 <= line["loss_repa"] <= 1 for line in lines) and len(lines) == 4
    latest = ckpt.latest_checkpoint(run)
    terms = load_file(str(latest / "loss_terms.safetensors"))
    assert sorted(terms) == [f"repa.{i}.{w}" for i in (0, 2, 4) for w in ("bias", "weight")]
    model, ema = load_file(str(latest / "model.safetensors")), load_file(str(latest / "ema_0.9.safetensors"))
    assert model.keys() == ema.keys() and not any(k.startswith("repa") for k in model)
    names = ckpt.load_state(latest)["optimizer"]["param_groups"][0]["params"]
    assert "loss_terms.repa.0.weight" in names  # trained by the backbone's optimizer, by name


def test_exact_resume_with_a_repa_term(recipe_file, run, tmp_path):
    split = tmp_path / "split"
    train(load_recipe(recipe_file, ["train.steps=2"]), split)
    train(load_recipe(recipe_file), split, resume=True)
    for stem in ("model", "ema_0.9", "loss_terms"):
        a = load_file(str(ckpt.latest_checkpoint(run) / f"{stem}.safetensors"))
        b = load_file(str(ckpt.latest_checkpoint(split) / f"{stem}.safetensors"))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), stem
    straight = [json.loads(line)["loss_repa"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    resumed = [json.loads(line)["loss_repa"] for line in (split / "metrics.jsonl").read_text().splitlines()]
    assert resumed == straight


def test_sampling_reads_the_run_without_the_projector(run):
    model = gen.load(run)
    assert isinstance(model, gen.ModelSampler)


def test_an_encoder_grid_other_than_the_tokens_is_resized(recipe_file, tmp_path):
    encoder = tiny_encoder(tmp_path / "e16.safetensors", size=16, patch=2)  # an 8 x 8 grid, tokens 4 x 4
    _, net, terms = built(
        recipe_file, [f'loss_terms=[{{name="repa", layer=2, encoder_path="{encoder}", encoder_size=16}}]']
    )
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    view = gen.TermView(
        x=x, z=x, t=torch.ones(2), x_hat=x, condition=None, hidden={"blocks.1": torch.randn(2, 18, 32)}
    )
    assert terms.terms[0](view).shape == (2,)


def test_a_missing_encoder_file_is_one_line_before_the_first_step(recipe_file, tmp_path):
    result = runner.invoke(
        app,
        [
            "train",
            str(recipe_file),
            "--run-dir",
            str(tmp_path / "r"),
            f'loss_terms=[{{name="repa", layer=1, encoder_path="{tmp_path}/nowhere.pth"}}]',
        ],
    )
    assert result.exit_code == 2, result.output
    assert f"loss_terms.0.encoder_path: {tmp_path}/nowhere.pth is missing" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r" / "checkpoints").exists()


def test_a_damaged_encoder_file_is_one_line(recipe_file, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 3)
    result = runner.invoke(
        app,
        [
            "train",
            str(recipe_file),
            "--run-dir",
            str(tmp_path / "r"),
            f'loss_terms=[{{name="repa", encoder_path="{bad}"}}]',
        ],
    )
    assert result.exit_code == 2 and "loss_terms.0.encoder_path: " in result.output
    assert str(bad) in result.output and "Traceback" not in result.output
