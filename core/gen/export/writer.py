"""``gen export``: one set of a trained model's weights as a folder a model hub takes as it is.

Everything that can be wrong is checked before anything is written (an unknown format, an output
folder that exists without ``--force``, an EMA the checkpoint does not hold, a damaged weights file, an
autoencoder that is not where the recipe says, a model the format cannot hold). The folder is written
into a hidden temporary sibling (``.OUT.*.tmp``) and renamed into place when complete; ``--force``
moves the previous folder aside only then, and removes it after. A failure removes the temporary folder,
so nothing half-done is ever left under ``OUT``, and an earlier export stays whole.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import attrs

from gen.components import to_table
from gen.errors import GenError
from gen.export.card import MARKER, GridInfo, model_card
from gen.export.gen_format import GenFormat
from gen.export.scores import recorded_scores
from gen.export.source import Exporter, ExportSource, exporter_tags
from gen.files import check_writable, write_atomic
from gen.latent_space import build_autoencoder
from gen.plugins import get_registry
from gen.recipe import Recipe, apply_overrides, validate_recipe
from gen.runs import model_folder
from gen.runs.run_dir import Checkpoint, load_checkpoint
from gen.sampling.settings import ema_text

#: The format the core writes itself; the others are registered exporters.
GEN_FORMAT = "gen"


def formats() -> list[str]:
    """The formats ``--format`` takes: ``gen``, then the registered exporters."""
    return [GEN_FORMAT, *(n for n in get_registry("exporter").names() if n != GEN_FORMAT)]


def exporter_for(name: str) -> Exporter:
    """The exporter of format ``name`` (an unknown name is one line listing the known ones)."""
    if name == GEN_FORMAT:
        return GenFormat()
    registry = get_registry("exporter")
    if name not in registry:
        raise GenError(f"--format {name}: unknown export format; choose one of: {', '.join(formats())}")
    component = registry.get(name)
    exporter = component.factory(component.make_config())
    if not isinstance(exporter, Exporter):
        raise GenError(
            f"plugin {component.plugin!r}: exporter {name!r} is not a gen.Exporter (library_name, write, "
            "card_usage); report it to the plugin's authors"
        )
    return exporter


def _written_by_export(folder: Path) -> bool:
    card = folder / model_folder.CARD_FILE
    try:
        with open(card, encoding="utf-8", errors="replace") as f:
            return MARKER in f.read(4096)
    except OSError:
        return False


def check_output(out: Path, force: bool) -> None:
    """Refuse an existing ``out`` without ``--force``; with it, anything but an earlier export or an
    empty folder (``--force`` must never delete a folder ``gen export`` did not write)."""
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise GenError(
            f"{out} exists; give --force to replace it (once the new export is complete), or choose "
            "another folder"
        )
    if not out.is_dir():
        raise GenError(f"{out} exists and is not a folder; remove it, or choose another folder")
    entries = sorted(p.name for p in out.iterdir())
    if entries and not _written_by_export(out):
        raise GenError(
            f"{out} holds files gen export did not write (such as {entries[0]}); --force replaces only an "
            "earlier export or an empty folder: remove it yourself, or choose another folder"
        )


def _sample_recipe(checkpoint: Checkpoint, overrides: Iterable[str]) -> Recipe:
    """The checkpoint's recipe with ``sample.KEY=VALUE`` overrides: the exported model's sampling
    defaults (the weights were trained with the rest, which stays)."""
    overrides = list(overrides)
    if not overrides:
        return checkpoint.recipe
    for text in overrides:
        if not text.strip().startswith("sample."):
            raise GenError(
                f"--set {text}: gen export changes only the [sample] section (the weights were trained with "
                "the rest); write sample.KEY=VALUE"
            )
    table = apply_overrides(to_table(checkpoint.recipe), overrides)
    return validate_recipe(table, file=f"{checkpoint.path} with --set")


def _grid(checkpoint: Checkpoint, ema: str) -> tuple[Path, GridInfo] | None:
    """The run's sample grid of the checkpoint's step (``samples/step_N.png``, else ``final.png`` when
    the checkpoint is the run's latest; an exported folder's own grid)."""
    name = model_folder.GRID_FILE
    if model_folder.is_model_folder(checkpoint.path):
        found = checkpoint.path / name
        return (found, GridInfo(name, name, ema)) if found.is_file() else None
    run = checkpoint.run
    candidates = [run.samples_dir / f"step_{checkpoint.step:08d}.png"]
    if run.latest_checkpoint() == checkpoint.path:
        candidates.append(run.samples_dir / "final.png")
    train = checkpoint.recipe.train
    drew = train.grid_ema if train.grid_ema is not None else checkpoint.default_ema()
    for path in candidates:
        if path.is_file():
            return path, GridInfo(name, path.relative_to(run.path).as_posix(), ema_text(drew))
    return None


def _readable(folder: Path) -> None:
    """Folders 0755 and files 0644: mkdtemp (and some writers) make them private, and an export is for
    others to read."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, 0o755 if path.is_dir() else 0o644)


