"""The exported model folder (``gen export``'s ``gen`` format), read and write: one set of weights and what
rebuilds and samples them, laid out as a model hub takes a folder.

Layout of ``OUT/``:

- ``model.safetensors``: the backbone's state dict (the EMA that was exported, or the raw weights);
- ``config.json``: ``{"gen": {"format": 1, "version": ...}, "recipe": {...}, "data_spec": {...},
  "weights": {"step": N, "ema": "0.9999"}}``, where ``recipe`` is the run's resolved recipe without its
  ``[train]`` section (the model part: ``backbone``, ``autoencoder``, ``objective``, ``sample``,
  ``data``; ``sample.precision = "auto"`` resolved to the run's ``train.precision``, the one key of
  ``[train]`` that sampling reads);
- ``README.md`` (the model card) and ``sample_grid.png``: for people, not read back.

Read back, the recipe's ``[train]`` is its defaults with ``steps`` = the weights' step (the schema needs
a length; nothing that samples reads ``[train]`` but its precision, which ``sample.precision`` holds).

`read_model_folder` gives what `gen.load_checkpoint` makes a `gen.Checkpoint` of: a checkpoint with no
EMA, whose raw weights are ``model.safetensors``, so that ``gen.load(OUT)``, ``gen sample OUT`` and
``train.init_from = OUT`` read it like any checkpoint and draw the same samples as the run did. A missing
or damaged file is one `gen.errors.DamagedFileError` line naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from gen.components import to_table
from gen.errors import DamagedFileError, GenError
from gen.protocols import DataSpec
from gen.recipe import Recipe, validate_recipe
from gen.runs.checkpoint import MODEL_STEM, CheckpointMeta
from gen.tensor_files import check_safetensors

CONFIG_FILE = "config.json"
WEIGHTS_FILE = f"{MODEL_STEM}.safetensors"
CARD_FILE = "README.md"
GRID_FILE = "sample_grid.png"
#: The version of the layout above; a folder of a later one is refused with "upgrade gen".
FORMAT_VERSION = 1
#: The recipe sections the folder keeps: what rebuilds the model and samples it.
MODEL_SECTIONS: tuple[str, ...] = ("backbone", "autoencoder", "objective", "sample", "data")

_FIX = "the exported model is damaged: export it again (gen export RUN OUT --force) or download it again"


def is_model_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder laid out as an exported model (``config.json`` or ``model.safetensors``
    at its top, and no ``meta.json`` of a checkpoint): a damaged or half-copied one counts, so that reading
    it names the file at fault."""
    path = Path(path)
    if not path.is_dir() or (path / "meta.json").is_file() or (path / "checkpoints").is_dir():
        return False
    return (path / CONFIG_FILE).is_file() or (path / WEIGHTS_FILE).is_file()


def model_table(recipe: Recipe) -> dict[str, Any]:
    """The model part of ``recipe`` as a table (see the module docstring): its ``[train]`` left out, with
    ``sample.precision = "auto"`` replaced by ``train.precision``."""
    table = to_table(recipe)
    out = {k: table[k] for k in MODEL_SECTIONS if k in table}
    if recipe.sample.precision == "auto":
        out["sample"] = {**out.get("sample", {}), "precision": recipe.train.precision}
    return out


def config_json(table: Mapping[str, Any], spec: DataSpec, *, step: int, ema: str, version: str) -> str:
    """The text of ``config.json``.

    Args:
        table: `model_table` of the recipe (with any sampling overrides applied).
        spec: The data the backbone was built for (in the model's space: latents under an autoencoder).
        step: The training step of the weights.
        ema: The weights, as ``--ema`` names them (``0.9999``, ``phema_0.05``, ``none``).
        version: The gen version writing it.
    """
    data = {
        "gen": {"format": FORMAT_VERSION, "version": version},
        "recipe": dict(table),
        "data_spec": spec.to_json(),
        "weights": {"step": step, "ema": ema},
    }
    return json.dumps(data, indent=2) + "\n"


@attrs.frozen
class ModelFolder:
    """An exported model read back.

    Attributes:
        path: The folder.
        recipe: Its model recipe (``[train]`` at its defaults).
        spec: The data the backbone was built for.
        meta: A checkpoint record of its step, with no EMA: ``model.safetensors`` is its raw weights.
        ema: Which weights of the run those are (``0.9999``, ``none``...), for people.
    """

    path: Path
    recipe: Recipe
    spec: DataSpec
    meta: CheckpointMeta
    ema: str


def _read_config(path: Path) -> dict[str, Any]:
    file = path / CONFIG_FILE
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "is missing"
        raise DamagedFileError(file, what, _FIX.replace("damaged", "incomplete"))
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DamagedFileError(file, f"cannot be read ({type(e).__name__}: {e})", _FIX) from None
    if not isinstance(data, dict) or not isinstance(data.get("gen"), dict):
        raise DamagedFileError(
            file,
            "is not the config.json of a gen model (it has no `gen` table)",
            "give a folder written by gen export, a run directory or a checkpoint",
        )
    version = data["gen"].get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise GenError(
            f"{file} is of export format {version!r}, which this gen ({FORMAT_VERSION}) cannot read; upgrade gen"
        )
    for key, kind in (("recipe", dict), ("data_spec", dict), ("weights", dict)):
        if not isinstance(data.get(key), kind):
            raise DamagedFileError(file, f"lacks its `{key}` table", _FIX)
    return data


def read_model_folder(path: str | Path) -> ModelFolder:
    """Read an exported model: ``config.json`` validated into a recipe (a mistake is one line naming the
    file, the section and the key) and the header of ``model.safetensors`` (missing, truncated, a pickle:
    one line naming it), before any weights load.

    Raises:
        gen.GenError: a missing, damaged or foreign file, naming it and what to do.
    """
    path = Path(path)
    data = _read_config(path)
    file = path / CONFIG_FILE
    try:
        spec = DataSpec.from_json(data["data_spec"])
        step = int(data["weights"].get("step", 0))
    except (KeyError, TypeError, ValueError) as e:
        raise DamagedFileError(
            file, f"has a bad data_spec or weights table ({type(e).__name__}: {e})", _FIX
        ) from None
    table = dict(data["recipe"])
    # The Recipe schema needs a [train] length; the folder keeps none (it holds no training state): the
    # weights' step stands in, every other [train] key at its default (sampling reads none of them).
    table.setdefault("train", {"steps": max(step, 1)})
    recipe = validate_recipe(table, file=str(file))
    try:
        check_safetensors(path / WEIGHTS_FILE)
    except DamagedFileError as e:
        state = "incomplete" if e.problem == "is missing" else "damaged"
        raise DamagedFileError(e.path, e.problem, _FIX.replace("damaged", state)) from None
    meta = CheckpointMeta(step=step, backbone=recipe.backbone.name, data_spec=spec)
    return ModelFolder(
        path=path, recipe=recipe, spec=spec, meta=meta, ema=str(data["weights"].get("ema", ""))
    )


__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "GRID_FILE",
    "MODEL_SECTIONS",
    "WEIGHTS_FILE",
    "ModelFolder",
    "config_json",
    "is_model_folder",
    "model_table",
    "read_model_folder",
]
