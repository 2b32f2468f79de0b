"""Benchmark any registered backbone: forward + backward throughput and peak memory.

Example:
    python benchmarks/backbone.py --backbone jit --preset B/16 --resolution 256 --batch-size 8 --steps 10
    python benchmarks/backbone.py --backbone jit --preset L/16 --bf16 --compile   # on a GPU

The backbone is built with ``gen.build`` exactly as a recipe section would build it; ``--preset``,
``--resolution`` (``input_size``) and ``--compile`` are passed only when the backbone's config has those
fields, and ``--set key=value`` (TOML values) sets any other field. One step is a forward pass, a mean
squared error against a random target and a backward pass; the first ``--warmup`` steps (which include
compilation) are not timed. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA and the process's
peak resident set size (``getrusage``) on the CPU.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Any

import attrs
import torch

import gen

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["depth=4", "mlp=gelu"]`` -> ``{"depth": 4, "mlp": "gelu"}`` (TOML values, else strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --set expects key=value, got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = text
    return out


def build_backbone(args: argparse.Namespace) -> tuple[torch.nn.Module, Any]:
    """Build the backbone and return it with its resolved config."""
    component = gen.get_registry("backbone").get(args.backbone)
    names = {f.name for f in attrs.fields(component.config)} if component.config is not None else set()
    fields = parse_set(args.set)
    wanted = {"preset": args.preset, "input_size": args.resolution, "compile": args.compile or None}
    for key, value in wanted.items():
        if value is None:
            continue
        if key not in names:
            raise SystemExit(f"error: backbone {args.backbone!r} has no {key!r} field; drop the option")
        fields[key] = value
    config = gen.resolve_config("backbone", args.backbone, **fields)
    return gen.build("backbone", args.backbone, **fields), config


def sample_shape(config: Any) -> tuple[int, ...]:
    """The shape of one input sample, read from the config (image or vector backbone)."""
    if hasattr(config, "input_dim"):
        return (config.input_dim,)
    size = config.input_size
    return (getattr(config, "in_channels", 3), size, size)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="jit", help="registered backbone name")
    parser.add_argument(
        "--preset", default=None, help="size preset, e.g. B/16 (backbones with a preset field)"
    )
    parser.add_argument("--resolution", type=int, default=None, help="image size (input_size)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--compile", action="store_true", help="set the backbone's compile field")
    parser.add_argument("--bf16", action="store_true", help="run under bfloat16 autocast")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="other config fields")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    torch.manual_seed(0)
    net, config = build_backbone(args)
    net = net.to(device).train()
    params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    shape = sample_shape(config)
    num_classes = getattr(config, "num_classes", 0)
    B = args.batch_size
    z = torch.randn(B, *shape, device=device)
    t = torch.rand(B, device=device)
    y = torch.randint(0, num_classes + 1, (B,), device=device)
    target = torch.randn_like(z)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            out = net(z, t, y)
        loss = (out.float() - target).pow(2).mean()
        loss.backward()
        net.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    elapsed = time.perf_counter() - start

    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
        mem_kind = "max_memory_allocated"
    else:
        # ru_maxrss is in KiB on Linux and in bytes on macOS.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mib = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
        mem_kind = "peak RSS of the process"
    result = {
        "params_m": params / 1e6,
        "images_per_s": args.steps * B / elapsed,
        "s_per_step": elapsed / args.steps,
        "peak_mem_mib": peak_mib,
    }
    what = f"{args.backbone}" + (f" {args.preset}" if args.preset else "")
    print(
        f"{what}: {shape} batch {B}, {device.type}"
        f"{' bf16' if args.bf16 else ''}{' compiled' if args.compile else ''}, "
        f"{torch.get_num_threads()} threads, {params / 1e6:.1f}M trainable parameters"
    )
    print(
        f"forward+backward: {result['images_per_s']:.2f} images/s ({result['s_per_step'] * 1000:.0f} ms/step "
        f"over {args.steps} steps); peak memory {peak_mib:.0f} MiB ({mem_kind})"
    )
    return result


if __name__ == "__main__":
    main()
