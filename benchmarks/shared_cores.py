"""Training on cores another process shares: images/s by thread count and OpenMP wait policy.

Example:
    python benchmarks/shared_cores.py                                  # the demo recipe
    python benchmarks/shared_cores.py backbone.hidden_size=384 backbone.depth=6 backbone.num_heads=6

Runs ``benchmarks/train_step.py`` on the recipe (``--recipe``, default the demo's) in fresh processes —
OpenMP reads its wait policy once, when torch loads it — with 1 and all allowed threads, under the
wait policy ``default`` (OpenMP spins, then sleeps), ``PASSIVE`` (what ``gen`` sets unless the
environment chose) and ``ACTIVE``; first on free cores, then beside a busy loop (a Python ``while
True``, not pinned: the scheduler places it as it would another user's job). Each cell is the best of
``--rounds`` runs, interleaved, and the table gives each scenario's loss against its best cell: the
shared-core target of ``gen``'s default (passive, all threads) is a loss of at most 2x.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLICIES = {"default": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "active": {"OMP_WAIT_POLICY": "ACTIVE"}}


def images_per_s(recipe: str, overrides: list[str], threads: int, env: dict[str, str], steps: int) -> float:
    """One train_step.py run's images/s."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")
    }
    cmd = [sys.executable, str(REPO / "benchmarks" / "train_step.py"), recipe, *overrides]
    cmd += ["--steps", str(steps), "--warmup", "2", "--threads", str(threads)]
    out = subprocess.run(
        cmd, env={**clean, **env}, capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("throughput"))
    return float(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="SECTION.KEY=VALUE recipe overrides")
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "demo.toml"))
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    cells = [(policy, threads) for policy in POLICIES for threads in sorted({1, cores})]
    table: dict[str, dict[tuple[str, int], float]] = {}
    for scenario in ("free cores", "one core busy"):
        busy = (
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) if scenario != "free cores" else None
        )
        try:
            best: dict[tuple[str, int], float] = {}
            for _ in range(args.rounds):
                for policy, threads in cells:
                    rate = images_per_s(args.recipe, args.overrides, threads, POLICIES[policy], args.steps)
                    best[(policy, threads)] = max(best.get((policy, threads), 0.0), rate)
            table[scenario] = best
        finally:
            if busy is not None:
                busy.kill()
    print(
        f"{args.recipe} {' '.join(args.overrides)}: images/s, best of {args.rounds}; {cores} allowed CPUs\n"
    )
    print("| wait policy | threads | free cores | one core busy | busy: loss against the best |")
    print("| --- | --- | --- | --- | --- |")
    top = max(table["one core busy"].values())
    for policy, threads in cells:
        free, busy = table["free cores"][(policy, threads)], table["one core busy"][(policy, threads)]
        print(f"| {policy} | {threads} | {free:.1f} | {busy:.1f} | {top / busy:.2f}x |")


if __name__ == "__main__":
    main()
