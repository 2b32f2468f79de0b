"""``train.init_from``: start a run from the weights of another (fine-tuning, another resolution).

Only weights come over — the raw ones or an EMA (``train.init_ema``) — never the optimizer, the step or
the data position: the new run starts at step 0 with a fresh AdamW, and its EMAs start from the loaded
weights. The checkpoint is checked when training starts, before the data is opened: it must exist,
hold the chosen EMA and a backbone of the same name.

Where shapes differ, a tensor the backbone does not train (a buffer, or a frozen parameter such as
JiT's and DiT's fixed sin-cos position tables) is kept as the backbone built it: the backbone computes
such a table for its own resolution, which is exactly what a table for the new size must be (an
interpolation of the old one would only approximate it). The embedders of scalar inputs the new run's
process adds (a MeanFlow's interval) start as built, so a flow model starts a MeanFlow. A trainable
tensor that does not fit, or another tensor missing on either side, is an error that names them: the
architecture must be the same.
"""

from __future__ import annotations

from typing import Any

import attrs
from torch import nn

from gen.errors import GenError
from gen.power_ema import EmaKey
from gen.runs.run_dir import Checkpoint, load_checkpoint
from gen.train_config import TrainConfig

SHOWN = 4  # tensors named in an error, before "and N more"
SCALAR_EMBEDDERS = "scalar_embedders."  # the state dict prefix of `gen.ScalarEmbedders` in JiT and DiT


def _names(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def describe_kept(names: list[str]) -> str:
    """The tensors `InitFrom.load_into` kept as built, for the start line: fixed tables by name, the
    embedders of scalar inputs by their input (``the embedder of h``)."""
    inputs = sorted({n.split(".")[2] for n in names if n.startswith(SCALAR_EMBEDDERS + "embedders.")})
    others = [n for n in names if not n.startswith(SCALAR_EMBEDDERS)]
    return ", ".join([*others, *([f"the embedders of {', '.join(inputs)}"] if inputs else [])])


@attrs.frozen
class InitFrom:
    """The checkpoint and EMA a run starts from.

    Attributes:
        checkpoint: The checkpoint (a run directory's latest, or the folder given).
        ema: The EMA whose weights start the model (None: the raw weights).
    """

    checkpoint: Checkpoint
    ema: EmaKey

    @classmethod
    def open(cls, cfg: TrainConfig, backbone: str) -> InitFrom | None:
        """The ``train.init_from`` of ``cfg``, checked (None when unset); each problem is one line."""
        if cfg.init_from is None:
            return None
        where = f"train.init_from = {cfg.init_from!r}"
        try:
            checkpoint = load_checkpoint(cfg.init_from)
        except GenError as e:
            raise GenError(f"{where}: {e}") from None
        if checkpoint.meta.backbone != backbone:
            raise GenError(
                f"{where}: {checkpoint.path} holds a {checkpoint.meta.backbone!r} backbone and the recipe trains "
                f"{backbone!r}; start from a checkpoint of the same backbone"
            )
        text = "none" if cfg.init_ema is None else str(cfg.init_ema)
        try:
            ema = checkpoint.find_ema(text)
            checkpoint.check_weights([ema])
        except GenError as e:
            raise GenError(
                f"{where}: {str(e).replace(f'--ema {text}', f'train.init_ema = {text}')}"
            ) from None
        return cls(checkpoint, ema)

    def describe(self) -> dict[str, Any]:
        """What ``provenance.jsonl`` records of it."""
        ema = None if self.ema is None else str(self.ema)
        return {"checkpoint": str(self.checkpoint.path), "step": self.checkpoint.step, "ema": ema}

    def load_into(self, model: nn.Module) -> list[str]:
        """Copy the weights into ``model`` (whole, not yet sharded); returns the tensors kept as the
        backbone built them: fixed tables of other shapes, and the embedders of scalar inputs the
        checkpoint's model did not take."""
        state = self.checkpoint.load_weights(self.ema)
        own = model.state_dict()
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        other = [n for n in own if n in state and tuple(state[n].shape) != tuple(own[n].shape)]
        kept = [n for n in other if n not in trainable]
        misfits = [
            f"{n} (checkpoint {tuple(state[n].shape)}, model {tuple(own[n].shape)})"
            for n in other
            if n in trainable
        ]
        # Inputs the run's process adds (a MeanFlow's interval h: `gen.ScalarEmbedders`) start as the
        # backbone built them: a flow model's weights start a MeanFlow (tested in gen_meanflow).
        added = [n for n in own if n not in state and n.startswith(SCALAR_EMBEDDERS)]
        missing = [n for n in own if n not in state and n not in added]
        unexpected = [n for n in state if n not in own]
        if misfits or missing or unexpected:
            problems = [
                *([f"{len(misfits)} tensor(s) of other shapes: {_names(misfits)}"] if misfits else []),
                *([f"not in the checkpoint: {_names(missing)}"] if missing else []),
                *([f"not in the model: {_names(unexpected)}"] if unexpected else []),
            ]
            raise GenError(
                f"train.init_from: the weights of {self.checkpoint.path} do not fit the recipe's backbone: "
                f"{'; '.join(problems)}. Only fixed tables (sin-cos positions) follow a new resolution; keep "
                "the rest of the architecture (patch size, width, depth, classes) as the checkpoint's"
            )
        model.load_state_dict({n: t for n, t in state.items() if n not in kept}, strict=False)
        return kept + added


__all__ = ["InitFrom", "describe_kept"]
