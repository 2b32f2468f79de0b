"""``gen eval``: score a checkpoint (sweeps over sampling settings) or saved samples, and compute
reference statistics. The metric is chosen once (``--metric fid,kid,pr,sfid,fd_dinov2,fd_random`` or
``data``) as a metric object; the scoring itself is `gen.evaluation`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import typer.core

from gen.commands import sample_options as opt
from gen.commands.app import app, err_console, out_console, parse_list
from gen.errors import GenError
from gen.plugins import get_registry
from gen.progress import progress_bar

if TYPE_CHECKING:
    import torch

    from gen.metrics.base import SampleMetric
    from gen.runs.run_dir import Checkpoint

#: The defaults of ``--kid-subsets`` and ``--kid-subset-size``: `gen.metrics.kid.KID_SUBSETS` and
#: `gen.metrics.kid.KID_SUBSET_SIZE` (torch-fidelity's protocol), written out so that declaring the
#: options imports no torch; a test checks that they agree.
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


class EvalGroup(typer.core.TyperGroup):
    """``gen eval SOURCE ...`` runs ``gen eval score SOURCE ...``; ``gen eval ref-stats ...`` its own command."""

    default_command = "score"

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=EvalGroup,
    help=(
        "FID and IS, KID, precision/recall, sFID, FD-DINOv2 (--metric). `gen eval RUN --ref STATS.npz` scores "
        "a checkpoint (comma lists sweep); "
        "`gen eval SAMPLES.npz|FOLDER --ref ...` scores saved samples; `gen eval ref-stats SRC OUT.npz` "
        "computes reference statistics."
    ),
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")


def _say_what_fd_random_is(metric: str) -> None:
    """Under every table that holds ``fd_random``: what its numbers can and cannot be compared with."""
    if "fd_random" in [m.strip() for m in metric.split(",")]:
        err_console.print(
            "note: fd_random is the Fréchet distance in a fixed random network's features (no download): it "
            "ranks models of one dataset against one reference, and is not comparable with published FID "
            "or FD numbers",
            markup=False,
        )


def _is_checkpoint(path: Path) -> bool:
    """A checkpoint, a run directory, or a step of a run (``RUN/checkpoints/step_N``, even one that does
    not exist: `gen.runs.run_dir.resolve_checkpoint` then lists the steps the run holds)."""
    step_of_a_run = path.parent.name == "checkpoints" and path.name.startswith("step_")
    return (path / "meta.json").is_file() or (path / "checkpoints").is_dir() or step_of_a_run


def _default_device() -> torch.device:
    import torch

    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _data_metric_hint(checkpoint: Checkpoint) -> str:
    """ "; or ... --metric data" when the checkpoint's dataset can score samples itself, else ""."""
    from gen.protocols import ScoresSamples

    try:
        has_metric = isinstance(checkpoint.recipe.data.build(), ScoresSamples)
    except Exception:  # noqa: BLE001 - only a hint: a dataset that cannot be built here gets none
        return ""
    return "; or score with the dataset's own metric: --metric data" if has_metric else ""


def checkpoint_metric(
    checkpoint: Checkpoint,
    metric: str,
    *,
    ref: str | None,
    weights: str | None,
    device: Any,
    batch_size: int,
    **options: Any,
) -> SampleMetric:
    """The metric object of ``--metric`` for a checkpoint, with every check before any sampling
    (``options``: the other keyword arguments of `gen.metrics.suite.build_metrics`)."""
    from gen.metrics.dataset_metric import DatasetMetric
    from gen.metrics.suite import build_metrics, parse_metrics

    if metric == "data":
        if ref:
            raise GenError("--ref is the FID reference; --metric data scores with the dataset's own metric")
        try:
            return DatasetMetric(checkpoint.recipe.data.build(), checkpoint.recipe.data.name)
        except GenError as e:
            raise GenError(f"{checkpoint.path}: {e}") from None
    if not checkpoint.spec.is_image:
        raise GenError(
            f"{checkpoint.path}: the model draws vectors of shape {checkpoint.spec.shape}, not images, and FID "
            "scores images; score it with --metric data"
        )
    try:
        return build_metrics(
            parse_metrics(metric),
            ref=ref,
            inception_weights=weights,
            device=device,
            batch_size=batch_size,
            **options,
        )
    except GenError as e:
        raise GenError(f"{e}{_data_metric_hint(checkpoint)}") from e


