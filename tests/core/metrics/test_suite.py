"""Several metrics in one ``gen eval``: one network pass per batch, every column in sweeps, screening and
the best row by the first metric that ranks, the checks made before any image is generated, and where
the Inception weights are looked for."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gen.commands import app
from gen.metrics import WEIGHTS_NAME, build_metrics, use_feature_extractor, weights_path
from gen.metrics.features import PYTORCH_FID_NAME

runner = CliRunner()
ALL = "fid,kid,pr,sfid,fd_dinov2"


@pytest.fixture
def reference(cli, tiny_inception, tiny_dinov2, images_npz, run, tmp_path):
    """A reference for every metric, of 30 random 4 x 4 images (the run draws 3 x 4 x 4 images)."""
    cli("eval", "ref-stats", images_npz(tmp_path / "real.npz", 30, 5, size=4), tmp_path / "ref.npz",
        "--metric", ALL)  # fmt: skip
    return tmp_path / "ref.npz"


def test_a_sweep_scores_every_metric_and_ranks_by_the_first(cli, run, reference, tmp_path):
    out = tmp_path / "all.json"
    cli("eval", run, "--num", 12, "--cfg", "1,3", "--ref", reference, "--metric", ALL, "--kid-subset-size", 6,
        "--kid-subsets", 4, "--out", out, "--force")  # fmt: skip
    table = json.loads(out.read_text())
    rows = table["rows"]
    for row in rows:
        for key in ("fid", "is_mean", "kid_mean", "kid_std", "precision", "recall", "sfid", "fd_dinov2"):
            assert isinstance(row[key], float), key
        assert row["num_images"] == 12
    assert table["best"] == min(rows, key=lambda r: r["fid"]) and table["metric"] == ALL
    assert table["kid_subset_size"] == 6 and table["fd_dinov2_features"] == "custom:DINOv2ViT"
    text = (tmp_path / "all.txt").read_text()
    assert all(title in text for title in ("FID", "KID", "precision", "recall", "sFID", "FD-DINOv2"))
    # Each metric alone gives the numbers of the sweep (the same images, the same reference).
    for name, keys in (
        ("kid", ("kid_mean",)),
        ("pr", ("precision", "recall")),
        ("fd_dinov2", ("fd_dinov2",)),
    ):
        cli("eval", run, "--num", 12, "--cfg", 3, "--ref", reference, "--metric", name, "--kid-subset-size", 6,
            "--kid-subsets", 4, "--out", tmp_path / f"{name}.json", "--force")  # fmt: skip
        alone = json.loads((tmp_path / f"{name}.json").read_text())["rows"][0]
        assert all(alone[k] == pytest.approx(rows[1][k], rel=1e-9) for k in keys), name


def test_screening_uses_the_primary_metric(cli, run, reference, tmp_path):
    out = tmp_path / "screen.json"
    cli("eval", run, "--num", 12, "--steps", "1,2,4", "--screen", 8, "--confirm", 1, "--ref", reference,
        "--metric", "kid,fid", "--kid-subset-size", 6, "--seed", 3, "--out", out)  # fmt: skip
    table = json.loads(out.read_text())
    rows = table["rows"]
    screened = [r["screen_kid_mean"] for r in rows]
    assert all("screen_fid" not in r for r in rows)
    winner = screened.index(min(screened))
    assert ["kid_mean" in r and "fid" in r for r in rows] == [i == winner for i in range(3)]
    assert table["best"] == rows[winner]


def test_one_network_pass_per_batch(images_npz, tmp_path):
    calls = []

    class Counting(torch.nn.Module):
        def forward(self, images):
            calls.append(len(images))
            x = images.float().mean((2, 3))
            return x, x, x[:, :2]

    a = images_npz(tmp_path / "a.npz", 12, 0)
    with use_feature_extractor(Counting()):
        metric = build_metrics(["fid", "kid", "pr", "sfid"], ref=str(a), kid_subset_size=4, batch_size=12)
        calls.clear()
        accumulator = metric.accumulator()
        with np.load(a) as data:
            accumulator.add(data["arr_0"][:5])
            accumulator.add(data["arr_0"][5:])
    assert calls == [5, 7]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "fid,oracle"], "--metric fid,oracle: use fid (FID and IS) or data (the dataset's own metric), "
         "or a comma list of fid, kid, pr, sfid, fd_dinov2"),
        (["--metric", "kid,kid"], "--metric kid,kid: each metric once"),
        (["--metric", "fid,pr"], "--metric fid,pr: pr compares with a reference; give --ref"),
        (["--metric", "kid"], "--num 4: KID needs --kid-subset-size (1000) images; give at least 1000"),
        (["--metric", "kid", "--kid-subset-size", "3", "--screen", "2", "--cfg", "1,2"],
         "--screen 2: KID needs --kid-subset-size (3) images; give at least 3"),
        (["--metric", "pr", "--screen", "4", "--cfg", "1,2", "--ref", "REF"],
         "--screen needs a metric that ranks rows, and --metric pr does not: list fid first"),
    ],
)  # fmt: skip
def test_errors_are_one_line_before_any_sampling(run, reference, args, message):
    args = [str(reference) if a == "REF" else a for a in args]
    result = runner.invoke(app, ["eval", str(run), "--num", "4", *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


def test_inception_weights_are_found_where_torch_fidelity_and_pytorch_fid_keep_them(tmp_path):
    with pytest.raises(
        Exception, match="not in .*env_torch_home/hub/checkpoints, .*env_home/.cache/torch/hub/checkpoints"
    ):
        weights_path()
    for folder in (tmp_path / "env_torch_home" / "hub" / "checkpoints",
                   tmp_path / "env_home" / ".cache" / "torch" / "hub" / "checkpoints"):  # fmt: skip
        folder.mkdir(parents=True)
        for name in (PYTORCH_FID_NAME, WEIGHTS_NAME):
            (folder / name).write_bytes(b"")
            assert weights_path() == folder / name
            (folder / name).unlink()
