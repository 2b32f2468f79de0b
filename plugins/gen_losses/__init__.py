"""Extra terms of the training loss (``[[loss_terms]]``): representation alignment and perceptual terms.

- ``repa``: REPA (Yu et al., 2024), a projector MLP from the backbone's tokens after ``layer`` blocks to a
  frozen DINOv2's patch features, negative cosine similarity (`gen_losses.repa`);

Every term is a `gen.LossTerm`; docs/loss_terms.md has the formulas, their sources and how to write one.
"""

from __future__ import annotations

import gen


@gen.hookimpl
def register_loss_terms(register):
    from gen_losses.repa import RepaConfig, RepaTerm

    register(
        "repa",
        RepaTerm,
        config=RepaConfig,
        description="REPA: align the backbone's tokens after `layer` blocks with a frozen DINOv2's patch "
        "features (negative cosine through a trained projector).",
    )