@eval_app.command("score")
def eval_command(
    source: str = typer.Argument(
        ..., help="A run directory, a checkpoint, a folder of images or an ADM .npz."
    ),
    ref: str | None = typer.Option(
        None,
        "--ref",
        help="Reference statistics .npz (mu, sigma), or real images to compute them from (folder, .npz, recipe).",
    ),
    num: int = typer.Option(50_000, "--num", "-n", help="Images to generate per combination."),
    cfg: opt.Cfg = None,
    ema: opt.Ema = None,
    ema_length: opt.EmaLength = None,
    guidance: opt.Guidance = None,
    guide_step: opt.GuideStep = None,
    guide_ema: opt.GuideEma = None,
    guide_run: opt.GuideRun = None,
    steps: opt.Steps = None,
    sampler: opt.Sampler = None,
    grid: opt.Grid = None,
    interval: opt.Interval = None,
    split_interval: opt.SplitInterval = None,
    seed: opt.Seed = 0,
    batch_size: opt.BatchSize = 64,
    screen: int | None = typer.Option(
        None, "--screen", help="Score every combination on this many images first..."
    ),
    confirm: int = typer.Option(1, "--confirm", help="...then the best this many at --num."),
    inception_weights: str | None = typer.Option(
        None, "--inception-weights", help="The FID Inception weights file (default: $GEN_INCEPTION_WEIGHTS)."
    ),
    out: str | None = typer.Option(
        None, "--out", "-o", help="Results JSON (default: RUN/eval/step_<step>.json, or beside the samples)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Score again combinations already in RUN/eval/results.jsonl."
    ),
    metric: str = typer.Option(
        "fid",
        "--metric",
        help="fid: FID (with --ref) and IS; a comma list of fid, kid, pr, sfid, fd_dinov2, fd_random (the "
        "first ranks rows); data: the dataset's own metric (e.g. the shapes oracle). fd_random needs no "
        "download (a fixed random network's features) and is not comparable with published numbers.",
    ),
    dinov2_weights: str | None = typer.Option(
        None, "--dinov2-weights", help="DINOv2 ViT-L/14 weights for fd_dinov2 (default: $GEN_DINOV2_WEIGHTS)."
    ),
    kid_subsets: int = typer.Option(KID_SUBSETS, "--kid-subsets", help="KID: subsets averaged over."),
    kid_subset_size: int = typer.Option(
        KID_SUBSET_SIZE,
        "--kid-subset-size",
        help="KID: images per subset (of the samples and of the reference).",
    ),
) -> None:
    """Score a checkpoint (generating --num images per combination) or saved samples."""
    from gen import distributed
    from gen.evaluation.results import render_table
    from gen.evaluation.sweep import combinations, evaluate_checkpoint
    from gen.runs.run_dir import load_checkpoint
    from gen.sampling.model import ModelSampler

    _check_counts(
        metric, num=num, screen=screen, batch_size=batch_size, seed=seed, kid_subset_size=kid_subset_size
    )
    options = {
        "dinov2_weights": dinov2_weights,
        "kid_subsets": kid_subsets,
        "kid_subset_size": kid_subset_size,
    }
    if out is not None and not str(out).endswith(".json"):
        raise GenError(f"--out {out}: the results file must end in .json")
    path = Path(source)
    sweep = {"--cfg": cfg, "--ema": ema, "--steps": steps, "--sampler": sampler, "--interval": interval, "--grid": grid,
             "--split-interval": split_interval is not None, "--ema-length": ema_length, "--guidance": guidance, "--guide-step": guide_step,
             "--guide-ema": guide_ema, "--guide-run": guide_run}  # fmt: skip
    if not _is_checkpoint(path):
        if not path.exists():
            raise GenError(f"{path} does not exist; give a run directory, a checkpoint, a folder or an .npz")
        given = [k for k, v in {**sweep, "--screen": screen}.items() if v] + (
            ["--metric data"] if metric == "data" else []
        )
        if given:
            raise GenError(f"{', '.join(given)} apply to a checkpoint; {path} holds samples")
        score_samples(
            path, batch_size=batch_size, ref=ref, weights=inception_weights, out=out, metric=metric, **options
        )
        return
    samplers = parse_list(sampler, str, "--sampler")
    for name in samplers or []:
        get_registry("sampler").get(name)
    checkpoint = load_checkpoint(path)
    with distributed.process_group() as dist:
        the_metric = checkpoint_metric(
            checkpoint, metric, ref=ref, weights=inception_weights, device=dist.device, batch_size=batch_size,
            **options,
        )  # fmt: skip
        if screen is not None and the_metric.goal is None and metric != "data":
            raise GenError(
                f"--screen needs a metric that ranks rows, and --metric {metric} does not: list fid first"
            )
        if screen is not None and the_metric.goal is None:
            raise GenError(
                f"--screen needs to know which result is best: dataset {checkpoint.recipe.data.name!r} "
                "declares no primary_metric"
            )
        if metric == "fid" and ref is None and dist.is_main:
            err_console.print(
                "no --ref given: FID is skipped, only the Inception Score is computed", markup=False
            )
        model = ModelSampler.from_checkpoint(checkpoint, dist.device)
        settings_list = combinations(
            model,
            emas=opt.ema_list(ema, ema_length),
            guides=opt.guide_options(guidance, guide_step, guide_ema, guide_run),
            cfgs=parse_list(cfg, float, "--cfg"),
            intervals=opt.intervals(interval),
            steps=parse_list(steps, int, "--steps"),
            samplers=samplers,
            grids=opt.grids(grid),
            split_interval=split_interval,
        )
        checkpoint.check_weights(dict.fromkeys(s.ema for s in settings_list))
        table = evaluate_checkpoint(
            model, settings_list, the_metric, num=num, seed=seed, batch_size=batch_size, screen=screen,
            confirm=confirm, out=out, force=force, dist=dist, console=err_console,
        )  # fmt: skip
        if dist.is_main:
            rows = table["rows"]
            best = rows.index(table["best"]) if table["best"] is not None else None
            out_console.print(render_table(rows, best, table["title"], the_metric.columns(rows)))
            _say_what_fd_random_is(metric)
            err_console.print(f"results: {table['path']}", markup=False)


