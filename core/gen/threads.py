"""How many CPU threads torch uses: what the process may run on, not what the machine has.

torch sizes its thread pool from the machine's cores. In a container or a batch job limited to a few
CPUs (``taskset``, cgroups, Slurm's ``--cpus-per-task``), or on cores shared with other jobs, that
oversubscribes: on a busy 2-core machine the demo trained at 23 images/s with torch's default threads
against 313 with one. So the command line uses, in order: ``gen --threads N``, ``OMP_NUM_THREADS``
(torch reads it itself), else the number of CPUs this process may run on (``os.sched_getaffinity``).

Those CPUs may still be busy with another process. torch's OpenMP threads then spin at every barrier
waiting for a thread that is not running, and the step slows by far more than the lost core: with a
busy loop beside it on 2 cores, the demo trained at 80-92 images/s on two threads against 208-275 on
one (35x slower on an Intel Xeon). Threads that sleep while they wait (``OMP_WAIT_POLICY=PASSIVE``)
lose only what the busy core takes: 154-178 images/s, within 1.5x of the best thread count. On free
cores passive waiting costs up to a quarter of the second thread's gain on a model as small as the
demo (289-336 against 222-234 images/s) and 0-25% on one of width 384 (`benchmarks/shared_cores.py`).
A shared machine's collapse is the worse failure, so the command line waits passively unless the
environment says otherwise (``OMP_WAIT_POLICY=ACTIVE`` on a machine of one's own, or
``GOMP_SPINCOUNT``); it must be set before torch loads its OpenMP runtime, which `configure_threads`
does when it is first to import torch.
"""

from __future__ import annotations

import os
import sys

#: What the command line sets ``OMP_WAIT_POLICY`` to unless the environment chose (module docstring).
DEFAULT_WAIT_POLICY = "PASSIVE"


def allowed_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), or ``os.cpu_count()`` where unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def wait_policy() -> str:
    """The OpenMP wait policy torch's threads use: the environment's, else `DEFAULT_WAIT_POLICY` when
    torch is not loaded yet (it is then set here), else OpenMP's own (``default``)."""
    if os.environ.get("OMP_WAIT_POLICY") or os.environ.get("GOMP_SPINCOUNT"):
        return (
            os.environ.get("OMP_WAIT_POLICY", "").upper() or "GOMP_SPINCOUNT=" + os.environ["GOMP_SPINCOUNT"]
        )
    if "torch" in sys.modules:  # its OpenMP runtime has read the environment already
        return "default"
    os.environ["OMP_WAIT_POLICY"] = DEFAULT_WAIT_POLICY
    return DEFAULT_WAIT_POLICY


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: ``threads`` if given, else leave ``OMP_NUM_THREADS`` to torch, else
    cap torch's default at `allowed_cpus`; and, when torch is not loaded yet, its threads' `wait_policy`.
    Returns the number in use."""
    wait_policy()  # before torch loads OpenMP, which reads the environment once
    import torch  # here, not at the top: the command line imports this module to build itself

    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    elif not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(min(torch.get_num_threads(), allowed_cpus()))
    return torch.get_num_threads()


__all__ = ["DEFAULT_WAIT_POLICY", "allowed_cpus", "configure_threads", "wait_policy"]
