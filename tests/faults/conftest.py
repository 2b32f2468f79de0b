"""The fault suite: what a user meets when things go wrong, each error one line through the CLI.

Shared here: the tiny trainable plugin of ``tests/core/conftest.py`` (its fixtures, re-exported), a
``fails`` helper that runs ``gen`` in process and asserts the error contract (exit code 2, no traceback,
one ``error:`` line, the last one), a ``gen_process`` helper for the faults that need a real second
process (locks, SIGKILL), and the ``Evil`` pickle payload with its marker.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from gen.recipe import load_recipe
from gen.training.engine import train


def _core_conftest():
    path = Path(__file__).resolve().parents[1] / "core" / "conftest.py"
    spec = importlib.util.spec_from_file_location("gen_tests_core_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_core = _core_conftest()
train_env = _core.train_env
train_env_module = _core.train_env_module

runner = CliRunner()

#: Overrides that keep a tiny run to its training: no grids, no scores.
QUIET = ["train.grid_samples=0", "train.eval_samples=0"]


def invoke(*args):
    """``gen ARGS`` in this process; returns the result (any exit code)."""
    from gen.commands import app

    return runner.invoke(app, [str(a) for a in args])


def fails(*args, only: bool = True) -> str:
    """``gen ARGS`` must fail as a user error: exit code 2, no traceback, one ``error:`` line, the last
    of stderr (``only``: the only line). Returns that line without ``error: ``."""
    result = invoke(*args)
    out = result.stderr + result.stdout
    assert result.exit_code == 2, f"exit {result.exit_code}: {out}{result.exception!r}"
    assert "Traceback" not in out, out
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    if only:
        assert lines == errors, result.stderr
    return errors[0].removeprefix("error: ")


def succeeds(*args):
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr + result.stdout + repr(result.exception)
    return result


def gen_process(*args, script: Path | None = None, **kwargs) -> subprocess.Popen:
    """``python -m gen ARGS`` (or ``python SCRIPT ARGS``) as a real process, output piped; with as many
    threads as this one, so that its numbers are bit-identical to a run in this process."""
    import torch

    head = [str(script)] if script else ["-m", "gen"]
    cmd = [sys.executable, *head, *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kwargs)


class Evil:
    """A pickle payload: loading it would create the directory ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture(scope="session")
def g():
    """The helpers above, for the test modules (importlib mode cannot import a conftest)."""
    return SimpleNamespace(
        fails=fails, succeeds=succeeds, invoke=invoke, process=gen_process, Evil=Evil, QUIET=QUIET
    )


@pytest.fixture
def marker(tmp_path):
    """Where an :class:`Evil` payload would leave its mark; the test fails if it ever does."""
    path = tmp_path / "payload-ran"
    yield path
    assert not path.exists(), "a pickle payload ran"


@pytest.fixture(scope="module")
def trained(train_env_module, tmp_path_factory):
    """A tiny run of 6 steps with checkpoints at 3 and 6 (EMAs 0.9 and 0.5); copy it before damaging."""
    run = tmp_path_factory.mktemp("trained") / "run"
    train(load_recipe(train_env_module, QUIET), run)
    return run
