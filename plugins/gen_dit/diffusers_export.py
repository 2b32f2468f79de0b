"""``gen export RUN OUT --format diffusers``: a DiT as a folder that diffusers' ``DiTPipeline`` loads
(``DiTPipeline.from_pretrained(OUT)``, offline): ``transformer/`` (``DiTTransformer2DModel``), ``vae/``
(the recipe's ``AutoencoderKL``, saved from its local files) and ``scheduler/`` (a ``DDIMScheduler`` set
to gen's ``ddim`` sampler).

What diffusers' classes can and cannot hold, and so what this exporter refuses in one line: a DiT with
adaLN-Zero blocks, an MLP 4x wide and no extra scalar inputs (``DiTTransformer2DModel``); the ``ddpm``
process predicting eps (``DDIMScheduler``); latents of an ``AutoencoderKL`` decoded as ``z / scale``
without a shift (``DiTPipeline``).

What matches gen, measured by ``tests/plugins/gen_dit/test_diffusers_export.py``:

- The transformer's parameters are DiT's, renamed (`diffusers_state_dict`); the timestep and label
  embedders are copied into every block, where diffusers keeps one per block. Its output equals the gen
  DiT's bit for bit once the timestep features are DiT's: diffusers' ``CombinedTimestepLabelEmbeddings``
  uses the frequencies ``10000^(-k/127)`` (``downscale_freq_shift = 1``) where DiT and gen use
  ``10000^(-k/128)``, a difference no weight can absorb and no config key sets. Setting
  ``downscale_freq_shift = 0`` on each block's ``norm1.emb.time_proj`` after loading (`use_dit_timesteps`)
  gives DiT's; the stock model differs at every step but t = 0.
- ``DiTPipeline``'s null label is class 1000: the label table is padded to 1000 classes (ids from the
  model's K up to 999 take the null embedding, as unconditional), so that its guidance works for any K.
- Sampling: the pipeline with the exported ``DDIMScheduler`` is gen's ``ddim`` sampler (η = 0) with
  ``spacing = "ddim"`` when the step count divides T, guidance on every step (``cfg_interval`` (0, 1))
  applied to all latent channels (``cfg_channels = 0``; DiT's and gen's default guides 3 of 4), no
  clipping unless the recipe's sampler clips. The pipeline drops the learned variance, so DiT's ancestral
  ``ddpm`` sampler with it has no ``DiTPipeline`` equivalent; a ``DDPMScheduler`` of
  `ddpm_scheduler_config` runs it in a loop that keeps the variance channels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import gen
from gen_dit.config import DiTConfig

__all__ = [
    "DIFFUSERS_NULL_LABEL",
    "DiffusersExporter",
    "build_exporter",
    "ddim_scheduler_config",
    "ddpm_scheduler_config",
    "diffusers_state_dict",
    "transformer_config",
    "use_dit_timesteps",
]

#: The class id ``DiTPipeline`` passes as the null label of classifier-free guidance (ImageNet's 1000).
DIFFUSERS_NULL_LABEL = 1000


def _refuse(source: gen.ExportSource, what: str, fix: str) -> gen.GenError:
    return gen.GenError(f"--format diffusers: {source.checkpoint.path}: {what}; {fix}")


def transformer_config(config: DiTConfig) -> dict[str, Any]:
    """The ``DiTTransformer2DModel`` configuration of a resolved `DiTConfig` (adaLN-Zero, MLP ratio 4)."""
    return {
        "num_attention_heads": config.num_heads,
        "attention_head_dim": config.hidden_size // config.num_heads,
        "in_channels": config.in_channels,
        "out_channels": config.out_channels,
        "num_layers": config.depth,
        "sample_size": config.input_size,
        "patch_size": config.patch_size,
        "activation_fn": "gelu-approximate",  # DiT's MLP: GELU, tanh approximation
        "num_embeds_ada_norm": DIFFUSERS_NULL_LABEL,
        "norm_type": "ada_norm_zero",
        "norm_elementwise_affine": False,
        "norm_eps": 1e-6,  # DiT's LayerNorms; diffusers' default is 1e-5
    }


def diffusers_state_dict(state: dict[str, torch.Tensor], config: DiTConfig) -> dict[str, torch.Tensor]:
    """gen's DiT parameters under ``DiTTransformer2DModel``'s names.

    Args:
        state: The state dict of a `gen_dit.model.DiT` with adaLN-Zero blocks.
        config: Its resolved config.

    Returns:
        The transformer's state dict: the fused ``qkv`` split into ``to_q``/``to_k``/``to_v``, the MLP as
        ``ff.net``, the final layer as ``proj_out_1``/``proj_out_2``, and the timestep and label embedders
        repeated in every block; the label table (K + 1, D) padded to (1001, D) with the null row, which
        stays last (`DIFFUSERS_NULL_LABEL`). The fixed position table is not a parameter there (diffusers
        builds the same one).
    """
    k = config.num_classes
    table = state["y_embedder.embedding_table.weight"]  # (K + 1, D), the null label last
    padded = table[k : k + 1].repeat(DIFFUSERS_NULL_LABEL + 1, 1)  # (1001, D) of the null embedding
    padded[:k] = table[:k]
    out = {
        "pos_embed.proj.weight": state["x_embedder.proj.weight"],
        "pos_embed.proj.bias": state["x_embedder.proj.bias"],
        "proj_out_1.weight": state["final_layer.adaLN_modulation.1.weight"],
        "proj_out_1.bias": state["final_layer.adaLN_modulation.1.bias"],
        "proj_out_2.weight": state["final_layer.linear.weight"],
        "proj_out_2.bias": state["final_layer.linear.bias"],
    }
    embedders = {
        "norm1.emb.timestep_embedder.linear_1": "t_embedder.mlp.0",
        "norm1.emb.timestep_embedder.linear_2": "t_embedder.mlp.2",
    }
    for i in range(config.depth):
        block, new = f"blocks.{i}.", f"transformer_blocks.{i}."
        renamed = {
            **embedders,
            "norm1.linear": f"{block}adaLN_modulation.1",
            "attn1.to_out.0": f"{block}attn.proj",
            "ff.net.0.proj": f"{block}mlp.fc1",
            "ff.net.2": f"{block}mlp.fc2",
        }
        for to, frm in renamed.items():
            out[f"{new}{to}.weight"] = state[f"{frm}.weight"]
            out[f"{new}{to}.bias"] = state[f"{frm}.bias"]
        out[f"{new}norm1.emb.class_embedder.embedding_table.weight"] = padded
        q, k_, v = state[f"{block}attn.qkv.weight"].chunk(3, dim=0)  # (D, D) each: qkv is [q; k; v]
        qb, kb, vb = state[f"{block}attn.qkv.bias"].chunk(3, dim=0)
        for name, w, b in (("to_q", q, qb), ("to_k", k_, kb), ("to_v", v, vb)):
            out[f"{new}attn1.{name}.weight"], out[f"{new}attn1.{name}.bias"] = w, b
    return {name: t.detach().to(torch.float32).contiguous().clone() for name, t in out.items()}


def _diffusion_config(process: Any, sampler: Any) -> dict[str, Any]:
    """What every diffusers scheduler of gen's ``ddpm`` process shares: T, the betas, eps, clipping."""
    config: dict[str, Any] = {
        "num_train_timesteps": process.num_timesteps,
        "prediction_type": "epsilon",
        "clip_sample": bool(getattr(sampler, "clip_denoised", False)),
    }
    if process.beta_schedule == "cosine":
        config["beta_schedule"] = "squaredcos_cap_v2"  # improved DDPM's cosine, betas capped at 0.999
    else:  # gen scales the 1000-step ends by 1000 / T (ADM); diffusers takes the ends as given
        scale = 1000 / process.num_timesteps
        config.update(
            beta_schedule="linear", beta_start=scale * process.beta_start, beta_end=scale * process.beta_end
        )
    return config


