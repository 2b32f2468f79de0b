"""``gen eval``: FID and Inception Score of a checkpoint or of saved samples; sweeps over sampling settings.

Scoring a checkpoint generates ``--num`` images (balanced over the classes, sample i keyed by
``(seed, i)``) and scores them batch by batch, never holding them all. Comma lists in ``--cfg``,
``--ema``, ``--steps``, ``--sampler`` and several ``--interval`` make a sweep: every combination is
scored in one invocation, with the model built once (EMA outermost, so each EMA's weights are loaded
once). ``--screen N --confirm K`` scores every combination on N images first, then the best K at
``--num``. ``--metric data`` scores with the dataset's own ``evaluate_samples`` (the ``shapes`` oracle)
instead of FID and IS; its ``primary_metric`` picks the best row.

Every result is appended to ``RUN/eval/results.jsonl`` as soon as it is known, keyed by checkpoint
step, settings, number of images, seed, reference statistics and feature extractor; a combination
already there is not computed again, so an interrupted sweep resumes where it stopped. The table of
the invocation is printed, with the best row marked, and saved to ``RUN/eval/step_<step>.json`` (or
``--out``) and beside it as text (``.txt``).
"""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch
import typer
import typer.core
from rich.console import Console
from rich.table import Table

from gen.errors import GenError
from gen.evaluation import (
    DatasetScorer,
    Scorer,
    count_images,
    feature_extractor,
    image_batches,
    load_reference,
    reference_stats_of,
)
from gen.generate import (
    Checkpoint,
    CheckpointSampler,
    SampleSettings,
    class_labels,
    default_settings,
    load_checkpoint,
    parse_interval,
    parse_list,
    progress_bar,
    shard,
)
from gen.training import distributed
from gen.training.distributed import DistInfo

INCEPTION_ID = "fid-inception-2015-12-05"

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def extractor_id(extractor: torch.nn.Module) -> str:
    """Names the feature space in result keys: the FID Inception, or another module by class."""
    from gen.inception import FIDInceptionV3

    return INCEPTION_ID if isinstance(extractor, FIDInceptionV3) else f"custom:{type(extractor).__qualname__}"


def combinations(
    checkpoint: Checkpoint,
    *,
    emas: list[str] | None,
    cfgs: list[float] | None,
    intervals: list[tuple[float, float]] | None,
    steps: list[int] | None,
    samplers: list[str] | None,
) -> list[SampleSettings]:
    """Every combination of the given values (None = the recipe's default), EMA outermost."""
    grid = itertools.product(
        emas or [None], samplers or [None], steps or [None], intervals or [None], cfgs or [None]
    )
    out = []
    for ema, sampler, step, interval, cfg in grid:
        out.append(
            default_settings(checkpoint, ema=ema, sampler=sampler, steps=step, cfg_interval=interval, cfg=cfg)
        )
    return list(dict.fromkeys(out))  # repeated values in a list collapse


@attrs.frozen
class ResultLog:
    """``RUN/eval/results.jsonl``: one JSON line per scored (checkpoint, settings, n, seed, reference)."""

    path: Path

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: that combination runs again
        return out

    def done(self) -> dict[str, dict[str, Any]]:
        """The latest result of every key (as canonical JSON) in the log."""
        return {
            json.dumps(r["key"], sort_keys=True): r for r in self.records() if "key" in r and "result" in r
        }

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def _score_settings(
    sampler: CheckpointSampler,
    settings: SampleSettings,
    scorer: Scorer | DatasetScorer,
    *,
    num: int,
    seed: int,
    batch_size: int,
    dist: DistInfo,
    console: Console,
    label: str,
) -> dict[str, Any]:
    labels = class_labels(num, sampler.checkpoint.spec.num_classes)
    mine = shard(num, dist.rank, dist.world_size)
    with progress_bar(console, dist.is_main, label) as progress:
        task = progress.add_task(label, total=len(mine))
        for idx, images in sampler.generate(mine, labels, settings, seed=seed, batch_size=batch_size):
            scorer.add(images, labels[idx])
            progress.update(task, advance=len(idx))
    return scorer.compute()


