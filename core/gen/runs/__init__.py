"""Runs on disk: the checkpoint format (`gen.runs.checkpoint`) and the run directory
(`gen.runs.run_dir`). Each is the one owner of its files: nothing else builds their names."""
