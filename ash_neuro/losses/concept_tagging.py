"""Concept tagging: what teaches the visual-concept tagger (`models/visual_concepts.py`) the
concepts of the training images, in place of ViCHA's CLIP.

Binary cross-entropy of the tagger's logits `(B, V)` against the batch's concept targets
`concepts` `(B, V)` in {0, 1} (each word of the vocabulary present in the image or not, from
`model.concepts.source`; `ash_neuro/data/concepts.py` serves them at pre-training), averaged
over images and words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch.nn.functional as F
from torch import Tensor

from ash_neuro.errors import AshError
from ash_neuro.losses.base import Loss
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass


def concept_tagging_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean binary cross-entropy of logits `(B, V)` against targets `(B, V)` in {0, 1}."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))


@LOSSES.register("concept_tagging")
class ConceptTagging(Loss):
    needs = frozenset({"concept_logits"})
    component = "model.concepts.kind"

    def __call__(self, forward: ForwardPass) -> Tensor:
        targets = forward.batch.get("concepts")
        if targets is None:
            raise AshError(
                "the batch has no concept targets ('concepts'); pre-train with "
                "python -m ash_neuro.train, which serves them for model.concepts"
            )
        return concept_tagging_loss(forward.visual.concept_logits, targets)
