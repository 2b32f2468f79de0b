"""Writing latent shards for ``gen data encode``: the ``latents`` dataset's layout (`gen_data.latents`),
every file under a ``.tmp`` name until `LatentWriter.publish` renames them into place, ``latents.json``
last, so that nothing reads as a dataset before it is whole; `LatentWriter.discard` removes what an
interrupted encode wrote."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import gen

if TYPE_CHECKING:
    import webdataset

SHARD_PATTERN = "shard-%06d.tar"


class LatentWriter:
    """Writes samples into ``.tmp`` shards of ``shard_size`` samples; `publish` renames them."""

    def __init__(self, out: Path, shard_size: int):
        self.out, self.shard_size = out, shard_size
        self.tmp: list[Path] = []
        self.labels: list[int] = []
        self._sink: webdataset.TarWriter | None = None

    def write(self, index: int, z: np.ndarray, label: int) -> None:
        """Sample ``index``: latents ``z`` (V, c, h, w) float32 and its class."""
        import webdataset

        if self._sink is None or len(self.labels) % self.shard_size == 0:
            self.close()
            self.tmp.append(self.out / ((SHARD_PATTERN % len(self.tmp)) + ".tmp"))
            # mtime 0 (not the clock): a re-run writes the same bytes
            self._sink = webdataset.TarWriter(str(self.tmp[-1]), encoder=False, mtime=0)
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(z, dtype=np.float32), allow_pickle=False)
        self._sink.write(
            {"__key__": f"{index:08d}", "npy": buffer.getvalue(), "cls": str(label).encode("ascii")}
        )
        self.labels.append(label)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def index(self) -> np.ndarray:
        """int64 (N, 4): (shard, offset, size, label) of each sample's ``.npy``, read back from the tars."""
        self.close()
        rows = []
        for s, path in enumerate(self.tmp):
            with tarfile.open(path, "r:") as tar:
                rows += [(s, m.offset_data, m.size) for m in tar if m.name.endswith(".npy")]
        if len(rows) != len(self.labels):
            raise gen.GenError(
                f"data encode: read back {len(rows)} latents of {len(self.labels)} written in {self.out}"
            )
        return np.column_stack([np.array(rows, dtype=np.int64), np.array(self.labels, dtype=np.int64)])

    def publish(self, meta: dict[str, Any]) -> None:
        """Write the index and ``latents.json`` and rename everything into place, ``latents.json`` last."""
        from gen_data.latents import INDEX_NAME, LATENTS_JSON

        with open(self.out / f"{INDEX_NAME}.tmp", "wb") as f:
            np.save(f, self.index(), allow_pickle=False)
        (self.out / f"{LATENTS_JSON}.tmp").write_text(json.dumps(meta, indent=1) + "\n")
        for path in [*self.tmp, self.out / f"{INDEX_NAME}.tmp"]:
            path.rename(path.with_suffix(""))
        (self.out / f"{LATENTS_JSON}.tmp").rename(self.out / LATENTS_JSON)

    def discard(self) -> None:
        """Remove every file this writer wrote, under its ``.tmp`` name or its final one (an interrupted
        encode: nothing of it is left to be taken for data)."""
        from gen_data.latents import INDEX_NAME, LATENTS_JSON

        if self._sink is not None:
            with contextlib.suppress(Exception):
                self._sink.close()
            self._sink = None
        for path in [*self.tmp, self.out / f"{INDEX_NAME}.tmp", self.out / f"{LATENTS_JSON}.tmp"]:
            path.unlink(missing_ok=True)
            path.with_suffix("").unlink(missing_ok=True)
