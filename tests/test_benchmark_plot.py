"""``benchmarks/sampling.py --plot``: error against NFE, drawn with `gen`'s plotting code, from rows of the
shape the sweep makes (no sampling here: the sweep itself is tested in tests/test_benchmarks.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("sampling_benchmark", REPO / "benchmarks" / "sampling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plot_draws_each_series_and_the_heun_50_line(tmp_path, monkeypatch):
    benchmark = load_benchmark()
    rows = [{"solver": "heun", "grid": "linear", "steps": 50, "nfe": 99, "error": 1e-3, "baseline": True}]
    for solver, scale in (("heun", 1.0), ("deis_pc", 0.2)):
        for steps in (4, 8, 16):
            nfe = 2 * steps - 1 if solver == "heun" else steps
            rows.append(
                {"solver": solver, "grid": "linear", "steps": steps, "nfe": nfe, "error": scale / nfe**2}
            )
    drawn = {}
    plot_panels = benchmark.gen.plot_panels

    def spy(panels, **options):
        drawn["panels"] = panels
        return plot_panels(panels, **options)

    monkeypatch.setattr(benchmark.gen, "plot_panels", spy)
    path = tmp_path / "plots" / "sampling.png"
    benchmark.plot(rows, path, "a title", [("heun", "linear"), ("deis_pc", "linear")])

    (panel,) = drawn["panels"]
    assert panel.log_x and panel.log_y and panel.x_ticks == (4, 5, 8, 10, 16, 20, 32, 50, 99)
    labels = [line.label for line in panel.lines]
    assert labels == ["heun / linear", "deis_pc / linear", "Heun-50 (99 NFE)"]
    assert panel.lines[0].x == (7, 15, 31, 99) and panel.lines[2].dashed and panel.lines[2].y == (1e-3, 1e-3)
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert image.format == "PNG" and len(np.unique(pixels.reshape(-1, 3) @ [65536, 256, 1])) > 20
