"""The ``gen`` export format: ``model.safetensors`` and ``config.json`` (`gen.runs.model_folder`), which
``gen.load(OUT)`` and ``gen sample OUT`` read and sample exactly as the run did.

It is the core's own format, written through the same `gen.Exporter` contract as a plugin's, so that
``gen export`` treats every format alike (the card, the grid, the temporary folder).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from gen.errors import GenError
from gen.export.source import ExportSource
from gen.files import write_atomic
from gen.runs import model_folder
from gen.version import __version__


class GenFormat:
    """The ``gen`` format (see the module docstring): a `gen.Exporter`."""

    library_name = "gen"
    #: What each file holds, for the model card.
    file_notes = {
        model_folder.WEIGHTS_FILE: "the backbone's weights (safetensors)",
        model_folder.CONFIG_FILE: "the model part of the recipe, the data spec and which weights these are",
    }

    def write(self, source: ExportSource, folder: Path) -> None:
        """``model.safetensors`` (the weights as stored) and ``config.json`` (the model recipe)."""
        if source.recipe.sample.guidance == "auto":
            raise GenError(
                f"{source.checkpoint.path}: [sample] guidance = 'auto' guides with another checkpoint "
                "(autoguidance), which an export does not carry; export with --set sample.guidance=cfg"
            )
        weights = {k: v.detach().contiguous().cpu() for k, v in source.weights.items()}
        # "format": "pt" is what a hub's safetensors viewer and transformers expect of torch weights.
        save_file(weights, str(folder / model_folder.WEIGHTS_FILE), metadata={"format": "pt"})
        table = model_folder.model_table(source.recipe)
        text = model_folder.config_json(
            table, source.spec, step=source.step, ema=source.ema_name, version=__version__
        )
        write_atomic(folder / model_folder.CONFIG_FILE, text)

    def card_usage(self, source: ExportSource, name: str) -> str:
        """Loading with ``gen.load`` and ``gen sample``; where the autoencoder of a latent model is."""
        k = source.spec.num_classes
        labels = "[0, 1, 2]" if k >= 3 else "[0]" if k else "None, num=4"
        text = (
            "With gen installed (its plugins register the backbone and the process):\n\n"
            "```python\n"
            "import gen\n\n"
            f'model = gen.load("{name}")  # this folder (download it first, e.g. huggingface_hub.snapshot_download)\n'
            f"images = model.sample({labels}, seed=0)  # (N, C, H, W) float32 in [-1, 1]\n"
            "```\n\n"
            f"or `gen sample {name} --num 16 --out grid.png`. The samples are those the run drew with the same "
            "settings and seed: `config.json` holds the run's `[sample]` section (sampler, steps, guidance) as "
            "the defaults, which `model.sample(..., cfg=..., steps=...)` and `gen sample --cfg --steps` override."
        )
        if source.recipe.autoencoder.name != "identity":
            table = json.dumps(model_folder.model_table(source.recipe)["autoencoder"])
            text += (
                f"\n\nThe model works in the latent space of the `{source.recipe.autoencoder.name}` autoencoder, "
                "which is **not in this folder**: `config.json` refers to it as the run did, by its local files "
                f"(`recipe.autoencoder` = `{table}`). On another machine, get the same autoencoder and set "
                "that table's path to where it is."
            )
        return text


__all__ = ["GenFormat"]
