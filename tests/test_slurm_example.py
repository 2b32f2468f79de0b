"""The SLURM example is valid bash and calls gen train with options that exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from typer.testing import CliRunner

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "slurm" / "train_multinode.sbatch"


def test_the_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_the_options_it_passes_to_gen_train_exist():
    from gen.commands import app

    text = SCRIPT.read_text()
    used = set(re.findall(r"(--[a-z-]+)", text.split("-m gen train", 1)[1]))
    help_text = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert used and all(option in help_text for option in used), used
