"""ITC: image-text contrastive loss (ALBEF, without the momentum queue).

Logits are cosine similarities of unit embeddings divided by the learnable temperature (which
lives in `ASHNet.itc` and is clamped there to ALBEF's 0.001..0.5). The loss is the mean of the
image-to-text and text-to-image cross-entropies; with `image_ids`, every caption of the same
image in the batch is a positive (uniform soft targets), not a negative.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ash_neuro.losses.base import Loss
from ash_neuro.losses.targets import (
    distributed,
    gather_batch,
    gathered_positives,
    positive_mask,
    soft_cross_entropy,
)
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass


def image_text_logits(image_embed: Tensor, text_embed: Tensor, temperature: Tensor) -> Tensor:
    """`(B, E)` x `(B, E)` unit embeddings -> image-to-text logits `(B, B)`."""
    return image_embed @ text_embed.T / temperature


def itc_loss_from_logits(logits_i2t: Tensor, image_ids: Tensor | None = None) -> Tensor:
    """Symmetric ITC cross-entropy of image-to-text logits `(B, B)` (row i: image i)."""
    positives = positive_mask(logits_i2t.shape[0], image_ids, logits_i2t.device)
    i2t = soft_cross_entropy(logits_i2t, positives)
    t2i = soft_cross_entropy(logits_i2t.T, positives.T)
    return (i2t + t2i) / 2


def itc_loss(
    image_embed: Tensor,
    text_embed: Tensor,
    temperature: Tensor | float,
    image_ids: Tensor | None = None,
) -> Tensor:
    """ITC loss of unit embeddings `(B, E)`, pair i = (image i, text i)."""
    return itc_loss_from_logits(image_text_logits(image_embed, text_embed, temperature), image_ids)


def gathered_itc_loss(
    image_embed: Tensor,
    text_embed: Tensor,
    temperature: Tensor | float,
    image_ids: Tensor | None = None,
) -> Tensor:
    """ITC of this process's images and texts `(B, E)` against every process's texts and
    images (`targets.gather_batch`); one process: `itc_loss`'s value."""
    all_images, _ = gather_batch(image_embed)
    all_texts, _ = gather_batch(text_embed)
    own, every = gathered_positives(image_ids, len(image_embed), image_embed.device)
    positives = own[:, None] == every[None, :]
    i2t = soft_cross_entropy(image_embed @ all_texts.T / temperature, positives)
    t2i = soft_cross_entropy(text_embed @ all_images.T / temperature, positives)
    return (i2t + t2i) / 2


@LOSSES.register("itc")
class ImageTextContrastive(Loss):
    needs = frozenset({"image_embed", "text_embed"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        if distributed():  # negatives from every process's batch
            image, text = forward.visual.image_embed, forward.text.text_embed
            temperature = forward.model.itc.temperature()
            return gathered_itc_loss(image, text, temperature, forward.image_ids)
        return itc_loss_from_logits(forward.itc_logits, forward.image_ids)
