"""The checkpoint format (gen.runs.checkpoint) and the run directory's names (gen.runs.run_dir)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

import gen
from gen.errors import GenError
from gen.protocols import DataSpec
from gen.runs import checkpoint as ckpt
from gen.runs.checkpoint import CheckpointMeta
from gen.runs.run_dir import Checkpoint, RunDir, resolve_checkpoint

SPEC = DataSpec(shape=(3, 8, 8), num_classes=10)


def make_weights(scale: float = 1.0) -> dict[float | None, dict[str, torch.Tensor]]:
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3) * scale
    return {
        None: {
            "w": w.t(),  # not contiguous
            "b": torch.nn.Parameter(torch.full((2,), scale)),  # requires grad
            "h": torch.tensor([1.5, -2.0], dtype=torch.bfloat16) * scale,
        },
        0.9999: {"w": w.t() + 1, "b": torch.full((2,), scale + 1), "h": torch.zeros(2, dtype=torch.bfloat16)},
        0.5: {"w": w.t() + 2, "b": torch.full((2,), scale + 2), "h": torch.ones(2, dtype=torch.bfloat16)},
    }


def make_state(step: int) -> dict:
    return {
        "step": step,
        "optimizer": {
            "state": {0: {"exp_avg": torch.full((2, 3), 0.25), "step": torch.tensor(float(step))}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.95), "params": [0]}],
        },
        "rng": [torch.ByteTensor(list(range(16)))],
        "data": {"batch": step * 2, "epoch": 0},
        "name": "tiny",
    }


def make_meta(step: int, **kw) -> CheckpointMeta:
    fields = dict(
        step=step, world_size=2, ema_decays=(0.9999, 0.5), backbone="jit", gen_version="9.9", data_spec=SPEC
    )
    fields.update(kw)
    return CheckpointMeta(**fields)


def save(run_dir, step: int, scale: float = 1.0, **meta_kw):
    return ckpt.save_checkpoint(
        run_dir, make_meta(step, **meta_kw), weights=make_weights(scale), state=make_state(step)
    )


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b and type(a) is type(b)


# -- names ---------------------------------------------------------------------------------------------


def test_weights_names():
    assert ckpt.weights_name(None) == "model.safetensors"
    assert ckpt.weights_stem(None) == "model"
    assert ckpt.weights_name(0.9999) == "ema_0.9999.safetensors"
    assert ckpt.weights_stem(0.9999) == "ema_0.9999"
    assert ckpt.weights_stem(0.99990) == "ema_0.9999"
    assert ckpt.weights_stem(0.5) == "ema_0.5"
    assert ckpt.weights_stem(1) == "ema_1.0"  # an int decay names the same file as the float
    assert ckpt.weights_stem(0) == "ema_0.0"


def test_checkpoint_dir(tmp_path):
    assert ckpt.checkpoint_dir(tmp_path, 5) == tmp_path / "checkpoints" / "step_00000005"
    assert ckpt.checkpoint_dir(str(tmp_path), 123456789) == tmp_path / "checkpoints" / "step_123456789"


# -- write and read back -------------------------------------------------------------------------------


def test_save_writes_the_files_and_reads_back(tmp_path):
    meta = make_meta(5)
    path = ckpt.save_checkpoint(tmp_path, meta, weights=make_weights(), state=make_state(5))
    assert path == tmp_path / "checkpoints" / "step_00000005"
    assert sorted(p.name for p in path.iterdir()) == [
        "ema_0.5.safetensors",
        "ema_0.9999.safetensors",
        "meta.json",
        "model.safetensors",
        "state.pt",
    ]
    # Nothing else is left in checkpoints/ (the temporary directory was renamed).
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_00000005"]
    assert ckpt.is_checkpoint(path)

    expected = make_weights()
    for ema in (None, 0.9999, 0.5):
        got = ckpt.load_weights(path, ema)
        assert_same({k: v.detach() for k, v in expected[ema].items()}, got)
        assert all(not t.requires_grad for t in got.values())
    assert_same(make_state(5), ckpt.load_state(path))
    assert ckpt.read_meta(path) == meta
    assert json.loads((path / "meta.json").read_text()) == {
        "step": 5,
        "world_size": 2,
        "ema_decays": [0.9999, 0.5],
        "backbone": "jit",
        "gen_version": "9.9",
        "data_spec": {"shape": [3, 8, 8], "num_classes": 10},
    }


def test_save_takes_any_tensor_layout(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    weights = {None: {"slice": base[:, 1:3], "exp": torch.ones(1, 3).expand(2, 3)}}
    path = ckpt.save_checkpoint(tmp_path, CheckpointMeta(step=1), weights=weights, state={})
    got = ckpt.load_weights(path)
    assert torch.equal(got["slice"], base[:, 1:3])
    assert torch.equal(got["exp"], torch.ones(2, 3))
    assert ckpt.load_state(path) == {}


def test_same_step_twice_replaces_it(tmp_path):
    save(tmp_path, 5, scale=1.0)
    path = ckpt.save_checkpoint(
        tmp_path, make_meta(5, ema_decays=()), weights={None: make_weights(3.0)[None]}, state=make_state(50)
    )
    # The second write wins entirely: its files only, none left from the first.
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "model.safetensors", "state.pt"]
    assert torch.equal(ckpt.load_weights(path)["b"], torch.full((2,), 3.0))
    assert ckpt.load_state(path)["step"] == 50
    assert ckpt.read_meta(path).ema_decays == ()
    assert ckpt.list_checkpoints(tmp_path) == [path]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000005"]


class Killed(BaseException):
    """What a kill looks like from inside the writer: it stops, nothing cleans up."""


def kill_on_call(monkeypatch, n: int):
    """Make the n-th call of save_file (1-based) die after writing nothing."""
    real = ckpt.save_file
    calls = []

    def save_file(tensors, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == n:
            raise Killed
        return real(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", save_file)
    return calls


def test_kill_during_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    old = save(tmp_path, 5, scale=1.0)
    calls = kill_on_call(monkeypatch, 2)
    with pytest.raises(Killed):
        save(tmp_path, 10, scale=2.0)
    assert len(calls) == 2
    monkeypatch.undo()

    assert not ckpt.checkpoint_dir(tmp_path, 10).exists()
    assert ckpt.list_checkpoints(tmp_path) == [old]
    assert ckpt.latest_checkpoint(tmp_path) == old
    assert resolve_checkpoint(tmp_path) == old
    tmp = tmp_path / "checkpoints" / ".step_00000010.tmp"
    assert tmp.is_dir() and not ckpt.is_checkpoint(tmp)  # the stray partial write
    # The previous checkpoint is untouched.
    assert torch.equal(ckpt.load_weights(old)["b"], torch.full((2,), 1.0))
    assert ckpt.read_meta(old).step == 5

    # The next write of that step clears the stray directory and completes.
    new = save(tmp_path, 10, scale=2.0)
    assert not tmp.exists()
    assert ckpt.list_checkpoints(tmp_path) == [old, new]
    assert torch.equal(ckpt.load_weights(new)["b"], torch.full((2,), 2.0))


def test_kill_while_rewriting_the_same_step_keeps_it(tmp_path, monkeypatch):
    old = save(tmp_path, 5, scale=1.0)
    kill_on_call(monkeypatch, 3)
    with pytest.raises(Killed):
        save(tmp_path, 5, scale=7.0)
    monkeypatch.undo()
    assert ckpt.list_checkpoints(tmp_path) == [old]
    assert torch.equal(ckpt.load_weights(old)["b"], torch.full((2,), 1.0))
    assert torch.equal(ckpt.load_weights(old, 0.5)["b"], torch.full((2,), 3.0))


def test_kill_between_remove_and_rename_keeps_the_step(tmp_path, monkeypatch):
    old = save(tmp_path, 5, scale=1.0)
    with monkeypatch.context() as m:

        def rename(src, dst):
            raise Killed

        m.setattr(ckpt.os, "rename", rename)
        with pytest.raises(Killed):
            save(tmp_path, 5, scale=7.0)
    assert ckpt.list_checkpoints(tmp_path) == [old], (
        "step 5 is gone: neither the old nor the new one is readable"
    )


def test_kill_before_rename_leaves_an_ignored_tmp(tmp_path, monkeypatch):
    old = save(tmp_path, 5)
    with monkeypatch.context() as m:

        def rename(src, dst):
            raise Killed

        m.setattr(ckpt.os, "rename", rename)
        with pytest.raises(Killed):
            save(tmp_path, 6)
    tmp = tmp_path / "checkpoints" / ".step_00000006.tmp"
    assert (tmp / "meta.json").is_file()  # complete but never renamed: still ignored
    assert ckpt.list_checkpoints(tmp_path) == [old]


# -- meta ---------------------------------------------------------------------------------------------


def test_meta_json_round_trip():
    for meta in (
        make_meta(7),
        make_meta(7, data_spec=None),
        make_meta(7, data_spec=DataSpec(shape=(2,), num_classes=0)),
        CheckpointMeta(step=0),
    ):
        data = meta.to_json()
        assert CheckpointMeta.from_json(json.loads(json.dumps(data))) == meta
    assert make_meta(7, data_spec=None).to_json()["data_spec"] is None
    assert make_meta(7).to_json()["ema_decays"] == [0.9999, 0.5]


def test_meta_defaults_and_conversions():
    meta = CheckpointMeta(step=3, ema_decays=[1, 0.5])
    assert meta.ema_decays == (1.0, 0.5) and all(type(d) is float for d in meta.ema_decays)
    assert (meta.world_size, meta.backbone, meta.gen_version, meta.data_spec) == (1, "", None, None)


def test_old_meta_without_data_spec_or_world_size_reads(tmp_path):
    path = tmp_path / "checkpoints" / "step_00000004"
    path.mkdir(parents=True)
    (path / "meta.json").write_text(json.dumps({"step": 4, "ema_decays": [0.9], "backbone": "jit"}))
    meta = ckpt.read_meta(path)
    assert meta == CheckpointMeta(step=4, world_size=1, ema_decays=(0.9,), backbone="jit", data_spec=None)
    (path / "meta.json").write_text(json.dumps({"step": 4}))
    assert ckpt.read_meta(path) == CheckpointMeta(step=4)


def test_find_ema():
    meta = CheckpointMeta(step=1, ema_decays=(0.9999, 0.999))
    assert meta.find_ema("0.9999") == 0.9999
    assert meta.find_ema("0.99990") == 0.9999
    assert meta.find_ema(" 0.999 ") == 0.999
    assert meta.find_ema("9.999e-1") == 0.9999
    for raw in ("none", "raw", "None", " RAW "):
        assert meta.find_ema(raw) is None
    for bad in ("0.5", "abc", "nan", ""):
        with pytest.raises(GenError) as info:
            meta.find_ema(bad)
        assert str(info.value) == (
            f"--ema {bad}: this checkpoint has no such EMA; choose one of: 0.9999, 0.999, none"
        )
    with pytest.raises(GenError, match="choose one of: none$"):
        CheckpointMeta(step=1).find_ema("0.9999")


# -- listing, latest, pruning -----------------------------------------------------------------------------


def fake_checkpoint(run_dir, step: int, *, meta: bool = True):
    path = ckpt.checkpoint_dir(run_dir, step)
    path.mkdir(parents=True)
    if meta:
        (path / "meta.json").write_text(json.dumps({"step": step}))
    return path


def test_list_checkpoints(tmp_path):
    assert ckpt.list_checkpoints(tmp_path) == []
    assert ckpt.list_checkpoints(tmp_path / "missing") == []
    assert ckpt.latest_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    assert ckpt.list_checkpoints(tmp_path) == []

    a = fake_checkpoint(tmp_path, 100_000_000)  # step_100000000 sorts before step_99999999 as text
    b = fake_checkpoint(tmp_path, 99_999_999)
    c = fake_checkpoint(tmp_path, 20)
    fake_checkpoint(tmp_path, 30, meta=False)  # incomplete: no meta.json
    root = tmp_path / "checkpoints"
    leftover = root / ".step_00000005.tmp"  # a write killed before its rename
    leftover.mkdir()
    (leftover / "meta.json").write_text(json.dumps({"step": 5}))
    (root / "step_00000007").write_text("a file, not a directory")
    other = root / "best"
    other.mkdir()
    (other / "meta.json").write_text(json.dumps({"step": 1}))

    assert ckpt.list_checkpoints(tmp_path) == [c, b, a]
    assert ckpt.list_checkpoints(str(tmp_path)) == [c, b, a]
    assert ckpt.latest_checkpoint(tmp_path) == a
    assert not ckpt.is_checkpoint(ckpt.checkpoint_dir(tmp_path, 30))
    assert ckpt.is_checkpoint(c)


@pytest.mark.parametrize(
    ("keep_last", "milestone_every", "kept"),
    [
        (2, 10, [10, 20, 25, 30]),
        (2, None, [25, 30]),
        (2, 0, [25, 30]),
        (0, 10, [10, 20, 30]),
        (0, None, []),
        (1, 15, [15, 30]),
        (10, None, [5, 10, 15, 20, 25, 30]),
        (6, 7, [5, 10, 15, 20, 25, 30]),
    ],
)
def test_prune_checkpoints(tmp_path, keep_last, milestone_every, kept):
    for step in (5, 10, 15, 20, 25, 30):
        fake_checkpoint(tmp_path, step)
    leftover = tmp_path / "checkpoints" / ".step_00000035.tmp"
    leftover.mkdir()
    ckpt.prune_checkpoints(tmp_path, keep_last, milestone_every)
    assert ckpt.list_checkpoints(tmp_path) == [ckpt.checkpoint_dir(tmp_path, s) for s in kept]
    assert leftover.is_dir()  # pruning only touches complete checkpoints


def test_prune_an_empty_run(tmp_path):
    ckpt.prune_checkpoints(tmp_path, 1, None)
    assert not (tmp_path / "checkpoints").exists()


# -- damaged checkpoints -------------------------------------------------------------------------------


def test_missing_files_name_the_path(tmp_path):
    path = save(tmp_path, 5)
    (path / "ema_0.5.safetensors").unlink()
    with pytest.raises(GenError) as info:
        ckpt.load_weights(path, 0.5)
    assert str(info.value) == (
        f"{path / 'ema_0.5.safetensors'} is missing; the checkpoint is incomplete, use an earlier one"
    )
    with pytest.raises(GenError, match="ema_0.25.safetensors"):
        ckpt.load_weights(path, 0.25)
    (path / "state.pt").unlink()
    with pytest.raises(GenError) as info:
        ckpt.load_state(path)
    assert (
        str(info.value) == f"{path / 'state.pt'} is missing; the checkpoint is incomplete, use an earlier one"
    )
    assert isinstance(info.value, gen.GenError)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{not json", "JSONDecodeError"),
        ("", "JSONDecodeError"),
        ('{"world_size": 1}', "KeyError"),
        ('{"step": "five"}', "ValueError"),
        ('{"step": 1, "ema_decays": 0.9}', "TypeError"),
        ('{"step": 1, "data_spec": {"shape": [3, 8, 8]}}', "KeyError"),
    ],
)
def test_corrupt_meta_names_the_file(tmp_path, text, error):
    path = save(tmp_path, 5)
    (path / "meta.json").write_text(text)
    with pytest.raises(GenError) as info:
        ckpt.read_meta(path)
    message = str(info.value)
    assert message.startswith(f"{path / 'meta.json'} cannot be read ({error}: ")
    assert message.endswith("); the checkpoint is damaged, use an earlier one")


@pytest.mark.parametrize("text", ["[1, 2]", "null", "5", '"step"'])
def test_meta_that_is_not_an_object_names_the_file(tmp_path, text):
    path = save(tmp_path, 5)
    (path / "meta.json").write_text(text)
    with pytest.raises(
        GenError, match=r"^.*meta\.json cannot be read \(.*\); the checkpoint is damaged, use an earlier one$"
    ):
        ckpt.read_meta(path)


def test_missing_meta_names_the_file(tmp_path):
    with pytest.raises(GenError, match=r"^.*meta\.json cannot be read \(FileNotFoundError: "):
        ckpt.read_meta(tmp_path)


class Evil:
    """A pickle payload whose loading would create a directory."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_load_state_refuses_arbitrary_objects(tmp_path):
    path = save(tmp_path, 5)
    marker = tmp_path / "pwned"
    torch.save({"step": 5, "payload": Evil(marker)}, path / "state.pt")
    assert not marker.exists()
    with pytest.raises(GenError) as info:
        ckpt.load_state(path)
    assert str(info.value) == (
        f"{path / 'state.pt'} is not a plain tensor file (it holds pickled Python objects: "
        f"{os.mkdir.__module__}.mkdir); it was not loaded; the checkpoint is damaged, use an earlier one"
    )
    assert not marker.exists(), "load_state ran the pickled object's code"

    # The payload is real: an unrestricted load runs it.
    control = tmp_path / "control"
    torch.save({"payload": Evil(control)}, tmp_path / "control.pt")
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert control.is_dir()


