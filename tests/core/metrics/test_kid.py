"""KID: the polynomial-kernel unbiased MMD² over subsets, against a numpy reimplementation, a closed form
and torchmetrics' ``KernelInceptionDistance`` fed the same features; and through ``gen eval``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchmetrics.image.kid import KernelInceptionDistance
from typer.testing import CliRunner

from gen.commands import app
from gen.metrics import kernel_inception_distance
from gen.metrics.kid import KID_SEED, mmd2_unbiased, polynomial_kernel
from gen.metrics.reference import _Precomputed

runner = CliRunner()


def kid_numpy(real, fake, subsets, size, *, seed=KID_SEED, degree=3, gamma=None, coef=1.0):
    """The definition written out: the same subsets (drawn as torchmetrics draws them, from a seeded
    generator), kernels and sums in numpy float64."""
    g = torch.Generator().manual_seed(seed)
    gamma = 1.0 / real.shape[1] if gamma is None else gamma
    scores = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=g)[:size].numpy()]
        y = fake[torch.randperm(len(fake), generator=g)[:size].numpy()]

        def k(a, b):
            return (gamma * a @ b.T + coef) ** degree

        kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
        off = lambda m: m.sum() - np.trace(m)  # noqa: E731
        scores.append((off(kxx) + off(kyy)) / (size * (size - 1)) - 2 * kxy.mean())
    return float(np.mean(scores)), float(np.std(scores))


def test_kid_follows_the_definition():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(50, 7)), rng.normal(0.3, 1.2, size=(40, 7))
    got = kernel_inception_distance(torch.from_numpy(real), torch.from_numpy(fake), subsets=6, subset_size=25)
    assert got == pytest.approx(kid_numpy(real, fake, 6, 25), rel=1e-12)
    assert got[0] > 0.01 and got[1] > 0  # distinct subsets, distinct scores


def test_linear_kernel_mmd_has_a_closed_form():
    # k(x, y) = x.y: the unbiased MMD² is (|Σx|² - Σ|x|²) / (m (m - 1)) + (same for y) - 2 x̄.ȳ
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(9, 4)), rng.normal(1.0, 1.0, size=(9, 4))

    def within(a):
        return (np.sum(a.sum(0) ** 2) - np.sum(a**2)) / (len(a) * (len(a) - 1))

    expected = within(x) + within(y) - 2 * x.mean(0) @ y.mean(0)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    k = [polynomial_kernel(a, b, degree=1, gamma=1.0, coef=0.0) for a, b in ((tx, tx), (tx, ty), (ty, ty))]
    assert float(mmd2_unbiased(*k)) == pytest.approx(expected, rel=1e-12)
    # Every subset is the whole set: no spread, and the same value.
    whole = kernel_inception_distance(tx, ty, subsets=3, subset_size=9, degree=1, gamma=1.0, coef=0.0)
    assert whole == pytest.approx((expected, 0.0), rel=1e-12, abs=1e-15)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save all extracted features")
def test_kid_equals_torchmetrics_fed_the_same_features():
    rng = np.random.default_rng(2)
    real = torch.from_numpy(rng.normal(size=(60, 5)))
    fake = torch.from_numpy(rng.normal(0.5, 1.0, size=(45, 5)))
    reference = KernelInceptionDistance(feature=_Precomputed(5), subsets=8, subset_size=30)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(KID_SEED)  # torchmetrics draws its subsets from the global generator
        mean, std = (float(v) for v in reference.compute())
    assert kernel_inception_distance(real, fake, subsets=8, subset_size=30) == pytest.approx(
        (mean, std), rel=1e-10
    )


def test_kid_needs_enough_images():
    x = torch.zeros(10, 3)
    with pytest.raises(Exception, match="at least --kid-subset-size 20 generated images, got 10"):
        kernel_inception_distance(torch.zeros(30, 3), x, subset_size=20)


def test_gen_eval_kid_of_samples(cli, tiny_inception, images_npz, features_of, tmp_path):
    a = images_npz(tmp_path / "a.npz", 40, 0)
    b = images_npz(tmp_path / "b.npz", 30, 1, shift=40)
    cli("eval", "ref-stats", a, tmp_path / "ref.npz", "--metric", "kid", "--batch-size", 7)
    with np.load(tmp_path / "ref.npz") as data:
        stored = data["features"]
        assert stored.dtype == np.float16 and stored.shape == (40, 6)
        assert {"mu", "sigma", "mu_s", "sigma_s", "num_samples"} <= set(data.files)
    real = features_of(tiny_inception, a)[0].numpy()
    # Batches of 7 and one of 40: float32 features that may differ by an ulp, which moves a float16 by one
    # of its ulps (2**-10 relative, 2**-24 below 2**-14) where it lies that close to a rounding boundary.
    np.testing.assert_allclose(stored, real.astype(np.float16).astype(np.float64), rtol=2**-10, atol=2**-24)
    fake = features_of(tiny_inception, b)[0].float().double().numpy()
    expected = kid_numpy(stored.astype(np.float64), fake, 10, 20)
    for i, ref in enumerate((tmp_path / "ref.npz", a)):  # stored features, or computed from the images
        out = tmp_path / f"kid{i}.json"
        cli(
            "eval",
            b,
            "--ref",
            ref,
            "--metric",
            "kid",
            "--kid-subsets",
            10,
            "--kid-subset-size",
            20,
            "--batch-size",
            7,  # the real images' features in the stored ones' batches: the same float16 values
            "--out",
            out,
        )
        table = json.loads(out.read_text())
        row = table["rows"][0]
        # The samples' features in batches of 7 against features_of's one of 30: float32 rounding. Every
        # feature off by 8 (64) ulps moves KID (mean and std) by <= 9e-7 (8e-6) here.
        assert (row["kid_mean"], row["kid_std"]) == pytest.approx(expected, rel=2e-5)
        assert row["num_images"] == 30 and table["kid_subset_size"] == 20 and table["metric"] == "kid"
        assert "fid" not in row
    assert expected[0] > 0.05


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kid-subset-size", "42"], "--kid-subset-size 42 is more than the 40 reference images of"),
        (
            ["--kid-subset-size", "46"],
            "holds 45 images: KID needs --kid-subset-size (46) images; give at least 46",
        ),
        (["--kid-subsets", "0", "--kid-subset-size", "4"], "need --kid-subsets >= 1"),
    ],
)
def test_kid_errors_are_one_line(tiny_inception, images_npz, tmp_path, args, message):
    a = images_npz(tmp_path / "a.npz", 40, 0)
    b = images_npz(tmp_path / "b.npz", 45, 1)
    result = runner.invoke(app, ["eval", str(b), "--ref", str(a), "--metric", "kid", *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


def test_statistics_without_features_say_how_to_write_them(cli, tiny_inception, images_npz, tmp_path):
    a = images_npz(tmp_path / "a.npz", 40, 0)
    cli("eval", "ref-stats", a, tmp_path / "stats.npz")  # fid only: no features
    result = runner.invoke(app, ["eval", str(a), "--ref", str(tmp_path / "stats.npz"), "--metric", "fid,kid",
                                 "--kid-subset-size", "10"])  # fmt: skip
    assert result.exit_code == 2
    assert (
        "stats.npz has no features, which KID and precision/recall compare with: write them with `gen eval "
        "ref-stats SRC OUT.npz --metric kid,pr` from real images, or give the real images as --ref"
        in result.output
    )
