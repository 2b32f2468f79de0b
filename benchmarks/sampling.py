"""Sampling cost against accuracy: every solver x time grid x number of steps, against a reference
solution from the same noise (Heun, 1000 steps on the linear grid, cut at the guidance interval's ends:
the exact solution of the guided field, which jumps there).

Two kinds of velocity field:

- ``RUN`` (a run directory or checkpoint): the trained model, with its recipe's guidance (CFG on the
  interval), its first EMA, balanced labels and the keyed noise of ``gen sample``; the dataset's own
  metric (the ``shapes`` oracle) is reported too when it has one;
- ``--mixture``: an analytic field, data a mixture of narrow Gaussians in D dimensions (sharp modes),
  whose denoiser E[x | z_t] is closed-form; the velocity is formed as the driver forms an
  x-prediction's, ``(x̂ - z) / max(1 - t, t_eps)``. Its metric is the number of samples that end
  nearest another mean than the reference's (mode flips: they set the RMS).

For each setting the table gives the network evaluations per image (NFE; a guided evaluation runs the
conditional and unconditional pass as one batch and counts once), the wall time, the RMS error to the
reference (over all samples and dimensions), the error relative to Heun with 50 linear steps (the
published sampler: 99 evaluations), the median over samples of each sample's error relative to
Heun-50's median (robust to the few samples whose trajectory flips between modes, which dominate the
RMS on a trained model), and the metric. A PNG plots error against NFE.

``--search N`` first fits a ``density`` time grid for ``--search-solver`` with N steps: the log
densities of ten bins in t, by Nelder–Mead (scipy, installed with ``gen[ode]``), on the even samples;
the odd samples validate it. It minimises the mean log ratio of each sample's error to Heun-50's (the
typical sample), or with ``--search-loss rms`` the log ratio of the RMS errors plus that of the medians
where it is above 1: the RMS is set by the rare samples that flip mode, so that loss needs thousands
of samples, and Nelder–Mead stalls on its plateaus: ``--search-method random`` searches it by a (1+1)
evolution strategy instead. The fit is printed as a recipe line and swept as the grid ``fitted``.

``--split-interval`` integrates every setting (and the search) as ``[sample] split_interval = true``
does: piecewise between the guidance interval's ends. Heun-50, the baseline, stays the published one.

Examples:
    python benchmarks/sampling.py runs/demo --num 64 --plot docs/assets/sampling_demo.png
    python benchmarks/sampling.py --mixture --plot docs/assets/sampling_mixture.png
    python benchmarks/sampling.py runs/demo --search 20 --solvers deis_pc --grids fitted,shifted:2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gen
from gen.commands.app import parse_grid
from gen.distributed import DistInfo
from gen.metrics.dataset_metric import DatasetMetric
from gen.sampling.grids import grid_times
from gen.sampling.model import class_labels
from gen_flow.guidance import guided_velocity, interval_pieces, solve_pieces

DEFAULT_GRIDS = "linear,shifted:2,shifted:3,shifted:4,edm"
DEFAULT_SOLVERS = "euler,heun,ab2,dpmpp_2m,dpmpp_3m,deis_pc"
DEFAULT_STEPS = "4,5,6,8,10,12,16,20,25,50"


#: The bins of a fitted density grid: finer at both ends, where trained fields change fastest.
SEARCH_EDGES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 0.95, 1.0)
#: What ``--search-loss`` minimises, as the search's report names it.
LOSS_TEXT = {
    "typical": "mean log error ratio to Heun-50",
    "rms": "log RMS ratio to Heun-50 (+ log median ratio above 1)",
}


def grid_spec(
    text: str, fitted: gen.ComponentSpec | None = None, given: gen.ComponentSpec | None = None
) -> gen.ComponentSpec:
    """``linear``, ``shifted:3`` (shift 3), ``edm`` or ``edm:5`` (rho 5), ``fitted`` (the grid
    ``--search`` fitted) or ``given`` (``--given-grid``) as a time-grid spec."""
    if text in ("fitted", "given"):
        spec = fitted if text == "fitted" else given
        if spec is None:
            raise SystemExit(
                f"grid {text!r} needs {'--search N' if text == 'fitted' else '--given-grid TABLE'}"
            )
        return spec
    name, _, arg = text.partition(":")
    fields = {"shifted": "shift", "edm": "rho"}
    kwargs = {fields[name]: float(arg)} if arg else {}
    config = gen.resolve_config("time_grid", name, **kwargs)
    return gen.ComponentSpec(kind="time_grid", name=name, config=config)


def given_grid(text: str | None) -> gen.ComponentSpec | None:
    """``--given-grid``: a TOML inline table, as ``gen sample --grid`` takes it (the line ``--search``
    prints, without ``grid =``)."""
    if text is None:
        return None
    table = parse_grid(text)
    if isinstance(table, str):
        table = {"name": table}
    name, options = table.get("name", ""), {k: v for k, v in table.items() if k != "name"}
    config = gen.resolve_config("time_grid", name, **options)  # an unknown name is one GenError line
    return gen.ComponentSpec(kind="time_grid", name=name, config=config)


def solver_of(text: str) -> gen.Solver:
    """A sampler by name, with options after a colon: ``heun``, ``deis_pc:order=3``,
    ``deis_pc:order=3;corrector=false`` (values in JSON)."""
    name, _, options = text.partition(":")
    kwargs = {k: json.loads(v) for k, _, v in (o.partition("=") for o in options.split(";") if o)}
    return gen.build("sampler", name, **kwargs)


class Counter(torch.nn.Module):
    """Counts the forward passes of the wrapped network."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, z, t, y):  # noqa: ANN001, ANN201
        self.calls += 1
        return self.net(z, t, y)


