"""Runs on disk: the checkpoint format (`gen.runs.checkpoint`), the run directory
(`gen.runs.run_dir`) and the exported model folder (`gen.runs.model_folder`). Each is the one owner of
its files: nothing else builds their names."""
