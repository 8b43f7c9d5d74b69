"""Spatio-temporal spike contrastive loss (ASH-Nets, arXiv 2308.09455).

The SNN's output is a sequence of spike maps, so one image yields several representations
without any extra network: one per time step (or per window of `window` consecutive steps),
and as many again per augmented view. Each representation is the spike map pooled over tokens
(per-channel firing rate in that window; over the real tokens only when a mask marks padded
ones, GSHN's absent instances), L2-normalised. For an anchor (view v, window t,
image b):

    positives  the same image at every other window and view (with `image_ids`, any item of
               the same image);
    negatives  every representation of another image.

The loss is the supervised-contrastive form with the mean over positives outside the log
(Khosla et al. 2020, "L_out"):

    L(a) = -1/|P(a)| sum_{p in P(a)} log( exp(s_ap / tau) / D(a) ),
    D(a) = sum_{p in P(a)} exp(s_ap / tau) + sum_{n in N(a)} w_an exp(s_an / tau),

averaged over anchors (a silent representation, no spike in its window, counts as the zero
vector: `unit_or_zero`). Hard samples: the paper emphasises the negatives most similar to an
anchor. We do so by weighting the `hard_negatives` most similar negatives of each anchor by
`hard_negative_weight` (w = 1 for the others) in the denominator, which raises their share of
the gradient by that factor; a weight of 1 or `hard_negatives = 0` gives the plain loss. This
is the top-k special case of importance-weighted hard negatives (Robinson et al., ICLR 2021);
which negatives are hard is chosen without gradient, the weights are constants.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ash_neuro.losses.base import Loss
from ash_neuro.losses.targets import positive_mask
from ash_neuro.models.outputs import token_mean
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass


def pool_spikes(spikes: Tensor, window: int = 1, mask: Tensor | None = None) -> Tensor:
    """Spikes `(T, B, N, D)` (tokens where `mask` `(B, N)` is True; None: all) or already
    token-pooled `(T, B, D)` -> per-window rates `(ceil(T / window), B, D)`."""
    if spikes.dim() == 4:
        spikes = token_mean(spikes, mask, dim=2)
    if spikes.dim() != 3:
        raise ValueError(f"expected spikes (T, B, N, D) or (T, B, D), got {tuple(spikes.shape)}")
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    return torch.stack([chunk.mean(dim=0) for chunk in spikes.split(window, dim=0)])


def unit_or_zero(reps: Tensor) -> Tensor:
    """Rows `(N, D)` scaled to unit norm; a silent row (no spike in its window: rates all 0)
    has no direction and stays zero, so it is equally similar to everything and sends no
    gradient back. (`F.normalize` would divide it by its eps and send 1/eps = 1e12 times the
    upstream gradient into the encoders: with few tokens per image, GSHN's instances, a step
    in which no token spikes is common.)"""
    norm = reps.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, reps / norm.clamp(min=1e-12), torch.zeros_like(reps))


def spike_contrastive_loss(
    spikes: Tensor,
    other_view: Tensor | None = None,
    temperature: float = 0.1,
    hard_negatives: int = 0,
    hard_negative_weight: float = 1.0,
    window: int = 1,
    image_ids: Tensor | None = None,
    mask: Tensor | None = None,
    other_mask: Tensor | None = None,
) -> Tensor:
    """The loss above for spikes `(T, B, N, D)` or `(T, B, D)` and optionally a second view of
    the same B images (same shape), with the token masks `(B, N)` of each (None: every token
    real). Needs at least two representations per image: T > window or a second view."""
    views = [pool_spikes(spikes, window, mask)]
    if other_view is not None:
        views.append(pool_spikes(other_view, window, other_mask))
    reps = torch.cat(views)  # (V * W, B, D)
    per_image, batch = reps.shape[0], reps.shape[1]
    if per_image < 2:
        raise ValueError("spike contrast needs two views or more than one time window")
    z = unit_or_zero(reps.reshape(per_image * batch, -1).float())
    logits = z @ z.T / temperature
    same = positive_mask(batch, image_ids, z.device).repeat(per_image, per_image)
    self_pair = torch.eye(len(z), dtype=torch.bool, device=z.device)
    positives = same & ~self_pair
    negatives = ~same

    log_weights = torch.zeros_like(logits)
    k = min(hard_negatives, int(negatives.sum(dim=1).min()))
    if k > 0 and hard_negative_weight != 1.0:
        with torch.no_grad():
            hard = logits.masked_fill(~negatives, float("-inf")).topk(k, dim=1).indices
        log_weights = log_weights.scatter(1, hard, math.log(hard_negative_weight))
    denominator = torch.logsumexp(
        (logits + log_weights).masked_fill(self_pair, float("-inf")), dim=1, keepdim=True
    )
    log_prob = logits - denominator
    per_anchor = (log_prob * positives).sum(dim=1) / positives.sum(dim=1)
    return -per_anchor.mean()


@LOSSES.register("spike_contrastive")
class SpikeContrastive(Loss):
    """Both views carry gradients (SimCLR); the second is a fresh crop and jitter of the
    batch's images (`ForwardPass.second_view`)."""

    needs = frozenset({"spikes"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        second = forward.second_view
        return spike_contrastive_loss(
            forward.visual.spikes,
            second.spikes,
            temperature=self.cfg.temperature,
            hard_negatives=self.cfg.hard_negatives,
            hard_negative_weight=self.cfg.hard_negative_weight,
            image_ids=forward.image_ids,
            mask=forward.visual.features.mask,
            other_mask=second.features.mask,
        )