def ddim_scheduler_config(process: Any, sampler: Any = None) -> dict[str, Any]:
    """The ``DDIMScheduler`` configuration of gen's ``ddim`` sampler (η = 0, ``spacing = "ddim"``) over
    the ``ddpm`` process: the exported pipeline's scheduler.

    Args:
        process: The process's config (``num_timesteps``, ``beta_schedule``, ``beta_start``, ``beta_end``).
        sampler: The recipe's sampler config (its ``clip_denoised``), or None.
    """
    return {
        **_diffusion_config(process, sampler),
        "set_alpha_to_one": True,  # the last step lands on x̂_0, as gen's ᾱ_{-1} = 1
        "steps_offset": 0,
        "timestep_spacing": "leading",  # 0, T/N, 2T/N, ...: gen's "ddim" stride spacing when N divides T
    }


def ddpm_scheduler_config(process: Any, sampler: Any = None) -> dict[str, Any]:
    """The ``DDPMScheduler`` configuration of gen's ancestral ``ddpm`` sampler over the ``ddpm`` process,
    its learned (or fixed) variance included, for a sampling loop that keeps the variance channels (which
    ``DiTPipeline`` drops): ``spacing = "even"`` is diffusers' ``linspace``, ``"ddim"`` its ``leading``.

    Args:
        process: The process's config (also ``learn_sigma``, ``fixed_variance``).
        sampler: The recipe's sampler config (``spacing``, ``clip_denoised``), or None (DiT's: even).
    """
    if process.learn_sigma:
        variance = "learned_range"  # improved DDPM: log σ² between the posterior's and β_t's
    else:
        variance = "fixed_large" if process.fixed_variance == "large" else "fixed_small"
    spacing = "leading" if getattr(sampler, "spacing", "even") == "ddim" else "linspace"
    return {**_diffusion_config(process, sampler), "variance_type": variance, "timestep_spacing": spacing}


