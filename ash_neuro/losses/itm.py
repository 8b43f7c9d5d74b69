"""ITM: image-text matching with hard negatives mined from the ITC similarities (ALBEF).

For every text a negative image is drawn with probability softmax(ITC logits) over the batch's
images, and for every image a negative text likewise; pairs of the same image (the positive
itself and, with `image_ids`, its other captions) are never drawn. Hard (similar) negatives are
thus drawn most often, not always: a pure argmax would keep feeding the same confusions. The
fusion encoder's [CLS] then goes through a 2-way classifier: the B positives and the (up to) 2B
negatives are one cross-entropy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from ash_neuro.losses.base import Loss
from ash_neuro.losses.targets import positive_mask
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass


def _draw(weights: Tensor) -> Tensor:
    """One column per row drawn ∝ `weights` `(rows, cols)`; -1 for rows with no candidate."""
    valid = weights.sum(dim=1) > 0
    safe = torch.where(valid.unsqueeze(1), weights, torch.ones_like(weights))
    drawn = torch.multinomial(safe, 1).squeeze(1)
    return torch.where(valid, drawn, torch.full_like(drawn, -1))


@torch.no_grad()
def sample_hard_negatives(
    logits_i2t: Tensor,
    image_ids: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """From image-to-text logits `(B, B)`: (negative image index for each text `(B,)`,
    negative text index for each image `(B,)`); -1 where the batch holds no other image.
    Draws from torch's global RNG."""
    positives = positive_mask(logits_i2t.shape[0], image_ids, logits_i2t.device)
    logits = logits_i2t.float()
    weights_t2i = F.softmax(logits.T, dim=1).masked_fill(positives.T, 0.0)
    weights_i2t = F.softmax(logits, dim=1).masked_fill(positives, 0.0)
    return _draw(weights_t2i), _draw(weights_i2t)


def itm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of ITM logits `(pairs, 2)` against labels `(pairs,)` (1 = match)."""
    return F.cross_entropy(logits, labels)


@LOSSES.register("itm")
class ImageTextMatching(Loss):
    """ITM over the B positive pairs and hard negatives drawn from the (detached) ITC logits;
    each image's visual tokens are fused once, whatever the number of pairs reading them."""

    needs = frozenset({"image_embed", "text_embed", "fused", "itm"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        model, text = forward.model, forward.text
        neg_image, neg_text = sample_hard_negatives(forward.itc_logits.detach(), forward.image_ids)
        text_ok, image_ok = neg_image >= 0, neg_text >= 0
        own = torch.arange(len(text.hidden), device=text.hidden.device)
        texts = torch.cat([own, own[text_ok], neg_text[image_ok]])
        images = torch.cat([own, neg_image[text_ok], own[image_ok]])
        labels = (torch.arange(len(texts), device=texts.device) < len(own)).long()
        mask = forward.batch["text_mask"]
        visual = forward.visual
        fused = model.fuse(text.hidden[texts], mask[texts], visual.tokens, images, visual.mask)
        return itm_loss(model.itm(fused[:, 0]), labels)
