"""Exporting a trained model (``gen export``): one set of weights as a folder a model hub takes as it is.

`gen.export.writer` checks everything, writes into a temporary folder and renames it into place; the
``gen`` format is `gen.export.gen_format` (the folder layout itself is `gen.runs.model_folder`, which
``gen.load`` reads), any other is a plugin's `gen.Exporter` (`gen.export.source`); the model card is
`gen.export.card`, with the run's recorded scores from `gen.export.scores`."""
