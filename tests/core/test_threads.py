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


def fresh(code: str, **env: str) -> str:
    """The output of ``code`` in a fresh interpreter, without the caller's OpenMP settings."""
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


WAIT = "import os, sys; from gen import threads; n = threads.configure_threads(1); "


def test_the_command_line_waits_passively_unless_the_environment_chose():
    # Set before torch loads OpenMP (which reads it once): torch was not loaded when it was decided.
    code = WAIT + "print(os.environ.get('OMP_WAIT_POLICY'), threads.wait_policy(), 'torch' in sys.modules)"
    assert fresh(code) == "PASSIVE PASSIVE True"
    assert fresh(code, OMP_WAIT_POLICY="active") == "active ACTIVE True"
    assert fresh(code, GOMP_SPINCOUNT="1000") == "None GOMP_SPINCOUNT=1000 True"
    # Too late once torch is loaded: the policy is OpenMP's own, and nothing pretends otherwise.
    late = "import torch; " + code
    assert fresh(late) == "None default True"


def test_the_training_header_names_the_threads_and_their_wait():
    from gen.training.plan import _device_text

    n = torch.get_num_threads()
    assert _device_text("cuda:0") == "cuda:0"
    assert _device_text("cpu").startswith(f"cpu ({n} thread{'s' if n != 1 else ''}, OpenMP wait ")
