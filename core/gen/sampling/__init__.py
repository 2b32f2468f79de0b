"""Sampling a model, one module per concept, in the order a ``[sample]`` section travels:

- `config`: the ``[sample]`` section, its keys and a command's options merged into it;
- `grids`, `noise`, `guidance`, `step_counter`: what every process's sampling shares (registered time
  grids checked, the keyed start noise, the interval rule and the guidance formula, progress by step);
- `driver`: the model's process checks ``[sample]`` and samples;
- `guides`: autoguidance's guiding model read from a checkpoint;
- `settings`: one way to sample a trained model (an EMA and a ``[sample]``), as results rows name it;
- `model`: `gen.ModelSampler`, the one path from trained weights to samples;
- `files`: ``gen sample``'s output files.

This package imports none of them: the lower ones sit below ``gen.recipe`` and the upper ones above
``gen.runs`` (``tests/test_architecture.py``).
"""
