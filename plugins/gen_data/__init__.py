"""gen_data: the datasets of ``gen`` and the ``gen data`` commands.

Datasets: ``webdataset`` (tar shards, streamed), ``imagefolder`` (class-per-folder tree), ``shapes``
(synthetic coloured shapes with an analytic oracle; the embedded default), ``manifold`` (the paper's
spiral-in-D toy), ``latents`` (what ``gen data encode`` writes) and ``synthetic`` (standard-normal
tensors of any shape, for benchmarks and smoke tests). Commands: ``gen data pack``, ``gen data info`` and
``gen data encode``.
"""

from __future__ import annotations

import gen
from gen_data.imagefolder import ImageFolderConfig, ImageFolderDataset, build_imagefolder
from gen_data.latents import LatentsConfig, LatentsDataset, build_latents
from gen_data.manifold import ManifoldConfig, ManifoldDataset, build_manifold
from gen_data.shapes import ShapesConfig, ShapesDataset, build_shapes
from gen_data.shards import WebDataset, WebDatasetConfig, build_webdataset
from gen_data.synthetic import FiniteSyntheticDataset, SyntheticConfig, SyntheticDataset, build_synthetic

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


@gen.hookimpl
def register_datasets(register):
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
