"""``precision = "auto"``: bf16 on CUDA; on a CPU only with bf16 matrix units and a wide enough model;
what the commands print about it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gen
from gen import precision
from gen.recipe import build_backbone

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("flags", "units"),
    [
        ("fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile", "AMX-BF16"),
        ("fpu sse2 avx2 avx512f avx512_bf16", "AVX-512 BF16"),
        ("fpu sse2 avx2 avx512f", None),
    ],
)
def test_the_cpus_bf16_units_are_read_from_its_flags(tmp_path, flags, units):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n"
    )
    assert precision.cpu_bf16_units(str(cpuinfo)) == units
    assert precision.cpu_bf16_units(str(tmp_path / "absent")) is None  # not Linux


def test_auto_is_bf16_on_a_cpu_only_with_units_and_width(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: "AMX-BF16")
    assert precision.resolve_precision("auto", CPU, 768) == "bf16"
    assert precision.resolve_precision("auto", CPU, 256) == "bf16"
    assert precision.resolve_precision("auto", CPU, 128) == "fp32"  # the demo: slower in bf16
    assert precision.resolve_precision("auto", CPU) == "fp32"  # the width unknown
    assert precision.describe_precision("auto", CPU, 768) == "bf16 (auto: AMX-BF16, width 768 >= 256)"
    assert precision.describe_precision("auto", CPU, 128) == (
        "fp32 (auto: AMX-BF16, but width 128 < 256: faster in fp32)"
    )
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: None)
    assert precision.resolve_precision("auto", CPU, 4096) == "fp32"
    assert precision.describe_precision("auto", CPU, 4096) == "fp32 (auto: no bf16 units in this CPU)"
    assert precision.resolve_precision("auto", CUDA) == "bf16" == precision.resolve_precision("bf16", CPU, 1)
    assert precision.resolve_precision("fp32", CUDA) == "fp32" == precision.describe_precision("fp32", CPU)


def test_the_width_is_the_smaller_side_of_the_largest_matrix():
    assert (
        precision.matrix_width(nn.Sequential(nn.Linear(768, 3072), nn.Linear(3072, 768), nn.LayerNorm(768)))
        == 768
    )
    assert precision.matrix_width(nn.LayerNorm(4)) == 0
    demo = gen.load_recipe("recipes/demo.toml")
    with torch.device("meta"):
        model = build_backbone(demo, gen.DataSpec(shape=(3, 32, 32), num_classes=10))
    assert precision.matrix_width(model) == 128  # the demo's hidden size: fp32 under auto everywhere


def test_training_and_sampling_use_what_auto_resolves_to(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: "AMX-BF16")
    wide = nn.Linear(512, 512)
    with precision.autocast("auto", CPU, precision.matrix_width(wide)):
        assert wide(torch.ones(2, 512)).dtype == torch.bfloat16
    with precision.autocast("auto", CPU, 128):
        assert wide(torch.ones(2, 512)).dtype == torch.float32
