"""The cross-modal associative prompt layer (CMAL, arXiv 2410.12595): anchor point masking and
swap feature filling, building the hybrid prompt the unified semantic encoder reads.

Inputs are the two hypersphere spaces' unit features, text tokens `(B, L, E)` and visual
tokens `(B, n, E)` (one per object: GSHN's panoptic instance tokens), and a batch's anchors
(`ash_neuro/data/anchors.py`). An anchor names an entity and the image objects carrying it;
an object sits on the visual tokens as `object_token_weights` says: its own instance token
where the tags' instance ids are the encoder's segments (the world), its box's overlap with
each segment token otherwise (real data, whose segments are k-means clusters).

Swap filling, per selected anchor a (each real anchor is selected with probability
`loss.anchor_mask_prob`):

    text side    every token of the anchor's words is masked and filled with the visual
                 feature of its entity in the image: normalize(sum_k w_ak v_k), w_a the mean of
                 its objects' token weights (several objects when the word names several: "red"
                 and two red objects); an anchor with no located object (the caption fallback)
                 reads the image as a whole, the mean of its real tokens
    visual side  each object's dominant token (the token holding at least half of its weight:
                 always its instance token on the world) is masked and filled with the text
                 feature of the anchors naming it: normalize(sum_a t_a), t_a the normalised mean
                 of the anchor's token features ("red ball": both words fill the ball's token)

and nothing else changes: every other token keeps its own modality's feature. The prompt also
records, per filled position, its origin (the unified encoder projects a feature with its own
modality's input map) and what the associative mapping classification must predict:

    entity   the anchor's entity at a filled text anchor; at a filled visual token, the
             uniform distribution over the entities of the anchors that filled it
    belongs  whether the filled feature is the true counterpart (1) or a wrong one (0): with
             probability `loss.amc_negative_prob` a filled position gets instead the feature of
             something else. Text side: the visual token of an object that does not carry the
             anchor's entity, taken from the same image when it has one (a hard negative: "ball"
             filled with the image's blue box), from another image otherwise; a fallback anchor
             (no tags to check against) takes another image as a whole. Visual side: the text
             feature of an anchor whose entity the token's objects do not carry, from the same
             caption when it has one. A position with no such candidate stays a positive.

Every random draw comes from torch's global RNG, in a fixed order (selection, text-side
negatives, visual-side negatives), so a seeded run replays. Registered in
`registry.ASSOCIATIVE_PROMPTS` as "swap" (`loss.prompt`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ash_neuro.errors import AshError
from ash_neuro.models.task_heads import pool_segments
from ash_neuro.registry import ASSOCIATIVE_PROMPTS

ANCHOR_FIELDS = (
    "anchor_token",
    "anchor_entity",
    "anchor_objects",
    "object_instance",
    "object_box",
    "object_entity",
    "object_mask",
)


@dataclass(frozen=True)
class AnchorBatch:
    """A batch's anchors and tagged objects (the collator's keys; shapes in
    `ash_neuro/data/anchors.py`): B captions, L tokens, A anchors, O objects, Ent entities."""

    anchor_token: Tensor  # (B, L) int64, -1: no anchor
    anchor_entity: Tensor  # (B, A) int64, -1: padding
    anchor_objects: Tensor  # (B, A, O) bool
    object_instance: Tensor  # (B, O) int64, -1: located by box
    object_box: Tensor  # (B, O, 4) float
    object_entity: Tensor  # (B, O, Ent) bool
    object_mask: Tensor  # (B, O) bool

    @classmethod
    def from_batch(cls, batch: Mapping[str, Tensor]) -> AnchorBatch:
        missing = [key for key in ANCHOR_FIELDS if key not in batch]
        if missing:
            raise AshError(
                f"the batch has no anchor points ({missing[0]}); batches for CMAL's losses come "
                "from ash_neuro.data.anchors.AnchorCollator"
            )
        return cls(**{key: batch[key] for key in ANCHOR_FIELDS})

    @property
    def entities(self) -> int:
        return self.object_entity.shape[-1]


@dataclass
class HybridPrompt:
    """The hybrid cross-modal associative prompt and the AMC targets.

    text            `(B, L, E)` the text tokens, filled anchors swapped for visual features
    text_swapped    `(B, L)` bool, True where a text token holds a visual feature
    visual          `(B, n, E)` the visual tokens, filled ones swapped for text features
    visual_swapped  `(B, n)` bool, True where a visual token holds a text feature
    anchor_filled   `(B, A)` bool, the anchors masked and filled
    anchor_belongs  `(B, A)` int64, 1 where the fill is the anchor's own counterpart
    slot_entities   `(B, n, Ent)` float, the entity distribution of each filled visual token
                    (rows of unfilled tokens are zero)
    slot_belongs    `(B, n)` int64, 1 where a filled visual token holds its own words
    """

    text: Tensor
    text_swapped: Tensor
    visual: Tensor
    visual_swapped: Tensor
    anchor_filled: Tensor
    anchor_belongs: Tensor
    slot_entities: Tensor
    slot_belongs: Tensor


def object_token_weights(
    anchors: AnchorBatch, n_tokens: int, segments: Tensor | None, exact: bool
) -> Tensor:
    """Where each object lies on the visual tokens, `(B, O, n)` rows summing to 1 (zero for
    padding): one-hot on its instance id when `exact` (the tags' ids are the encoder's
    segments) and it has one, else its box's pixels per segment token (`pool_segments`'
    weights)."""
    instance, mask = anchors.object_instance, anchors.object_mask
    located = mask & (instance >= 0) if exact else torch.zeros_like(mask)
    if bool((instance[located] >= n_tokens).any()):
        raise AshError(
            f"an object's instance id reaches {int(instance[located].max())}; the visual encoder "
            f"has {n_tokens} tokens (raise model.visual.max_instances)"
        )
    onehot = F.one_hot(instance.clamp(min=0, max=n_tokens - 1), n_tokens).float()
    weights = onehot * located.unsqueeze(-1)
    by_box = mask & ~located
    if bool(by_box.any()):
        if segments is None:
            raise AshError(
                "anchors located by box need visual tokens that stand for image segments "
                "(model.visual.kind: panoptic_instances)"
            )
        batch = len(segments)
        identity = torch.eye(n_tokens, device=segments.device).expand(batch, n_tokens, n_tokens)
        # pooling the identity gives the pooling weights themselves
        boxes = pool_segments(identity, segments, anchors.object_box.float())
        weights = torch.where(by_box.unsqueeze(-1), boxes, weights)
    return weights


def anchor_token_weights(
    anchors: AnchorBatch, object_weights: Tensor, token_mask: Tensor
) -> Tensor:
    """`(B, A, n)`: each anchor's visual weights, the mean of its objects' (`object_weights`
    `(B, O, n)`); an anchor without objects reads every real token (`token_mask` `(B, n)`)."""
    objects = anchors.anchor_objects.float()
    count = objects.sum(dim=-1, keepdim=True)
    own = objects @ object_weights / count.clamp(min=1)
    real = token_mask.float()
    whole = (real / real.sum(dim=-1, keepdim=True).clamp(min=1)).unsqueeze(1)
    return torch.where(count > 0, own, whole)


def dominant_tokens(object_weights: Tensor) -> Tensor:
    """`(B, O)` int64: the token holding at least half of each object's weight, -1 if none."""
    best, token = object_weights.max(dim=-1)
    return torch.where(best >= 0.5, token, torch.full_like(token, -1))


