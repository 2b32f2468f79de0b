"""``gen example solver-error``: how accurate is each registered sampler on an exactly solvable flow?

The flow is the one gen's linear path induces between Gaussians: noise ε ~ N(0, σ²) at t = 0 and data
x ~ N(μ, s²) at t = 1 (per coordinate). ``z_t = t x + (1 - t) ε`` has variance
``var_t = t² s² + (1 - t)² σ²``, its velocity field is ``v(z, t) = μ + (t s² - (1 - t) σ²) / var_t ·
(z - t μ)``, and the ODE carries ``z0`` to ``z1 = μ + (s / σ) z0`` exactly. Halving the step size
divides the error of an order-p solver by about 2^p.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import gen
import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import torch

example_app = typer.Typer(
    help="Commands of the gen-example-plugin package.", no_args_is_help=True
)


def gaussian_velocity(mean: float, data_std: float, noise_std: float) -> gen.VelocityFn:
    """The exact velocity field of the linear path from N(0, noise_std²) to N(mean, data_std²)."""
    import torch

    def velocity_fn(z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=z.dtype)
        var = t**2 * data_std**2 + (1 - t) ** 2 * noise_std**2
        return mean + (t * data_std**2 - (1 - t) * noise_std**2) / var * (z - t * mean)

    return velocity_fn


def solver_errors(
    name: str, steps: list[int], *, mean: float = 1.5, data_std: float = 0.5
) -> list[dict]:
    """Max error at t = 1 of the sampler ``name`` for each number of steps, with its evaluation count.

    Returns:
        One dict per entry of ``steps``: ``steps``, ``evaluations``, ``max_error`` and ``order`` (the
        observed order against the previous entry, or None).
    """
    import torch

    solver = gen.build("sampler", name)
    # (61, 1) noise with std 1
    z0 = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)[:, None]
    exact = mean + data_std * z0  # (61, 1)
    rows: list[dict] = []
    for n in steps:
        calls = 0
        field = gaussian_velocity(mean, data_std, 1.0)

        def counted(
            z: torch.Tensor, t: torch.Tensor | float, field=field
        ) -> torch.Tensor:
            nonlocal calls
            calls += 1
            return field(z, t)

        z1 = solver(counted, z0, torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64))
        error = float((z1 - exact).abs().max())
        order = None
        if rows and error > 0 and rows[-1]["max_error"] > 0:
            order = math.log(rows[-1]["max_error"] / error) / math.log(
                n / rows[-1]["steps"]
            )
        rows.append(
            {"steps": n, "evaluations": calls, "max_error": error, "order": order}
        )
    return rows


# --8<-- [start:command]
@example_app.command("solver-error")
def solver_error_command(
    steps: list[int] = typer.Option(
        [8, 16, 32], "--steps", help="Step counts to try (repeat the option)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON instead of a table."
    ),
) -> None:
    """Integrate an exactly solvable flow with each sampler; print errors and orders."""
    if not steps or min(steps) < 1:
        raise gen.GenError(
            "--steps must be positive integers, e.g. --steps 8 --steps 16"
        )
    steps = sorted(set(steps))
    # Only the flow's solvers integrate a velocity field; every sampler says at
    # registration which process it samples (not: DDPM chains, MeanFlow's steps).
    samplers = gen.get_registry("sampler")
    flow = [c.name for c in samplers if c.process in (None, "flow")]
    results = {name: solver_errors(name, steps) for name in flow}
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    table = Table(title="samplers on the Gaussian flow N(0, 1) -> N(1.5, 0.5²)")
    for column in ("sampler", "steps", "evaluations", "max error", "observed order"):
        table.add_column(column)
    for name, rows in results.items():
        for row in rows:
            order = "-" if row["order"] is None else f"{row['order']:.2f}"
            table.add_row(
                name,
                str(row["steps"]),
                str(row["evaluations"]),
                f"{row['max_error']:.2e}",
                order,
            )
    Console().print(table)


# --8<-- [end:command]
