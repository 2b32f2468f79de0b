"""Nothing is read or written outside the named folders, and a folder that cannot be written is one line at
the start. A symlink loop in an image folder is not followed round (each image once, one warning naming
the link); tar members named ``../x`` or ``/x``, and links, never reach outside the shard (``gen`` never
unpacks a tar: members are read in memory, links skipped); a read-only run directory is one line naming
it before any work, for ``gen train``, ``gen eval``, ``gen sample`` and ``gen ema reconstruct``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gen.recipe import load_recipe
from gen.training.engine import train
from gen_data.folders import scan_image_folder
from gen_data.shards import WebDataset, WebDatasetConfig, count_samples

HERE = Path(__file__).resolve().parent


def png(colour, size=8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


# -- symlink loops ----------------------------------------------------------------------------------------


def test_a_symlink_loop_in_an_image_folder_is_not_followed_round(tmp_path):
    root = tmp_path / "images"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "x.png").write_bytes(png((1, 2, 3)))
    (root / "a" / "again").symlink_to(root / "a")  # a folder that holds itself
    (root / "b" / "up").symlink_to(root)  # a folder that holds the root
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classes, samples = scan_image_folder(root)
    assert classes == ["a", "b"]
    assert [(os.path.relpath(p, root), label) for p, label in samples] == [("a/x.png", 0), ("b/x.png", 1)]
    messages = sorted(str(w.message) for w in caught)
    tail = "a folder already listed; not followed (a symlink loop, or a second link to one folder)"
    assert messages == [
        f"imagefolder: {root / 'a' / 'again'} links to {root / 'a'}, {tail}",
        f"imagefolder: {root / 'b' / 'up'} links to {root}, {tail}",
    ], messages
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        _, flat = scan_image_folder(root / "a", layout="flat")
    assert [os.path.relpath(p, root) for p, _ in flat] == ["a/x.png"]


# -- tar members ------------------------------------------------------------------------------------------


def test_tar_members_never_reach_outside_the_shard(tmp_path, g):
    outside = tmp_path / "secret.png"
    outside.write_bytes(png((200, 100, 50)))  # a colour no sample has
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "classes.json").write_text(json.dumps({"a": 0}))
    with tarfile.open(shards / "shard-000000.tar", "w") as tar:

        def add(name, data=b"", **kind):
            info = tarfile.TarInfo(name)
            for key, value in kind.items():
                setattr(info, key, value)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for name in ("ok", "../up", "/abs/root"):
            add(f"{name}.png", png((0, 0, 255)))
            add(f"{name}.cls", b"0")
        add("link.png", type=tarfile.SYMTYPE, linkname=str(outside))  # a link to a file outside
        add("link.cls", b"0")
        add("hard.png", type=tarfile.LNKTYPE, linkname="../secret.png")
        add("hard.cls", b"0")
    before = sorted(str(p) for p in tmp_path.parent.rglob("*"))
    url = str(shards / "shard-000000.tar")
    assert count_samples(url) == 3  # the regular members; links are not samples
    config = WebDatasetConfig(urls=str(shards), image_size=8, num_workers=0, random_flip=False)
    images = np.concatenate([x.numpy() for x, _ in WebDataset(config).iter_images(8)])
    assert images.shape[0] == 3 and np.allclose(images[:, 2], 1.0)  # the shard's own blue images only
    g.succeeds("data", "info", url)
    assert sorted(str(p) for p in tmp_path.parent.rglob("*")) == before  # nothing written anywhere
    assert not Path("/abs").exists()


# -- a read-only run directory ----------------------------------------------------------------------------


def _read_only_prefix(run: Path) -> list[str] | str:
    """A command prefix that runs a command with ``run`` bind-mounted read-only in a mount namespace of its
    own, or why this machine cannot (not Linux, no unshare, no permission to mount)."""
    if sys.platform != "linux":
        return "needs Linux mount namespaces"
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    mount = f"mount --bind '{run}' '{run}' && mount -o remount,bind,ro '{run}' '{run}'"
    try:
        probe = subprocess.run(["unshare", *user, "--mount", "sh", "-c", f"{mount} && ! touch '{run}/.probe'"],
                               capture_output=True, text=True, timeout=30)  # fmt: skip
    except FileNotFoundError:
        return "needs unshare(1)"
    if probe.returncode != 0:
        return f"cannot mount read-only here: {probe.stderr.strip()[:200]}"
    return ["unshare", *user, "--mount", "sh", "-c", f'{mount} && exec "$@"', "sh"]


def test_a_read_only_run_directory_is_one_line_at_the_start(train_env, tmp_path):
    run = tmp_path / "run"
    phema = ["train.ema_lengths=[0.05, 0.1]", "train.ema_snapshot_every=2"]
    train(load_recipe(train_env, ["train.grid_samples=0", "train.eval_samples=0", *phema]), run)
    prefix = _read_only_prefix(run)
    if isinstance(prefix, str):
        pytest.skip(prefix)
    before = {str(p): p.stat().st_mtime_ns for p in run.rglob("*")}
    report_file = tmp_path / "report.json"
    done = subprocess.run(
        [*prefix, sys.executable, str(HERE / "read_only.py"), str(train_env), str(run), str(report_file)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_file.read_text())
    expected = {
        "train": f"cannot write the run directory {run} (Read-only file system); make it writable, or choose "
        "another --run-dir",
        "eval": f"cannot write the results folder {run / 'eval'} (Read-only file system: {run}); make it writable: "
        "gen eval keeps every result there (results.jsonl), whatever --out says",
        "sample": f"cannot write the output folder {run} (Read-only file system); make it writable, or give "
        "another --out",
        "ema": f"cannot write the checkpoint {run / 'checkpoints' / 'step_00000006'} (Read-only file system); "
        "make it writable: the reconstructed EMAs are written into it",
    }
    for name, line in expected.items():
        r = report[name]
        lines = r["stderr"].strip().splitlines()
        assert r["exit_code"] == 2 and r["exception"] is None, (name, r)
        assert "Traceback" not in r["stderr"] and lines == [f"error: {line}"], (name, r["stderr"])
    assert {str(p): p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_a_full_disk_no_check_foresaw_is_one_line(g, trained, tmp_path, monkeypatch):
    """A write deep in a command (here the .npz of gen sample) that meets a full disk: one line naming the
    file, not a traceback."""
    import errno

    from gen.sampling import files

    out = tmp_path / "s.npz"

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "write_adm_npz", full)
    message = g.fails("sample", trained, "--num", 2, "--out", out, only=False)
    assert (
        message
        == f"{out}: No space left on device; free space (or choose another path), then run the command again"
    )
