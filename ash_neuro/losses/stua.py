"""STUA: spiking-to-text uni-alignment (ASH-Nets, arXiv 2308.09455).

Aligns the spiking encoder's output with text features alone. The spike embedding is the
spike rates pooled over time steps and tokens, projected to the ITC space and L2-normalised
(`ASHNet.encode_image(...).spike_embed`); its targets are the text embeddings of the batch's
captions, detached, so the text is a fixed, text-driven target and only the spiking side (and
the visual encoder beneath it) moves. The loss is one-directional InfoNCE, spikes to texts:
each spike embedding must pick its own captions (with `image_ids`, all captions of its image)
among the batch's texts. There is deliberately no image-side target (no ITC image embedding,
no text-to-spike direction): the uni-alignment is what distinguishes STUA from another ITC.
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


def stua_loss(
    spike_embed: Tensor,
    text_embed: Tensor,
    temperature: float,
    image_ids: Tensor | None = None,
) -> Tensor:
    """Unit spike embeddings `(B, E)` vs unit text embeddings `(B, E)` (pair i matches);
    no gradient reaches `text_embed`. Under torchrun the texts of every process are the
    candidates (`targets.gather_batch`)."""
    if distributed():
        texts, _ = gather_batch(text_embed.detach())
        own, every = gathered_positives(image_ids, len(spike_embed), spike_embed.device)
        return soft_cross_entropy(spike_embed @ texts.T / temperature, own[:, None] == every)
    logits = spike_embed @ text_embed.detach().T / temperature
    return soft_cross_entropy(logits, positive_mask(len(logits), image_ids, logits.device))


@LOSSES.register("stua")
class SpikeToTextUniAlignment(Loss):
    needs = frozenset({"spike_embed", "text_embed"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        return stua_loss(
            forward.visual.spike_embed,
            forward.text.text_embed,
            self.cfg.temperature,
            forward.image_ids,
        )
