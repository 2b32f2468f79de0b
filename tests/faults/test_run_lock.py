"""One trainer per run directory: a second one is refused at once, naming the first; the lock of a
killed trainer does not block ``--resume``; forked children do not hold it; under torchrun every rank
refuses."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from gen.errors import GenError
from gen.runs import checkpoint as ckpt
from gen.runs import lock as lock_module
from gen.runs.lock import LOCK_FILE, RunLock


def wait_for(condition, proc, what, timeout=60.0):
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the trainer ended before {what}: {proc.communicate()[1][-3000:]}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def holder(lock_file):
    try:
        return json.loads(lock_file.read_text())
    except (OSError, ValueError):
        return {}


def refusal(run, pid):
    return (
        f"{run} is in use: another gen train holds {run / LOCK_FILE} (pid {pid} on host {socket.gethostname()}, "
        f"since "
    )


def test_a_second_trainer_is_refused_while_the_first_lives_and_not_after_it_is_killed(g, train_env, tmp_path):
    run = tmp_path / "run"
    args = ("train", train_env, "train.steps=1000", "train.ckpt_every=1", "data.delay=0.05", *g.QUIET)
    first = g.process(*args, "--run-dir", run)
    try:
        wait_for(lambda: holder(run / LOCK_FILE).get("pid") == first.pid, first, "the lock")
        started = time.time()
        for extra in ([], ["--resume"]):
            message = g.fails("train", train_env, "--run-dir", run, *extra)
            assert message.startswith(refusal(run, first.pid))
            assert message.endswith("; wait for it to end or stop it, or choose another --run-dir")
        assert time.time() - started < 10  # at once, not after building the data and the model
        assert first.poll() is None  # the first one was not disturbed
        wait_for(lambda: ckpt.latest_checkpoint(run) is not None, first, "the first checkpoint")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    # The killed trainer's lock file is left behind, with its pid, but nobody holds it: --resume runs.
    assert holder(run / LOCK_FILE)["pid"] == first.pid
    step = ckpt.read_meta(ckpt.latest_checkpoint(run)).step
    result = g.succeeds(*args[:2], f"train.steps={step + 1}", *g.QUIET, "--run-dir", run, "--resume")
    assert f"resumed from {ckpt.checkpoint_dir(run, step)} (step {step})" in result.stderr
    assert ckpt.read_meta(ckpt.latest_checkpoint(run)).step == step + 1
    assert not (run / LOCK_FILE).exists()  # a clean end removes it


def test_the_lock_in_one_process(tmp_path):
    run = tmp_path / "run"
    with RunLock(run) as lock:
        assert lock.held and holder(run / LOCK_FILE)["pid"] == os.getpid()
        with pytest.raises(GenError, match=f"pid {os.getpid()} on host"):
            RunLock(run).acquire()  # flock: two opens in one process exclude each other too
    assert not (run / LOCK_FILE).exists()
    (run / LOCK_FILE).write_text("not json")  # what a killed process may leave: taken over
    with RunLock(run):
        assert holder(run / LOCK_FILE)["pid"] == os.getpid()


def _sleep(started, seconds):
    started.set()
    time.sleep(seconds)


def test_a_forked_child_does_not_keep_the_lock(tmp_path):
    """A DataLoader worker forked while the trainer holds the lock must not hold it once the trainer is
    killed (and it may live on for a while)."""
    run = tmp_path / "run"
    lock = RunLock(run).acquire()
    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    child = fork.Process(target=_sleep, args=(started, 30))
    child.start()
    try:
        assert started.wait(30)  # the child runs (its at-fork handlers ran)
        lock_module._HELD.discard(lock._fd)
        os.close(lock._fd)  # what the kernel does when the trainer is killed: the file stays
        lock._fd = None
        assert (run / LOCK_FILE).is_file() and child.is_alive()
        RunLock(run).acquire().release()  # the child does not hold it
    finally:
        child.kill()
        child.join()


def test_under_torchrun_every_rank_refuses(train_env, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "gen", "train", str(train_env), "--run-dir", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with RunLock(run):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, done.stderr[-3000:]  # one per rank, the same line
    assert all(e.startswith(f"error: {refusal(run, os.getpid())}") for e in errors)
    assert "GenError" not in done.stderr and "gen/training" not in done.stderr  # no traceback of ours
    assert not (run / "checkpoints").exists() and not (run / "recipe.toml").exists()
