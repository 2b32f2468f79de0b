"""torch's CPU threads follow what the process may use: --threads, OMP_NUM_THREADS, else its affinity."""

from __future__ import annotations

import pytest
import torch

from gen import threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_an_explicit_count_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.configure_threads(1) == 1 == torch.get_num_threads()
    with pytest.raises(ValueError, match="threads must be >= 1"):
        threads.configure_threads(0)


def test_the_affinity_caps_torchs_default(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {5})  # one CPU allowed
    assert threads.allowed_cpus() == 1
    assert threads.configure_threads() == 1


def test_omp_num_threads_is_left_to_torch(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {5})
    assert threads.configure_threads() == 2


def test_the_cli_option(cli):
    from typer.testing import CliRunner

    from gen.commands import app

    cli("--threads", 1, "plugins")
    assert torch.get_num_threads() == 1
    result = CliRunner().invoke(app, ["--threads", "0", "plugins"])
    assert result.exit_code == 2 and "--threads" in result.output
