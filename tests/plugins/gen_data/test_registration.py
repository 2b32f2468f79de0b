"""The plugin registers its datasets and the ``data`` commands through the public hooks only."""

from __future__ import annotations

import pytest

import gen


def test_datasets_registered_by_gen_data():
    registry = gen.get_registry("dataset")
    for name in ("webdataset", "imagefolder", "shapes", "manifold", "latents", "synthetic"):
        component = registry.get(name)
        assert component.plugin == "gen_data" and component.description
        assert all(f.doc for f in gen.fields_of(component.config))


def test_built_datasets_follow_the_protocol(shards, tmp_path, helpers):
    folder, _ = shards
    helpers.write_folder(tmp_path / "tree", {"a": 2})
    built = [
        gen.build("dataset", "shapes", num_samples=10),
        gen.build("dataset", "manifold", num_samples=10),
        gen.build("dataset", "synthetic", num_samples=10),
        gen.build("dataset", "webdataset", urls=str(folder), image_size=32, num_workers=0),
        gen.build("dataset", "imagefolder", root=str(tmp_path / "tree"), image_size=32, num_workers=0),
    ]
    for ds in built:
        assert isinstance(ds, gen.Dataset)
        assert isinstance(ds.num_samples, int) and ds.num_samples == len(ds)
        x, y = next(ds.train_batches(2, seed=0))
        assert tuple(x.shape) == (2, *ds.spec.shape)


def test_config_validation_goes_through_recipe_errors():
    with pytest.raises(gen.RecipeError, match="shuffle_buffer"):
        gen.build("dataset", "webdataset", urls="x.tar", shuffle_buffer=-1)
    with pytest.raises(gen.RecipeError, match="num_workers"):
        gen.build("dataset", "imagefolder", root="x", num_workers=-1)
    cfg = gen.resolve_config("dataset", "webdataset", urls=["a.tar", "b.tar"])
    assert cfg.urls == ("a.tar", "b.tar")
