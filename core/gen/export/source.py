"""What ``gen export`` exports, and the contract of an export format a plugin registers.

An `ExportSource` is one set of weights of a trained checkpoint (an EMA, or the raw weights) with the
recipe and data spec that rebuild and sample it. The core writes it in its own ``gen`` format
(`gen.runs.model_folder`); any other format is an `Exporter` a plugin registers with
``register_exporters`` (``diffusers``: `gen_dit`), so that the core never imports a plugin and knows no
backbone's parameter names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
import torch
from torch import nn

from gen.power_ema import EmaKey
from gen.protocols import DataSpec
from gen.recipe import Recipe, build_backbone
from gen.runs.run_dir import Checkpoint
from gen.sampling.settings import ema_text
from gen.seeds import GLOBAL_RNG_LOCK


@attrs.frozen(kw_only=True)
class ExportSource:
    """One set of weights of a trained model, with what rebuilds and samples it.

    Attributes:
        checkpoint: The checkpoint the weights come from (its run holds the metrics and sample grids).
        ema: Which weights: an EMA decay, a power EMA, or None for the raw weights.
        weights: The backbone's state dict (tensors on the CPU, as stored).
        recipe: The recipe the model is sampled with: the run's, with the export's ``[sample]`` overrides.
    """

    checkpoint: Checkpoint
    ema: EmaKey
    weights: dict[str, torch.Tensor]
    recipe: Recipe

    @property
    def spec(self) -> DataSpec:
        """The data the backbone was built for (latents under an autoencoder)."""
        return self.checkpoint.spec

    @property
    def step(self) -> int:
        return self.checkpoint.step

    @property
    def ema_name(self) -> str:
        """The weights as ``--ema`` names them: ``0.9999``, ``phema_0.05`` or ``none``."""
        return ema_text(self.ema)

    def build_model(self) -> nn.Module:
        """The recipe's backbone holding these weights: float32 as stored, in eval mode, on the CPU (its
        ``config`` attribute, where it has one, is resolved from the data)."""
        with GLOBAL_RNG_LOCK:  # its random initial weights, replaced at once
            model = build_backbone(self.recipe, self.spec)
        model.load_state_dict(self.weights)
        return model.eval()


@runtime_checkable
class Exporter(Protocol):
    """An export format of ``gen export --format NAME`` (a factory registered with
    ``register_exporters`` returns one).

    Attributes:
        library_name: The library that loads the folder (``diffusers``): the model card's
            ``library_name``, which a model hub shows and uses to offer a code snippet.

    An exporter may also have ``file_notes``: a dict from the name of a file or folder it writes
    (``transformer/``) to what it holds, which the card's list of files shows.
    """

    library_name: str

    def write(self, source: ExportSource, folder: Path) -> None:
        """Write the model into ``folder`` (a new, empty temporary folder that the core renames into
        place once complete, then adds the model card ``README.md`` and ``sample_grid.png`` to).

        Raises:
            gen.GenError: one line when this format cannot hold the model (another backbone, process or
                space), naming what and what to do; the folder is then removed, nothing is written.
        """

    def card_usage(self, source: ExportSource, name: str) -> str:
        """The model card's "Use" section (Markdown, no heading): how to load the folder ``name`` and
        sample, and what matches gen's sampling and what does not."""


def exporter_tags(source: ExportSource) -> list[str]:
    """The model card's tags that any format shares: ``gen``, the backbone, the process, the space and
    whether the model is class-conditional."""
    process: Any = source.recipe.objective.process
    process_name = getattr(process, "name", process)
    latent = source.recipe.autoencoder.name != "identity"
    return [
        "gen",
        "image-generation",
        source.recipe.backbone.name,
        str(process_name),
        "latent-space" if latent else "pixel-space",
        "class-conditional" if source.spec.num_classes else "unconditional",
    ]


__all__ = ["ExportSource", "Exporter", "exporter_tags"]