def use_dit_timesteps(transformer: Any) -> None:
    """Give a loaded ``DiTTransformer2DModel`` DiT's timestep frequencies ``10000^(-k/128)`` (diffusers
    uses ``10000^(-k/127)``): its output is then gen's bit for bit. The folder cannot say it; the model
    card shows the line."""
    for block in transformer.transformer_blocks:
        block.norm1.emb.time_proj.downscale_freq_shift = 0


def _check(source: gen.ExportSource) -> tuple[Any, DiTConfig, Any]:
    """The DiT holding the weights, its resolved config and the process config, or one line saying what
    diffusers cannot hold."""
    recipe = source.recipe
    if recipe.backbone.name != "dit":
        raise _refuse(
            source,
            f"a {recipe.backbone.name!r} model; diffusers' DiTPipeline holds DiT models (backbone dit)",
            "export it with --format gen",
        )
    process = recipe.objective.process
    if getattr(process, "name", process) != "ddpm":
        raise _refuse(
            source,
            f"the {getattr(process, 'name', process)!r} process; DiTPipeline samples DiT's DDPM (process ddpm)",
            "export it with --format gen",
        )
    model = source.build_model()
    config = model.config
    lacking = [
        what
        for what, bad in (
            (f"conditioning {config.conditioning!r} (DiTTransformer2DModel has adaLN-Zero blocks)", config.conditioning != "adaln_zero"),
            (f"mlp_ratio {config.mlp_ratio} (its MLP is 4 times the width)", config.mlp_ratio != 4.0),
            (f"scalar_inputs {list(config.scalar_inputs)} (it takes t and y only)", bool(config.scalar_inputs)),
            (f"{config.num_classes} classes (DiTPipeline's null label is class 1000)", config.num_classes > DIFFUSERS_NULL_LABEL),
        )
        if bad
    ]  # fmt: skip
    if lacking:
        raise _refuse(
            source, f"a DiT that diffusers cannot hold: {'; '.join(lacking)}", "export it with --format gen"
        )
    return model, config, process.config


def _vae(source: gen.ExportSource) -> Any:
    """The recipe's autoencoder as the diffusers ``AutoencoderKL`` it loads (in the recipe's dtype), with
    gen's latent scale as its ``scaling_factor``."""
    section = source.recipe.autoencoder
    if section.name == "identity":
        raise _refuse(
            source,
            "a DiT in pixel space; DiTPipeline decodes latents with a VAE (AutoencoderKL)",
            "export it with --format gen",
        )
    autoencoder = section.build()  # its files are checked here: a missing path is one line
    identity = autoencoder.identity()
    if identity.get("shift", 0.0) != 0.0:
        raise _refuse(
            source,
            f"latents shifted by {identity['shift']} before scaling; DiTPipeline decodes z / scaling_factor",
            "export it with --format gen",
        )
    load = getattr(autoencoder, "load", None)
    vae = load() if callable(load) else None
    from diffusers import AutoencoderKL

    if not isinstance(vae, AutoencoderKL):
        raise _refuse(
            source,
            f"autoencoder {section.name!r} is not a diffusers AutoencoderKL",
            "export it with --format gen",
        )
    vae.register_to_config(scaling_factor=float(identity["scale"]))
    return vae


