"""The ddpm process as the core sees it: recipe checks, training times and loss, sampling from a recipe."""

from __future__ import annotations

import textwrap

import pytest
import torch

import gen
from gen import sample as sample_from_config
from gen.recipe import recipe_to_toml
from gen_ddpm import DDPMProcess

RECIPE = """
[backbone]
name = "dit"
patch_size = 4
hidden_size = 32
depth = 1
num_heads = 2
out_channels = 6

[data]
name = "shapes"
image_size = 16
num_classes = 3

[objective]
prediction = "eps"
loss = "eps"
label_drop = 0.1
process = {{ name = "ddpm", learn_sigma = true }}

[sample]
sampler = {sampler}
steps = 8
cfg = 1.5

[train]
steps = 10
"""


@pytest.fixture
def write(tmp_path):
    def make(text: str = RECIPE, sampler: str = '"ddim"') -> str:
        path = tmp_path / "recipe.toml"
        path.write_text(textwrap.dedent(text.format(sampler=sampler)))
        return str(path)

    return make


def test_recipe_loads_with_both_samplers(write):
    for sampler in ('"ddpm"', '{ name = "ddim", eta = 0.5 }'):
        recipe = gen.load_recipe(write(sampler=sampler))
        process = recipe.objective.build_process()
        assert isinstance(process, DDPMProcess) and process.config.learn_sigma
    assert recipe.sample.sampler.config.eta == 0.5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("objective.prediction='x'", 'prediction = "x": the ddpm process predicts'),
        ("objective.loss='v'", 'set loss = "eps"'),
        ("objective.t_eps=0.1", 't_eps = 0.1 applies to the flow process only; remove it (process "ddpm")'),
        ("objective.noise_scale=2.0", "noise_scale = 2.0 applies to the flow process only"),
        ("objective.multiscale=[2]", "multiscale = [2] applies to the flow process only"),
        ("objective.schedule='uniform'", 'schedule = "uniform" applies to the flow process only'),
        ("objective.schedule.mean=0.5", 'schedule = "logit_normal" applies to the flow process only'),
    ],
)
def test_flow_keys_are_refused_in_one_line(write, override, message):
    with pytest.raises(gen.RecipeError) as info:
        gen.load_recipe(write(), overrides=[override])
    text = str(info.value)
    assert "[objective]" in text and message in text and "\n" not in text


def test_resolved_recipe_loads_again(write, tmp_path):
    """``gen recipe show`` spells out the default schedule's options; they are still the defaults."""
    path = tmp_path / "resolved.toml"
    path.write_text(recipe_to_toml(gen.load_recipe(write())))
    assert isinstance(gen.load_recipe(path).objective.build_process(), DDPMProcess)


def test_learned_variance_sets_the_backbone_out_channels(write):
    recipe = gen.load_recipe(write(RECIPE.replace("out_channels = 6\n", "")))
    assert recipe.backbone.config.out_channels == 6  # 2 x the data's 3 channels


def test_flow_solver_cannot_sample_ddpm(write):
    # The registry says which process a sampler samples: one line naming both, and the right ones.
    message = r"\[sample\]: sampler 'heun' samples the flow process, not the ddpm process of this model; "
    with pytest.raises(gen.RecipeError, match=message + "choose one of ddim, ddpm$"):
        gen.load_recipe(write(sampler='"heun"'))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sample.steps=300", "steps = 300 with spacing 'ddim' of the ddpm process's 1000 steps"),
        ("sample.grid='shifted'", "grid = 'shifted' places the flow's solver steps"),
    ],
)
def test_sample_keys_the_process_cannot_honour_fail_at_load(write, override, message):
    with pytest.raises(gen.RecipeError) as info:
        gen.load_recipe(write(sampler='"ddim"'), overrides=[override])
    assert "[sample]" in str(info.value) and message in str(info.value) and "\n" not in str(info.value)


def test_ddim_cannot_sample_a_flow_recipe(write):
    flow = RECIPE.replace('prediction = "eps"\nloss = "eps"\n', "").replace(
        'process = {{ name = "ddpm", learn_sigma = true }}', ""
    )
    with pytest.raises(gen.RecipeError, match=r"\[sample\]: sampler") as info:
        gen.load_recipe(write(flow))
    assert "ddpm" in str(info.value) and "\n" not in str(info.value)


