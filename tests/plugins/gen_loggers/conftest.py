"""The tiny trainable plugin of ``tests/core/conftest.py`` (its ``train_env`` fixture, re-exported), and a
reader of the records W&B writes offline."""

from __future__ import annotations

import importlib.util
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest


def _core_conftest():
    path = Path(__file__).resolve().parents[2] / "core" / "conftest.py"
    spec = importlib.util.spec_from_file_location("gen_tests_core_conftest_loggers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_env = _core_conftest().train_env

BLOCK = 32768  # W&B's transaction log is LevelDB's log format: 32 KiB blocks of framed records


def wandb_records(path: Path) -> Iterator[bytes]:
    """The records of an offline ``run-ID.wandb`` file (each a serialized ``wandb_internal_pb2.Record``).

    A 7-byte file header (``:W&B``, magic 0xBEE1, version), then records framed as (crc32, length, type):
    type 1 is a whole record, 2/3/4 the first, middle and last pieces of one that crosses blocks.
    """
    data = path.read_bytes()
    ident, magic, _ = struct.unpack("<4sHB", data[:7])
    assert (ident, magic) == (b":W&B", 0xBEE1), (ident, magic)
    pos, pieces = 7, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pieces = chunk
        elif kind == 3:
            pieces += chunk
        elif kind == 4:
            yield pieces + chunk


@pytest.fixture
def read_wandb():
    """:func:`wandb_records`, for the tests."""
    return wandb_records
