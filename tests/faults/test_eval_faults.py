"""``gen eval`` sweeps gone wrong: a kill in the middle resumes to the same table, a kill while the table is
written leaves the previous one whole (never half a file under its name, nor a temporary one), and a
second ``gen eval`` writing the same ``--out`` refuses at once, naming the first."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest

from gen.evaluation import sweep

SWEEP = ("--metric", "data", "--num", 4, "--cfg", "1,2,3")


@pytest.fixture
def copy(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run, ignore=shutil.ignore_patterns("eval"))
    return run


def rows(path):
    """The rows of a results table without their timings."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads(path.read_text())["rows"]]


def test_a_kill_in_the_middle_of_a_sweep_resumes_to_the_same_table(g, trained, copy, tmp_path, monkeypatch):
    straight = tmp_path / "straight.json"
    other = tmp_path / "other"
    shutil.copytree(copy, other)
    g.succeeds("eval", other, *SWEEP, "--out", straight)
    real, calls = sweep.score_model, []

    def killed_at_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep, "score_model", killed_at_the_second)
    out = tmp_path / "out" / "sweep.json"
    assert g.invoke("eval", copy, *SWEEP, "--out", out).exit_code != 0
    assert not out.parent.exists() or sorted(p.name for p in out.parent.iterdir()) == []
    assert len((copy / "eval" / "results.jsonl").read_text().splitlines()) == 1
    monkeypatch.setattr(sweep, "score_model", real)
    result = g.succeeds("eval", copy, *SWEEP, "--out", out)
    assert result.stderr.count("done before, skipped") == 1
    assert rows(out) == rows(straight)


@pytest.mark.parametrize("at", [1, 2])
def test_a_kill_while_the_table_is_written_keeps_the_previous_one(g, copy, tmp_path, monkeypatch, at):
    out = tmp_path / "out" / "sweep.json"
    g.succeeds("eval", copy, *SWEEP, "--out", out)
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    assert sorted(before) == ["sweep.json", "sweep.txt"]
    real, writes = Path.write_text, []

    def killed(self, data, *args, **kwargs):
        if Path(self).parent == out.parent:
            writes.append(self)
            if len(writes) == at:  # half of it reaches the disk, then the process dies
                real(self, data[: len(data) // 2], *args, **kwargs)
                raise KeyboardInterrupt
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", killed)
    assert g.invoke("eval", copy, *SWEEP, "--out", out, "--force").exit_code != 0
    assert writes, "the table was not written through Path.write_text"
    # Each file is whole: the previous one where the kill came while it was written, the new one where
    # it was in place before (the .json: its rows are the same, only the timings differ).
    assert sorted(p.name for p in out.parent.iterdir()) == ["sweep.json", "sweep.txt"]
    assert rows(out) == [
        {k: v for k, v in r.items() if k != "seconds"} for r in json.loads(before["sweep.json"])["rows"]
    ]
    assert (out.parent / "sweep.txt").read_bytes() == before["sweep.txt"]


def hold(lock_file: Path, pid: int = 4242) -> int:
    """Hold ``lock_file`` as another ``gen eval`` would (an flock, its pid inside); returns the fd."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, json.dumps({"pid": pid, "host": "elsewhere", "since": "2025-01-01T00:00:00+00:00"}).encode())
    return fd


@pytest.mark.parametrize("given", [True, False])
def test_a_second_eval_writing_the_same_out_refuses(g, copy, tmp_path, given):
    out = tmp_path / "sweep.json" if given else copy / "eval" / "step_00000006.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_file = out.parent / f".{out.name}.lock"
    fd = hold(lock_file)
    try:
        message = g.fails("eval", copy, *SWEEP, *(["--out", out] if given else []))
    finally:
        os.close(fd)
    assert message == (
        f"{out} is being written by another gen eval (pid 4242 on host elsewhere, since "
        f"2025-01-01T00:00:00+00:00); wait for it to end, or give this one another --out"
    )
    assert not out.exists() and not (copy / "eval" / "results.jsonl").exists()  # refused before any work
    g.succeeds("eval", copy, *SWEEP, *(["--out", out] if given else []))  # the first has ended
    assert rows(out) and not lock_file.exists()
