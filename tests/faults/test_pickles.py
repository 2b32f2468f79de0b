"""Pickle payloads everywhere ``gen`` accepts a path: each is refused in one line saying the file is not a
plain tensor file and was not loaded, and the payload never runs (the ``marker`` fixture checks)."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch

from gen.metrics import use_feature_extractor
from gen.runs import checkpoint as ckpt

NOT_PLAIN = "is not a plain tensor file (it holds pickled Python objects"
NOT_LOADED = "); it was not loaded"


class Features(torch.nn.Module):
    """Stands in for the FID Inception (the reference is refused before any image is seen)."""

    def forward(self, images):
        x = images.float().mean((2, 3))
        return x, x


@pytest.fixture
def copy(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    return run


def evil_npz(path, g, marker, how):
    """An ``.npz`` whose loading would run the payload: a raw pickle, or an object array in a zip."""
    if how == "raw":
        path.write_bytes(pickle.dumps(g.Evil(marker)))
    else:
        payload = np.empty(1, dtype=object)
        payload[0] = g.Evil(marker)
        np.savez(path, **{how: payload, "sigma": np.zeros((1, 1))})
    return path


def test_resume_refuses_an_evil_state(g, train_env, trained, tmp_path, marker):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    shutil.rmtree(ckpt.checkpoint_dir(run, 3))  # the only checkpoint left is the evil one
    state = ckpt.checkpoint_dir(run, 6) / "state.pt"
    torch.save({"optimizer": {}, "step": 6, "rng": [g.Evil(marker)]}, state)
    message = g.fails("train", train_env, *g.QUIET, "--run-dir", run, "--resume")
    assert message.startswith(
        f"--resume: no intact checkpoint in {run / 'checkpoints'}: step_00000006 is damaged: "
    )
    assert message.endswith(f"{state} {NOT_PLAIN}: posix.mkdir{NOT_LOADED}")


def test_resume_skips_an_evil_state_with_a_warning(g, train_env, copy, marker):
    state = ckpt.checkpoint_dir(copy, 6) / "state.pt"
    state.write_bytes(pickle.dumps({"step": 6, "x": g.Evil(marker)}))  # a raw pickle
    result = g.succeeds("train", train_env, *g.QUIET, "--run-dir", copy, "--resume")
    assert (
        f"warning: step_00000006 is damaged: {state} {NOT_PLAIN}{NOT_LOADED}; resuming from" in result.stderr
    )


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_sample_and_eval_refuse_pickled_weights(g, copy, tmp_path, marker, command):
    file = ckpt.checkpoint_dir(copy, 6) / "ema_0.9.safetensors"
    torch.save({"w": g.Evil(marker)}, file)
    if command == "sample":
        message = g.fails("sample", copy, "--num", 2, "--out", tmp_path / "s.png")
    else:
        message = g.fails("eval", copy, "--metric", "data", "--num", 2)
    assert message.startswith(
        f"{file} is a pickle (a torch.save file), not a safetensors file; it was not loaded"
    )


@pytest.mark.parametrize("how", ["raw", "mu"])
def test_a_reference_that_is_a_pickle_is_refused(g, tmp_path, marker, how):
    samples = tmp_path / "s.npz"
    np.savez(samples, arr_0=np.zeros((4, 8, 8, 3), dtype=np.uint8))
    ref = evil_npz(tmp_path / "ref.npz", g, marker, how)
    with use_feature_extractor(Features()):
        message = g.fails("eval", samples, "--ref", ref)
    assert message == f"{ref} {NOT_PLAIN}{' in mu' if how == 'mu' else ''}{NOT_LOADED}"


@pytest.mark.parametrize("how", ["raw", "arr_0"])
def test_samples_and_ref_stats_sources_that_are_pickles_are_refused(g, tmp_path, marker, how):
    source = evil_npz(tmp_path / "samples.npz", g, marker, how)
    expected = f"{source} {NOT_PLAIN}{' in arr_0' if how == 'arr_0' else ''}{NOT_LOADED}"
    with use_feature_extractor(Features()):
        assert g.fails("eval", source) == expected
        assert g.fails("eval", "ref-stats", source, tmp_path / "out.npz") == expected
        assert g.fails("eval", "ref-stats", source, tmp_path / "out.npz", "--inception-weights", source)


@pytest.mark.parametrize("how", ["zip", "raw"])
def test_inception_weights_that_hold_objects_are_refused_without_torchs_advice(g, tmp_path, marker, how):
    weights = tmp_path / "inception.pth"
    if how == "zip":
        torch.save({"conv.weight": g.Evil(marker)}, weights)
    else:
        weights.write_bytes(pickle.dumps({"conv.weight": g.Evil(marker)}))
    np.savez(tmp_path / "a.npz", arr_0=np.zeros((4, 8, 8, 3), dtype=np.uint8))
    message = g.fails(
        "eval", "ref-stats", tmp_path / "a.npz", tmp_path / "s.npz", "--inception-weights", weights
    )
    what = ": posix.mkdir" if how == "zip" else ""
    assert message.startswith(
        f"{weights} {NOT_PLAIN}{what}{NOT_LOADED}; these are not usable Inception weights"
    )
    assert "weights_only" not in message and "trusted source" not in message


def test_convert_jit_refuses_a_checkpoint_that_holds_objects(g, tmp_path, marker):
    source = tmp_path / "jit.pth"
    torch.save({"model": {"net.x": g.Evil(marker)}}, source)
    message = g.fails("convert", "jit", source, tmp_path / "out")
    assert message == f"{source} {NOT_PLAIN} other than tensors{NOT_LOADED}"