def test_config_checks():
    with pytest.raises(gen.RecipeError, match="leave"):
        gen.build("process", "ddpm", num_timesteps=10)  # linear betas scaled by 100 pass 1
    with pytest.raises(gen.RecipeError, match="beta_schedule"):
        gen.build("process", "ddpm", beta_schedule="quad")
    assert (
        gen.build("process", "ddpm", num_timesteps=10, beta_schedule="cosine").diffusion.num_timesteps == 10
    )


def test_check_sampler_and_backbone_fields():
    process = gen.build("process", "ddpm")
    process.check_sampler(gen.build("sampler", "ddim"))
    with pytest.raises(ValueError, match="'euler'"):
        process.check_sampler(gen.build("sampler", "euler"))
    spec = gen.DataSpec(shape=(4, 8, 8), num_classes=10)
    assert process.backbone_fields(spec) == {"out_channels": 8}
    assert gen.build("process", "ddpm", learn_sigma=False).backbone_fields(spec) == {}


def test_sample_time_draws_integer_steps_from_the_generator():
    process = gen.build("process", "ddpm")
    t = process.sample_time(4096, generator=torch.Generator().manual_seed(0), device="cpu")
    assert t.dtype == torch.float32 and t.shape == (4096,)
    assert torch.equal(t, t.round()) and t.min() >= 0 and t.max() <= 999 and t.unique().numel() > 900
    assert torch.equal(t, process.sample_time(4096, generator=torch.Generator().manual_seed(0)))


def test_loss_stats(tiny):
    process = gen.build("process", "ddpm")
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(2, 3, 4, 8, 8, generator=g)
    t = torch.tensor([999.0, 0.0, 500.0])
    loss, stats = process.loss_at(tiny, x, torch.tensor([0, 1, 3]), t, eps)
    assert loss.shape == (3,) and loss.requires_grad
    assert set(stats) == {"loss", "mse", "vb", "t"}
    assert all(not s.requires_grad and s.shape == (3,) for s in stats.values())
    torch.testing.assert_close(stats["t"], torch.tensor([0.0005, 0.9995, 0.4995]))
    torch.testing.assert_close(stats["loss"], stats["mse"] + stats["vb"])


def test_fixed_variance_loss_is_the_mse(make_tiny):
    process = gen.build("process", "ddpm", learn_sigma=False)
    net = make_tiny(out_channels=4)
    x, eps = torch.randn(2, 2, 4, 8, 8)
    _, stats = process.loss_at(net, x, torch.tensor([0, 1]), torch.tensor([3.0, 700.0]), eps)
    assert stats["vb"].tolist() == [0.0, 0.0]
    torch.testing.assert_close(stats["loss"], stats["mse"])
    with pytest.raises(gen.GenError, match="out_channels = 8"):
        gen.build("process", "ddpm").loss_at(net, x, torch.tensor([0, 1]), torch.tensor([3.0, 7.0]), eps)


def test_training_smoke_loss_goes_down(write):
    recipe = gen.load_recipe(write())
    objective = gen.Objective(recipe.objective, num_classes=3)
    torch.manual_seed(0)
    net = recipe.backbone.build()  # in_channels 3 and input_size 16 from the data; out_channels 6
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 3, (8,), generator=g)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def step() -> float:
        loss, stats = objective.loss(net, x, y, generator=torch.Generator().manual_seed(2))  # fixed t, noise
        assert torch.isfinite(loss) and loss.ndim == 0 and stats["t"].shape == (8,)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    first = step()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    for _ in range(15):
        last = step()
    assert last < 0.9 * first


def test_sample_from_a_recipe(write):
    recipe = gen.load_recipe(write(sampler='"ddpm"'))
    torch.manual_seed(0)
    net = recipe.backbone.build().eval()
    noise = torch.randn(2, 3, 16, 16)
    out = sample_from_config(net, noise, torch.tensor([0, 2]), recipe.sample, recipe.objective, num_classes=3)
    assert out.shape == noise.shape and torch.isfinite(out).all()
