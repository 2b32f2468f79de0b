"""A checkpoint path the run does not hold (a mistyped step, one pruned by ``train.keep_last``) is one
line listing the steps the run does hold, wherever a checkpoint is named: ``gen sample``, ``gen eval``,
``train.init_from`` and ``guide_run`` (issue #33)."""

from __future__ import annotations

from typer.testing import CliRunner

from gen.commands import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def test_a_step_the_run_does_not_hold_lists_the_steps_it_does(run, train_env_module, tmp_path):
    missing = run / "checkpoints" / "step_00000150"
    listing = f"{missing} does not exist; {run} has checkpoints of steps 3, 6: give one of them"
    latest = f"the latest is {run / 'checkpoints' / 'step_00000006'}"
    texts = []
    guided = ("sample", run, "--guidance", "auto", "--guide-run", missing)
    for args in (
        ("sample", missing, "--num", 2, "--out", tmp_path / "s.npz"),
        ("eval", missing, "--metric", "data", "--num", 2),
        ("recipe", "check", train_env_module, f"train.init_from='{missing}'"),
        (*guided, "--num", 2, "--out", tmp_path / "g.npz"),
    ):
        code, text = invoke(*args)
        assert code == 2 and listing in text and latest in text, (args, text)
        assert "train one" not in text and "Traceback" not in text and text.count("error:") == 1
        texts.append(text)
    assert not (tmp_path / "s.npz").exists() and not (tmp_path / "g.npz").exists()
    assert texts[0].startswith(f"error: {listing}") and texts[1].startswith(f"error: {listing}")
    assert texts[2].startswith(f"error: {train_env_module}: train.init_from = '{missing}': {listing}")
    assert texts[3].startswith(f"error: guide_run: {listing}"), texts[3]


def test_an_unfinished_step_and_a_run_without_checkpoints_say_so(run, tmp_path):
    unfinished = run / "checkpoints" / "step_00000009"
    unfinished.mkdir()  # a step folder without meta.json: never a checkpoint
    try:
        code, text = invoke("sample", unfinished, "--num", 2, "--out", tmp_path / "s.npz")
        assert code == 2 and f"{unfinished} is not a complete checkpoint (it has no meta.json)" in text
    finally:
        unfinished.rmdir()
    empty = tmp_path / "empty" / "checkpoints"
    empty.mkdir(parents=True)
    code, text = invoke("eval", empty / "step_00000003", "--metric", "data", "--num", 2)
    assert code == 2 and f"and {tmp_path / 'empty'} holds no checkpoint" in text, text