def anchor_slots(anchors: AnchorBatch, dominant: Tensor, n_tokens: int) -> Tensor:
    """`(B, A, n)` bool: the visual tokens each anchor fills (its objects' dominant tokens)."""
    placed = F.one_hot(dominant.clamp(min=0), n_tokens).float() * (dominant >= 0).unsqueeze(-1)
    return (anchors.anchor_objects.float() @ placed) > 0


def anchor_text(text: Tensor, anchor_token: Tensor, count: int) -> Tensor:
    """`(B, A, E)`: each anchor's text feature, the normalised mean of its tokens' features
    (`text` `(B, L, E)`); zero for padding anchors."""
    onehot = F.one_hot(anchor_token + 1, count + 1)[..., 1:].to(text.dtype)  # (B, L, A)
    return F.normalize(onehot.transpose(1, 2) @ text, dim=-1)


def swap_fill(
    text: Tensor,
    visual: Tensor,
    anchor_token: Tensor,
    text_fill: Tensor,
    anchor_filled: Tensor,
    slot_fill: Tensor,
    slot_filled: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Text `(B, L, E)` with each token of a filled anchor (`anchor_filled` `(B, A)`) replaced
    by its anchor's `text_fill` `(B, A, E)`, and visual `(B, n, E)` with each filled token
    (`slot_filled` `(B, n)`) replaced by `slot_fill` `(B, n, E)` -> (text, text swapped
    `(B, L)`, visual, visual swapped `(B, n)`)."""
    index = anchor_token.clamp(min=0)
    swapped = (anchor_token >= 0) & anchor_filled.gather(1, index)
    fills = text_fill.gather(1, index.unsqueeze(-1).expand(-1, -1, text_fill.shape[-1]))
    hybrid_text = torch.where(swapped.unsqueeze(-1), fills, text)
    hybrid_visual = torch.where(slot_filled.unsqueeze(-1), slot_fill, visual)
    return hybrid_text, swapped, hybrid_visual, slot_filled


def draw(valid: Tensor, same: Tensor) -> Tensor:
    """One column per row of `valid` `(R, C)` bool, uniformly among the row's valid columns
    that are also `same` when it has any, else among its valid ones; -1 for a row with none."""
    preferred = valid & same
    use = torch.where(preferred.any(dim=1, keepdim=True), preferred, valid)
    has = use.any(dim=1)
    weights = torch.where(has.unsqueeze(1), use.float(), torch.ones_like(use, dtype=torch.float))
    if not len(weights) or not weights.shape[1]:
        return torch.full((len(valid),), -1, dtype=torch.long, device=valid.device)
    drawn = torch.multinomial(weights, 1).squeeze(1)
    return torch.where(has, drawn, torch.full_like(drawn, -1))


@ASSOCIATIVE_PROMPTS.register("swap")
class SwapFilling:
    """Anchor masking and swap filling (module docstring); `mask_prob`: the share of anchors
    filled, `negative_prob`: the share of filled positions given a wrong feature."""

    def __init__(self, mask_prob: float, negative_prob: float) -> None:
        self.mask_prob, self.negative_prob = mask_prob, negative_prob

    def __call__(
        self,
        text: Tensor,
        visual: Tensor,
        token_mask: Tensor,
        anchors: AnchorBatch,
        object_weights: Tensor,
    ) -> HybridPrompt:
        """Unit text `(B, L, E)` and visual `(B, n, E)` features, the real visual tokens
        `token_mask` `(B, n)`, the anchors and `object_token_weights` -> `HybridPrompt`."""
        batch, count = anchors.anchor_entity.shape
        n = visual.shape[1]
        device = visual.device
        real = anchors.anchor_entity >= 0
        selected = real & (torch.rand(batch, count, device=device) < self.mask_prob)
        dominant = dominant_tokens(object_weights)
        slots = anchor_slots(anchors, dominant, n) & selected.unsqueeze(-1)  # (B, A, n)
        words = anchor_text(text, anchors.anchor_token, count)  # (B, A, E)

        # the true counterparts
        weights = anchor_token_weights(anchors, object_weights, token_mask)
        text_fill = F.normalize(weights @ visual, dim=-1)
        slot_filled = slots.any(dim=1)
        slot_fill = F.normalize(slots.transpose(1, 2).to(words.dtype) @ words, dim=-1)
        onehot = F.one_hot(anchors.anchor_entity.clamp(min=0), anchors.entities).float()
        slot_entities = slots.transpose(1, 2).float() @ onehot
        slot_entities = slot_entities / slot_entities.sum(dim=-1, keepdim=True).clamp(min=1)

        # wrong ones for the negatives
        wrong = selected & (torch.rand(batch, count, device=device) < self.negative_prob)
        text_fill, anchor_negative = self.wrong_visual(
            text_fill, wrong, visual, token_mask, anchors, dominant
        )
        wrong = slot_filled & (torch.rand(batch, n, device=device) < self.negative_prob)
        slot_fill, slot_negative = self.wrong_text(slot_fill, wrong, words, anchors, dominant)

        hybrid = swap_fill(
            text, visual, anchors.anchor_token, text_fill, selected, slot_fill, slot_filled
        )
        return HybridPrompt(
            *hybrid,
            anchor_filled=selected,
            anchor_belongs=(~anchor_negative).long(),
            slot_entities=slot_entities,
            slot_belongs=(~slot_negative).long(),
        )

    @staticmethod
    def wrong_visual(
        fill: Tensor,
        wrong: Tensor,
        visual: Tensor,
        token_mask: Tensor,
        anchors: AnchorBatch,
        dominant: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Text-side negatives: (`fill` `(B, A, E)` with each `wrong` anchor's feature
        replaced by a visual feature that does not show its entity, the anchors replaced)."""
        batch, count = wrong.shape
        objects = anchors.object_mask.shape[1]
        device = visual.device
        entity = anchors.anchor_entity.clamp(min=0)
        # candidates: every placed object of the batch (columns b' * O + o') ...
        placed = anchors.object_mask & (dominant >= 0)  # (B, O)
        carries = anchors.object_entity.permute(0, 2, 1)  # (B, Ent, O)
        # ... whose entities exclude the anchor's: (B, A, B', O)
        shows = carries[:, entity].permute(1, 2, 0, 3)  # (B, A, B', O)
        valid_object = placed[None, None] & ~shows
        object_feature = visual.gather(
            1, dominant.clamp(min=0).unsqueeze(-1).expand(-1, -1, visual.shape[-1])
        ).reshape(batch * objects, visual.shape[-1])
        # ... and, for an anchor without objects (no tags to check), every other whole image
        located = anchors.anchor_objects.any(dim=-1)  # (B, A)
        others = ~torch.eye(batch, dtype=torch.bool, device=device)
        valid_image = (~located).unsqueeze(-1) & others.unsqueeze(1)  # (B, A, B')
        real = token_mask.to(visual.dtype).unsqueeze(-1)
        image_feature = F.normalize((real * visual).sum(dim=1), dim=-1)  # (B', E)
        valid = torch.cat(
            [(valid_object & located[..., None, None]).flatten(2), valid_image], dim=-1
        )
        images = torch.arange(batch, device=device)
        column_image = torch.cat([images.repeat_interleave(objects), images])
        same = (column_image.view(1, 1, -1) == images.view(batch, 1, 1)).expand_as(valid)
        rows = wrong.flatten()
        picked = draw(valid.flatten(0, 1)[rows], same.flatten(0, 1)[rows])
        features = torch.cat([object_feature, image_feature])
        fill = fill.clone()
        negative = torch.zeros_like(wrong)
        chosen = rows.nonzero().squeeze(1)[picked >= 0]
        fill.view(batch * count, fill.shape[-1])[chosen] = features[picked[picked >= 0]]
        negative.view(-1)[chosen] = True
        return fill, negative

    @staticmethod
    def wrong_text(
        fill: Tensor, wrong: Tensor, words: Tensor, anchors: AnchorBatch, dominant: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Visual-side negatives: (`fill` `(B, n, E)` with each `wrong` token's feature
        replaced by the text feature of an anchor whose entity its objects do not carry, the
        tokens replaced)."""
        batch, n = wrong.shape
        count = anchors.anchor_entity.shape[1]
        device = fill.device
        placed = F.one_hot(dominant.clamp(min=0), n).float() * (dominant >= 0).unsqueeze(-1)
        token_entities = (placed.transpose(1, 2) @ anchors.object_entity.float()) > 0  # (B,n,Ent)
        entity = anchors.anchor_entity.clamp(min=0).flatten()  # (B' * A,)
        real = (anchors.anchor_entity >= 0).flatten()
        valid = ~token_entities[..., entity] & real  # (B, n, B' * A)
        column_image = torch.arange(batch, device=device).repeat_interleave(count)
        same = column_image.view(1, 1, -1) == torch.arange(batch, device=device).view(-1, 1, 1)
        rows = wrong.flatten()
        picked = draw(valid.flatten(0, 1)[rows], same.expand_as(valid).flatten(0, 1)[rows])
        fill = fill.clone()
        negative = torch.zeros_like(wrong)
        chosen = rows.nonzero().squeeze(1)[picked >= 0]
        fill.view(batch * n, fill.shape[-1])[chosen] = words.reshape(
            batch * count, words.shape[-1]
        )[picked[picked >= 0]]
        negative.view(-1)[chosen] = True
        return fill, negative
