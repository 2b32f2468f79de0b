"""The guiding model of autoguidance, read from disk: another checkpoint of the same run (an earlier
step), another EMA of the same checkpoint, or another run's model of the same data and backbone family.

A guide is checked before any sampling (`guide_checkpoint`, `check_guide`): its checkpoint
must exist, and its model must draw the same thing as the main one — the same data spec, the same
registered backbone (a smaller or earlier one of the family, not another architecture), the same
process, the same space (``[autoencoder]``) and the same noise scale. Each mismatch is one line naming
both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gen.components import to_table
from gen.errors import GenError
from gen.power_ema import EmaKey
from gen.recipe import Recipe, build_backbone
from gen.runs import checkpoint as ckpt
from gen.runs.run_dir import Checkpoint, load_checkpoint, resolve_checkpoint
from gen.sampling.guidance import Guidance, Guide
from gen.seeds import GLOBAL_RNG_LOCK


def guide_checkpoint(guide: Guidance, main: Path | None) -> Path:
    """The checkpoint folder of the guiding model.

    Args:
        guide: The ``guide_*`` keys of ``[sample]``.
        main: The main model's checkpoint folder (the run's own guide is looked up beside it), or None
            for a model in memory, which can take a guide from another run only.
    """
    if guide.run is not None:
        base = Path(guide.run)
        if guide.step is None:
            try:
                return resolve_checkpoint(base)
            except GenError as e:
                raise GenError(f"guide_run: {e}") from None
        step_of_a_run = ckpt.is_checkpoint(base) or base.parent.name == "checkpoints"
        run = base.parent.parent if step_of_a_run else base
    elif main is None:
        raise GenError("autoguidance from this run's checkpoints needs a checkpoint of the main model")
    elif guide.step is None:
        return Path(main)
    else:
        run = Path(main).parent.parent
    path = ckpt.checkpoint_dir(run, guide.step)
    if not ckpt.is_checkpoint(path):
        steps = [int(p.name[len(ckpt.PREFIX) :]) for p in ckpt.list_checkpoints(run)]
        raise GenError(
            f"guide_step {guide.step}: {run} has no checkpoint of step {guide.step} (it has: "
            f"{', '.join(map(str, steps)) or 'none'}); keep the checkpoints you will guide with "
            "(train.milestone_every), or choose one of these"
        )
    return path


def check_compatible(recipe: Recipe, spec: Any, guide: Checkpoint) -> None:
    """Refuse a guide whose model does not draw what the main model draws (one line per mismatch)."""
    where = f"the guiding checkpoint {guide.path}"
    if tuple(guide.spec.shape) != tuple(spec.shape) or guide.spec.num_classes != spec.num_classes:
        raise GenError(
            f"{where} was trained on data of shape {tuple(guide.spec.shape)} with {guide.spec.num_classes} "
            f"classes, the main model on {tuple(spec.shape)} with {spec.num_classes}; autoguidance needs a "
            "model of the same data"
        )
    ours, theirs = recipe.backbone.name, guide.recipe.backbone.name
    if ours != theirs:
        raise GenError(
            f"{where} is a {theirs} model and the main model a {ours} model; autoguidance needs a guide of "
            f"the same family (an earlier, shorter-averaged or smaller {ours})"
        )
    ours, theirs = recipe.objective.process.name, guide.recipe.objective.process.name
    if ours != theirs:
        raise GenError(
            f"{where} is a model of the {theirs} process and the main model of the {ours} process; "
            "autoguidance needs a guide of the same process"
        )
    if to_table(guide.recipe.autoencoder) != to_table(recipe.autoencoder):
        raise GenError(
            f"{where} works in another space ([autoencoder] {to_table(guide.recipe.autoencoder)}, the main "
            f"model's {to_table(recipe.autoencoder)}); autoguidance needs both in one space"
        )
    if guide.recipe.objective.noise_scale != recipe.objective.noise_scale:
        raise GenError(
            f"{where} was trained with noise_scale {guide.recipe.objective.noise_scale}, the main model with "
            f"{recipe.objective.noise_scale}; autoguidance needs the same noise"
        )


def check_guide(guide: Guidance, main: Path | None, recipe: Recipe, spec: Any) -> tuple[Checkpoint, EmaKey]:
    """Everything about a guide that can be checked without reading its weights: its checkpoint, its
    model against the main one and its EMA (weights files' headers included); returns both."""
    checkpoint = load_checkpoint(guide_checkpoint(guide, main))
    check_compatible(recipe, spec, checkpoint)
    ema = checkpoint.default_ema() if guide.ema == "default" else checkpoint.find_ema(guide.ema)
    checkpoint.check_weights([ema])
    return checkpoint, ema


def load_guide(guide: Guidance, main: Path | None, recipe: Recipe, spec: Any, device: Any) -> Guide:
    """The guiding model, checked (`check_guide`), built and loaded on ``device`` in eval mode."""
    checkpoint, ema = check_guide(guide, main, recipe, spec)
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):  # its init must not move anyone's RNG
        net = build_backbone(checkpoint.recipe, checkpoint.spec)
    try:
        net.load_state_dict(checkpoint.load_weights(ema))
    except RuntimeError as e:
        what = " ".join(line.strip() for line in str(e).splitlines()[1:] if line.strip())[:300]
        raise GenError(
            f"{checkpoint.path / ckpt.weights_name(ema)} does not hold its run's backbone ({what})"
        ) from None
    return Guide(net.to(device).eval(), process=checkpoint.recipe.objective.build_process())


__all__ = ["check_compatible", "check_guide", "guide_checkpoint", "load_guide"]
