"""The ``wandb`` logger: Weights & Biases, with the run's files under ``RUN/wandb``.

Scalars (each metrics line, named as TensorBoard names them), the sample grids as images and the scores
(``eval/<name>``, also in the run's summary) go to one W&B run per run directory: its id is kept in
``RUN/wandb/gen_run_id``, so that ``gen train RUN --resume`` continues the same W&B run (``resume =
"allow"``). ``mode = "offline"`` (or ``WANDB_MODE=offline``) writes everything to ``RUN/wandb`` without a
network, to upload later with ``wandb sync RUN/wandb/offline-run-*``. Needs ``pip install 'gen[wandb]'``.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

import attrs

import gen
from gen_loggers.scalars import scalars

ID_FILE = "gen_run_id"  # in RUN/wandb: the W&B run id of this run directory


@attrs.frozen(kw_only=True)
class WandbConfig:
    """Options of the ``wandb`` logger (``{name = "wandb", project = "jit", ...}`` in ``train.loggers``)."""

    project: str = gen.field("gen", doc="The W&B project the run goes to.")
    entity: str | None = gen.field(None, doc="The W&B entity (user or team); None = your default entity.")
    name: str | None = gen.field(None, doc="The run's display name; None = the run directory's name.")
    group: str | None = gen.field(None, doc="A group to show runs together (an ablation, a sweep).")
    tags: tuple[str, ...] = gen.field((), doc="Tags of the run.")
    mode: Literal["online", "offline", "disabled"] | None = gen.field(
        None,
        doc="online; offline (files in RUN/wandb only, upload later with wandb sync); disabled; None = "
        "WANDB_MODE if set, else online.",
    )


def build_wandb(config: WandbConfig) -> WandbLogger:
    """Weights & Biases: scalars, sample grids, scores; offline files in RUN/wandb."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise gen.GenError(
            "the wandb logger (train.loggers) needs the wandb package: pip install 'gen[wandb]', or leave "
            "the logger out"
        ) from None
    return WandbLogger(config)


class WandbLogger:
    """Logs one run to Weights & Biases (rank 0).

    Args:
        config: Its options.
    """

    def __init__(self, config: WandbConfig):
        self.config = config
        self.run: Any = None

    def open(self, run: gen.RunInfo) -> None:
        import wandb

        folder = run.files.path / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)
        id_file.write_text(run_id + "\n")
        cfg = self.config
        try:
            self.run = wandb.init(
                project=cfg.project,
                entity=cfg.entity,
                name=cfg.name or run.name,
                group=cfg.group,
                tags=list(cfg.tags) or None,
                config=run.config,
                dir=str(run.files.path),
                id=run_id,
                resume="allow",
                mode=cfg.mode,
                # gen prints its own progress: W&B must not wrap the terminal's streams.
                settings=wandb.Settings(console="off"),
            )
        except Exception as e:  # noqa: BLE001 - no login, no network: one line, nothing trained yet
            raise gen.GenError(
                f"the wandb logger could not start: {type(e).__name__}: {' '.join(str(e).split())}; log in "
                '(wandb login), or log offline (mode = "offline" or WANDB_MODE=offline) and wandb sync later'
            ) from None

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        self.run.log(scalars(values), step=step)

    def image(self, step: int, tag: str, image: Any) -> None:
        import wandb

        self.run.log({tag: wandb.Image(image)}, step=step)

    def scores(self, step: int, scores: dict[str, float], record: dict[str, Any]) -> None:
        named = {f"eval/{name}": value for name, value in scores.items()}
        self.run.log(named, step=step)
        self.run.summary.update(named)

    def close(self, ok: bool) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if ok else 1)
            self.run = None
