"""H-ITC: hierarchical image-text contrastive loss (ViCHA, arXiv 2208.13628).

The weighted sum over aligned layer pairs l of ITC between that pair's image and text
embeddings (`models/hierarchical_alignment.py`):

    L_hitc = sum_l w_l * ITC(image_l, text_l)

at the model's ITC temperature (ViCHA shares it), with the same positives (every caption of the
same image) and, under torchrun, the same negatives from every process's batch as ITC
(`losses/itc.py`'s `gathered_itc_loss`). One pair with weight 1 is plain ITC. The per-pair
weights are `loss.hitc_layer_weights`; the loss's own weight `loss.weights.hitc` (ViCHA's
`ita_hidden_weight`, 0.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from torch import Tensor

from ash_neuro.losses.base import Loss
from ash_neuro.losses.itc import gathered_itc_loss
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass


def hierarchical_itc_loss(
    pairs: Sequence[tuple[Tensor, Tensor]],
    weights: Sequence[float],
    temperature: Tensor | float,
    image_ids: Tensor | None = None,
) -> Tensor:
    """sum_l weights[l] * ITC(pairs[l]) for unit embeddings `(B, E)` (image l, text l)."""
    if not pairs or len(pairs) != len(weights):
        raise ValueError(f"{len(pairs)} layer pairs and {len(weights)} weights: give one each")
    losses = [gathered_itc_loss(image, text, temperature, image_ids) for image, text in pairs]
    return sum(weight * loss for weight, loss in zip(weights, losses, strict=True))


@LOSSES.register("hitc")
class HierarchicalImageTextContrastive(Loss):
    needs = frozenset({"layer_embeds", "text"})
    component = "model.alignment.kind"

    def __call__(self, forward: ForwardPass) -> Tensor:
        model = forward.model
        pairs = model.alignment(forward.visual.features, forward.text.features)
        weights, temperature = self.cfg.hitc_layer_weights, model.itc.temperature()
        return hierarchical_itc_loss(pairs, weights, temperature, forward.image_ids)
