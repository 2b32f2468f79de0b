"""``gen --help`` answers at once: building the command line imports no torch (about a second and a half
of ``import torch`` and the training engine), whichever command's help is asked for.

Deterministic rather than timed: each check runs in a fresh interpreter and asserts that ``torch`` is not
in ``sys.modules``; a failure names the line that imported it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

PLUGINS = sorted(ep.name for ep in metadata.entry_points(group="gen"))

#: Run in a fresh interpreter: records who imports torch first, then runs the code after it.
WATCH_TORCH = """
import sys, traceback

class _Watch:
    first = None

    def find_spec(self, name, path=None, target=None):
        if name == "torch" and _Watch.first is None:
            frames = [f for f in traceback.extract_stack()[:-1] if "importlib" not in f.filename]
            _Watch.first = "".join(traceback.format_list(frames[-6:]))
        return None

sys.meta_path.insert(0, _Watch())

def no_torch(what):
    assert "torch" not in sys.modules, f"{what} imported torch, first here:\\n{_Watch.first}"
"""

#: Builds the app, then asks every command and group for its help, in process.
HELP_OF_EVERY_COMMAND = """
import json
import typer.main
from typer.testing import CliRunner
from gen.commands import app
no_torch("building the gen app")

def paths(command, prefix=()):
    yield prefix
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from paths(sub, (*prefix, name))

runner = CliRunner()
asked = []
for path in paths(typer.main.get_command(app)):
    for args in ([*path, "--help"], ["--threads", "1", *path, "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output, result.exception)
        assert "Usage:" in result.output, (args, result.output)
        no_torch("gen " + " ".join(args))
    asked.append(" ".join(path))
for group in ("data", "eval", "recipe"):  # a group without a subcommand prints its help
    result = runner.invoke(app, [group])
    assert "Usage:" in result.output, (group, result.output)
    no_torch("gen " + group)
print(json.dumps(asked))
"""


def run_python(code: str, plugins: list[str]) -> subprocess.CompletedProcess:
    """``code`` after `WATCH_TORCH` in a fresh interpreter that loads only ``plugins``."""
    return subprocess.run(
        [sys.executable, "-c", WATCH_TORCH + code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GEN_PLUGINS": ",".join(plugins)},
    )


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_plugin_imports_no_torch(plugin):
    """Every command imports every plugin: a plugin's module imports its torch code inside its hooks."""
    out = run_python(f"import {plugin}\nno_torch('import {plugin}')\n", [plugin])
    assert out.returncode == 0, out.stderr


def test_the_help_of_every_command_imports_no_torch():
    plugins = PLUGINS
    out = run_python(HELP_OF_EVERY_COMMAND, plugins)
    assert out.returncode == 0, out.stderr
    asked = set(json.loads(out.stdout))
    assert {"", "train", "sample", "eval score", "eval ref-stats", "ema reconstruct", "recipe check"} <= asked
    if "gen_data" in plugins:
        assert {"data pack", "data info", "data encode"} <= asked


def test_the_core_alone_imports_no_torch_for_its_help():
    out = run_python(HELP_OF_EVERY_COMMAND, [])
    assert out.returncode == 0, out.stderr


def test_options_declared_without_torch_keep_the_librarys_defaults():
    """`gen eval`'s KID options are declared with literal defaults (the metric's module imports torch)."""
    from gen.commands import eval as eval_command
    from gen.metrics import kid

    assert (eval_command.KID_SUBSETS, eval_command.KID_SUBSET_SIZE) == (kid.KID_SUBSETS, kid.KID_SUBSET_SIZE)


def test_help_does_not_set_torchs_threads_but_a_command_does(cli):
    """``--threads`` is applied before a command runs (it imports torch), not for a help text."""
    import torch
    from typer.testing import CliRunner

    from gen.commands import app

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        result = CliRunner().invoke(app, ["--threads", "1", "train", "--help"])
        assert result.exit_code == 0 and torch.get_num_threads() == 2
        cli("--threads", 1, "plugins")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