def _badness(
    results: list[dict[str, Any]], among: list[int], goal: tuple[str, str] | None
) -> Callable[[int], float]:
    """A sort key over the indices ``among`` of ``results``, best first: by ``goal`` (a dataset metric's
    name and "max" or "min") when given, else lower FID, or higher IS when one of them has no FID."""
    by_fid = all(results[i].get("fid") is not None for i in among)

    def key(i: int) -> float:
        r = results[i]
        if goal is not None:
            return -r[goal[0]] if goal[1] == "max" else r[goal[0]]
        return r["fid"] if by_fid else -r["is_mean"]

    return key


def _check_metric(metric: str) -> None:
    if metric not in ("fid", "data"):
        raise GenError(f"--metric {metric}: use fid (FID and IS) or data (the dataset's own metric)")


def _data_metric_hint(checkpoint: Checkpoint) -> str:
    """ "; or ... --metric data" when the checkpoint's dataset can score samples itself, else ""."""
    try:
        has_metric = hasattr(checkpoint.recipe.data.build(), "evaluate_samples")
    except Exception:  # noqa: BLE001 - only a hint: a dataset that cannot be built here gets none
        return ""
    return "; or score with the dataset's own metric: --metric data" if has_metric else ""


def dataset_metric(
    checkpoint: Checkpoint,
) -> tuple[Callable[..., dict[str, float]], tuple[str, str] | None, str]:
    """The ``evaluate_samples`` of the dataset a checkpoint was trained on, its ``primary_metric``
    (a result key and "max" or "min", or None) and its name.

    Raises:
        GenError: the dataset has no ``evaluate_samples``, or a ``primary_metric`` that is not
            ``(name, "max" | "min")``.
    """
    section = checkpoint.recipe.data
    dataset = section.build()
    evaluate = getattr(dataset, "evaluate_samples", None)
    if evaluate is None:
        raise GenError(
            f"{checkpoint.path}: the dataset {section.name!r} has no metric of its own (evaluate_samples); "
            "score FID with --metric fid --ref STATS instead"
        )
    goal = getattr(dataset, "primary_metric", None)
    if goal is not None and (len(goal) != 2 or goal[1] not in ("max", "min")):
        raise GenError(
            f"dataset {section.name!r}: primary_metric must be (name, 'max' or 'min'), got {goal!r}"
        )
    return evaluate, (tuple(goal) if goal is not None else None), section.name


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


SETTING_COLUMNS = ("ema", "cfg", "interval", "steps", "sampler")
FID_COLUMNS = {"fid": "FID", "is_mean": "IS", "is_std": "IS std"}


def render_table(
    rows: list[dict[str, Any]], best: int | None, title: str, metrics: dict[str, str] | None = None
) -> Table:
    """The rich table of a sweep; the best row is marked with ``*`` and bold.

    ``metrics`` maps result keys to column titles (default: FID, IS, IS std); a row's ``screen_<key>``
    values, when present, get columns of their own.
    """
    metrics = metrics if metrics is not None else FID_COLUMNS
    table = Table(title=title, title_justify="left")
    setting_cols = [c for c in SETTING_COLUMNS if any(c in r for r in rows)]
    screen_cols = [k for k in metrics if any(f"screen_{k}" in r for r in rows)]
    cols = ["", *setting_cols, *(f"screen {metrics[k]}" for k in screen_cols), "images", *metrics.values()]
    for c in cols:
        table.add_column(c, justify="right" if c not in ("", "ema", "interval", "sampler") else "left")
    for i, r in enumerate(rows):
        cells = ["*" if i == best else ""]
        for c in setting_cols:
            v = r.get(c)
            cells.append(",".join(_fmt(x, 2) for x in v) if isinstance(v, list) else _fmt(v))
        cells += [_fmt(r.get(f"screen_{k}")) for k in screen_cols]
        cells += [_fmt(r.get("num_images")), *(_fmt(r.get(k)) for k in metrics)]
        table.add_row(*cells, style="bold" if i == best else None)
    return table


