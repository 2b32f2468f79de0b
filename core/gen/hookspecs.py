"""The hooks a ``gen`` plugin can implement: one ``register_<kind>(register)`` hook per registry.

A plugin is a module (or object) exposed through the entry-point group ``gen``; it implements any of
these hooks with the `gen.hookimpl` marker::

    import gen

    @gen.hookimpl
    def register_backbones(register):
        register("mlp", build_mlp, config=MLPConfig, description="A plain ReLU MLP.")

Each ``register`` callable has the signature
``register(name, factory, *, config=None, description=None)``: ``factory(config)`` returns the
component, ``config`` is an attrs config class (built from `gen.field`) or ``None`` for a
component without options, and ``description`` defaults to the first line of the factory's docstring.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("gen")
hookimpl = pluggy.HookimplMarker("gen")


@hookspec
def register_backbones(register):
    """Register backbones: ``factory(config) -> nn.Module`` with ``forward(z, t, y)``.

    ``z`` has shape (B, *shape) where shape is the dataset's sample shape (latents under an autoencoder);
    ``t`` has shape (B,): in [0, 1] (0 = noise, 1 = data) on the flow, the integer step 0..T-1 as a float
    under the ``ddpm`` process (T = noise), passed on as DiT does; ``y`` holds class ids of shape (B,), where ``num_classes`` is the
    null label. The output has the shape of ``z``.
    """


@hookspec
def register_predictions(register):
    """Register prediction parameterizations (what the network output means: x, eps, v, ...)."""


@hookspec
def register_schedules(register):
    """Register training-time schedules: ``factory(config)`` has ``sample(n, generator) -> t`` in (0, 1)."""


@hookspec
def register_samplers(register):
    """Register samplers of a process: ``register(name, factory, process="flow")`` says which process's
    models a sampler samples (a flow solver is a callable ``(velocity_fn, z0, timesteps) -> z1``; a
    ``ddpm`` sampler runs its chain); a model of another process refuses it by name."""


@hookspec
def register_time_grids(register):
    """Register sampling time grids: ``factory(config)`` is a callable ``steps -> t`` giving the
    (steps + 1,) float64 grid from 0 (noise) to 1 (data), strictly increasing."""


@hookspec
def register_datasets(register):
    """Register datasets: ``factory(config)`` returns a `gen.Dataset`."""


@hookspec
def register_processes(register):
    """Register denoising processes: ``factory(config)`` returns a `gen.Process`, which owns a model's
    loss and sampling (``flow``: `gen_flow`; ``ddpm``: `gen_ddpm`); ``config`` is its
    ``[objective.process]`` table."""


@hookspec
def register_autoencoders(register):
    """Register autoencoders: ``factory(config)`` returns a `gen.protocols.Autoencoder` (``identity``
    for pixel space; a VAE for latent-space models such as DiT and SiT)."""


@hookspec
def register_loggers(register):
    """Register training loggers: ``factory(config)`` returns a `gen.Logger`, which receives a run's
    metrics lines, sample grids and scores on rank 0 (``train.loggers`` selects them; ``jsonl`` is always on)."""


@hookspec
def register_exporters(register):
    """Register export formats of ``gen export RUN OUT --format NAME``: ``factory(config)`` returns a
    `gen.Exporter`, which writes one set of a trained model's weights as a folder another library loads
    (``diffusers``: `gen_dit`'s DiT as a ``DiTPipeline``). The ``gen`` format is the core's own."""


@hookspec
def register_loss_terms(register):
    """Register loss terms, set in a recipe as ``[[loss_terms]]`` tables: ``factory(config)`` returns a
    `gen.LossTerm`, which adds ``weight × value`` per sample to the process's loss where ``t`` lies in
    the table's ``t_range``, seeing the batch, the prediction of the clean sample and the backbone's
    hidden states at the layers it names (``repa``, ``lpips``: `gen_losses`)."""


@hookspec
def register_commands(app):
    """Add commands to the ``gen`` Typer app (``app.command()(fn)`` or ``app.add_typer(sub)``)."""
