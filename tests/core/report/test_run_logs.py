"""Reading a run for its report: what is not a run is one line naming the fix; a damaged line or image
is skipped with a note; a run with no metrics yet still reads."""

from __future__ import annotations

import json

import pytest

from gen.errors import GenError
from gen.report.run_logs import check_run_dir, read_run, read_runs, run_names


def test_a_run_reads_whole(fake_run):
    logs = read_run(fake_run("a"), "a")
    assert [row["step"] for row in logs.metrics] == [1, 2, 3, 4]
    assert [row["step"] for row in logs.evals] == [2, 4]
    assert len(logs.results) == 9 and logs.results[0]["result"]["fid"] > 0
    assert [g.label for g in logs.grids] == ["step 2", "step 4", "final"]
    assert 'name = "tinymlp"' in logs.recipe and logs.provenance[0]["recipe_source"] == "tiny.toml"
    assert logs.notes == []


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "nope", "nope does not exist; give the folder gen train wrote (its --run-dir)"),
        (lambda tmp: tmp, "is not a run directory (it has no recipe.toml); give the folder gen train wrote"),
    ],
)
def test_what_is_not_a_run_is_one_line(tmp_path, make, expected):
    with pytest.raises(GenError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        check_run_dir(make(tmp_path))


def test_a_file_a_checkpoint_and_a_folder_of_runs_say_what_to_give(fake_run, tmp_path):
    run = fake_run("a")
    fake_run("b")
    with pytest.raises(
        GenError, match=r"metrics.jsonl is a file, not a run directory \(its run directory is .*/a\)"
    ):
        check_run_dir(run / "metrics.jsonl")
    step = run / "checkpoints" / "step_00000004"
    step.mkdir(parents=True)
    (step / "meta.json").write_text("{}")
    (step / "recipe.toml").write_text("")  # a checkpoint holds its run's recipe, not its logs
    with pytest.raises(GenError, match=r"is a checkpoint; gen report reads its run directory: .*/a$"):
        check_run_dir(step)
    exported = step.rename(tmp_path / "exported")
    with pytest.raises(GenError, match=r"exported is a checkpoint, not a run directory \(it holds no logs\)"):
        check_run_dir(exported)
    with pytest.raises(
        GenError, match=r"is not a run directory but holds runs \(a, b\); give them, e.g. gen report"
    ):
        check_run_dir(tmp_path)


def test_damaged_and_cut_short_lines_are_skipped_with_a_note(fake_run):
    run = fake_run("a")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:20] + "#garbage"
    lines.insert(2, json.dumps([1, 2]))  # JSON, but not a line of metrics
    lines.insert(3, json.dumps({"loss": 1.0}))  # no step
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n" + lines[-1][:30])  # the last one cut short
    logs = read_run(run, "a")
    assert [row["step"] for row in logs.metrics] == [1, 3, 4]
    path = run / "metrics.jsonl"
    assert logs.notes == [
        f"{path} line 2 is not JSON (Expecting value at column 21): skipped",
        f"{path} line 3 is not an object with a number 'step': skipped",
        f"{path} line 4 is not an object with a number 'step': skipped",
        f"{path} line 7 is cut short (written while the run was killed, or still being written): skipped",
    ]


def test_a_run_with_no_metrics_yet_reads_with_a_note(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "recipe.toml").write_text("[train]\nsteps = 6\n")
    logs = read_run(run, "fresh")
    assert logs.metrics == [] and logs.grids == [] and logs.recipe == "[train]\nsteps = 6\n"
    assert logs.notes == [
        f"{run} has no metrics yet ({run / 'metrics.jsonl'} does not exist: no step has been logged)"
    ]
    (run / "metrics.jsonl").write_text("")
    assert read_run(run, "fresh").notes == [
        f"{run} has no metrics yet ({run / 'metrics.jsonl'} holds no line)"
    ]


def test_a_damaged_grid_is_left_out_with_a_note(fake_run):
    run = fake_run("a")
    damaged = run / "samples" / "step_00000002.png"
    damaged.write_bytes(damaged.read_bytes()[:40])
    logs = read_run(run, "a")
    assert [g.label for g in logs.grids] == ["step 4", "final"]
    assert len(logs.notes) == 1 and logs.notes[0].startswith(f"{damaged} cannot be read as an image (")
    assert logs.notes[0].endswith("): left out")


def test_names_are_folder_names_unless_two_runs_share_one(tmp_path):
    assert run_names([tmp_path / "x" / "run", tmp_path / "y" / "other"]) == ["run", "other"]
    a, b = tmp_path / "x" / "run", tmp_path / "y" / "run"
    assert run_names([a, b]) == [str(a), str(b)]


def test_a_run_given_twice_is_read_once(fake_run):
    run = fake_run("a")
    assert [r.name for r in read_runs([run, run.parent / "." / "a"])] == ["a"]
