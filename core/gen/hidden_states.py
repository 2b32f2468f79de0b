"""The outputs of named submodules of a backbone during a training forward, for the loss terms that
read hidden states (REPA's projector reads the tokens after the first few blocks).

Forward hooks are registered once, and only for the names a term asks for, so a run without such a
term has no hook at all. They record only inside `HiddenStates.recording` (the training forward),
so the forwards of sampling during training keep nothing. Hooks that stay in place, rather than hooks
added and removed around each forward, leave ``torch.compile`` one set of hooks to trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from torch import Tensor, nn

from gen.errors import GenError


def _known(model: nn.Module) -> str:
    names = [n for n, _ in model.named_modules() if n and n.count(".") <= 1]
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")


class HiddenStates:
    """Records the outputs of ``model``'s submodules ``names`` while `recording`.

    Args:
        model: The backbone (unwrapped: hooks on its submodules fire through DDP and torch.compile).
        names: Dotted submodule names (``blocks.3``).

    Raises:
        GenError: A name that is not a submodule of ``model`` (one line listing some that are).
    """

    def __init__(self, model: nn.Module, names: Sequence[str]):
        self.names = tuple(names)
        self._on = False
        self._taken: dict[str, Tensor] = {}
        self._handles = []
        for name in self.names:
            try:
                module = model.get_submodule(name)
            except AttributeError:
                raise GenError(
                    f"the backbone has no submodule {name!r} for a loss term to read; it has: {_known(model)}"
                ) from None
            self._handles.append(module.register_forward_hook(self._hook(name)))

    def _hook(self, name: str) -> Any:
        def record(module: nn.Module, inputs: Any, output: Any) -> None:  # noqa: ARG001
            if self._on:
                self._taken[name] = output[0] if isinstance(output, (tuple, list)) else output

        return record

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Record the outputs of the forwards inside this block (earlier records are dropped)."""
        self._taken = {}
        self._on = True
        try:
            yield
        finally:
            self._on = False

    def take(self) -> dict[str, Tensor]:
        """The recorded outputs by name (each with its graph), handed over: the next `recording` starts
        empty, so nothing outlives the step that used it."""
        missing = [n for n in self.names if n not in self._taken]
        if missing:
            raise GenError(f"the backbone's forward did not run its submodule(s) {', '.join(missing)}")
        taken, self._taken = self._taken, {}
        return taken

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


__all__ = ["HiddenStates"]