def _check_counts(
    metric: str, *, num: int, screen: int | None, batch_size: int, seed: int, kid_subset_size: int
) -> None:
    """``--batch-size``, ``--seed``, ``--num`` and ``--screen`` checked before any work (enough images for
    the metrics)."""
    from gen.metrics.suite import min_images, parse_metrics

    if batch_size < 1 or seed < 0 or num < 2:
        raise GenError(f"need --batch-size >= 1, --seed >= 0 and --num >= 2; got {batch_size}, {seed}, {num}")
    if metric != "data":
        least, why = min_images(parse_metrics(metric), kid_subset_size=kid_subset_size)
        for option, n in (("--num", num), ("--screen", screen)):
            if n is not None and n < least:
                raise GenError(f"{option} {n}: {why} images; give at least {least}")


def score_samples(
    source: Path,
    *,
    batch_size: int,
    ref: str | None,
    weights: str | None,
    out: str | None,
    metric: str = "fid",
    **options: Any,
) -> None:
    """The ``--metric`` scores of saved samples (a folder of images or an ADM ``.npz``); the JSON goes to
    ``out`` (default: ``<source>.eval.json`` beside the source)."""
    from gen.runs.lock import OutputLock

    path = Path(out) if out else source.parent / f"{source.name.removesuffix('.npz')}.eval.json"
    with OutputLock(path):  # one writer per results file; a read-only folder is one line here
        _score_samples(
            source, path, batch_size=batch_size, ref=ref, weights=weights, metric=metric, **options
        )


