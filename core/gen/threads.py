"""How many CPU threads torch uses: what the process may run on, not what the machine has.

torch sizes its thread pool from the machine's cores. In a container or a batch job limited to a few
CPUs (``taskset``, cgroups, Slurm's ``--cpus-per-task``), or on cores shared with other jobs, that
oversubscribes: on a busy 2-core machine the demo trained at 23 images/s with torch's default threads
against 313 with one. So the command line uses, in order: ``gen --threads N``, ``OMP_NUM_THREADS``
(torch reads it itself), else the number of CPUs this process may run on (``os.sched_getaffinity``).
"""

from __future__ import annotations

import os


def allowed_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), or ``os.cpu_count()`` where unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: ``threads`` if given, else leave ``OMP_NUM_THREADS`` to torch, else
    cap torch's default at `allowed_cpus`. Returns the number in use."""
    import torch  # here, not at the top: the command line imports this module to build itself

    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    elif not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(min(torch.get_num_threads(), allowed_cpus()))
    return torch.get_num_threads()


__all__ = ["allowed_cpus", "configure_threads"]
