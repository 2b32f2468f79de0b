"""Scoring trained models: one scoring (:mod:`gen.evaluation.score`), sweeps over sampling settings with
screening and resumable results (:mod:`gen.evaluation.sweep`), and the results files
(:mod:`gen.evaluation.results`)."""