def save_table(
    rows: list[dict[str, Any]],
    best: int | None,
    title: str,
    path: Path,
    extra: dict[str, Any],
    metrics: dict[str, str] | None = None,
) -> None:
    """``path`` (.json: rows, best and context) and the same stem ``.txt`` (the table as text)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**extra, "rows": rows, "best": rows[best] if best is not None else None}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
    recorder = Console(record=True, width=160, file=io.StringIO())
    recorder.print(render_table(rows, best, title, metrics))
    path.with_suffix(".txt").write_text(recorder.export_text())


def evaluate_checkpoint(
    run: str | Path,
    *,
    settings_list: list[SampleSettings] | None = None,
    checkpoint: Checkpoint | None = None,
    num: int,
    seed: int,
    batch_size: int,
    reference_path: str | None,
    weights: str | None,
    screen: int | None,
    confirm: int,
    out: str | None,
    force: bool,
    console: Console,
    out_console: Console,
    metric: str = "fid",
) -> dict[str, Any]:
    """Score every settings combination of a checkpoint (see the module doc). Returns the saved table.

    ``metric`` is ``"fid"`` (FID against ``reference_path`` and the Inception Score) or ``"data"`` (the
    dataset's own ``evaluate_samples``, e.g. the ``shapes`` oracle; the best row and screening follow
    the dataset's ``primary_metric``).
    """
    checkpoint = checkpoint or load_checkpoint(run)
    if out is not None and not str(out).endswith(".json"):
        raise GenError(f"--out {out}: the results file must end in .json")
    _check_metric(metric)
    settings_list = settings_list or [default_settings(checkpoint)]
    if screen is not None and not 2 <= screen:
        raise GenError(f"--screen must be >= 2 images, got {screen}")
    if confirm < 1:
        raise GenError(f"--confirm must be >= 1, got {confirm}")
    goal: tuple[str, str] | None = None
    if metric == "data":
        if reference_path:
            raise GenError("--ref is the FID reference; --metric data scores with the dataset's own metric")
        evaluate, goal, data_name = dataset_metric(checkpoint)
        if screen is not None and goal is None:
            raise GenError(
                f"--screen needs to know which result is best: dataset {data_name!r} declares no primary_metric"
            )
    owned = not torch.distributed.is_initialized()  # a caller's process group stays up
    dist = distributed.setup()
    try:
        reference = None
        if metric == "fid":
            try:
                extractor = feature_extractor(weights, dist.device)
            except GenError as e:
                raise GenError(f"{e}{_data_metric_hint(checkpoint)}") from e
            reference = (
                load_reference(reference_path, extractor, device=dist.device, batch_size=batch_size)
                if reference_path
                else None
            )
            if reference is None and dist.is_main:
                console.print(
                    "no --ref given: FID is skipped, only the Inception Score is computed", markup=False
                )
            features = extractor_id(extractor)
        else:
            features = f"data:{data_name}"  # the dataset's metric, in the result keys
        sampler = CheckpointSampler(checkpoint, dist.device)
        log = ResultLog(checkpoint.run_dir / "eval" / "results.jsonl")
        base_key = {
            "step": checkpoint.step,
            "seed": seed,
            "reference": reference.digest if reference is not None else None,
            "features": features,
            "labels": "balanced",
        }

        def new_scorer() -> Scorer | DatasetScorer:
            if metric == "data":
                return DatasetScorer(evaluate)
            return Scorer(extractor, reference, device=dist.device)

        # Read once: every rank skips the same combinations, whatever rank 0 appends meanwhile.
        finished = {} if force else log.done()

        def score(settings: SampleSettings, n: int, label: str) -> dict[str, Any]:
            key = {**base_key, **settings.describe(), "num_images": n}
            done = finished.get(json.dumps(key, sort_keys=True))
            if done is not None:
                if dist.is_main:
                    console.print(f"{label}: done before, skipped ({log.path})", markup=False)
                return done["result"]
            scorer = new_scorer()
            start = time.perf_counter()
            result = _score_settings(
                sampler,
                settings,
                scorer,
                num=n,
                seed=seed,
                batch_size=batch_size,
                dist=dist,
                console=console,
                label=label,
            )
            result["seconds"] = round(time.perf_counter() - start, 3)
            if dist.is_main:
                log.append(
                    {
                        "key": key,
                        "result": result,
                        "checkpoint": str(checkpoint.path),
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    }
                )
            return result

        total = len(settings_list)
        rows: list[dict[str, Any]] = [dict(s.describe()) for s in settings_list]
        finalists = list(range(total))
        if screen is not None and total > 1:
            screened = []
            for i, s in enumerate(settings_list):
                r = score(s, screen, f"screen {i + 1}/{total}")
                screened.append(r)
                if goal is not None:
                    rows[i][f"screen_{goal[0]}"] = r[goal[0]]
                else:
                    rows[i].update(screen_fid=r["fid"], screen_is=r["is_mean"])
            finalists = sorted(
                sorted(range(total), key=_badness(screened, list(range(total)), goal))[:confirm]
            )
        for j, i in enumerate(finalists):
            rows[i].update(score(settings_list[i], num, f"eval {j + 1}/{len(finalists)}"))
        best = None
        if metric == "fid" or goal is not None:  # a dataset metric without a goal has no best row
            best = min(finalists, key=_badness(rows, finalists, goal))  # the first of equals, as before
        metrics = None
        if metric == "data":
            names = [k for r in rows for k in r if k not in ("num_images", "seconds")]
            names = [
                k for k in dict.fromkeys(names) if k not in SETTING_COLUMNS and not k.startswith("screen_")
            ]
            metrics = {k: k for k in names}
        title = f"{checkpoint.path} (step {checkpoint.step}), {num} images, seed {seed}"
        extra = {
            "checkpoint": str(checkpoint.path),
            "step": checkpoint.step,
            "seed": seed,
            "num_images": num,
            "screen": screen,
            "reference": reference.source if reference is not None else None,
            "features": base_key["features"],
            "metric": metric,
        }
        path = Path(out) if out else checkpoint.run_dir / "eval" / f"step_{checkpoint.step:08d}.json"
        if dist.is_main:
            out_console.print(render_table(rows, best, title, metrics))
            save_table(rows, best, title, path, extra, metrics)
            console.print(f"results: {path}", markup=False)
        return {**extra, "rows": rows, "best": rows[best] if best is not None else None, "path": str(path)}
    finally:
        if owned:
            distributed.teardown()


def evaluate_samples(
    source: str | Path,
    *,
    batch_size: int,
    reference_path: str | None,
    weights: str | None,
    out: str | None,
    console: Console,
    out_console: Console,
) -> dict[str, Any]:
    """Score existing samples (a folder of images or an ADM ``.npz``); the JSON goes to ``out``
    (default: ``<source>.eval.json`` beside the source)."""
    source = Path(source)
    if out is not None and not str(out).endswith(".json"):
        raise GenError(f"--out {out}: the results file must end in .json")
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    extractor = feature_extractor(weights, device)
    reference = (
        load_reference(reference_path, extractor, device=device, batch_size=batch_size)
        if reference_path
        else None
    )
    if reference is None:
        console.print("no --ref given: FID is skipped, only the Inception Score is computed", markup=False)
    scorer = Scorer(extractor, reference, device=device)
    with progress_bar(console, True, "score") as progress:
        task = progress.add_task("score", total=count_images(source))
        for batch in image_batches(source, batch_size):
            scorer.add(batch)
            progress.update(task, advance=len(batch))
    row = {"source": str(source), **scorer.compute()}
    path = Path(out) if out else source.parent / f"{source.name.removesuffix('.npz')}.eval.json"
    extra = {"reference": reference.source if reference else None, "features": extractor_id(extractor)}
    out_console.print(render_table([row], 0, str(source)))
    save_table([row], 0, str(source), path, extra)
    console.print(f"results: {path}", markup=False)
    return {**extra, "rows": [row], "path": str(path)}


# -- the commands -----------------------------------------------------------------------------------


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
        "FID and Inception Score. `gen eval RUN --ref STATS.npz` scores a checkpoint (comma lists sweep); "
        "`gen eval SAMPLES.npz|FOLDER --ref ...` scores saved samples; `gen eval ref-stats SRC OUT.npz` "
        "computes reference statistics."
    ),
    no_args_is_help=True,
)


def _is_checkpoint(path: Path) -> bool:
    return (path / "meta.json").is_file() or (path / "checkpoints").is_dir()


def _intervals(values: list[str] | None) -> list[tuple[float, float]] | None:
    if not values:
        return None
    return [parse_interval(part) for text in values for part in text.split(";") if part.strip()]


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
    cfg: str | None = typer.Option(
        None, "--cfg", help="Guidance scale(s), comma-separated (default: the recipe's)."
    ),
    ema: str | None = typer.Option(
        None, "--ema", help="EMA decay(s) or 'none', comma-separated (default: the first EMA)."
    ),
    steps: str | None = typer.Option(None, "--steps", help="Solver step count(s), comma-separated."),
    sampler: str | None = typer.Option(None, "--sampler", help="Sampler name(s), comma-separated."),
    interval: list[str] | None = typer.Option(
        None,
        "--interval",
        help="Guidance interval LOW,HIGH; repeat the option (or separate with ';') to sweep.",
    ),
    seed: int = typer.Option(0, "--seed", help="Sample i depends only on (seed, i)."),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Images per forward pass and process."),
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
        help="fid: FID (with --ref) and IS; data: the dataset's own metric (e.g. the shapes oracle).",
    ),
) -> None:
    """Score a checkpoint (generating --num images per combination) or saved samples."""
    if batch_size < 1 or seed < 0 or num < 2:
        raise GenError(f"need --batch-size >= 1, --seed >= 0 and --num >= 2; got {batch_size}, {seed}, {num}")
    _check_metric(metric)
    path = Path(source)
    sweep = {
        "--cfg": cfg,
        "--ema": ema,
        "--steps": steps,
        "--sampler": sampler,
        "--interval": interval,
        "--screen": screen,
    }
    if not _is_checkpoint(path):
        if not path.exists():
            raise GenError(f"{path} does not exist; give a run directory, a checkpoint, a folder or an .npz")
        given = [k for k, v in sweep.items() if v] + (["--metric data"] if metric == "data" else [])
        if given:
            raise GenError(f"{', '.join(given)} apply to a checkpoint; {path} holds samples")
        evaluate_samples(
            path,
            batch_size=batch_size,
            reference_path=ref,
            weights=inception_weights,
            out=out,
            console=err_console,
            out_console=out_console,
        )
        return
    samplers = parse_list(sampler, str, "--sampler")
    if samplers:
        from gen.registry import get_registry

        for s in samplers:
            get_registry("sampler").get(s)
    checkpoint = load_checkpoint(path)
    settings_list = combinations(
        checkpoint,
        emas=parse_list(ema, str, "--ema"),
        cfgs=parse_list(cfg, float, "--cfg"),
        intervals=_intervals(interval),
        steps=parse_list(steps, int, "--steps"),
        samplers=samplers,
    )
    evaluate_checkpoint(
        path,
        checkpoint=checkpoint,
        settings_list=settings_list,
        num=num,
        seed=seed,
        batch_size=batch_size,
        reference_path=ref,
        weights=inception_weights,
        screen=screen,
        confirm=confirm,
        out=out,
        force=force,
        console=err_console,
        out_console=out_console,
        metric=metric,
    )


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
) -> None:
    """Compute FID reference statistics (mu, sigma of the Inception pool features) of real images."""
    if not out.endswith(".npz"):
        raise GenError(f"{out}: the statistics file must end in .npz")
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    extractor = feature_extractor(inception_weights, device)
    stats = reference_stats_of(image_batches(src, batch_size), extractor, device=device, source=str(src))
    path = stats.save(out)
    err_console.print(
        f"wrote {path}: mu {stats.mu.shape}, sigma {stats.sigma.shape} from {stats.num_samples} images",
        markup=False,
    )


__all__ = [
    "EvalGroup",
    "ResultLog",
    "combinations",
    "eval_app",
    "evaluate_checkpoint",
    "evaluate_samples",
    "render_table",
]
