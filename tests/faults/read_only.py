"""``python read_only.py RECIPE RUN REPORT``: ``gen`` commands on the run directory RUN mounted read-only
(a bind mount in a mount namespace of its own, see test_folder_safety.py), each in this process; what
happened goes to the JSON file REPORT, outside RUN, for the test to check."""

import json
import sys

from typer.testing import CliRunner

from gen.commands import app

recipe, run, report_file = sys.argv[1:4]
quiet = ["train.grid_samples=0", "train.eval_samples=0"]
commands = {
    "train": ["train", recipe, *quiet, "train.steps=9", "--run-dir", run, "--resume"],
    "eval": ["eval", run, "--metric", "data", "--num", "2", "--out", report_file + ".table.json"],
    "sample": ["sample", run, "--num", "2", "--out", f"{run}/samples.npz"],
    "ema": ["ema", "reconstruct", run, "--sigma-rel", "0.07"],
}
report = {}
for name, args in commands.items():
    result = CliRunner().invoke(app, args)
    report[name] = {
        "exit_code": result.exit_code,
        "stderr": result.stderr,
        "exception": repr(result.exception) if result.exit_code not in (0, 2) else None,
    }
with open(report_file, "w") as f:
    json.dump(report, f, indent=2)
