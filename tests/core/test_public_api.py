"""The public API, `gen.__all__`, is imported lazily (PEP 562) and is the same API as an eager import."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import gen

INIT = Path(gen.__file__)


def test_every_public_name_resolves_to_its_modules_object():
    for name in gen.__all__:
        value = getattr(gen, name)
        if name not in ("__version__", "lazy_getattr"):
            assert value is getattr(importlib.import_module(gen._MODULE_OF[name]), name), name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'gen' has no attribute 'nope'"):
        gen.__getattr__("nope")
    with pytest.raises(AttributeError):
        gen.nope  # noqa: B018
    assert not hasattr(gen, "nope")


def test_dir_lists_every_public_name():
    assert set(gen.__all__) <= set(dir(gen))


def test_star_import_gives_every_public_name():
    namespace: dict = {}
    exec("from gen import *", namespace)
    assert set(gen.__all__) <= set(namespace)


def test_the_type_checking_imports_the_lazy_table_and_all_agree():
    """Type checkers, IDEs and the API docs read the ``if TYPE_CHECKING:`` imports; ``gen.NAME`` reads
    `gen._MODULES`: the two name the same module for every name, and together they are `__all__`."""
    tree = ast.parse(INIT.read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    imported = {
        a.name: node.module for node in block.body if isinstance(node, ast.ImportFrom) for a in node.names
    }
    assert imported == gen._MODULE_OF
    assert sorted([*gen._MODULE_OF, "__version__", "lazy_getattr"]) == sorted(gen.__all__)
    assert len(gen.__all__) == len(set(gen.__all__))


def test_import_gen_imports_no_torch_until_a_name_needs_it():
    script = (
        "import sys, gen\n"
        "gen.field, gen.hookimpl, gen.GenError, gen.command_group\n"
        "assert 'torch' not in sys.modules, 'import gen (and its light names) imported torch'\n"
        "gen.train\n"
        "assert 'gen.training.engine' in sys.modules and 'train' in vars(gen)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
