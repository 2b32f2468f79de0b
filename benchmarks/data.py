"""Data-loading throughput: decoded images/s of the webdataset and imagefolder paths, and shapes rendering.

Makes its own temporary data: ImageNet-like JPEGs (500x375, smooth content, quality 90) in a
class-per-folder tree and the same images in WebDataset shards, then times ``train_batches`` (decode,
ADM center crop to ``--size``, random flip, conversion to [-1, 1]) for several worker counts.

    .venv/bin/python benchmarks/data.py [--images 512] [--size 256] [--batch 32] [--workers 0 2]
"""

from __future__ import annotations

import argparse
import io
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import webdataset
from PIL import Image

import gen


def synthetic_jpeg(rng: np.random.Generator, width: int = 500, height: int = 375) -> bytes:
    """A photo-like JPEG: smooth colour gradients plus a few blobs and mild noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), dtype=np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(0.005, 0.03), rng.uniform(0.005, 0.03), rng.uniform(0, 6.28)
        image[..., c] = 127 + 100 * np.sin(fx * xx + fy * yy + phase)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, 90)
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        image[mask] = rng.uniform(0, 255, 3)
    image += rng.normal(0, 6, image.shape)
    buffer = io.BytesIO()
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_data(root: Path, images: int, classes: int, shard_size: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    folder, shards = root / "folder", root / "shards"
    shards.mkdir(parents=True)
    pattern = str(shards / "shard-%06d.tar")
    with webdataset.ShardWriter(pattern, maxcount=shard_size, verbose=0, encoder=False) as sink:
        for i in range(images):
            label = i % classes
            data = synthetic_jpeg(rng)
            (folder / f"class{label:03d}").mkdir(parents=True, exist_ok=True)
            (folder / f"class{label:03d}" / f"img{i:06d}.JPEG").write_bytes(data)
            sink.write({"__key__": f"{i:08d}", "jpg": data, "cls": str(label).encode()})
    return folder, shards


def images_per_second(dataset, batch_size: int, batches: int) -> float:
    stream = dataset.train_batches(batch_size, seed=0)
    next(stream)  # start-up (workers, first shard) is not throughput
    start = time.perf_counter()
    for x, _ in itertools.islice(stream, batches):
        assert x.dtype == torch.float32
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="synthetic images to make")
    parser.add_argument("--size", type=int, default=256, help="center-crop size")
    parser.add_argument("--batch", type=int, default=32, help="batch size")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="worker counts to time")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder, shards = make_data(Path(tmp), args.images, classes=10, shard_size=max(1, args.images // 8))
        print(f"made {args.images} JPEGs (500x375) in {time.perf_counter() - start:.1f} s")
        batches = max(4, args.images // args.batch - 2)  # stay within about one epoch
        for workers in args.workers:
            common = {"image_size": args.size, "num_workers": workers}
            wds = gen.build(
                "dataset", "webdataset", urls=str(shards), num_classes=10, shuffle_buffer=100, **common
            )
            rate = images_per_second(wds, args.batch, batches)
            print(f"webdataset  workers={workers}: {rate:8.1f} images/s  (decode + crop to {args.size})")
            folder_ds = gen.build("dataset", "imagefolder", root=str(folder), **common)
            rate = images_per_second(folder_ds, args.batch, batches)
            print(f"imagefolder workers={workers}: {rate:8.1f} images/s  (decode + crop to {args.size})")
    shapes = gen.build("dataset", "shapes")
    rate = images_per_second(shapes, 256, 50)
    print(f"shapes 32x32: {rate:8.0f} images/s ({256 / rate * 1000:.1f} ms per batch of 256)")


if __name__ == "__main__":
    main()
