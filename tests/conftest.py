"""Shared fixtures: the reference test vectors and a clean plugin host per test that needs one."""

from __future__ import annotations

import json
import os
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

    from gen.cli import app

    runner = CliRunner()

    def invoke(*args):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result

    return invoke
