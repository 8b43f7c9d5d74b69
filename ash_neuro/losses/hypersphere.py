"""The intra-modal objectives of CMAL's two hypersphere spaces (arXiv 2410.12595).

CMAL embeds visual objects and text tokens into separate hypersphere spaces "to learn
intra-modal hidden features" (`models/hypersphere.py`); its summary names no loss for them.
Our choice, written here as `shared/PAPERS.md` asks: for each space, the two properties that
characterise a good representation on the hypersphere (Wang and Isola, "Understanding
Contrastive Representation Learning through Alignment and Uniformity on the Hypersphere",
ICML 2020), with their recommended exponents (alpha = 2, t = 2) and weight (1):

    alignment   L_align = mean_i ||x_i - y_i||^2 over positive pairs (two views of one item)
    uniformity  L_unif  = log mean_{i<j} exp(-2 ||x_i - x_j||^2) over every item of a view

    L = L_align(x, y) + (L_unif(x) + L_unif(y)) / 2

They are intra-modal by construction (no pair crosses the modalities: CMAL leaves the crossing
to associative learning), need no temperature, and uniformity keeps each space from collapsing
without a negative set. The two views of an item:

    visual_sphere  each real object token (one per panoptic instance) in the batch's images and
                   in the second view (a random crop and colour jitter, `ForwardPass.second_view`,
                   shared with the spike contrastive loss): the instance id names the same
                   object in both views, so the world's panoptic maps are required (k-means
                   segments of two crops do not correspond); an instance cropped out of the
                   second view has no pair
    text_sphere    each word token of the caption ([CLS], [SEP] and padding excluded) and the
                   same position in the caption re-encoded with BERT masking (`mlm.mask_tokens`,
                   `loss.mask_prob`): robust to a corrupted context, and at masked positions a
                   prediction of the word's feature from its context
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ash_neuro.errors import AshError
from ash_neuro.losses.base import Loss
from ash_neuro.losses.mlm import mask_tokens
from ash_neuro.losses.stl import word_mask
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass

UNIFORMITY_T = 2.0


def alignment(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared distance of paired unit vectors `(N, E)`; 0 (with a gradient path) for
    N = 0."""
    if not len(x):
        return x.sum() + y.sum()
    return (x - y).pow(2).sum(dim=-1).mean()


def uniformity(x: Tensor, t: float = UNIFORMITY_T) -> Tensor:
    """log of the mean Gaussian potential exp(-t ||x_i - x_j||^2) over the pairs i < j of unit
    vectors `(N, E)`; 0 (with a gradient path) for N < 2."""
    if len(x) < 2:
        return x.sum() * 0
    squared = torch.pdist(x).pow(2)
    return torch.logsumexp(-t * squared, dim=0) - math.log(len(squared))


def hypersphere_loss(x: Tensor, y: Tensor, x_all: Tensor, y_all: Tensor) -> Tensor:
    """Alignment of the pairs (`x`, `y`) `(N, E)` plus the mean uniformity of each view's
    items `x_all` `(N1, E)`, `y_all` `(N2, E)`."""
    return alignment(x, y) + (uniformity(x_all) + uniformity(y_all)) / 2


@LOSSES.register("visual_sphere")
class VisualSphere(Loss):
    """Alignment and uniformity of the visual object tokens on their hypersphere."""

    needs = frozenset({"spheres"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        first, batch = forward.visual, forward.batch
        segments = first.features.segments
        if (
            "instance_map" not in batch
            or segments is None
            or not torch.equal(segments, batch["instance_map"])
        ):
            raise AshError(
                "loss.weights.visual_sphere pairs instance tokens across two views and needs "
                "the tokens of the data's panoptic maps (model.visual.kind: panoptic_instances, "
                "segments: panoptic, on the world); set it to 0"
            )
        second = forward.second_view
        sphere = forward.model.fusion_encoder.visual_sphere
        x, y = sphere(first.tokens), sphere(second.tokens)
        both = first.mask & second.mask
        return hypersphere_loss(x[both], y[both], x[first.mask], y[second.mask])


@LOSSES.register("text_sphere")
class TextSphere(Loss):
    """Alignment and uniformity of the word tokens on their hypersphere."""

    needs = frozenset({"spheres"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        model, batch = forward.model, forward.batch
        mask = batch["text_mask"]
        masked, _ = mask_tokens(batch["text_ids"], mask, forward.tokenizer, self.cfg.mask_prob)
        sphere = model.fusion_encoder.text_sphere
        x = sphere(forward.text.hidden)
        y = sphere(model.encode_text(masked, mask).hidden)
        words = word_mask(mask)
        return hypersphere_loss(x[words], y[words], x[words], y[words])
