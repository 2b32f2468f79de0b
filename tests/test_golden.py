"""Golden values: the samples of every (process, solver, grid, guidance) combination the suite covers and
the losses of a few training steps, pinned so that a restructure of the processes cannot change them.

They were written by ``GEN_GOLDEN_WRITE=1 pytest tests/test_golden.py`` (float32 models on the CPU).
On the machine that wrote them ``GEN_GOLDEN_EXACT=1`` checks them bit for bit; elsewhere another BLAS
kernel may round the float32 network differently, so they are compared with a tolerance: a sample is
the end of up to 100 float32 network evaluations, each rounding at about 1e-7 relative, so an
accumulated 2e-4 relative to the samples' scale (about 1) is far above rounding and far below any change
of the algorithm (a changed step or guidance moves samples by 1e-2 or more).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import gen

GOLDEN = Path(__file__).with_name("golden") / "processes.npz"

JIT = """
[backbone]
name = "jit"
patch_size = 8
hidden_size = 32
depth = 2
num_heads = 2
bottleneck_dim = 16
in_context_len = 2
in_context_start = 1
"""

RECIPE = """

[data]
name = "shapes"
image_size = 16
num_classes = 3
num_samples = 64

[train]
steps = 4
global_batch = 4
lr = 1e-3
warmup_steps = 0
ema_decays = [0.9]
log_every = 1
ckpt_every = 2
keep_last = 2
grid_samples = 0
seed = 3
"""

FLOW = '[objective]\nprediction = "{prediction}"\nloss = "{loss}"\nmultiscale = {multiscale}\n'
DDPM = (
    '[objective]\nprediction = "eps"\nloss = "eps"\n[objective.process]\nname = "ddpm"\n'
    'num_timesteps = 100\nlearn_sigma = {learn_sigma}\n[sample]\nsampler = "ddpm"\nsteps = 10\n'
)
#: DiT's learned variance needs a backbone with out_channels (2 C).
DIT = '[backbone]\nname = "dit"\npatch_size = 4\nhidden_size = 32\ndepth = 2\nnum_heads = 2\n'


#: (run, its [objective] and [sample]) trained once each.
RUNS = {
    "flow_x_v": FLOW.format(prediction="x", loss="v", multiscale="[]"),
    "flow_eps_eps": FLOW.format(prediction="eps", loss="eps", multiscale="[]"),
    "flow_v_x_multiscale": FLOW.format(prediction="v", loss="x", multiscale="[2]"),
    "ddpm": DDPM.format(learn_sigma="false"),
    "ddpm_dit": DDPM.format(learn_sigma="true"),
}

SHIFTED = {"name": "shifted", "shift": 2.0}
EDM = {"name": "edm"}
CFG = {"cfg": 2.5, "cfg_interval": [0.1, 0.9]}

#: (name, run, [sample] overrides).
SAMPLES = [
    *[
        (f"flow_x_v/{solver}", "flow_x_v", {"sampler": solver, "steps": 6})
        for solver in ("euler", "heun", "ab2", "dpmpp_2m", "dpmpp_3m", "deis_pc", "euler_maruyama")
    ],
    *[
        (f"flow_x_v/{solver}/cfg", "flow_x_v", {"sampler": solver, "steps": 6, **CFG})
        for solver in ("euler", "heun", "dpmpp_3m", "deis_pc")
    ],
    *[
        (
            f"flow_x_v/{solver}/cfg/split",
            "flow_x_v",
            {"sampler": solver, "steps": 6, **CFG, "split_interval": True},
        )
        for solver in ("euler", "heun", "deis_pc", "euler_maruyama")
    ],
    ("flow_x_v/heun/shifted", "flow_x_v", {"sampler": "heun", "steps": 5, "grid": SHIFTED}),
    ("flow_x_v/dpmpp_2m/edm/cfg", "flow_x_v", {"sampler": "dpmpp_2m", "steps": 5, "grid": EDM, **CFG}),
    (
        "flow_x_v/heun/auto",
        "flow_x_v",
        {"sampler": "heun", "steps": 5, "cfg": 1.8, "guidance": "auto", "guide_step": 2, "guide_ema": "none"},
    ),
    (
        "flow_x_v/euler/auto/split",
        "flow_x_v",
        {"sampler": "euler", "steps": 5, "guidance": "auto", "guide_step": 2, **CFG, "split_interval": True},
    ),
    ("flow_eps_eps/heun/cfg", "flow_eps_eps", {"sampler": "heun", "steps": 6, **CFG}),
    ("flow_eps_eps/deis_pc", "flow_eps_eps", {"sampler": "deis_pc", "steps": 6}),
    ("flow_v_x_multiscale/heun/cfg", "flow_v_x_multiscale", {"sampler": "heun", "steps": 6, **CFG}),
    ("ddpm/ddpm", "ddpm", {}),
    ("ddpm/ddpm/cfg", "ddpm", {"cfg": 2.0, "cfg_interval": [0.2, 1.0]}),
    ("ddpm/ddim", "ddpm", {"sampler": "ddim", "steps": 5, "cfg": 1.5}),
    ("ddpm/ddim/eta", "ddpm", {"sampler": {"name": "ddim", "eta": 0.5}, "steps": 5}),
    ("ddpm_dit/ddpm/cfg", "ddpm_dit", {"cfg": 2.0}),
    ("ddpm_dit/ddim", "ddpm_dit", {"sampler": "ddim", "steps": 5, "cfg": 1.5}),
]


#: The stochastic samplers draw their noise from generators seeded by a hash of the start noise's bytes
#: (`gen.per_sample_generators`): a last-bit difference draws other noise altogether. torch's randn
#: rounds differently where it is not vectorised (its AVX-512 and generic builds), so these are checked
#: only where the start noise is bit-identical to the writer's (``noise/start``).
STOCHASTIC = {
    "sample/flow_x_v/euler_maruyama",
    "sample/ddpm/ddpm",
    "sample/ddpm/ddpm/cfg",
    "sample/ddpm/ddim/eta",
    "sample/ddpm_dit/ddpm/cfg",
}
#: Euler-Maruyama restarts at each piece of a split grid with noise seeded by a hash of the piece's start,
#: which the network's own rounding moves: only the machine that wrote the values can check it (exactly).
BIT_SENSITIVE = {"sample/flow_x_v/euler_maruyama/cfg/split"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("golden")
    out = {}
    for name, objective in RUNS.items():
        recipe_file = base / f"{name}.toml"
        backbone = DIT if name.endswith("_dit") else JIT
        recipe_file.write_text(backbone + RECIPE + objective)
        run = base / name
        gen.train(gen.load_recipe(recipe_file), run)
        out[name] = run
    return out


def computed(runs) -> dict[str, np.ndarray]:
    values = {"noise/start": gen.sample_noise(range(4), (3, 16, 16), seed=5).numpy()}
    for name, run in runs.items():
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        values[f"loss/{name}"] = np.array([line["loss"] for line in lines], dtype=np.float64)
    for name, run, overrides in SAMPLES:
        model = gen.load(str(runs[run]))
        x = model.sample([0, 1, 2, 1], seed=5, **overrides)  # (4, 3, 16, 16)
        values[f"sample/{name}"] = x.numpy()
    return values


def test_golden_samples_and_losses(runs):
    got = computed(runs)
    if os.environ.get("GEN_GOLDEN_WRITE"):
        GOLDEN.parent.mkdir(exist_ok=True)
        np.savez_compressed(GOLDEN, **got)
    with np.load(GOLDEN) as stored:
        want = dict(stored)
    assert sorted(got) == sorted(want)
    exact = bool(os.environ.get("GEN_GOLDEN_EXACT"))
    same_noise = np.array_equal(got["noise/start"], want["noise/start"])
    bad = []
    for key, value in got.items():
        if exact:
            if not np.array_equal(value, want[key]):
                bad.append(f"{key}: not bit-identical")
        elif key not in BIT_SENSITIVE and (same_noise or key not in STOCHASTIC):
            error = float(np.abs(value - want[key]).max()) / max(1.0, float(np.abs(want[key]).max()))
            if error > 2e-4:
                bad.append(f"{key}: {error:.3g}")
    assert not bad, "\n".join(bad)
