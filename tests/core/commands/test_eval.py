"""`gen eval`: FID and IS (with a small injected feature extractor), reference statistics, sweeps, resume,
the FID Inception network (shapes, torch-fidelity weight names) and the missing-weights error."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.images import to_uint8
from gen.metrics import (
    WEIGHTS_ENV,
    WEIGHTS_NAME,
    WEIGHTS_URL,
    inception_score,
    load_inception,
    load_reference_stats,
    make_fid_metric,
    use_feature_extractor,
)
from gen.metrics.inception import FIDInceptionV3, resize_bilinear_tf1
from gen.recipe import load_recipe

# The same source runs in this process and in the torchrun workers.
FEATURES_SOURCE = '''
import torch


class TinyFeatures(torch.nn.Module):
    """A fixed random conv net: uint8 (B, 3, H, W) -> (features (B, 6), logits (B, 10))."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.head = torch.nn.Linear(6, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, images):
        x = (images.float() - 128) / 128
        h = torch.tanh(self.conv(x)).mean((2, 3))
        return h, 3 * self.head(h)
'''
_ns: dict = {}
exec(FEATURES_SOURCE, _ns)
TinyFeatures = _ns["TinyFeatures"]

runner = CliRunner()


@pytest.fixture
def tiny_features():
    with use_feature_extractor(TinyFeatures()) as module:
        yield module


def images_npz(path, n, seed, size=8, shift=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 200, size=(n, size, size, 3)) + shift
    np.savez(path, arr_0=x.clip(0, 255).astype(np.uint8))
    return path


def features_of(path):
    with np.load(path) as data:
        x = torch.from_numpy(data["arr_0"]).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        return TinyFeatures()(x)


def frechet_numpy(mu1, s1, mu2, s2):
    """Independent check: tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2), all symmetric (eigh)."""
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(w.clip(0))) @ v.T
    inner = np.linalg.eigvalsh(root @ s2 @ root).clip(0)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(inner).sum())


def read_json(path):
    return json.loads(path.read_text())


# -- the FID Inception network ----------------------------------------------------------------------


def test_inception_shapes_and_torch_fidelity_weight_names(tmp_path):
    net = FIDInceptionV3()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # He-scaled random weights: activations keep their size (no slow denormals)
        for name, p in net.named_parameters():
            scale = math.sqrt(2 / p[0].numel()) if name.endswith("conv.weight") else 0.1
            p.copy_(torch.randn(p.shape, generator=g) * scale + name.endswith("bn.weight"))
    # The weights file torch-fidelity converted from TensorFlow: 94 conv + batch-norm layers and the
    # 1008-way fc, without batch norm's num_batches_tracked.
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert len(state) == 94 * 5 + 2
    for key, shape in {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_1a_3x3.bn.running_var": (32,),
        "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7c.branch3x3dbl_3b.bn.running_mean": (384,),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }.items():
        assert tuple(state[key].shape) == shape, key
    torch.save(state, tmp_path / WEIGHTS_NAME)
    save_file(state, str(tmp_path / "w.safetensors"))
    for file in (tmp_path / WEIGHTS_NAME, tmp_path / "w.safetensors"):
        loaded = load_inception(file)
        got = loaded.state_dict()
        assert all(torch.equal(got[k], v) for k, v in state.items())
    loaded.train()
    assert not loaded.training  # batch norm statistics never move
    images = torch.randint(0, 256, (1, 3, 24, 24), dtype=torch.uint8)
    features, logits = loaded(images)
    assert features.shape == (1, 2048) and logits.shape == (1, 1008)
    assert features.dtype == torch.float32 and torch.isfinite(features).all() and (features >= 0).all()
    # The logits are the fc without its bias (torch-fidelity's "logits_unbiased").
    torch.testing.assert_close(logits, features @ state["fc.weight"].T)


def test_resize_is_tensorflow1_bilinear():
    x = torch.tensor([[[[0.0, 10.0]]]])  # (1, 1, 1, 2)
    # TF1 (align_corners=False) samples output i at i * in / out: 0, 0.5, 1, 1.5 (clamped to the edge).
    assert resize_bilinear_tf1(x, (1, 4)).flatten().tolist() == [0.0, 5.0, 10.0, 10.0]
    y = torch.arange(12.0).view(1, 1, 3, 4)
    assert torch.equal(resize_bilinear_tf1(y, (3, 4)), y)
    down = resize_bilinear_tf1(torch.arange(16.0).view(1, 1, 4, 4), (2, 2))  # samples rows/cols 0 and 2
    assert down.flatten().tolist() == [0.0, 2.0, 8.0, 10.0]


def no_cached_weights(monkeypatch, tmp_path):
    """Weights downloaded by torch-fidelity or pytorch-fid on this machine are not seen."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_missing_or_wrong_weights_say_what_to_do(tmp_path, monkeypatch):
    no_cached_weights(monkeypatch, tmp_path)
    images_npz(tmp_path / "a.npz", 4, 0)
    result = runner.invoke(app, ["eval", "ref-stats", str(tmp_path / "a.npz"), str(tmp_path / "s.npz")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    line = errors[0]
    assert (
        WEIGHTS_NAME in line and WEIGHTS_URL in line and WEIGHTS_ENV in line and "--inception-weights" in line
    )
    result = runner.invoke(
        app, ["eval", str(tmp_path / "a.npz"), "--inception-weights", str(tmp_path / "nope.pth")]
    )
    assert result.exit_code == 2 and "nope.pth does not exist" in result.output
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "other.pth"))
    result = runner.invoke(app, ["eval", str(tmp_path / "a.npz")])
    assert result.exit_code == 2 and "is not the FID Inception-v3" in result.output
    assert "--metric data" not in result.output  # saved samples have no dataset to offer


def test_missing_weights_for_a_checkpoint_point_to_the_dataset_metric(run, monkeypatch, tmp_path):
    no_cached_weights(monkeypatch, tmp_path)
    result = runner.invoke(app, ["eval", str(run), "--num", "4"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().endswith(
        "--inception-weights PATH or set GEN_INCEPTION_WEIGHTS=PATH; without a download, --metric fd_random "
        "--ref REAL_IMAGES scores in a fixed random network's features (not comparable with published FID); "
        "or score with the dataset's own metric: --metric data"
    )


# -- the metrics --------------------------------------------------------------------------------------


def test_inception_score_follows_torch_fidelity():
    # 20 images of 20 distinct, certain classes in 10 splits of 2: exp(KL) = 2 in every split.
    certain = torch.eye(20) * 100
    assert inception_score(certain) == pytest.approx((2.0, 0.0))
    assert inception_score(torch.zeros(30, 5)) == pytest.approx((1.0, 0.0))
    logits = torch.randn(37, 6, generator=torch.Generator().manual_seed(0)) * 2
    perm = np.random.RandomState(2020).permutation(37)
    p = torch.softmax(logits.double()[perm], 1).numpy()
    scores = []
    for i in range(10):
        part = p[i * 37 // 10 : (i + 1) * 37 // 10]
        scores.append(np.exp((part * (np.log(part) - np.log(part.mean(0, keepdims=True)))).sum(1).mean()))
    assert inception_score(logits) == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-12)


def test_fid_of_a_set_against_itself_is_zero(cli, tiny_features, tmp_path):
    a = images_npz(tmp_path / "a.npz", 40, 0)
    cli("eval", "ref-stats", a, tmp_path / "stats.npz", "--batch-size", 7)
    stats = load_reference_stats(tmp_path / "stats.npz")
    features, _ = features_of(a)
    # Batches of 7 against one of 40: features (|f| < 0.8) that may differ by a few float32 ulps (8: 5e-7),
    # which move mu by as much and sigma by <= 2 x 5e-7 x mean |f - mu| (~0.1) = 1e-7.
    np.testing.assert_allclose(stats.mu, features.double().mean(0).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        stats.sigma, np.cov(features.double().numpy(), rowvar=False), rtol=1e-5, atol=1e-7
    )
    assert stats.num_samples == 40
    cli("eval", a, "--ref", tmp_path / "stats.npz", "--batch-size", 16)
    result = read_json(tmp_path / "a.eval.json")
    assert abs(result["rows"][0]["fid"]) < 1e-6
    assert result["rows"][0]["num_images"] == 40 and result["features"] == "custom:TinyFeatures"


def test_fid_from_stored_statistics_equals_fid_from_features(cli, tiny_features, tmp_path):
    a = images_npz(tmp_path / "a.npz", 40, 0)
    b = images_npz(tmp_path / "b.npz", 30, 1, shift=40)
    cli("eval", "ref-stats", a, tmp_path / "stats.npz")
    cli("eval", b, "--ref", tmp_path / "stats.npz", "--out", tmp_path / "from_stats.json")
    cli("eval", b, "--ref", a, "--out", tmp_path / "from_images.json")  # statistics computed on the fly
    fid_stats = read_json(tmp_path / "from_stats.json")["rows"][0]["fid"]
    fid_images = read_json(tmp_path / "from_images.json")["rows"][0]["fid"]
    # torchmetrics fed with both sets' features
    fa, fb = features_of(a)[0].double(), features_of(b)[0].double()
    metric = make_fid_metric(fa.shape[1])
    metric.update(fa, real=True)
    metric.update(fb, real=False)
    direct = float(metric.compute())
    independent = frechet_numpy(
        fa.mean(0).numpy(),
        np.cov(fa.numpy(), rowvar=False),
        fb.mean(0).numpy(),
        np.cov(fb.numpy(), rowvar=False),
    )
    assert fid_stats > 0.1
    assert fid_stats == pytest.approx(direct, rel=1e-9)
    assert fid_images == pytest.approx(direct, rel=1e-9)
    assert fid_stats == pytest.approx(independent, rel=1e-6)


def test_samples_from_a_folder_score_like_the_npz(cli, tiny_features, tmp_path):
    from PIL import Image

    b = images_npz(tmp_path / "b.npz", 12, 1)
    folder = tmp_path / "folder"
    folder.mkdir()
    with np.load(b) as data:
        for i, image in enumerate(data["arr_0"]):
            Image.fromarray(image).save(folder / f"{i:03d}.png")
        np.savez_compressed(tmp_path / "c.npz", arr_0=data["arr_0"])
    cli("eval", b, "--ref", b, "--batch-size", 5)
    cli("eval", folder, "--ref", b)
    cli("eval", tmp_path / "c.npz", "--ref", b)  # a compressed npz streams as well
    row_npz = read_json(tmp_path / "b.eval.json")["rows"][0]
    for name in ("folder", "c"):
        row = read_json(tmp_path / f"{name}.eval.json")["rows"][0]
        assert row["is_mean"] == pytest.approx(row_npz["is_mean"], rel=1e-6)
        assert abs(row["fid"]) < 1e-6 and row["num_images"] == 12


# -- checkpoints and sweeps -----------------------------------------------------------------------------


@pytest.fixture
def stats(cli, tiny_features, run, tmp_path):
    """Reference statistics of the blobs data set's own distribution (random npz stand-in)."""
    cli("eval", "ref-stats", images_npz(tmp_path / "real.npz", 30, 5, size=4), tmp_path / "stats.npz")
    return tmp_path / "stats.npz"


def test_eval_of_a_checkpoint_equals_eval_of_its_samples(cli, run, stats, tmp_path):
    out = tmp_path / "ckpt.json"
    cli("eval", run, "--num", 20, "--ref", stats, "--batch-size", 8, "--out", out, "--force")
    # Drawn in the same batches of 8, the images are the same bit for bit (same kernels, same shapes).
    cli("sample", run, "--num", 20, "--batch-size", 8, "--out", tmp_path / "s.npz")
    cli("eval", tmp_path / "s.npz", "--ref", stats)
    direct = read_json(out)["rows"][0]
    saved = read_json(tmp_path / "s.eval.json")["rows"][0]
    assert direct["num_images"] == 20 and direct["ema"] == "0.9" and direct["cfg"] == 2.0
    # They are scored in batches of 8 and of 20, where the float32 network may round its features and
    # logits differently (an AMX Xeon: IS 1.0420565227 and 1.0420565217). To first order a relative error
    # r in every feature (logit) moves FID by <= 1.5 r (IS by <= 0.5 r) on these images; summing the conv's
    # 27 products and the 16-pixel mean in another order errs by <= ~100 ulps (r = 1.2e-5), so rel=2e-5,
    # while one other image moves FID and IS by >= 7e-4.
    assert direct["fid"] == pytest.approx(saved["fid"], rel=2e-5)
    assert direct["is_mean"] == pytest.approx(saved["is_mean"], rel=2e-5)


def test_sweep_table_marks_the_best_and_resumes(cli, run, stats, tmp_path):
    log = run / "eval" / "results.jsonl"
    before = log.read_text().splitlines() if log.exists() else []
    args = ["eval", run, "--num", 12, "--cfg", "1,3", "--ema", "0.9,none", "--ref", stats, "--seed", 7]
    result = cli(*args)
    table = read_json(run / "eval" / "step_00000006.json")
    rows = table["rows"]
    assert [(r["ema"], r["cfg"]) for r in rows] == [("0.9", 1.0), ("0.9", 3.0), ("none", 1.0), ("none", 3.0)]
    assert table["best"] == min(rows, key=lambda r: r["fid"])
    assert len({r["fid"] for r in rows}) == 4 and all(r["num_images"] == 12 for r in rows)
    assert result.stdout.count("*") == 1 and "FID" in result.stdout
    assert (run / "eval" / "step_00000006.txt").read_text().count("*") == 1
    lines = log.read_text().splitlines()
    assert len(lines) == len(before) + 4
    # Interrupted after two combinations (and a half-written line): the rerun scores only the last two.
    log.write_text("\n".join(lines[: len(before) + 2]) + '\n{"key": {"st')
    result = cli(*args)
    assert result.output.count("done before, skipped") == 2
    again = read_json(run / "eval" / "step_00000006.json")["rows"]
    assert [{**r, "seconds": 0} for r in again] == [{**r, "seconds": 0} for r in rows]
    assert len([line for line in log.read_text().splitlines() if line.endswith("}")]) == len(before) + 4


def test_screening_confirms_the_best_at_full_size(cli, run, stats, tmp_path):
    out = tmp_path / "screen.json"
    cli("eval", run, "--num", 16, "--steps", "1,2,4", "--screen", 10, "--confirm", 2, "--ref", stats,
        "--seed", 11, "--out", out)  # fmt: skip
    table = read_json(out)
    rows = table["rows"]
    assert [r["steps"] for r in rows] == [1, 2, 4]
    assert all(r["screen_fid"] is not None for r in rows)
    confirmed = [r for r in rows if "fid" in r]
    assert len(confirmed) == 2 and all(r["num_images"] == 16 for r in confirmed)
    worst = max(rows, key=lambda r: r["screen_fid"])
    assert "fid" not in worst
    assert table["best"] == min(confirmed, key=lambda r: r["fid"])


def test_reference_statistics_of_a_recipe_dataset(cli, tiny_features, train_env_module, tmp_path):
    recipe = tmp_path / "shapes.toml"
    recipe.write_text(
        '[backbone]\nname = "tinymlp"\n[data]\nname = "shapes"\nimage_size = 16\nnum_samples = 23\n'
        "[train]\nsteps = 1\n"
    )
    cli("eval", "ref-stats", recipe, tmp_path / "stats.npz", "--batch-size", 10)
    stats = load_reference_stats(tmp_path / "stats.npz")
    dataset = load_recipe(recipe).data.build()
    x = torch.cat([batch for batch, _ in dataset.iter_images(23)])
    features = (
        TinyFeatures()(torch.from_numpy(to_uint8(x)).permute(0, 3, 1, 2).contiguous())[0].detach().double()
    )
    assert stats.num_samples == 23
    # Batches of 10 against one of 23: a few float32 ulps, as in test_fid_of_a_set_against_itself_is_zero.
    np.testing.assert_allclose(stats.mu, features.mean(0).numpy(), rtol=1e-6, atol=1e-6)
    result = runner.invoke(app, ["eval", "ref-stats", str(train_env_module), str(tmp_path / "b.npz")])
    assert result.exit_code == 2 and "[data] blobs cannot list its images" in result.output


def test_grid_sweeps_and_names_its_rows_like_gen_sample(cli, run, tmp_path):
    """--grid repeats to sweep; a row keeps the published keys on the linear grid and names any other."""
    out = tmp_path / "grids.json"
    cli("eval", run, "--metric", "data", "--num", 6, "--sampler", "deis_pc", "--grid", "linear",
        "--grid", '{ name = "shifted", shift = 2.0 }', "--out", out)  # fmt: skip
    rows = read_json(out)["rows"]
    assert "grid" not in rows[0] and rows[1]["grid"] == "shifted(shift=2.0)"
    assert rows[0]["mean"] != rows[1]["mean"]  # a dataset score, not overwritten by the setting
    cli("sample", run, "--num", 6, "--sampler", "deis_pc", "--grid", '{ name = "shifted", shift = 2.0 }',
        "--out", tmp_path / "s.npz")  # fmt: skip
    saved = torch.from_numpy(np.load(tmp_path / "s.npz")["arr_0"]).double()
    assert rows[1]["mean"] == pytest.approx(float((saved / 127.5 - 1).mean()), abs=1e-6)
    assert "grid" in (tmp_path / "grids.txt").read_text()


def test_split_interval_names_its_rows_and_matches_gen_sample(cli, run, tmp_path):
    """--split-interval changes the samples where the interval's ends fall between grid points; its
    rows say so, and gen sample --split-interval draws the same images."""
    out = tmp_path / "split.json"
    common = ("--num", 6, "--sampler", "deis_pc", "--steps", 5, "--interval", "0.23,0.61")
    cli("eval", run, "--metric", "data", *common, "--out", out)
    cli("eval", run, "--metric", "data", *common, "--split-interval", "--out", tmp_path / "s.json")
    plain, split = read_json(out)["rows"][0], read_json(tmp_path / "s.json")["rows"][0]
    assert "split_interval" not in plain and split["split_interval"] is True
    assert plain["mean"] != split["mean"]
    result = cli("sample", run, *common, "--split-interval", "--out", tmp_path / "s.npz")
    assert "(split)" in result.output
    saved = torch.from_numpy(np.load(tmp_path / "s.npz")["arr_0"]).double()
    assert split["mean"] == pytest.approx(float((saved / 127.5 - 1).mean()), abs=1e-6)


def test_sweep_options_need_a_checkpoint(tiny_features, tmp_path):
    images_npz(tmp_path / "a.npz", 4, 0)
    result = runner.invoke(app, ["eval", str(tmp_path / "a.npz"), "--cfg", "1,2"])
    assert result.exit_code == 2 and "--cfg apply to a checkpoint" in result.output


def test_dataset_metric_scores_what_gen_sample_saves(cli, run, tmp_path):
    out = tmp_path / "data.json"
    cli("eval", run, "--metric", "data", "--num", 12, "--cfg", "1,2", "--batch-size", 5, "--out", out)
    table = read_json(out)
    assert table["metric"] == "data" and table["features"] == "data:blobs"
    assert table["best"] is None  # blobs declares no primary_metric: no row is called best
    assert [r["cfg"] for r in table["rows"]] == [1.0, 2.0]
    assert [r["num_images"] for r in table["rows"]] == [12, 12]
    # The metric sees the uint8 samples that gen sample saves, decoded back to [-1, 1].
    cli("sample", run, "--num", 12, "--cfg", 2, "--out", tmp_path / "s.npz")
    saved = torch.from_numpy(np.load(tmp_path / "s.npz")["arr_0"]).double()
    assert table["rows"][1]["mean"] == pytest.approx(float((saved / 127.5 - 1).mean()), abs=1e-6)
    assert table["rows"][0]["mean"] != table["rows"][1]["mean"]
    assert "mean" in (tmp_path / "data.txt").read_text()


def test_dataset_metric_screens_and_picks_by_the_primary_metric(cli, run, tmp_path, monkeypatch):
    blobs = type(gen.build("dataset", "blobs"))
    monkeypatch.setattr(blobs, "primary_metric", ("mean", "min"), raising=False)
    out = tmp_path / "screen.json"
    cli("eval", run, "--metric", "data", "--num", 12, "--cfg", "0,1,3", "--screen", 6, "--out", out)
    rows = read_json(out)["rows"]
    screen = [r["screen_mean"] for r in rows]
    winner = screen.index(min(screen))
    assert len(set(screen)) == 3
    assert ["mean" in r for r in rows] == [i == winner for i in range(3)]  # only the best is confirmed
    assert read_json(out)["best"] == rows[winner]
    monkeypatch.setattr(blobs, "primary_metric", ("mean", "max"))
    cli("eval", run, "--metric", "data", "--num", 12, "--cfg", "0,1,3", "--screen", 6, "--out", out)
    rows = read_json(out)["rows"]
    assert ["mean" in r for r in rows] == [i == screen.index(max(screen)) for i in range(3)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cfg", "1,2", "--screen", "4"], "--screen needs to know which result is best: dataset 'blobs'"),
        (["--ref", "stats.npz"], "--ref is the FID reference; --metric data scores with the dataset's own"),
    ],
)
def test_dataset_metric_errors_are_one_line(run, args, message):
    result = runner.invoke(app, ["eval", str(run), "--metric", "data", "--num", "4", *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_metric_must_be_fid_or_data_and_data_needs_a_checkpoint(run, tmp_path):
    result = runner.invoke(app, ["eval", str(run), "--metric", "oracle", "--num", "4"])
    assert result.exit_code == 2 and "--metric oracle: use fid (FID and IS) or data" in result.output
    images_npz(tmp_path / "a.npz", 4, 0)
    result = runner.invoke(app, ["eval", str(tmp_path / "a.npz"), "--metric", "oracle"])
    assert result.exit_code == 2 and "--metric oracle: use fid (FID and IS) or data" in result.output
    result = runner.invoke(app, ["eval", str(tmp_path / "a.npz"), "--metric", "data"])
    assert result.exit_code == 2 and "--metric data apply to a checkpoint" in result.output


SCRIPT = (
    FEATURES_SOURCE
    + """
import sys

import torch.distributed

from gen.commands import app
from gen.metrics import use_feature_extractor

# Commands separated by "::" run one after the other in the same processes and process group.
torch.distributed.init_process_group("gloo")
commands, current = [], []
for arg in sys.argv[1:] + ["::"]:
    if arg == "::":
        commands.append(current)
        current = []
    else:
        current.append(arg)
with use_feature_extractor(TinyFeatures()):
    for args in commands:
        code = app(args, prog_name="gen", standalone_mode=False)
        if code:
            sys.exit(code)
torch.distributed.destroy_process_group()
"""
)


def test_two_processes_sample_and_score_like_one(cli, torchrun, run, stats, tmp_path, same_images):
    script = tmp_path / "gen_tiny_features.py"
    script.write_text(SCRIPT)
    # `-n`, not `--num`: torchrun's own parser takes `--num` for an abbreviation of its `--numa-binding`.
    sample = ["sample", run, "-n", 7, "--batch-size", 2, "--out", tmp_path / "two.npz"]
    score = ["eval", run, "-n", 13, "--ref", stats, "--out", tmp_path / "two.json", "--force"]
    data = ["eval", run, "-n", 13, "--metric", "data", "--out", tmp_path / "two_data.json", "--force"]
    torchrun([script, *sample, "::", *score, "::", *data])
    cli("sample", run, "--num", 7, "--out", tmp_path / "one.npz")
    with np.load(tmp_path / "two.npz") as two, np.load(tmp_path / "one.npz") as one:
        same_images(two["arr_0"], one["arr_0"])  # batches of 2 and of 7
        assert np.array_equal(two["arr_1"], one["arr_1"])
    cli("eval", run, "--num", 13, "--ref", stats, "--out", tmp_path / "one.json", "--force")
    two, one = read_json(tmp_path / "two.json")["rows"][0], read_json(tmp_path / "one.json")["rows"][0]
    assert two["num_images"] == one["num_images"] == 13
    # Drawn and scored in batches of 7 and 6 against one of 13: the float32 samples differ by ~6e-7, which
    # moves no pixel here (the nearest lies 1.8e-5 from a rounding boundary), and the features by float32
    # rounding, bounded as in test_eval_of_a_checkpoint_equals_eval_of_its_samples (an AMX Xeon: IS
    # 1.0117929028 and 1.0117929080).
    assert two["fid"] == pytest.approx(one["fid"], rel=2e-5)
    assert two["is_mean"] == pytest.approx(one["is_mean"], rel=2e-5)
    # The dataset's metric sees every rank's images at once.
    cli("eval", run, "--num", 13, "--metric", "data", "--out", tmp_path / "one_data.json", "--force")
    two, one = (
        read_json(tmp_path / "two_data.json")["rows"][0],
        read_json(tmp_path / "one_data.json")["rows"][0],
    )
    assert two["num_images"] == one["num_images"] == 13
    # The same pixels, decoded and averaged in one float32 reduction of the same (13, 3, 4, 4) tensor
    # (under torch's 32768-element grain, so one thread either way): the same kernel, exact.
    assert two["mean"] == one["mean"]
