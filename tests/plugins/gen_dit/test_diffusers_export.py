"""``gen export --format diffusers``: a tiny latent DiT (random weights, DDPM with learned variance, a tiny
random ``AutoencoderKL``) as a ``DiTPipeline`` folder, loaded offline and sampled from gen's start noise.

Measured here (float32, CPU): the transformer equals gen's DiT bit for bit once its timestep features are
DiT's (`use_dit_timesteps`; diffusers' own differ at every t but 0); the whole pipeline with the exported
``DDIMScheduler`` draws gen's ``ddim`` samples to ~1e-7 relative (≤ 1e-4 asserted); a ``DDPMScheduler``
with the learned range draws gen's ancestral ``ddpm`` samples in a loop that keeps the variance channels
(≤ 1e-4 at 10 steps; diffusers computes 1 − ᾱ in float32)."""

from __future__ import annotations

import json
import shutil
import textwrap

import pytest
import torch
from typer.testing import CliRunner

import gen
from gen.commands import app

diffusers = pytest.importorskip("diffusers")

from diffusers import DDPMScheduler, DiTPipeline, DiTTransformer2DModel  # noqa: E402
from diffusers.pipelines.dit import pipeline_dit  # noqa: E402

from gen_dit.diffusers_export import ddpm_scheduler_config, use_dit_timesteps  # noqa: E402

RECIPE = """\
[backbone]
name = "dit"
patch_size = 2
hidden_size = 32
depth = 2
num_heads = 2
{backbone}

[autoencoder]
{autoencoder}

[data]
name = "shapes"
image_size = 16
num_classes = 3

[objective]
{objective}

[sample]
sampler = {sampler}
steps = 4
cfg = 1.5

[train]
steps = 10
ema_decays = [0.99]
"""

LATENT = 'name = "sd_vae"\npath = "{vae}"\nscale = 0.5'
DDPM = 'prediction = "eps"\nloss = "eps"\nprocess = { name = "ddpm", learn_sigma = true }'
DDIM = '{ name = "ddim", cfg_channels = 0 }'  # guides every latent channel, as DiTPipeline does
LABELS, SEED, CFG = [0, 1, 2, 1], 5, 1.5