def _score_samples(
    source: Path,
    path: Path,
    *,
    batch_size: int,
    ref: str | None,
    weights: str | None,
    metric: str,
    **options: Any,
) -> None:
    from gen import distributed
    from gen.evaluation.results import render_table, save_table
    from gen.metrics.image_sources import count_images, image_batches
    from gen.metrics.suite import build_metrics, min_images, parse_metrics

    total = count_images(source)  # the source is read first: a damaged or pickled one fails at once
    names = parse_metrics(metric)
    least, why = min_images(names, kid_subset_size=options.get("kid_subset_size", KID_SUBSET_SIZE))
    if total < least:
        raise GenError(f"{source} holds {total} images: {why} images; give at least {least}")
    the_metric = build_metrics(
        names, ref=ref, inception_weights=weights, device=_default_device(), batch_size=batch_size, **options
    )
    if names == ["fid"] and ref is None:
        err_console.print(
            "no --ref given: FID is skipped, only the Inception Score is computed", markup=False
        )
    accumulator = the_metric.accumulator()
    with progress_bar(err_console, True, "score") as progress:
        task = progress.add_task("score", total=total)
        for batch in image_batches(source, batch_size):
            accumulator.add(batch)
            progress.update(task, advance=len(batch))
    row = {"source": str(source), **accumulator.compute(distributed.DistInfo.local())}
    extra = {**the_metric.info(), "metric": the_metric.name}
    columns = the_metric.columns([row])
    out_console.print(render_table([row], 0, str(source), columns))
    _say_what_fd_random_is(metric)
    save_table([row], 0, str(source), path, extra, columns)
    err_console.print(f"results: {path}", markup=False)


@eval_app.command("ref-stats")
def ref_stats_command(
    src: str = typer.Argument(
        ..., help="Real images: a folder, an ADM .npz (arr_0), or a recipe (its dataset)."
    ),
    out: str = typer.Argument(..., help="The statistics file to write (.npz with mu, sigma, num_samples)."),
    batch_size: int = typer.Option(100, "--batch-size", "-b", help="Images per Inception pass."),
    inception_weights: str | None = typer.Option(
        None, "--inception-weights", help="The FID Inception weights file (default: $GEN_INCEPTION_WEIGHTS)."
    ),
    metric: str = typer.Option(
        "fid",
        "--metric",
        help="The metrics to serve: mu, sigma and the spatial mu_s, sigma_s always; kid or pr add the pool "
        "features, fd_dinov2 the DINOv2 statistics, fd_random the random network's (alone: only those, "
        "so no download).",
    ),
    dinov2_weights: str | None = typer.Option(
        None, "--dinov2-weights", help="DINOv2 ViT-L/14 weights for fd_dinov2 (default: $GEN_DINOV2_WEIGHTS)."
    ),
) -> None:
    """Compute reference statistics of real images (what --metric compares with)."""
    from gen.metrics.suite import parse_metrics, reference_for

    if not out.endswith(".npz"):
        raise GenError(f"{out}: the statistics file must end in .npz")
    reference = reference_for(
        parse_metrics(metric), src, inception_weights=inception_weights, dinov2_weights=dinov2_weights,
        device=_default_device(), batch_size=batch_size,
    )  # fmt: skip
    path = reference.save(out)
    parts = [f"{k} {v.mu.shape[0]}-d" for k, v in reference.stats.items()]
    if reference.features is not None:
        parts.append(f"features {reference.features.shape}")
    err_console.print(f"wrote {path}: {', '.join(parts)} from {reference.num_samples} images", markup=False)
