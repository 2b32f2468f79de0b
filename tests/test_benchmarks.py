"""The benchmark scripts keep working: each runs at toy sizes on the CPU and prints its table."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gen

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: int = 300, stderr: bool = False) -> str:
    """The script's standard output (and its standard error after it, with ``stderr``)."""
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=None
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout + (done.stderr if stderr else "")


def test_gpu_check_runs_on_the_cpu_at_small_sizes():
    # compile (about 40 s of inductor per model on 2 cores) and torchrun (covered by the engine's tests)
    # are left out here; the full table runs them.
    out = run("benchmarks/gpu_check.py", "--small", "--threads", "1", "--skip", "compile", "torchrun")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    names = [r.split("|")[1].strip() for r in rows]
    assert names == [
        "agree bf16/fp32",
        "no host sync",
        "train JiT-B/16 mb 4",
        "train JiT-B/16 mb 4 AC",
        "train JiT-L/16",
        "train DiT-XL/2 latents",
        "sample JiT-B/16",
        "agree pMF bf16/fp32",
        "train pMF-B/16 (JVP)",
        "sample pMF-B/16 2 steps",
    ]
    assert "FAIL" not in out
    assert "images/s" in rows[2] and "MFU" in rows[2] and "peak MiB" in rows[2]


def test_train_step_prints_throughput_flops_and_mfu():
    out = run(
        "benchmarks/train_step.py", "recipes/demo.toml", "train.global_batch=8", "data.image_size=16",
        "backbone.patch_size=4", "backbone.bottleneck_dim=32", "--steps", "2", "--warmup", "1",
        "--threads", "1", "--peak-tflops", "0.1",
    )  # fmt: skip
    assert "images/s" in out and "GFLOP per training image" in out
    mfu_line = next(line for line in out.splitlines() if line.startswith("MFU"))
    assert mfu_line.rstrip().endswith("%")


def test_sampling_sweeps_fits_a_density_grid_and_tables_both_errors(tmp_path):
    out = run(
        "benchmarks/sampling.py", "--mixture", "--num", "16", "--search", "6", "--search-evals", "12",
        "--search-start", "2,0.5", "--solvers", "deis_pc:order=3,heun", "--grids", "fitted,linear", "--steps", "6", "--reference-steps", "200",
        "--json", str(tmp_path / "rows.json"), stderr=True,
    )  # fmt: skip
    assert "search from shifted:2.0" in out and "search from shifted:0.5" in out  # two starts, the best kept
    fitted = next(line for line in out.splitlines() if line.startswith("fitted: grid = "))
    # The printed line is a recipe line: it loads as the density grid it describes.
    spec = tomllib.loads(fitted.removeprefix("fitted: "))["grid"]
    grid = gen.build("time_grid", spec["name"], edges=spec["edges"], density=spec["density"])
    assert len(grid(6)) == 7 and min(spec["density"]) == 1.0
    assert "| median / Heun-50 |" in out and "| deis_pc:order=3 | fitted | 6 | 6 |" in out
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    baseline = next(r for r in rows if r.get("baseline"))
    assert baseline["nfe"] == 99 and baseline["median_vs_heun50"] == 1.0
    assert all(r["median_vs_heun50"] > 0 and r["error"] > 0 for r in rows)
    assert all(isinstance(r["metric"], int) and 0 <= r["metric"] <= 16 for r in rows)  # mode flips


def test_sampling_on_a_trained_run_splits_at_the_guidance_interval(tmp_path):
    """RUN mode with --split-interval: the guided demo model, integrated piecewise at t = 0.1."""
    run_dir = tmp_path / "run"
    # Trained in this process (the script is what is tested here): one interpreter start fewer.
    gen.train(gen.load_recipe(REPO / "recipes" / "demo.toml", [
        "train.steps=2", "train.global_batch=4", "data.image_size=16", "backbone.patch_size=4",
        "backbone.hidden_size=32", "backbone.depth=2", "backbone.num_heads=2", "backbone.bottleneck_dim=16",
        "train.grid_samples=0", "train.eval_samples=0", "train.ckpt_every=2", "train.sample_every=2"]), run_dir)  # fmt: skip

    def rows_of(*split: str) -> list[dict]:
        run("benchmarks/sampling.py", str(run_dir), "--num", "4", "--reference-steps", "60", *split, "--solvers",
            "deis_pc,heun", "--grids", "linear", "--steps", "7", "--json", str(tmp_path / "rows.json"))  # fmt: skip
        return json.loads((tmp_path / "rows.json").read_text())["rows"]

    rows, published = rows_of("--split-interval"), rows_of()
    deis, heun = (
        next(r for r in rows if r["solver"] == s and not r.get("baseline")) for s in ("deis_pc", "heun")
    )
    # 0.1 is no point of the 7-step grid: the nearest (1/7) moves onto it, so the steps stay 7. Heun's
    # one step into t = 0.1 is a full Heun step (2) and its six to t = 1 end with Euler (11): 2N - 1.
    assert deis["split"] and deis["nfe"] == 7 and heun["nfe"] == 13
    assert not published[0]["split"] and published[0]["error"] != rows[0]["error"]


