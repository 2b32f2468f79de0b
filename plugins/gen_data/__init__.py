"""gen_data: the datasets of ``gen`` and the ``gen data`` commands.

Datasets: ``webdataset`` (tar shards, streamed), ``imagefolder`` (class-per-folder tree), ``shapes``
(synthetic coloured shapes with an analytic oracle; the embedded default), ``manifold`` (the paper's
spiral-in-D toy), ``latents`` (what ``gen data encode`` writes) and ``synthetic`` (standard-normal
tensors of any shape, for benchmarks and smoke tests). Commands: ``gen data pack``, ``gen data info`` and
``gen data encode``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gen

if TYPE_CHECKING:
    from gen_data.imagefolder import ImageFolderConfig, ImageFolderDataset
    from gen_data.latents import LatentsConfig, LatentsDataset
    from gen_data.manifold import ManifoldConfig, ManifoldDataset
    from gen_data.shapes import ShapesConfig, ShapesDataset
    from gen_data.shards import WebDataset, WebDatasetConfig
    from gen_data.synthetic import FiniteSyntheticDataset, SyntheticConfig, SyntheticDataset

__all__ = [
    "FiniteSyntheticDataset",
    "ImageFolderConfig",
    "ImageFolderDataset",
    "LatentsConfig",
    "LatentsDataset",
    "ManifoldConfig",
    "ManifoldDataset",
    "ShapesConfig",
    "ShapesDataset",
    "SyntheticConfig",
    "SyntheticDataset",
    "WebDataset",
    "WebDatasetConfig",
]

#: Where the names of `__all__` live, imported on first use: loading the plugin (``gen --help`` loads every
#: plugin) imports no torch; the hooks import what they register when the registries are built.
_MODULE_OF: dict[str, str] = {
    "ImageFolderConfig": "gen_data.imagefolder",
    "ImageFolderDataset": "gen_data.imagefolder",
    "LatentsConfig": "gen_data.latents",
    "LatentsDataset": "gen_data.latents",
    "ManifoldConfig": "gen_data.manifold",
    "ManifoldDataset": "gen_data.manifold",
    "ShapesConfig": "gen_data.shapes",
    "ShapesDataset": "gen_data.shapes",
    "WebDataset": "gen_data.shards",
    "WebDatasetConfig": "gen_data.shards",
    "FiniteSyntheticDataset": "gen_data.synthetic",
    "SyntheticConfig": "gen_data.synthetic",
    "SyntheticDataset": "gen_data.synthetic",
}


__getattr__ = gen.lazy_getattr(__name__, _MODULE_OF)  # PEP 562: NAME imports its module on first use


@gen.hookimpl
def register_datasets(register):
    from gen_data.imagefolder import ImageFolderConfig, build_imagefolder
    from gen_data.latents import LatentsConfig, build_latents
    from gen_data.manifold import ManifoldConfig, build_manifold
    from gen_data.shapes import ShapesConfig, build_shapes
    from gen_data.shards import WebDatasetConfig, build_webdataset
    from gen_data.synthetic import SyntheticConfig, build_synthetic

    register("webdataset", build_webdataset, config=WebDatasetConfig)
    register("imagefolder", build_imagefolder, config=ImageFolderConfig)
    register("shapes", build_shapes, config=ShapesConfig)
    register("manifold", build_manifold, config=ManifoldConfig)
    register("latents", build_latents, config=LatentsConfig)
    register("synthetic", build_synthetic, config=SyntheticConfig)


@gen.hookimpl
def register_commands(app):
    from gen_data.commands import data_app

    app.add_typer(data_app, name="data")
