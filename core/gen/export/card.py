"""The model card of an exported model: the ``README.md`` a model hub shows on the model's page.

It opens with the hub's YAML front matter (``library_name``, ``tags``) and holds, for a person: what
the model is, how to load and sample it (the format's own words, `gen.Exporter.card_usage`), the sample
grid the run drew, the scores the run measured with the settings they were measured with
(`gen.export.scores`), the run's resolved recipe, and the files. The card of every format is written
here, so that they read alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from gen.export.scores import ScoreTable
from gen.export.source import ExportSource
from gen.recipe import recipe_to_toml
from gen.version import __version__

#: The card's first body line: `gen export --force` replaces only a folder whose card says it (or an
#: empty one), so that it never deletes a folder it did not write.
MARKER = "<!-- written by gen export -->"


@attrs.frozen
class GridInfo:
    """A sample grid of the run, copied beside the card.

    Attributes:
        file: Its name in the export (``sample_grid.png``).
        source: Where it was in the run (``samples/final.png``), relative to the run directory.
        ema: The weights that drew it, as ``--ema`` names them.
    """

    file: str
    source: str
    ema: str


def front_matter(library_name: str, tags: Sequence[str]) -> str:
    """The YAML front matter (strings written as JSON strings, which YAML reads as they are)."""
    lines = ["---", f"library_name: {json.dumps(library_name)}", "tags:"]
    lines += [f"- {json.dumps(t)}" for t in dict.fromkeys(tags)]
    return "\n".join([*lines, "---", ""])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value).replace("|", "\\|")


def score_markdown(table: ScoreTable) -> list[str]:
    """A score table as Markdown: its settings, then its scores."""
    columns = [*table.settings, *table.scores]
    out = [f"**{table.title}**", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in table.rows:
        out.append("| " + " | ".join(_cell(row[c]) if c in row else "" for c in columns) + " |")
    return [*out, ""]


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n:,}"


def _about(source: ExportSource, params: int) -> str:
    recipe, spec = source.recipe, source.spec
    process = recipe.objective.process
    space = (
        "pixels"
        if recipe.autoencoder.name == "identity"
        else f"the latent space of the `{recipe.autoencoder.name}` autoencoder"
    )
    classes = f"{spec.num_classes} classes" if spec.num_classes else "unconditional"
    weights = "its raw weights" if source.ema is None else f"EMA `{source.ema_name}`"
    return (
        f"A `{recipe.backbone.name}` backbone ({_count(params)} parameters) trained with gen's "
        f"`{getattr(process, 'name', process)}` process in {space}, on `{recipe.data.name}` data "
        f"(samples of shape {tuple(spec.shape)}, {classes}): step {source.step}, {weights}."
    )


def model_card(
    source: ExportSource,
    *,
    name: str,
    library_name: str,
    tags: Sequence[str],
    usage: str,
    grid: GridInfo | None,
    scores: Sequence[ScoreTable],
    files: Sequence[tuple[str, str]],
) -> str:
    """The text of ``README.md``.

    Args:
        source: The exported weights.
        name: The model's name (the output folder's).
        library_name: What loads the folder (``gen``, ``diffusers``).
        tags: The hub's tags.
        usage: The "Use" section's Markdown (`gen.Exporter.card_usage`).
        grid: The sample grid beside the card (None: the run holds none of that step).
        scores: The run's measured scores of that step.
        files: ``(name, what it holds)`` of the folder's files.
    """
    params = sum(t.numel() for t in source.weights.values())
    step = source.step
    out = [front_matter(library_name, tags), MARKER, "", f"# {name}", "", _about(source, params), ""]
    out += ["## Use", "", usage.strip(), ""]
    out += ["## Samples", ""]
    if grid is None:
        out += [f"The run holds no sample grid of step {step} (`train.grid_samples` draws them).", ""]
    else:
        other = (
            "" if grid.ema == source.ema_name else f" (drawn with EMA `{grid.ema}`, not the exported weights)"
        )
        out += [
            f"![samples]({grid.file})",
            "",
            f"Drawn during training at step {step} with the recipe's `[sample]` settings, fixed noise and a "
            f"class per row{other}; the run's `{grid.source}`.",
            "",
        ]
    out += ["## Scores", ""]
    if not scores:
        out += [
            f"The run recorded no score of step {step}: `train.eval_samples` scores during training, "
            "`gen eval RUN` after it (FID with `--ref`).",
            "",
        ]
    for table in scores:
        out += score_markdown(table)
    out += [
        "## Recipe",
        "",
        f"The run's resolved recipe, as `gen train` trains the model again from it; exported by gen {__version__}.",
        "",
        "```toml",
        recipe_to_toml(source.checkpoint.recipe).strip(),
        "```",
        "",
        "## Files",
        "",
    ]
    out += [f"- `{file}`" + (f": {what}" if what else "") for file, what in files]
    return "\n".join(out).rstrip() + "\n"


__all__ = ["MARKER", "GridInfo", "front_matter", "model_card", "score_markdown"]