# -- the fields -----------------------------------------------------------------------------------


class MixtureField:
    """Data: K Gaussians of std ``width`` at random unit-norm means in D dims, equal weights; noise N(0, I).

    On the linear path z = t x + (1 - t) eps, component k gives z ~ N(t m_k, s_t^2 I) with
    s_t^2 = t^2 w^2 + (1 - t)^2 and E[x | z, k] = m_k + t w^2 / s_t^2 (z - t m_k); E[x | z] weighs the
    components by their posterior probabilities.
    """

    def __init__(self, dim: int, modes: int, width: float, t_eps: float = 0.05, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        means = torch.randn(modes, dim, generator=g, dtype=torch.float64)
        self.means = means / means.norm(dim=1, keepdim=True)  # (K, D)
        self.width, self.t_eps, self.calls = width, t_eps, 0

    def denoise(self, z: torch.Tensor, t: float) -> torch.Tensor:
        var = t * t * self.width**2 + (1 - t) ** 2
        d2 = ((z[:, None, :] - t * self.means[None]) ** 2).sum(-1)  # (B, K)
        w = torch.softmax(-d2 / (2 * var), dim=1)  # (B, K)
        per = self.means[None] + (t * self.width**2 / var) * (
            z[:, None, :] - t * self.means[None]
        )  # (B, K, D)
        return (w[..., None] * per).sum(1)  # (B, D)

    def __call__(self, z: torch.Tensor, t) -> torch.Tensor:  # noqa: ANN001
        """The velocity an x-prediction's sampler forms: (x̂ - z) / max(1 - t, t_eps); ``self.t_eps``
        tells solvers where the clamp begins (gen.DataClampedVelocity), as the driver's field does."""
        self.calls += 1
        t = float(t)
        return (self.denoise(z, t) - z) / max(1 - t, self.t_eps)


def run_field(args: argparse.Namespace) -> dict[str, Any]:
    """What to integrate for a trained run: (velocity_fn, noise, counter, scorer)."""
    sampler = gen.ModelSampler.from_checkpoint(args.run)
    given = {"cfg": args.cfg, "cfg_interval": tuple(args.interval) if args.interval else None}
    settings = sampler.settings(**given)
    sampler.use_weights(settings.ema)  # the first EMA, as gen sample draws by default
    recipe, spec = sampler.recipe, sampler.spec
    labels = torch.as_tensor(class_labels(args.num, spec.num_classes))
    noise = gen.sample_noise(
        range(args.num), spec.shape, seed=args.seed, noise_scale=recipe.objective.noise_scale
    )
    counter = Counter(sampler.model)
    s = settings.sample

    def velocity_of(some_labels: torch.Tensor) -> gen.VelocityFn:
        return guided_velocity(
            counter,
            some_labels,
            prediction=recipe.objective.prediction,
            cfg=s.cfg,
            cfg_interval=s.cfg_interval,
            t_eps=recipe.objective.t_eps,
            num_classes=spec.num_classes,
        )

    velocity = velocity_of(labels)
    dataset = recipe.data.build()
    metric = DatasetMetric(dataset, recipe.data.name) if isinstance(dataset, gen.ScoresSamples) else None

    def score(x: torch.Tensor, reference: torch.Tensor) -> float | None:  # noqa: ARG001
        if metric is None or not spec.is_image:
            return None
        acc = metric.accumulator()
        acc.add(gen.to_uint8(x), labels.numpy())
        result = acc.compute(DistInfo.local())
        return result[metric.goal[0]] if metric.goal else None

    name = f"{args.run} (step {sampler.checkpoint.step}, cfg {s.cfg} on {list(s.cfg_interval)}, {args.num} samples)"

    def cut(times: torch.Tensor) -> list[tuple[torch.Tensor, float]]:
        return interval_pieces(times, s.cfg, s.cfg_interval)

    def subset(idx: torch.Tensor) -> dict[str, Any]:
        return {"velocity": velocity_of(labels[idx]), "noise": noise[idx], "counter": counter, "cut": cut}

    return {"velocity": velocity, "noise": noise, "counter": counter, "score": score, "title": name,
            "subset": subset, "cut": cut}  # fmt: skip


def mixture_field(args: argparse.Namespace) -> dict[str, Any]:
    field = MixtureField(args.dim, args.modes, args.width, seed=args.field_seed)
    noise = torch.randn(
        args.num, args.dim, generator=torch.Generator().manual_seed(args.seed + 1), dtype=torch.float64
    )
    title = f"mixture of {args.modes} Gaussians (std {args.width}) in {args.dim} dims, {args.num} samples"

    def flips(x: torch.Tensor, reference: torch.Tensor) -> int:
        """Samples that end nearest another mean than the reference's: the tail that sets the RMS."""
        return int(
            (torch.cdist(x, field.means).argmin(1) != torch.cdist(reference, field.means).argmin(1)).sum()
        )

    return {
        "velocity": field,
        "noise": noise,
        "counter": field,
        "score": flips,
        "title": title,
        "subset": lambda idx: {"velocity": field, "noise": noise[idx], "counter": field},
    }


# -- the sweep ------------------------------------------------------------------------------------


@torch.no_grad()
def integrate(
    field: dict[str, Any], solver: str, grid: gen.ComponentSpec, steps: int, split: bool = False
) -> tuple[torch.Tensor, int, float]:
    """The samples, the NFE per image and the seconds of one setting; ``split``: piecewise between the
    guidance interval's ends (``[sample] split_interval``, as `gen.sample` does it)."""
    times = grid_times(grid, steps).to(field["noise"].dtype)
    pieces = field["cut"](times) if split and "cut" in field else [(times, None)]
    field["counter"].calls = 0
    start = time.perf_counter()
    x = solve_pieces(solver_of(solver), field["velocity"], field["noise"], pieces)
    return x, field["counter"].calls, time.perf_counter() - start


def rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.double() - b.double()) ** 2).mean().sqrt())