def cli(*args, code=0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output + repr(result.exception)
    return result


def make_run(root, vae, *, backbone="", autoencoder=LATENT, objective=DDPM, sampler=DDIM):
    """A run directory holding random DiT weights (every parameter drawn: at DiT's own initialisation
    adaLN-Zero's zeros would hide t and y), as `gen convert dit` writes one."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "dit.toml"
    text = RECIPE.format(
        backbone=backbone, autoencoder=autoencoder.format(vae=vae), objective=objective, sampler=sampler
    )
    path.write_text(textwrap.dedent(text))
    recipe = gen.load_recipe(path)
    latent = "sd_vae" in autoencoder
    spec = gen.DataSpec(shape=(4, 8, 8) if latent else (3, 16, 16), num_classes=3)
    from gen.recipe import build_backbone

    net = build_backbone(recipe, spec)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    state = net.state_dict()
    raw = {k: v + 0.01 for k, v in state.items()}
    gen.export_checkpoint(root / "run", recipe, spec=spec, weights={None: raw, 0.99: state}, step=10)
    return root / "run"


@pytest.fixture(scope="module")
def exported(tiny_vae_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("dit_export")
    run = make_run(root, tiny_vae_dir)
    cli("export", run, root / "pipe", "--format", "diffusers")
    return run, root / "pipe"


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def rel(a, b):
    return float((a - b).norm() / b.norm())


def test_the_folder_is_a_dit_pipeline(exported, offline):
    yaml = pytest.importorskip("yaml")
    run, out = exported
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "model_index.json",
        "scheduler",
        "transformer",
        "vae",
    ]
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "DiTPipeline"
    pipe = DiTPipeline.from_pretrained(out)
    assert isinstance(pipe.transformer, DiTTransformer2DModel)
    assert type(pipe.scheduler).__name__ == "DDIMScheduler" and pipe.scheduler.config.clip_sample is False
    assert pipe.vae.config.scaling_factor == 0.5  # the recipe's latent scale
    card = (out / "README.md").read_text()
    assert yaml.safe_load(card.split("---\n")[1])["library_name"] == "diffusers"
    assert "block.norm1.emb.time_proj.downscale_freq_shift = 0" in card
    assert "DiTPipeline.from_pretrained" in card and "step 10, EMA `0.99`" in card


def test_the_transformer_is_gens_dit(exported, offline):
    run, out = exported
    model = gen.load(str(run))
    model.use_weights(0.99)
    transformer = DiTTransformer2DModel.from_pretrained(out / "transformer").eval()
    x = torch.randn(6, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0, 1, 10, 250, 500, 999])
    y = torch.tensor([0, 1, 2, 3, 1, 3])  # 3: gen's null label, diffusers' 1000
    with torch.no_grad():
        ours = model.model(x, t.float(), y)
        theirs = lambda: transformer(x, timestep=t, class_labels=torch.where(y == 3, 1000, y)).sample  # noqa: E731
        stock = theirs()
        # diffusers' timestep frequencies are not DiT's: only t = 0 (all phases 0) agrees as loaded.
        assert torch.equal(stock[0], ours[0]) and rel(stock[1:], ours[1:]) > 1e-2
        use_dit_timesteps(transformer)
        assert torch.equal(theirs(), ours)  # bit for bit
    null = transformer.transformer_blocks[0].norm1.emb.class_embedder.embedding_table.weight
    assert torch.equal(null[3], null[1000]) and torch.equal(null[999], null[1000])  # padded with the null


def test_the_pipeline_draws_gens_ddim_samples(exported, offline, monkeypatch):
    run, out = exported
    noise = gen.sample_noise(range(len(LABELS)), (4, 8, 8), seed=SEED)  # gen's start noise, (4, 4, 8, 8)
    monkeypatch.setattr(pipeline_dit, "randn_tensor", lambda *a, **k: noise.clone())
    pipe = DiTPipeline.from_pretrained(out)
    errors = {}
    for steps in (4, 10):
        x = gen.load(str(run)).sample(LABELS, seed=SEED, steps=steps, cfg=CFG)  # (4, 3, 16, 16) in [-1, 1]
        ours = (x / 2 + 0.5).clamp(0, 1)  # as the pipeline returns images
        stock = pipe(
            class_labels=LABELS, guidance_scale=CFG, num_inference_steps=steps, output_type="pt"
        ).images
        use_dit_timesteps(pipe.transformer)
        fixed = pipe(
            class_labels=LABELS, guidance_scale=CFG, num_inference_steps=steps, output_type="pt"
        ).images
        pipe = DiTPipeline.from_pretrained(out)
        errors[steps] = (rel(fixed, ours), rel(stock, ours))
    assert all(e < 1e-4 for e, _ in errors.values()), errors  # measured ~1.3e-7 and ~1.8e-7
    assert all(s > 1e-2 for _, s in errors.values()), errors  # the stock timestep features: ~0.3 here


def test_a_ddpm_scheduler_runs_gens_ancestral_sampler(exported, offline):
    run, out = exported
    model = gen.load(str(run))
    sampler = {"name": "ddpm", "cfg_channels": 0}
    ours = model.sample(LABELS, seed=SEED, steps=10, cfg=CFG, sampler=sampler)
    recipe = model.recipe
    scheduler = DDPMScheduler(**ddpm_scheduler_config(recipe.objective.process.config))
    assert (
        scheduler.config.variance_type == "learned_range" and scheduler.config.timestep_spacing == "linspace"
    )
    scheduler.set_timesteps(10)
    transformer = DiTTransformer2DModel.from_pretrained(out / "transformer").eval()
    use_dit_timesteps(transformer)
    noise = gen.sample_noise(range(len(LABELS)), (4, 8, 8), seed=SEED)
    generators = gen.per_sample_generators(noise)  # gen's step noise: a generator per sample
    y = torch.tensor(LABELS)
    z = noise.clone()
    with torch.no_grad():
        for t in scheduler.timesteps:  # DiTPipeline's loop, keeping the variance channels
            out_ = transformer(
                torch.cat([z, z]), timestep=t.expand(8), class_labels=torch.cat([y, y * 0 + 1000])
            )
            cond, uncond = out_.sample.chunk(2)
            eps = uncond[:, :4] + CFG * (cond[:, :4] - uncond[:, :4])
            z = scheduler.step(torch.cat([eps, cond[:, 4:]], 1), t, z, generator=generators).prev_sample
        theirs = model.autoencoder.decode(z)
    assert rel(theirs, ours) < 1e-4  # measured 5.7e-5: diffusers' float32 1 − ᾱ near t = 0


def test_gen_format_of_a_latent_dit_points_to_its_autoencoder(exported, tmp_path):
    run, _ = exported
    cli("export", run, tmp_path / "m")
    card = (tmp_path / "m" / "README.md").read_text()
    assert "**not in this folder**" in card and "latent-space" in card
    x = gen.load(str(run)).sample([0, 2], seed=1)
    assert torch.equal(gen.load(str(tmp_path / "m")).sample([0, 2], seed=1), x)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        (
            {"autoencoder": 'name = "identity"'},
            "a DiT in pixel space; DiTPipeline decodes latents with a VAE",
        ),
        (
            {"objective": "", "sampler": '"euler"'},
            "the 'flow' process; DiTPipeline samples DiT's DDPM (process ddpm)",
        ),
        (
            {"backbone": 'conditioning = "in_context"'},
            "conditioning 'in_context' (DiTTransformer2DModel has adaLN-Zero",
        ),
        ({"backbone": "mlp_ratio = 2.0"}, "mlp_ratio 2.0 (its MLP is 4 times the width)"),
    ],
)
def test_what_diffusers_cannot_hold_is_one_line(tiny_vae_dir, tmp_path, kwargs, problem):
    run = make_run(tmp_path, tiny_vae_dir, **kwargs)
    result = cli("export", run, tmp_path / "pipe", "--format", "diffusers", code=2)
    line = result.stderr.strip()
    assert (
        line.startswith(f"error: --format diffusers: {run}/checkpoints/step_00000010: ") and "\n" not in line
    )
    assert problem in line and line.endswith("; export it with --format gen")
    assert not (tmp_path / "pipe").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_missing_autoencoder_is_one_line(tiny_vae_dir, tmp_path):
    vae = tmp_path / "vae"
    shutil.copytree(tiny_vae_dir, vae)
    run = make_run(tmp_path, vae)
    shutil.rmtree(vae)
    result = cli("export", run, tmp_path / "pipe", "--format", "diffusers", code=2)
    line = result.stderr.strip()
    assert (
        line.startswith("error: ")
        and "\n" not in line
        and f"{vae} does not exist (recipe key autoencoder.path)" in line
    )
    assert not (tmp_path / "pipe").exists()
