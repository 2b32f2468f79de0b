"""Helpers for the dataset tests: tiny image folders and shards whose pixels say which sample they are.

Every image is 32x32 PNG (lossless): red = the sample id (0..255), green = 50 * label, blue = 255 on the
left half only (so a horizontal flip shows). With ``image_size = 32`` the center crop is the identity.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import webdataset
from PIL import Image

SIZE = 32


def id_image(sample_id: int, label: int) -> Image.Image:
    arr = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    arr[..., 0] = sample_id
    arr[..., 1] = 50 * label
    arr[:, : SIZE // 2, 2] = 255
    return Image.fromarray(arr)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_ids(x: torch.Tensor) -> tuple[list[int], list[int], list[bool]]:
    """(sample ids, labels, flipped) of a batch (B, 3, 32, 32) in [-1, 1] made from :func:`id_image`."""
    u8 = ((x + 1) * 127.5).round().to(torch.int64)  # (B, 3, H, W)
    ids = u8[:, 0, 0, 0].tolist()
    labels = [v // 50 for v in u8[:, 1, 0, 0].tolist()]
    flipped = (u8[:, 2, 0, -1] == 255).tolist()  # blue moved to the right edge
    return ids, labels, flipped


def write_folder(root: Path, counts: dict[str, int], *, corrupt: tuple[str, ...] = ()) -> dict[int, int]:
    """Class folders with ``counts[class]`` id images (ids in sorted-class order); ``corrupt`` classes get a
    bad file. Returns {id: label}."""
    labels = {}
    sample_id = 0
    for label, name in enumerate(sorted(counts)):
        (root / name).mkdir(parents=True)
        for i in range(counts[name]):
            id_image(sample_id, label).save(root / name / f"img{i:03d}.png")
            labels[sample_id] = label
            sample_id += 1
        if name in corrupt:
            (root / name / "zz_broken.png").write_bytes(b"\x89PNG this is not an image")
    return labels


def write_shards(
    out: Path, num_shards: int, per_shard: int, num_classes: int, *, corrupt_ids: tuple[int, ...] = ()
) -> dict[int, int]:
    """Shards ``shard-00000i.tar`` of id images (label = id % num_classes) and classes.json.

    Samples whose id is in ``corrupt_ids`` get garbage image bytes. Returns {id: label}.
    """
    out.mkdir(parents=True, exist_ok=True)
    labels = {}
    for s in range(num_shards):
        with webdataset.TarWriter(str(out / f"shard-{s:06d}.tar"), encoder=False) as sink:
            for i in range(per_shard):
                sample_id = s * per_shard + i
                label = sample_id % num_classes
                data = b"garbage" if sample_id in corrupt_ids else png_bytes(id_image(sample_id, label))
                sink.write({"__key__": f"{sample_id:06d}", "png": data, "cls": str(label).encode()})
                labels[sample_id] = label
    (out / "classes.json").write_text(json.dumps({f"class{i}": i for i in range(num_classes)}))
    return labels


@pytest.fixture
def helpers():
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    return SimpleNamespace(
        id_image=id_image,
        png_bytes=png_bytes,
        decode_ids=decode_ids,
        write_folder=write_folder,
        write_shards=write_shards,
    )


@pytest.fixture
def shards(tmp_path):
    """4 shards x 12 samples, 3 classes."""
    labels = write_shards(tmp_path / "shards", 4, 12, 3)
    return tmp_path / "shards", labels
