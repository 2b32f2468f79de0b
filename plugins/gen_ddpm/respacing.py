"""Sampling a T-step diffusion with fewer steps (Nichol & Dhariwal, 2021, section 4; ADM's ``respace``).

A subset S = {s_0 < s_1 < ... < s_{K−1}} of the original steps defines a K-step diffusion with the same
marginals at the kept steps: its betas are ``β'_k = 1 − ᾱ_{s_k} / ᾱ_{s_{k−1}}`` (ᾱ_{s_{−1}} = 1), and the
network still sees the original integer timestep s_k at step k.

`space_timesteps` chooses S as the published code does:

- ``"ddimN"``: the DDIM paper's (Song et al., 2021) stride spacing, ``range(0, T, stride)`` with the
  smallest integer stride giving exactly N steps (``ddim8`` of 1000: 0, 125, ..., 875);
- ``"N"`` or ``"a,b,c"``: the T steps cut into equal sections (the first ``T mod len`` one step longer),
  each section strided to its count with fractional steps rounded (Python's ``round``): ``"250"`` of 1000
  keeps 0, 4, 8, ..., 999.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from gen_ddpm.diffusion import GaussianDiffusion

__all__ = ["respace", "space_timesteps"]


def _stride_steps(num_timesteps: int, count: int) -> list[int]:
    # The stride loop runs up to T (the published loop stops at T - 1, so that "ddim1" fails there;
    # every count it accepts gives the same steps here).
    for stride in range(1, num_timesteps + 1):
        if len(range(0, num_timesteps, stride)) == count:
            return list(range(0, num_timesteps, stride))
    raise ValueError(f"cannot take exactly {count} of {num_timesteps} steps with an integer stride")


def space_timesteps(num_timesteps: int, section_counts: str | Sequence[int]) -> list[int]:
    """The sorted original steps to keep (see the module docstring).

    Args:
        num_timesteps: T, the steps of the original process.
        section_counts: ``"ddimN"``, ``"N"``, ``"a,b,c"`` or a sequence of counts per section.

    Raises:
        ValueError: when the counts cannot be taken (a section holds fewer steps than its count, or no
            integer stride gives N).
    """
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            return _stride_steps(num_timesteps, int(section_counts[len("ddim") :]))
        section_counts = [int(c) for c in section_counts.split(",")]
    counts = list(section_counts)
    if not counts or any(c < 1 for c in counts):
        raise ValueError(f"section counts must be positive integers, got {counts}")
    size_per, extra = divmod(num_timesteps, len(counts))
    start, steps = 0, []
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(f"cannot divide a section of {size} steps into {count}")
        frac_stride = 1 if count <= 1 else (size - 1) / (count - 1)
        cur = 0.0
        for _ in range(count):
            steps.append(start + round(cur))
            cur += frac_stride
        start += size
    return sorted(set(steps))


def respace(diffusion: GaussianDiffusion, use_timesteps: Iterable[int]) -> GaussianDiffusion:
    """The diffusion over the kept steps of ``diffusion`` (its variance type kept; the network sees the
    original timesteps through ``timestep_map``).

    Args:
        diffusion: The original T-step diffusion (itself not respaced).
        use_timesteps: Steps of the original process to keep (any order; duplicates ignored).
    """
    keep = sorted(set(int(s) for s in use_timesteps))
    if not keep or keep[0] < 0 or keep[-1] >= diffusion.num_timesteps:
        raise ValueError(f"timesteps to keep must lie in 0..{diffusion.num_timesteps - 1}")
    abar = diffusion.alphas_cumprod.numpy()
    last, betas = 1.0, []
    for s in keep:
        betas.append(1.0 - abar[s] / last)
        last = abar[s]
    original = diffusion.timestep_map.tolist()
    return GaussianDiffusion(
        np.asarray(betas, dtype=np.float64),
        variance=diffusion.variance,
        timestep_map=[original[s] for s in keep],
    )
