"""``[[loss_terms]]``: the recipe's extra terms of the training loss, validated.

Each table names a registered ``loss_term`` and says how much it weighs and where it applies::

    [[loss_terms]]
    name = "repa"            # a registered loss term
    weight = 0.5             # > 0; what the term adds per sample is weight × value
    t_range = [0.0, 1.0]     # it applies to the samples whose t (0 = noise, 1 = data) lies in the range
    layer = 4                # ... and the term's own options (its config class)

``weight`` and ``t_range`` are every term's; the other keys are validated against the term's config
class like any component's, each mistake one `gen.RecipeError` line naming ``[loss_terms.N]`` and the
key. No table means the process's loss alone, bit for bit.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import attrs

from gen.components import ComponentSpec, validate_component
from gen.config import check_value
from gen.errors import RecipeError

KIND = "loss_term"
SECTION = "loss_terms"


@attrs.frozen(kw_only=True)
class LossTermSpec(ComponentSpec):
    """A validated ``[[loss_terms]]`` table: the term (kind, name, config) with its weight and range.

    Attributes:
        weight: What the term's value is multiplied by before it is added to the per-sample loss.
        t_range: (low, high): the term applies where low <= t <= high (0 = noise, 1 = data).
    """

    weight: float = 1.0
    t_range: tuple[float, float] = (0.0, 1.0)


def _number(value: Any, tp: Any, *, section: str, key: str, file: str | None) -> Any:
    try:
        return check_value(value, tp)
    except TypeError as e:
        raise RecipeError(str(e), file=file, section=section, key=key) from None


def validate_term(item: Any, *, section: str, file: str | None) -> LossTermSpec:
    """One ``[[loss_terms]]`` table into a `LossTermSpec`."""
    if not isinstance(item, Mapping):
        raise RecipeError(
            f"must be a table with `name`, `weight` and the term's options, got {item!r}",
            file=file,
            section=section,
        )
    fields = dict(item)
    weight = _number(fields.pop("weight", 1.0), float, section=section, key="weight", file=file)
    if weight <= 0:
        raise RecipeError(f"must be > 0, got {weight}", file=file, section=section, key="weight")
    t_range = fields.pop("t_range", (0.0, 1.0))
    low, high = _number(t_range, tuple[float, float], section=section, key="t_range", file=file)
    if not 0.0 <= low <= high <= 1.0:
        raise RecipeError(
            f"must satisfy 0 <= low <= high <= 1, got {list(t_range)}",
            file=file,
            section=section,
            key="t_range",
        )
    spec = validate_component(KIND, fields, section=section, file=file)
    return LossTermSpec(
        kind=spec.kind,
        name=spec.name,
        config=spec.config,
        explicit=spec.explicit,
        weight=weight,
        t_range=(low, high),
    )


def validate_loss_terms(value: Any, *, section: str, file: str | None) -> tuple[LossTermSpec, ...]:
    """``loss_terms`` (a list of tables: ``[[loss_terms]]``) into `LossTermSpec` s; a term listed twice is
    an error (its value is logged under its name)."""
    if not isinstance(value, (list, tuple)):
        raise RecipeError(
            f"expected a list of tables ([[loss_terms]]), got {type(value).__name__} {value!r}",
            file=file,
            key=section,
        )
    specs = tuple(validate_term(item, section=f"{section}.{i}", file=file) for i, item in enumerate(value))
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RecipeError(
            f"loss term {twice[0]!r} is listed twice; list it once (its value is logged under its name)",
            file=file,
            key=section,
        )
    return specs


def loss_terms_field() -> Any:
    """The ``loss_terms`` field of a recipe."""
    return attrs.field(
        default=(),
        metadata={
            "doc": "Extra terms of the training loss ([[loss_terms]] tables: name, weight, t_range, options).",
            "validate": validate_loss_terms,
        },
    )


def check_process_takes_terms(
    process: Any, name: str, specs: tuple[LossTermSpec, ...], *, file: str | None
) -> None:
    """Raise `gen.RecipeError` when there are terms and the process (registered as ``name``) has a
    ``loss`` without ``view``: it cannot show a term its prediction (`gen.Process.loss`)."""
    if specs and "view" not in inspect.signature(process.loss).parameters:
        raise RecipeError(
            f"the {name} process does not show loss terms its prediction (its loss takes "
            f"no view); remove the loss term(s) {', '.join(s.name for s in specs)}, or use the flow process",
            file=file,
            key=SECTION,
        )


__all__ = [
    "KIND",
    "LossTermSpec",
    "check_process_takes_terms",
    "loss_terms_field",
    "validate_loss_terms",
    "validate_term",
]
