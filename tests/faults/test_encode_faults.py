"""``gen data encode`` gone wrong: a kill while the latents are written, or while they are renamed into place,
leaves nothing that reads as a dataset, and running the same command again (no ``--overwrite``) writes the
same bytes as an encode never killed. A VAE folder (``[autoencoder] path``, ``--vae``) with missing or
damaged weights is one line naming the file and the key, before any image is read."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gen_data import encode

pytest.importorskip("diffusers", reason="gen data encode's sd_vae needs diffusers (gen[latent])")


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    for name, count in (("cat", 3), ("dog", 2)):
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                tmp_path / "src" / name / f"{i}.png"
            )
    return tmp_path / "src"


def args(src, out, vae):
    return ("data", "encode", src, out, "--vae", vae, "--image-size", 8, "--batch-size", 2, "--shard-size", 2,
            "--workers", 1)  # fmt: skip


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("kill", ["interrupt", "sigkill"])
@pytest.mark.parametrize("where", ["writing", "renaming"])
def test_a_killed_encode_leaves_no_dataset_and_runs_again_to_the_same_bytes(
    g, images, tiny_vae_dir, tmp_path, monkeypatch, where, kill
):
    """``interrupt``: a KeyboardInterrupt (the encode cleans up); ``sigkill``: the same with no clean-up, as
    a SIGKILL or a power cut leaves the folder."""
    straight = tmp_path / "straight"
    g.succeeds(*args(images, straight, tiny_vae_dir))
    out = tmp_path / "out"
    if where == "writing":  # after the second latent, in the second shard
        real_write, written = encode.LatentWriter.write, []

        def write(self, *a, **k):
            written.append(1)
            if len(written) == 3:
                raise KeyboardInterrupt
            return real_write(self, *a, **k)

        monkeypatch.setattr(encode.LatentWriter, "write", write)
    else:  # after the first shard was renamed into place
        real_rename, renamed = Path.rename, []

        def rename(self, target):
            renamed.append(self)
            if len(renamed) == 2:
                raise KeyboardInterrupt
            return real_rename(self, target)

        monkeypatch.setattr(Path, "rename", rename)
    if kill == "sigkill" and hasattr(encode.LatentWriter, "discard"):
        monkeypatch.setattr(encode.LatentWriter, "discard", lambda self: None)
    assert g.invoke(*args(images, out, tiny_vae_dir)).exit_code != 0
    left = sorted(p.name for p in out.iterdir())
    assert "latents.json" not in left and "index.npy" not in left, left  # nothing reads as a dataset
    monkeypatch.undo()
    result = g.succeeds(*args(images, out, tiny_vae_dir))  # the same command: no --overwrite needed
    assert files(out) == files(straight)
    assert (f"{out} holds the files of an interrupted encode" in result.stdout) == (kill == "sigkill")
    assert bool(left) == (kill == "sigkill")


def test_an_encode_never_replaces_a_finished_one_or_other_files(g, images, tiny_vae_dir, tmp_path):
    out = tmp_path / "out"
    g.succeeds(*args(images, out, tiny_vae_dir))
    assert "is not empty" in g.fails(*args(images, out, tiny_vae_dir))
    other = tmp_path / "other"
    other.mkdir()
    (other / "shard-000000.tar.tmp").write_bytes(b"x")
    (other / "notes.txt").write_text("mine")  # not an encode's file: the folder is not an encode's
    assert "is not empty" in g.fails(*args(images, other, tiny_vae_dir))
    assert (other / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("how", ["missing", "truncated", "empty"])
def test_a_vae_folder_with_missing_or_damaged_weights_is_one_line(g, images, tiny_vae_dir, tmp_path, how):
    vae = tmp_path / "vae"
    shutil.copytree(tiny_vae_dir, vae)
    weights = vae / "diffusion_pytorch_model.safetensors"
    if how == "missing":
        weights.unlink()
    elif how == "truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        weights.write_bytes(b"")
    message = g.fails(*args(images, tmp_path / "out", vae))
    problem = {
        "missing": "is missing",
        "truncated": "is truncated (1000 bytes)",
        "empty": "is empty (0 bytes), not a safetensors file",
    }[how]
    assert message.startswith(f"autoencoder 'sd_vae': {weights} {problem}"), message
    assert "(recipe key autoencoder.path)" in message
    assert not (tmp_path / "out").exists()  # before any image is read or any folder made
