"""The ``[sample]`` options of ``gen sample`` and ``gen eval``, declared once.

Each option is one ``Annotated`` type that both commands put in their signatures, so a flag, its help
and its parsing cannot drift apart. ``gen eval`` sweeps what it is given (comma lists; ``--grid`` and
``--interval`` repeated); ``gen sample`` draws with one value of each (`one`). Every value then goes
through `gen.sampling.config.sample_config_with`, the ``[sample]`` section's own validation.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gen.commands.app import parse_grid, parse_interval, parse_list
from gen.errors import GenError
from gen.plugins import get_registry

Cfg = Annotated[
    str | None,
    typer.Option("--cfg", help="Guidance scale (default: the recipe's); gen eval sweeps a comma list."),
]
Interval = Annotated[
    list[str] | None,
    typer.Option(
        "--interval",
        help="Guidance interval LOW,HIGH (default: the recipe's); gen eval: repeat it (or separate with ';') "
        "to sweep.",
    ),
]
Steps = Annotated[
    str | None,
    typer.Option("--steps", help="Solver steps (default: the recipe's); gen eval sweeps a comma list."),
]
Sampler = Annotated[
    str | None,
    typer.Option(
        "--sampler",
        help="A registered sampler of the model's process (default: the recipe's); gen eval sweeps a comma "
        "list.",
    ),
]
Grid = Annotated[
    list[str] | None,
    typer.Option(
        "--grid",
        help="A time grid: a name (linear, edm) or a TOML table, e.g. '{ name = \"shifted\", shift = 2.0 }' "
        "(default: the recipe's); gen eval: repeat it to sweep.",
    ),
]
SplitInterval = Annotated[
    bool | None,
    typer.Option(
        "--split-interval/--no-split-interval",
        help="Solve each side of the guidance interval's ends on its own (default: the recipe's).",
    ),
]
Ema = Annotated[
    str | None,
    typer.Option(
        "--ema",
        help="EMA weights: a decay, phema_<sigma_rel>, or 'none' for the raw weights (default: the first "
        "EMA); gen eval sweeps a comma list.",
    ),
]
EmaLength = Annotated[
    str | None,
    typer.Option(
        "--ema-length",
        help="A power-EMA length sigma_rel (as --ema phema_<sigma_rel>): reconstructed from the run's "
        "snapshots when the checkpoint does not store it (EDM2's post-hoc EMA); gen eval sweeps a comma list.",
    ),
]
Guidance = Annotated[
    str | None,
    typer.Option(
        "--guidance",
        help="cfg (classifier-free) or auto (autoguidance; default: the recipe's); gen eval sweeps both.",
    ),
]
GuideStep = Annotated[
    str | None,
    typer.Option(
        "--guide-step",
        help="Autoguidance: the step of the guiding checkpoint (implies --guidance auto); gen eval sweeps a "
        "comma list.",
    ),
]
GuideEma = Annotated[
    str | None,
    typer.Option(
        "--guide-ema",
        help="Autoguidance: the guiding model's EMA (a decay, phema_<sigma_rel>, none); gen eval sweeps a "
        "comma list.",
    ),
]
GuideRun = Annotated[
    str | None,
    typer.Option(
        "--guide-run", help="Autoguidance: another run (or checkpoint) of the same data whose model guides."
    ),
]
Seed = Annotated[int, typer.Option("--seed", help="Sample i depends only on (seed, i).")]
BatchSize = Annotated[int, typer.Option("--batch-size", "-b", help="Images per forward pass and process.")]


def intervals(values: list[str] | None) -> list[tuple[float, float]] | None:
    """``--interval`` values (each ``LOW,HIGH``, or several separated by ``;``) as pairs."""
    if not values:
        return None
    return [parse_interval(part) for text in values for part in text.split(";") if part.strip()]


def grids(values: list[str] | None) -> list[str | dict[str, Any]] | None:
    """``--grid`` values as ``[sample] grid`` takes them (a name or a table)."""
    return [parse_grid(g) for g in values] if values else None


def ema_list(ema: str | None, lengths: str | None) -> list[str] | None:
    """``--ema`` and ``--ema-length`` as one list of EMA names (None: neither given, the first EMA)."""
    names = parse_list(ema, str, "--ema") or []
    names += [f"phema_{s!r}" for s in parse_list(lengths, float, "--ema-length") or []]
    return names or None


def guide_options(
    guidance: str | None, steps: str | None, emas: str | None, runs: str | None
) -> list[dict[str, Any]] | None:
    """The ``--guidance``, ``--guide-step``, ``--guide-ema`` and ``--guide-run`` options (comma lists)
    as ``[sample]`` keys, one dict per combination (None: none given, the recipe's guidance). Naming a
    guide implies ``--guidance auto``."""
    import itertools

    kinds = parse_list(guidance, str, "--guidance")
    named = {
        "guide_step": parse_list(steps, int, "--guide-step"),
        "guide_ema": parse_list(emas, str, "--guide-ema"),
        "guide_run": parse_list(runs, str, "--guide-run"),
    }
    if kinds is None and not any(named.values()):
        return None
    out: list[dict[str, Any]] = []
    for kind in kinds or ["auto"]:
        if kind not in ("cfg", "auto"):
            raise GenError(f"--guidance {kind}: use cfg (classifier-free) or auto (autoguidance)")
        if kind == "cfg":
            out.append({"guidance": "cfg"})
            continue
        keys = [k for k, v in named.items() if v]
        for values in itertools.product(*(named[k] for k in keys)):
            out.append({"guidance": "auto", **dict(zip(keys, values, strict=True))})
    return out


def one_setting(
    cfg: str | None,
    interval: list[str] | None,
    steps: str | None,
    sampler: str | None,
    grid: list[str] | None,
    split_interval: bool | None,
) -> dict[str, Any]:
    """The ``[sample]`` keys one sampling takes from these options (``gen sample``, ``gen invert``), None
    where not given; an unknown sampler fails with the known ones."""
    name = one(parse_list(sampler, str, "--sampler"), "--sampler")
    if name is not None:
        get_registry("sampler").get(name)
    return {
        "cfg": one(parse_list(cfg, float, "--cfg"), "--cfg"),
        "cfg_interval": one(intervals(interval), "--interval"),
        "steps": one(parse_list(steps, int, "--steps"), "--steps"),
        "sampler": name,
        "grid": one(grids(grid), "--grid"),
        "split_interval": split_interval,
    }


def one(values: list[Any] | None, option: str) -> Any:
    """The one value ``gen sample`` takes of an option (None: not given)."""
    if values is None:
        return None
    if len(values) != 1:
        raise GenError(f"{option}: gen sample takes one value, got {len(values)} (gen eval sweeps them)")
    return values[0]


__all__ = [
    "BatchSize",
    "Cfg",
    "Ema",
    "EmaLength",
    "Grid",
    "GuideEma",
    "GuideRun",
    "GuideStep",
    "Guidance",
    "Interval",
    "Sampler",
    "Seed",
    "SplitInterval",
    "Steps",
    "ema_list",
    "grids",
    "guide_options",
    "intervals",
    "one",
    "one_setting",
]