# -- the run directory ---------------------------------------------------------------------------------


def test_run_dir_names(tmp_path):
    run = RunDir(str(tmp_path))
    assert run.path == tmp_path
    assert run.recipe_file == tmp_path / "recipe.toml"
    assert run.provenance_file == tmp_path / "provenance.jsonl"
    assert run.metrics_file == tmp_path / "metrics.jsonl"
    assert run.eval_log == tmp_path / "eval.jsonl"
    assert run.eval_latest == tmp_path / "eval.json"
    assert run.samples_dir == tmp_path / "samples"
    assert run.results_dir == tmp_path / "eval"
    assert run.tensorboard_dir == tmp_path / "tensorboard"
    assert run.latest_checkpoint() is None
    fake_checkpoint(tmp_path, 3)
    latest = fake_checkpoint(tmp_path, 12)
    assert run.latest_checkpoint() == latest


def test_run_dir_append_json(tmp_path):
    run = RunDir(tmp_path / "run")
    file = run.path / "sub" / "log.jsonl"
    run.append_json(file, {"a": 1})
    run.append_json(file, {"b": [1, 2]})
    assert file.read_text() == '{"a": 1}\n{"b": [1, 2]}\n'


def test_resolve_checkpoint(tmp_path):
    run = tmp_path / "run"
    first = save(run, 5)
    last = save(run, 10)
    assert resolve_checkpoint(first) == first
    assert resolve_checkpoint(str(first)) == first
    assert resolve_checkpoint(run) == last
    assert resolve_checkpoint(str(run)) == last


