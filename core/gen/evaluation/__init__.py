"""Scoring trained models: one scoring (`gen.evaluation.score`), sweeps over sampling settings with
screening and resumable results (`gen.evaluation.sweep`), and the results files
(`gen.evaluation.results`)."""