class DiffusersExporter:
    """The ``diffusers`` format (see the module docstring): a `gen.Exporter`."""

    library_name = "diffusers"
    #: What each file holds, for the model card.
    file_notes = {
        "model_index.json": "DiTPipeline's components",
        "transformer/": "DiTTransformer2DModel: the DiT's weights under diffusers' names",
        "vae/": "AutoencoderKL: the run's autoencoder, scaling_factor = its latent scale",
        "scheduler/": "DDIMScheduler: gen's ddim sampler over the ddpm process",
    }

    def write(self, source: gen.ExportSource, folder: Path) -> None:
        """``model_index.json``, ``transformer/``, ``vae/`` and ``scheduler/``, by ``save_pretrained``."""
        model, config, process = _check(source)
        try:
            from diffusers import DDIMScheduler, DiTPipeline, DiTTransformer2DModel
        except ImportError:
            raise gen.GenError("--format diffusers needs diffusers: pip install 'gen[latent]'") from None
        vae = _vae(source)
        sampler = source.recipe.sample.sampler
        scheduler = DDIMScheduler(**ddim_scheduler_config(process, getattr(sampler, "config", None)))
        transformer = DiTTransformer2DModel(**transformer_config(config))
        transformer.load_state_dict(diffusers_state_dict(model.state_dict(), config), strict=True)
        pipeline = DiTPipeline(transformer=transformer.eval(), vae=vae.eval(), scheduler=scheduler)
        pipeline.save_pretrained(str(folder), safe_serialization=True)

    def card_usage(self, source: gen.ExportSource, name: str) -> str:
        """Loading with ``DiTPipeline``, the one line that gives DiT's timestep features, and what
        matches gen's sampling."""
        sample = source.recipe.sample
        k = source.spec.num_classes
        labels = "[0, 1]" if k >= 2 else "[0]"
        sampler = getattr(sample.sampler, "name", sample.sampler)
        return (
            "With diffusers installed (no gen needed):\n\n"
            "```python\n"
            "from diffusers import DiTPipeline\n\n"
            f'pipe = DiTPipeline.from_pretrained("{name}")  # this folder, or its hub id\n'
            "# diffusers' DiT embeds the timestep with frequencies 10000^(-k/127); DiT and gen use\n"
            "# 10000^(-k/128). This line gives the model the features it was trained with:\n"
            "for block in pipe.transformer.transformer_blocks:\n"
            "    block.norm1.emb.time_proj.downscale_freq_shift = 0\n"
            f"images = pipe(class_labels={labels}, guidance_scale={sample.cfg}, "
            f"num_inference_steps={sample.steps}).images\n"
            "```\n\n"
            f"The model has {k} classes (ids 0 to {max(k - 1, 0)}; the pipeline's null label is 1000, and ids "
            f"from {k} to 999 are unconditional too). `scheduler/` is a `DDIMScheduler` (η = 0) that takes "
            'the steps gen\'s `ddim` sampler takes (`spacing = "ddim"`) when `num_inference_steps` divides '
            "the process's steps; with the line above, the pipeline draws gen's `ddim` samples from the same "
            "start noise, with guidance on every step and on all latent channels (gen: "
            "`sample.sampler.cfg_channels = 0`, `cfg_interval = [0, 1]`). The run samples with "
            f"`{sampler}`, {sample.steps} steps, cfg {sample.cfg}; DiTPipeline drops the learned variance, so "
            "DiT's ancestral sampler with it has no pipeline equivalent. `vae/` is the run's autoencoder "
            "(`scaling_factor` = the recipe's latent scale)."
        )


def build_exporter(config: None = None) -> DiffusersExporter:
    """DiT as a diffusers DiTPipeline folder (transformer, DDIM scheduler, VAE)."""
    return DiffusersExporter()