@pytest.mark.parametrize("what", ["empty_dir", "missing", "file", "incomplete_checkpoint", "checkpoints_dir"])
def test_resolve_checkpoint_refuses(tmp_path, what):
    if what == "empty_dir":
        path = tmp_path / "run"
        path.mkdir()
    elif what == "missing":
        path = tmp_path / "nope"
    elif what == "file":
        path = tmp_path / "recipe.toml"
        path.write_text("")
    elif what == "incomplete_checkpoint":
        path = fake_checkpoint(tmp_path, 5, meta=False)
    else:
        fake_checkpoint(tmp_path, 5)
        path = tmp_path / "checkpoints"
    with pytest.raises(GenError) as info:
        resolve_checkpoint(path)
    if what == "incomplete_checkpoint":  # a step of a run: what the run holds instead (here nothing)
        assert str(info.value) == (
            f"{path} is not a complete checkpoint (it has no meta.json), and {tmp_path} holds no checkpoint; "
            "train it with `gen train`"
        )
        return
    assert str(info.value) == (
        f"{path} is neither a run directory with checkpoints nor a checkpoint (RUN/checkpoints/step_*); "
        "train one with `gen train RECIPE --run-dir RUN`"
    )


def test_checkpoint_record(tmp_path):
    path = save(tmp_path, 5)
    meta = ckpt.read_meta(path)
    c = Checkpoint(path=path, run=RunDir(tmp_path), recipe=None, meta=meta, spec=SPEC)
    assert (c.step, c.run_dir, c.ema_decays, c.default_ema()) == (5, tmp_path, (0.9999, 0.5), 0.9999)
    assert c.find_ema("0.50") == 0.5
    assert c.find_ema("raw") is None
    with pytest.raises(GenError) as info:
        c.find_ema("0.9")
    assert (
        str(info.value)
        == f"{path}: --ema 0.9: this checkpoint has no such EMA; choose one of: 0.9999, 0.5, none"
    )
    assert torch.equal(c.load_weights(0.5)["b"], torch.full((2,), 3.0))
    raw = Checkpoint(path=path, run=RunDir(tmp_path), recipe=None, meta=CheckpointMeta(step=5), spec=SPEC)
    assert raw.default_ema() is None


def test_copied_checkpoint_is_still_found(tmp_path):
    # A run directory copied elsewhere keeps working: there is no pointer file to get out of sync.
    src = tmp_path / "a"
    save(src, 5)
    save(src, 8)
    shutil.copytree(src, tmp_path / "b")
    assert ckpt.latest_checkpoint(tmp_path / "b") == ckpt.checkpoint_dir(tmp_path / "b", 8)
