"""Reading tensor files that may be damaged or untrusted; every failure is one line naming the file.

- safetensors (weights): nothing in such a file can run code. A file that is missing, empty, truncated,
  a pickle or anything else is a `DamagedFileError` saying which.
- torch files (a checkpoint's ``state.pt``, Inception ``.pth`` weights): read with
  ``torch.load(weights_only=True)``, which unpickles tensors and plain containers only. A file that holds
  other Python objects is refused *before* any of them is built, and said so in one line — without
  torch's advice to load it unrestricted, which a user must not follow for a file they do not trust.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from gen.errors import DamagedFileError

#: What the first bytes of a file say it is, when it is not what it should be.
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip, a raw pickle
NOT_PLAIN = "is not a plain tensor file (it holds pickled Python objects{what}); it was not loaded"


def _head(path: Path, n: int = 4) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def safetensors_problem(path: Path, error: Exception) -> str:
    """What is wrong with a safetensors file that ``error`` refused, as the rest of a sentence."""
    size = path.stat().st_size
    text = str(error)
    if size == 0:
        return "is empty (0 bytes), not a safetensors file"
    if _head(path).startswith(_PICKLE_MAGIC):
        return "is a pickle (a torch.save file), not a safetensors file; it was not loaded"
    if any(s in text for s in ("header too small", "invalid header length", "not fully covered")):
        return f"is truncated ({size} bytes): its header describes more data than the file holds"
    return f"is not a safetensors file ({text.removeprefix('Error while deserializing header: ')})"


def _missing(path: Path) -> DamagedFileError | None:
    if path.is_file():
        return None
    return DamagedFileError(path, "is a directory, not a file" if path.is_dir() else "is missing")


def check_safetensors(path: str | Path) -> None:
    """Read the header of a safetensors file only (no tensor data): a missing, truncated or foreign file
    is a [`DamagedFileError`][gen.errors.DamagedFileError]."""
    path = Path(path)
    if (error := _missing(path)) is not None:
        raise error
    try:
        with safe_open(str(path), "pt"):
            pass
    except (SafetensorError, OSError) as e:
        raise DamagedFileError(path, safetensors_problem(path, e)) from None


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a missing, truncated or foreign file is a
    [`DamagedFileError`][gen.errors.DamagedFileError]."""
    path = Path(path)
    if (error := _missing(path)) is not None:
        raise error
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise DamagedFileError(path, safetensors_problem(path, e)) from None


def torch_problem(path: Path, error: Exception) -> str:
    """What is wrong with a torch file that ``torch.load(weights_only=True)`` refused."""
    text = str(error)
    if isinstance(error, pickle.UnpicklingError):
        if not _head(path).startswith(_PICKLE_MAGIC):
            return "is not a torch file (nor any pickle)"
        found = re.search(r"GLOBAL ([\w.]+)", text)
        return NOT_PLAIN.format(what=f": {found.group(1)}" if found else "")
    if "PytorchStreamReader" in text or isinstance(error, EOFError):
        return "is damaged or truncated: not a readable torch file"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"cannot be read ({type(error).__name__}{': ' + first if first else ''})"


def read_torch(path: str | Path, *, allow: tuple[type, ...] = ()) -> Any:
    """A torch file of tensors and plain containers, loaded on the CPU with ``weights_only=True``; a
    missing or damaged file, or one holding other Python objects (refused, never run), is a
    [`DamagedFileError`][gen.errors.DamagedFileError]. ``allow`` names harmless classes a published file holds
    beside its tensors (``argparse.Namespace``: the arguments training scripts save)."""
    path = Path(path)
    if (error := _missing(path)) is not None:
        raise error
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(list(allow)):
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before it refuses them
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure of an untrusted file is said in one line
        raise DamagedFileError(path, torch_problem(path, e)) from None


__all__ = ["NOT_PLAIN", "check_safetensors", "read_safetensors", "read_torch", "safetensors_problem"]