def test_sampling_names_solvers_with_options():
    spec = importlib.util.spec_from_file_location("sampling_benchmark", REPO / "benchmarks" / "sampling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert repr(module.solver_of("deis_pc:order=3;corrector=false")) == "DeisPC(order=3, corrector=False)"
    assert module.solver_of("heun") is gen.build("sampler", "heun")


def fake_photo_packages(root: Path) -> None:
    """The two packages' data files, as random images of the photographs' sizes and formats."""
    spec = importlib.util.spec_from_file_location("photo_folder", REPO / "benchmarks" / "photo_folder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    for i, (package, relative, _) in enumerate(module.PHOTOS):
        path = root / package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").touch()
        shape = (60 + 10 * i, 90, 3) if i % 2 else (120, 70 + 5 * i)  # RGB and grayscale, either side short
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)


def test_photo_folder_writes_an_imagefolder_of_crops(tmp_path):
    fake_photo_packages(tmp_path / "site")
    out = tmp_path / "photos"
    args = ["benchmarks/photo_folder.py", str(out), "--per-class", "3", "--size", "16", "--scale", "40"]
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote 30 images of 16x16 in 10 classes" in done.stdout
    classes = sorted(p.name for p in out.iterdir())
    assert classes == sorted(["astronaut", "cat", "coffee", "hubble", "rocket", "retina", "motorcycle",
                              "microscopy", "temple", "flower"])  # fmt: skip
    with Image.open(out / "cat" / "00002.png") as image:
        assert image.size == (16, 16) and image.mode == "RGB"
    # The same arguments write the same files.
    first = (out / "temple" / "00001.png").read_bytes()
    rerun = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )  # fmt: skip
    assert rerun.returncode == 0 and (out / "temple" / "00001.png").read_bytes() == first
    # What recipes/photos.toml trains on: the imagefolder dataset reads it as ten classes.
    dataset = gen.build("dataset", "imagefolder", root=str(out), image_size=16, num_workers=0)
    assert dataset.spec.num_classes == 10 and dataset.spec.shape == (3, 16, 16)
    # An OUT that cannot be written is one line, not a traceback.
    blocked = subprocess.run(
        [sys.executable, "benchmarks/photo_folder.py", str(out / "cat" / "00002.png")], cwd=REPO,
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )  # fmt: skip
    assert blocked.returncode == 1 and "Traceback" not in blocked.stderr
    assert (
        blocked.stderr.strip().startswith("photo_folder: cannot write under")
        and "choose another OUT" in blocked.stderr
    )


def test_photo_folder_names_the_package_to_install(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("photo_folder", REPO / "benchmarks" / "photo_folder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit, match=r"pip install scikit-image"):
        module.main([str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_sampling_search_can_target_the_rms_by_random_steps(tmp_path):
    out = run(
        "benchmarks/sampling.py", "--mixture", "--num", "32", "--search", "5", "--search-evals", "6",
        "--search-loss", "rms", "--search-method", "random", "--solvers", "deis_pc", "--grids", "fitted", "--steps", "5",
        "--reference-steps", "100", stderr=True,
    )  # fmt: skip
    report = next(line for line in out.splitlines() if line.startswith("search from shifted:2.0"))
    assert "log RMS ratio to Heun-50" in report and "6 fits" in report
    start, fitted = (float(v) for v in re.findall(r"([+-]\d\.\d+) -> ([+-]\d\.\d+) on the fit", report)[0])
    assert fitted <= start  # the evolution strategy keeps only improvements
    assert "| deis_pc | fitted | 5 | 5 |" in out


def test_sampling_sweeps_a_given_grid_as_gen_sample_takes_it(tmp_path):
    def rows_of(*extra: str) -> list[dict]:
        run("benchmarks/sampling.py", "--mixture", "--num", "16", "--reference-steps", "100", "--solvers",
            "deis_pc", "--steps", "4", "--json", str(tmp_path / "rows.json"), *extra)  # fmt: skip
        return json.loads((tmp_path / "rows.json").read_text())["rows"]

    rows = rows_of("--given-grid", '{ name = "shifted", shift = 0.5 }', "--grids", "given,shifted:0.5")
    given, shifted = rows[0], rows[1]
    assert (given["grid"], shifted["grid"]) == ("given", "shifted:0.5")
    assert given["error"] == shifted["error"]  # the same grid, so the same samples
    other_field = rows_of("--grids", "linear", "--field-seed", "1")
    assert other_field[-1]["error"] != rows[-1]["error"]  # Heun-50 on other means
    bad = subprocess.run(
        [sys.executable, "benchmarks/sampling.py", "--mixture", "--given-grid", "{ name = 'shifted', shift = 0 }"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "shift" in bad.stderr.splitlines()[-1]
    assert "reference: heun" not in bad.stderr  # refused before any work
