"""docs/python.md runs as written, block after block, in a scratch directory beside the recipes."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_notebook_page_runs(tmp_path):
    page = (REPO / "docs" / "python.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(blocks) >= 4
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {"__name__": "docs_python"}
        for block in blocks:
            exec(compile(block, "docs/python.md", "exec"), namespace)  # noqa: S102 - our own docs
    finally:
        os.chdir(cwd)
    assert (tmp_path / "runs" / "notebook" / "grid.png").is_file()
    assert tuple(namespace["x"].shape) == (4, 3, 32, 32)