def per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) RMS error of each sample."""
    return ((a.double() - b.double()) ** 2).flatten(1).mean(1).sqrt()


def sweep(field: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    # The reference is cut at the interval's ends: the exact solution of the discontinuous field, to
    # Heun's order (the published rule errs by O(step) at each switch, even with 1000 steps).
    reference, ref_nfe, ref_seconds = integrate(
        field, "heun", grid_spec("linear"), args.reference_steps, split=True
    )
    print(
        f"reference: heun, {args.reference_steps} linear steps split at the guidance interval, {ref_nfe} NFE, "
        f"{ref_seconds:.1f} s",
        file=sys.stderr,
    )
    baseline, _, _ = integrate(field, "heun", grid_spec("linear"), 50)
    base_error, base_median = rms(baseline, reference), float(per_sample(baseline, reference).median())
    fitted = search(field, reference, baseline, args) if args.search else None
    rows = []
    for grid_text in args.grids.split(","):
        grid = grid_spec(grid_text, fitted, args.given)
        for solver in args.solvers.split(","):
            for steps in (int(s) for s in args.steps.split(",")):
                x, nfe, seconds = integrate(field, solver, grid, steps, args.split_interval)
                error = rms(x, reference)
                row = {"solver": solver, "grid": grid_text, "steps": steps, "nfe": nfe, "seconds": round(seconds, 3),
                       "split": args.split_interval,
                       "error": error, "error_vs_heun50": error / base_error, "metric": field["score"](x, reference),
                       "median_vs_heun50": float(per_sample(x, reference).median()) / base_median}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    rows.append({"solver": "heun", "grid": "linear", "steps": 50, "nfe": 99, "error": base_error,
                 "error_vs_heun50": 1.0, "metric": field["score"](baseline, reference), "seconds": None, "baseline": True,
                 "median_vs_heun50": 1.0})  # fmt: skip
    return rows


def search(
    field: dict[str, Any], reference: torch.Tensor, baseline: torch.Tensor, args: argparse.Namespace
) -> gen.ComponentSpec:
    """Fit the log densities of a ``density`` grid (bins ``SEARCH_EDGES``) for ``args.search_solver``
    with ``args.search`` steps on the even samples; report the odd ones. Nelder–Mead stops at a local
    optimum, so it starts from ``shifted:S`` for each S of ``args.search_start`` and keeps the best fit."""
    try:
        from scipy.optimize import minimize
    except ImportError:
        raise SystemExit("--search needs scipy: pip install 'gen[ode]'") from None
    edges = torch.tensor(SEARCH_EDGES, dtype=torch.float64)
    base = per_sample(baseline, reference)
    halves = {"fit": torch.arange(0, len(reference), 2), "check": torch.arange(1, len(reference), 2)}
    parts = {k: field["subset"](idx) for k, idx in halves.items()}

    def spec(log_density) -> gen.ComponentSpec:  # noqa: ANN001
        density = tuple(float(d) for d in torch.as_tensor(log_density).exp())
        config = gen.resolve_config("time_grid", "density", edges=SEARCH_EDGES, density=density)
        return gen.ComponentSpec(kind="time_grid", name="density", config=config)

    def loss(log_density, part: str = "fit") -> float:  # noqa: ANN001
        x, _, _ = integrate(
            parts[part], args.search_solver, spec(log_density), args.search, args.split_interval
        )
        idx = halves[part]
        errors = per_sample(x, reference[idx])
        if args.search_loss == "typical":
            return float((errors / base[idx]).log().mean())
        # rms: the RMS ratio, and the median ratio only where it exceeds 1 (both must be at most 1)
        rms_ratio = errors.square().mean().sqrt() / base[idx].square().mean().sqrt()
        return float(rms_ratio.log() + (errors.median() / base[idx].median()).log().clamp(min=0))

    # shifted:S, t = S u / (1 + (S - 1) u), has the density du/dt = S / (1 + (S - 1) t)^2 at the bins' middles
    mid = (edges[:-1] + edges[1:]) / 2
    t0, fits = time.perf_counter(), []
    for shift in (float(s) for s in str(args.search_start).split(",")):
        start = (shift / (1 + (shift - 1) * mid) ** 2).log().numpy()
        if args.search_method == "random":
            fit = random_search(loss, start, args.search_evals, seed=args.seed)
        else:
            fit = minimize(
                loss, start, method="Nelder-Mead", options={"maxfev": args.search_evals, "xatol": 1e-2}
            )
        print(f"search from shifted:{shift}: {fit.nfev} fits; {LOSS_TEXT[args.search_loss]} (0 = as close) "
              f"{loss(start):+.3f} -> {fit.fun:+.3f} on the fit samples, {loss(start, 'check'):+.3f} -> "
              f"{loss(fit.x, 'check'):+.3f} on the others", file=sys.stderr)  # fmt: skip
        fits.append(fit)
    fit = min(fits, key=lambda f: f.fun)  # the best on the fit samples; the others only report
    print(f"search: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    density = [round(float(d), 3) for d in torch.as_tensor(fit.x).exp() / torch.as_tensor(fit.x).exp().min()]
    print(f'fitted: grid = {{ name = "density", edges = {list(SEARCH_EDGES)}, density = {density} }}')
    return spec(fit.x)


def random_search(loss, start, evals: int, seed: int = 0, step: float = 0.5):  # noqa: ANN001, ANN201
    """A (1+1) evolution strategy: perturb the best point by Gaussian noise of scale ``step``, keep the
    perturbation when it lowers the loss, and shrink the scale by 0.8 every 50 tries.

    For losses that are piecewise constant in places, as the RMS is where a few samples flip mode:
    Nelder–Mead's simplex collapses on the first plateau, random steps of a shrinking size do not.
    """
    from scipy.optimize import OptimizeResult

    rng = np.random.default_rng(seed)
    best_x, best = np.asarray(start, dtype=float), float(loss(start))
    for i in range(1, evals):
        candidate = best_x + rng.normal(0.0, step, best_x.shape)
        value = float(loss(candidate))
        if value < best:
            best_x, best = candidate, value
        if i % 50 == 0:
            step *= 0.8
    return OptimizeResult(x=best_x, fun=best, nfev=evals)


def cheapest(rows: list[dict[str, Any]], ratio: float = 1.0) -> dict[str, Any] | None:
    """The setting with the fewest NFE whose RMS error and median per-sample error are both at most
    ``ratio`` x Heun-50's."""
    ok = [
        r for r in rows if max(r["error_vs_heun50"], r["median_vs_heun50"]) <= ratio and not r.get("baseline")
    ]
    return min(ok, key=lambda r: (r["nfe"], r["error"])) if ok else None


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| solver | grid | steps | NFE | error (RMS) | / Heun-50 | median / Heun-50 | metric | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["grid"], r["solver"], r["nfe"])):
        metric = (
            "-"
            if r["metric"] is None
            else str(r["metric"])
            if isinstance(r["metric"], int)
            else f"{r['metric']:.3f}"
        )
        seconds = "-" if r["seconds"] is None else f"{r['seconds']:.2f}"
        lines.append(
            f"| {r['solver']} | {r['grid']} | {r['steps']} | {r['nfe']} | {r['error']:.2e} | "
            f"{r['error_vs_heun50']:.2f} | {r['median_vs_heun50']:.2f} | {metric} | {seconds} |"
        )
    return "\n".join(lines)


