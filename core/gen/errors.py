"""Errors a user can meet. The CLI prints each as one line and exits with code 2."""

from __future__ import annotations


class GenError(Exception):
    """Base class of every error that is the user's to fix (a recipe, a name, a file).

    The CLI prints ``error: <message>`` and exits with code 2; ``--debug`` shows the traceback.
    """


class RecipeError(GenError):
    """A recipe (or the keyword arguments of [`gen.build`][]) is wrong.

    Printed as ``FILE: [SECTION] KEY: MESSAGE``, e.g.
    ``recipes/demo.toml: [backbone] depth: must be >= 1, got 0``.

    Args:
        message: What is wrong and how to fix it.
        file: The recipe file, when there is one.
        section: The dotted section (``objective.schedule``) at fault.
        key: The key within the section.
    """

    def __init__(
        self, message: str, *, file: str | None = None, section: str | None = None, key: str | None = None
    ):
        self.message = message
        self.file = file
        self.section = section
        self.key = key
        where = f"[{section}] {key}" if section and key else f"[{section}]" if section else key
        prefix = ": ".join(p for p in (file, where) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class UnknownComponentError(GenError):
    """A name that no loaded plugin registered in a registry."""


class DuplicateComponentError(GenError):
    """Two plugins registered the same name in one registry."""


class DamagedFileError(GenError):
    """A file that cannot be read as what it should be: missing, truncated, of another format, or holding
    Python objects that were refused (never run).

    Printed as ``PATH PROBLEM[; FIX]``, e.g. ``run/checkpoints/step_00000006/model.safetensors is
    truncated (...); the checkpoint is damaged, use an earlier one``.

    Args:
        path: The file.
        problem: What is wrong with it, as the rest of a sentence that starts with the path.
        fix: What to do about it (optional).
    """

    def __init__(self, path: object, problem: str, fix: str = ""):
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path} {problem}" + (f"; {fix}" if fix else ""))
