"""Lazy attributes of a package (PEP 562): ``NAME`` imports its module on first use.

``gen`` and the built-in plugins export names whose modules import torch; ``gen --help`` imports every
plugin, so their packages hand out those names only when asked for them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, module_of: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``NAME`` is imported from ``module_of[NAME]`` the first
    time it is used, then kept as an ordinary attribute of the package.

    Args:
        package: the package's ``__name__``.
        module_of: public name -> the module that defines it.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