def _place(tmp: Path, out: Path) -> None:
    """Rename the complete ``tmp`` to ``out``; a previous ``out`` is moved aside first, removed after."""
    if not (out.exists() or out.is_symlink()):
        try:
            os.rename(tmp, out)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # Checked before the work began: another process wrote it meanwhile.
            raise GenError(
                f"{out} appeared while this export was written (another gen export?); "
                "give --force to replace it, or choose another folder"
            ) from None
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    os.rename(out, old / "previous")
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _write_folder(
    exporter: Exporter,
    source: ExportSource,
    folder: Path,
    *,
    name: str,
    grid: tuple[Path, GridInfo] | None,
    scores: list,
) -> None:
    """The format's files, the grid and the card (which lists the files, with the format's notes on
    them: ``file_notes``, optional) into ``folder``, every file readable by others."""
    exporter.write(source, folder)
    if grid is not None:
        shutil.copyfile(grid[0], folder / grid[1].file)
    notes = {
        **getattr(exporter, "file_notes", {}),
        model_folder.GRID_FILE: "the sample grid the run drew",
        model_folder.CARD_FILE: "this card",
    }
    entries = [p.name + "/" * p.is_dir() for p in sorted(folder.iterdir())]
    files = [(e, notes.get(e, "")) for e in [*entries, model_folder.CARD_FILE] if not e.startswith(".")]
    card = model_card(
        source,
        name=name,
        library_name=exporter.library_name,
        tags=exporter_tags(source),
        usage=exporter.card_usage(source, name),
        grid=grid[1] if grid is not None else None,
        scores=scores,
        files=files,
    )
    write_atomic(folder / model_folder.CARD_FILE, card)
    _readable(folder)


@attrs.frozen
class Exported:
    """What `export_model` wrote.

    Attributes:
        path: The output folder.
        source: The exported weights.
        format: The format's name.
        grid: Where the card's sample grid came from (None: the run holds none of that step).
        scores: How many score tables the card holds.
    """

    path: Path
    source: ExportSource
    format: str
    grid: str | None
    scores: int


def export_model(
    run: str | Path,
    out: str | Path,
    *,
    ema: str = "default",
    format: str = GEN_FORMAT,  # noqa: A002 - the command's option
    force: bool = False,
    overrides: Iterable[str] = (),
) -> Exported:
    """Export one set of weights of a checkpoint (a run's latest, or a checkpoint folder) to ``out``.

    Args:
        run: A run directory, a checkpoint folder, or an earlier ``gen`` export.
        out: The folder to write.
        ema: ``default`` (the first EMA, as ``gen sample`` picks it), a decay (``0.9999``), a power EMA
            (``phema_0.05``, reconstructed from the snapshots when not stored) or ``none`` (raw weights).
        format: ``gen`` (``gen.load`` and ``gen sample`` read it), or a registered exporter's name.
        force: Replace an existing ``out`` (an earlier export, or an empty folder) once the new one is whole.
        overrides: ``sample.KEY=VALUE``: the exported model's sampling defaults.

    Raises:
        gen.GenError: before anything is written, one line naming the file and the fix.
    """
    out = Path(out)
    exporter = exporter_for(format)
    check_output(out, force)
    check_writable(out.parent, "the output folder", "make it writable, or choose another folder")
    checkpoint = load_checkpoint(run)
    inside = checkpoint.path.resolve()
    if inside == out.resolve() or out.resolve() in inside.parents:
        raise GenError(
            f"{out} holds the checkpoint being exported ({checkpoint.path}); choose another folder"
        )
    key = checkpoint.default_ema() if ema.strip().lower() == "default" else checkpoint.find_ema(ema)
    checkpoint.check_weights([key])  # the header only: a damaged file is one line before any work
    recipe = _sample_recipe(checkpoint, overrides)
    build_autoencoder(recipe.autoencoder)  # a latent model's autoencoder files are where the recipe says
    source = ExportSource(checkpoint=checkpoint, ema=key, weights=checkpoint.load_weights(key), recipe=recipe)
    grid = _grid(checkpoint, source.ema_name)
    scores = (
        [] if model_folder.is_model_folder(checkpoint.path) else recorded_scores(checkpoint.run, source.step)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        _write_folder(exporter, source, tmp, name=out.resolve().name, grid=grid, scores=scores)
        _place(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return Exported(out, source, format, grid[1].source if grid is not None else None, len(scores))


__all__ = ["GEN_FORMAT", "Exported", "check_output", "export_model", "exporter_for", "formats"]
