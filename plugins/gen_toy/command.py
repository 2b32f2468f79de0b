"""``gen toy run``: the paper's toy grid (JiT Figure 2) in one command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # imported where used: `gen --help` builds this command without torch
    from gen_toy.experiment import CellResult

toy_app = typer.Typer(
    help="The paper's toy experiment: a 2-D spiral embedded in D dimensions.", no_args_is_help=True
)
console = Console(stderr=True, highlight=False, soft_wrap=True)


@toy_app.command("run")
def run_command(
    dims: str = typer.Option(
        "2,8,16,512", "--dims", help="Ambient dimensions D (the columns), comma-separated."
    ),
    predictions: str = typer.Option(
        "x,eps,v", "--predictions", help="Predictions (the rows), comma-separated registered names."
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Training steps per cell (default: the recipe's train.steps)."
    ),
    samples: int = typer.Option(2000, "--samples", min=1, help="Samples drawn (and scored) per cell."),
    out: Path = typer.Option(Path("runs/toy"), "--out", help="Output directory."),
    recipe: Path = typer.Option(
        Path("recipes/toy/manifold.toml"), "--recipe", help="The base recipe of every cell."
    ),
    jobs: int = typer.Option(
        1, "--jobs", min=1, help="Cells trained at the same time (CPU threads are split)."
    ),
) -> None:
    """Train one model per (prediction, D) cell with the v-loss and draw their samples' 2-D projections.

    Writes OUT/toy_grid.png (rows: prediction, columns: D), OUT/samples.npz (key "x_D512": the samples
    (N, D); "x_D512_2d": their projections on the data plane), OUT/scores.json (each cell's mean distance
    to the spiral) and the runs in OUT/runs/<prediction>_D<dim>.
    """
    from gen_toy.experiment import parse_list, run_grid

    dim_list = parse_list(dims, what="dims", convert=int)
    pred_list = parse_list(predictions, what="predictions")

    def done(r: CellResult) -> None:
        loss = f"{r.final_loss:.4f}" if r.final_loss is not None else "-"
        cpu = f" ({r.train_cpu_seconds:.0f} s CPU)" if r.train_cpu_seconds is not None else ""
        console.print(
            f"{r.cell.key:>10}: trained in {r.train_seconds:.0f} s{cpu}, loss {loss}, "
            f"spiral distance {r.scores['spiral_distance']:.4f}"
        )

    console.print(
        f"toy grid: {len(pred_list)} predictions x {len(dim_list)} dimensions from {recipe}, {jobs} at a time"
    )
    report = run_grid(
        recipe,
        predictions=pred_list,
        dims=dim_list,
        steps=steps,
        out=out,
        num_samples=samples,
        jobs=jobs,
        on_done=done,
    )
    table = Table(title=f"mean distance to the spiral ({samples} samples per cell)")
    table.add_column("prediction")
    for d in dim_list:
        table.add_column(f"D = {d}", justify="right")
    by_key = {c["key"]: c for c in report["cells"]}
    for p in pred_list:
        table.add_row(p, *(f"{by_key[f'{p}_D{d}']['spiral_distance']:.4f}" for d in dim_list))
    console.print(table)
    console.print(
        f"done in {report['total_seconds']:.0f} s: {out / 'toy_grid.png'}, samples.npz, scores.json"
    )
