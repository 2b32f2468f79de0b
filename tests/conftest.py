"""Shared fixtures: the reference test vectors and a clean plugin host per test that needs one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    """``../shared/fixtures/reference`` beside the checkout (or ``$GEN_REFERENCE_DIR``)."""
    env = os.environ.get("GEN_REFERENCE_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "fixtures" / "reference"
    if not path.is_dir():
        raise FileNotFoundError(f"reference vectors not found at {path}; set GEN_REFERENCE_DIR")
    return path


@pytest.fixture(scope="session")
def reference():
    """A loader: ``reference("jit_tiny")`` -> (tensors dict, config dict)."""
    from safetensors.torch import load_file

    def load(name: str):
        d = reference_dir()
        return load_file(str(d / f"{name}.safetensors")), json.loads((d / f"{name}.json").read_text())

    return load


@pytest.fixture(scope="session")
def cli():
    """``cli("sample", run, "--num", 4)`` runs ``gen`` in process and requires exit code 0; returns the result."""
    from typer.testing import CliRunner

    from gen.commands import app

    runner = CliRunner()

    def invoke(*args):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result

    return invoke


@pytest.fixture
def torchrun():
    """``torchrun(args, clean=[run_dir])`` runs ``torchrun --standalone --nproc_per_node=2 ARGS`` (one
    thread per rank) and requires exit code 0; returns the completed process.

    A failed launch is retried once, after removing the ``clean`` paths: a finished two-rank FSDP run
    used to die in SIGABRT at exit about once in 20 suites (fixed in ``distributed.teardown``). Should
    a rare failure come back, its stderr goes to a warning, so that the test log keeps it; a failure
    that repeats still fails the test.
    """

    def launch(args, *, clean=(), timeout=300):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        cmd += [str(a) for a in args]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            warnings.warn(
                f"torchrun exited with {done.returncode}; retrying once. Its stderr:\n{done.stderr[-4000:]}",
                stacklevel=2,
            )
            for path in map(Path, clean):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    return launch


@pytest.fixture(scope="session")
def same_images():
    """``same_images(a, b)`` asserts that (N, H, W, C) uint8 images drawn in other batches or processes
    are the same images. The float32 network rounds differently there (the samples in [-1, 1] differ by
    about 1e-6; 6e-7 measured between batch sizes), which moves a pixel by one level (2/255) only where it
    lies that close to a rounding boundary: about 3e-4 of the pixels, of which 1% are allowed. A wrong
    seed, label or order moves most pixels by many levels."""
    import numpy as np

    def check(a, b):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype == np.uint8, (a.shape, b.shape, a.dtype, b.dtype)
        off = np.abs(a.astype(np.int16) - b.astype(np.int16))
        assert off.max() <= 1 and np.count_nonzero(off) <= off.size // 100, (off.max(), np.count_nonzero(off))

    return check


@pytest.fixture(scope="session")
def tiny_vae_dir(tmp_path_factory):
    """A tiny random diffusers ``AutoencoderKL`` saved with ``save_pretrained`` (config.json +
    diffusion_pytorch_model.safetensors); returns the folder. Factor 2 (two blocks), 4 latent channels,
    seeded without touching torch's global generator. Skips the test where diffusers is not installed."""
    import torch

    diffusers = pytest.importorskip("diffusers")
    folder = tmp_path_factory.mktemp("tiny_vae")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = diffusers.AutoencoderKL(
            block_out_channels=(8, 16),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=4,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            sample_size=32,
        )
    model.save_pretrained(folder)
    return folder
