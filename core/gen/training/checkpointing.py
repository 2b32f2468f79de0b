"""The training state a checkpoint saves and a resume restores: weights, EMAs, optimizer, step, RNG.

One object owns both directions, so that what is written is exactly what is read. Under FSDP saving
gathers whole tensors shard by shard (a collective: every rank calls it) and rank 0 writes; loading
hands each rank its shard. The file format itself is :mod:`gen.runs.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gen import distributed
from gen.distributed import DistInfo
from gen.protocols import DataSpec
from gen.runs import checkpoint as ckpt
from gen.runs.checkpoint import CheckpointMeta
from gen.training import sharding
from gen.training.ema import EMA
from gen.version import __version__


class TrainingState:
    """The model, its EMAs and the optimizer of one run, as checkpoints hold them.

    Args:
        model: The unwrapped (possibly sharded) backbone.
        ema: Its EMAs.
        optimizer: The optimizer over ``model``'s parameters.
        dist: The processes of the run.
    """

    def __init__(self, model: nn.Module, ema: EMA, optimizer: torch.optim.Optimizer, dist: DistInfo):
        self.model = model
        self.ema = ema
        self.optimizer = optimizer
        self.dist = dist

    def save(
        self, run_dir: Path, *, step: int, data_batches: int, backbone: str, spec: DataSpec
    ) -> Path | None:
        """Write the checkpoint of ``step`` (every rank calls it); rank 0 returns its path, others None."""
        rng = distributed.all_gather_objects(torch.get_rng_state(), self.dist)
        main = self.dist.is_main
        # Whole tensors, gathered shard by shard under FSDP (every rank takes part); rank 0 keeps them.
        weights: dict[float | None, dict[str, torch.Tensor]] = {
            None: sharding.gather_state(self.model.state_dict(), main)
        }
        for i, decay in enumerate(self.ema.decays):
            weights[decay] = self.ema.state_dict(i, self.model, main)
        optimizer = sharding.optimizer_state(self.model, self.optimizer, main)
        if not main:
            return None
        state = {"optimizer": optimizer, "step": step, "data_batches": data_batches, "rng": list(rng)}
        meta = CheckpointMeta(
            step=step,
            world_size=self.dist.world_size,
            ema_decays=self.ema.decays,
            backbone=backbone,
            gen_version=__version__,
            data_spec=spec,
        )
        return ckpt.save_checkpoint(run_dir, meta, weights=weights, state=state)

    def load(self, path: Path) -> int:
        """Restore weights, EMAs and optimizer from the checkpoint ``path`` (each rank its shard), and
        this rank's RNG when the run had as many processes; returns the step."""
        meta = ckpt.read_meta(path)
        model_file = path / ckpt.weights_name(None)
        sharding.load_model_state(self.model, ckpt.load_weights(path), str(model_file))
        for i, decay in enumerate(self.ema.decays):
            self.ema.load(i, ckpt.load_weights(path, decay))
        state = ckpt.load_state(path)
        state_file = str(path / ckpt.STATE_FILE)
        sharding.load_optimizer_state(self.model, self.optimizer, state["optimizer"], state_file)
        if meta.world_size == self.dist.world_size:
            torch.set_rng_state(state["rng"][self.dist.rank])
        return int(state["step"])


__all__ = ["TrainingState"]