# -- the plot -------------------------------------------------------------------------------------

#: The NFE ticks of the plot's x axis (those within its range).
NFE_TICKS = (4, 5, 8, 10, 16, 20, 32, 50, 99)


def plot(rows: list[dict[str, Any]], path: Path, title: str, series: list[tuple[str, str]]) -> None:
    """Error (log) against NFE (log), one line per (solver, grid) in ``series``; Heun-50 dashed."""
    pts = [r for r in rows if (r["solver"], r["grid"]) in series and r["error"] > 0]
    base = next(r for r in rows if r.get("baseline"))
    lines = []
    for solver, grid in series:
        line = sorted((r["nfe"], r["error"]) for r in pts if (r["solver"], r["grid"]) == (solver, grid))
        if line:
            lines.append(
                gen.PlotLine(label=f"{solver} / {grid}", x=[n for n, _ in line], y=[e for _, e in line])
            )
    x_lo, x_hi = min(r["nfe"] for r in pts), max(max(r["nfe"] for r in pts), 99)
    lines.append(
        gen.PlotLine(
            label="Heun-50 (99 NFE)",
            x=[x_lo, x_hi],
            y=[base["error"]] * 2,
            dashed=True,
            markers=False,
            colour="black",
        )
    )
    panel = gen.PlotPanel(
        lines=lines,
        xlabel="network evaluations per image (NFE)",
        ylabel="RMS error to reference",
        log_x=True,
        log_y=True,
        x_ticks=tuple(n for n in NFE_TICKS if x_lo <= n <= x_hi),
    )
    figure = gen.plot_panels([panel], panel_size=(7.0, 5.4), title=title[:110])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gen.figure_png(figure))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", nargs="?", help="a run directory or checkpoint (omit with --mixture)")
    parser.add_argument("--mixture", action="store_true", help="the analytic mixture field instead of a run")
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--modes", type=int, default=8)
    parser.add_argument("--width", type=float, default=0.02, help="std of each mixture component")
    parser.add_argument("--num", type=int, default=64, help="samples")
    parser.add_argument("--cfg", type=float, help="guidance scale (default: the recipe's)")
    parser.add_argument(
        "--interval", type=float, nargs=2, help="guidance interval LOW HIGH (default: the recipe's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the noise (new noises: another seed)")
    parser.add_argument("--field-seed", type=int, default=0, help="the mixture's means")
    parser.add_argument(
        "--split-interval",
        action="store_true",
        help="integrate every setting (and the search) piecewise at the guidance interval's ends",
    )
    parser.add_argument(
        "--solvers", default=DEFAULT_SOLVERS, help="comma-separated; options after a colon: deis_pc:order=3"
    )
    parser.add_argument(
        "--grids", default=DEFAULT_GRIDS, help="linear, shifted:S, edm or edm:RHO, comma-separated"
    )
    parser.add_argument("--steps", default=DEFAULT_STEPS)
    parser.add_argument("--reference-steps", type=int, default=1000)
    parser.add_argument("--search", type=int, help="fit a density grid with this many steps (grid 'fitted')")
    parser.add_argument("--search-solver", default="deis_pc", help="the solver the grid is fitted for")
    parser.add_argument(
        "--search-start",
        default="2",
        help="the search starts from shifted:S; several S, comma-separated: the best",
    )
    parser.add_argument("--search-evals", type=int, default=200, help="the search's budget of fits")
    parser.add_argument(
        "--search-method",
        choices=("nelder-mead", "random"),
        default="nelder-mead",
        help="nelder-mead (scipy); random: a (1+1) evolution strategy, for the rms loss's plateaus",
    )
    parser.add_argument(
        "--search-loss",
        choices=sorted(LOSS_TEXT),
        default="typical",
        help="typical: each sample's error (robust to mode flips); rms: the RMS error, which the few "
        "flipping samples set (needs thousands of samples), with the median as a floor",
    )
    parser.add_argument(
        "--given-grid",
        help="a grid to sweep as 'given': a TOML inline table, e.g. the line --search printed",
    )
    parser.add_argument("--plot", type=Path, help="PNG of error against NFE")
    parser.add_argument("--json", type=Path, help="all rows as JSON")
    parser.add_argument(
        "--series", default="", help="solver/grid pairs to plot, e.g. heun/linear,dpmpp_3m/shifted:3"
    )
    args = parser.parse_args()
    if args.mixture == (args.run is not None):
        parser.error("give a RUN or --mixture (one of them)")
    try:
        args.given = given_grid(args.given_grid)  # checked before the reference is computed
    except gen.GenError as e:
        parser.error(str(e))
    torch.set_grad_enabled(False)
    field = mixture_field(args) if args.mixture else run_field(args)
    rows = sweep(field, args)
    print(f"## {field['title']}\n")
    print(table(rows))
    for ratio in (1.0, 1.5):
        best = cheapest(rows, ratio)
        if best is not None:
            print(f"\ncheapest within {ratio}x Heun-50's error: {best['solver']} on {best['grid']}, {best['steps']} steps "
                  f"= {best['nfe']} NFE (error {best['error_vs_heun50']:.2f}x, median {best['median_vs_heun50']:.2f}x; metric {best['metric']})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"title": field["title"], "rows": rows}, indent=1))
    if args.plot:
        grids, solvers = args.grids.split(","), args.solvers.split(",")
        default = [(solver, grids[0]) for solver in solvers if solver != "euler"]
        default += [(solvers[-1], grid) for grid in grids[1:]]  # the last solver on every other grid
        series = [tuple(p.split("/")) for p in args.series.split(",") if p] or default
        plot(rows, args.plot, field["title"], series)


if __name__ == "__main__":
    main()
