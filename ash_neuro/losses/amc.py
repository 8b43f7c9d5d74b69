"""AMC: CMAL's associative mapping classification (arXiv 2410.12595), a self-supervised task at
the anchor points of the hybrid prompt.

The batch's anchors (`ash_neuro/data/anchors.py`) are masked and swap-filled by the
associative prompt layer (`models/associative_prompt.py`, `loss.prompt`) in the two
hypersphere spaces; the unified semantic encoder reads the hybrid sequence
(`UnifiedSemanticEncoder.joint`) and its AMC layer (`models/amc_head.py`) predicts, at every
filled position, the associative mapping:

    entity   which entity the position stands for. A filled text anchor: its entity, from the
             fused mean of its tokens (a word split into WordPieces is one anchor); a filled
             visual token: the entities of the anchors that filled it (uniform soft target).
             Only positions filled with their true counterpart are asked: a wrong feature
             names no entity of its position.
    belongs  whether the filled feature is the position's true counterpart (1) or the wrong
             feature the prompt drew for a share `loss.amc_negative_prob` of positions (0).

    L_AMC = mean over true fills of CE(entity logits, entity target)
          + mean over all fills of CE(belongs logits, belongs)

(the soft target makes the first term a cross-entropy against a distribution; with one entity
it is the usual one). A batch with no anchor contributes 0 with a gradient path. Needs one
visual token per object: the panoptic instance encoder and an adapter with one token set
("ratio", GSHN's; "concat" appends the spike rows as a second set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from ash_neuro.errors import AshError, ConfigError
from ash_neuro.losses.base import Loss
from ash_neuro.models.associative_prompt import AnchorBatch, object_token_weights
from ash_neuro.registry import ASSOCIATIVE_PROMPTS, LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass


def amc_loss(
    entity_logits: Tensor, entity_targets: Tensor, belongs_logits: Tensor, belongs: Tensor
) -> Tensor:
    """Entity logits and soft targets `(N, Ent)` (rows sum to 1) of the true fills, belongs
    logits `(M, 2)` and labels `(M,)` of every fill -> the mean soft cross-entropy of the
    first plus the mean cross-entropy of the second (each 0 when it has no row)."""
    entity = -(entity_targets * F.log_softmax(entity_logits, dim=-1)).sum(dim=-1)
    entity = entity.mean() if len(entity) else entity_logits.sum() * 0
    match = F.cross_entropy(belongs_logits, belongs) if len(belongs) else belongs_logits.sum() * 0
    return entity + match


def anchor_states(states: Tensor, anchor_token: Tensor, count: int) -> Tensor:
    """Fused text states `(B, L, width)` -> `(B, A, width)`, each anchor's mean over its
    tokens (zero for padding anchors)."""
    onehot = F.one_hot(anchor_token + 1, count + 1)[..., 1:].to(states.dtype)  # (B, L, A)
    tokens = onehot.sum(dim=1).clamp(min=1).unsqueeze(-1)  # (B, A, 1)
    return onehot.transpose(1, 2) @ states / tokens


@LOSSES.register("amc")
class AssociativeMappingClassification(Loss):
    needs = frozenset({"spheres", "amc"})
    batch_needs = frozenset({"anchors"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        model, batch, visual = forward.model, forward.batch, forward.visual
        encoder = model.fusion_encoder
        anchors = AnchorBatch.from_batch(batch)
        classes = encoder.amc.entity.out_features
        if anchors.entities > classes:
            raise ConfigError(
                f"the data's anchor vocabulary has {anchors.entities} entities; set "
                f"model.fusion.amc_entities={anchors.entities} (it is {classes})"
            )
        features = visual.features
        if features.segments is None or visual.tokens.shape[1] != features.tokens.shape[1]:
            raise AshError(
                "loss.weights.amc needs one visual token per object: "
                "model.visual.kind: panoptic_instances with an adapter of one token set "
                "(model.adapter.kind: ratio)"
            )
        n = visual.tokens.shape[1]
        exact = "instance_map" in batch and torch.equal(features.segments, batch["instance_map"])
        weights = object_token_weights(anchors, n, features.segments, exact)
        token_mask = visual.mask
        if token_mask is None:
            token_mask = torch.ones(visual.tokens.shape[:2], dtype=torch.bool)
        prompt_layer = ASSOCIATIVE_PROMPTS.get(self.cfg.prompt)(
            self.cfg.anchor_mask_prob, self.cfg.amc_negative_prob
        )
        prompt = prompt_layer(
            encoder.text_sphere(forward.text.hidden),
            encoder.visual_sphere(visual.tokens),
            token_mask.to(visual.tokens.device),
            anchors,
            weights,
        )
        text_out, visual_out = encoder.joint(
            prompt.text,
            batch["text_mask"],
            prompt.visual,
            visual.mask,
            prompt.text_swapped,
            prompt.visual_swapped,
        )
        count = anchors.anchor_entity.shape[1]
        states = torch.cat(
            [
                anchor_states(text_out, anchors.anchor_token, count)[prompt.anchor_filled],
                visual_out[prompt.visual_swapped],
            ]
        )
        entity_logits, belongs_logits = encoder.amc(states)
        hard = F.one_hot(anchors.anchor_entity.clamp(min=0), classes).to(states.dtype)
        slot_targets = F.pad(prompt.slot_entities, (0, classes - anchors.entities))
        targets = torch.cat(
            [hard[prompt.anchor_filled], slot_targets[prompt.visual_swapped].to(states.dtype)]
        )
        belongs = torch.cat(
            [
                prompt.anchor_belongs[prompt.anchor_filled],
                prompt.slot_belongs[prompt.visual_swapped],
            ]
        )
        true = belongs == 1
        return amc_loss(entity_logits[true], targets[true], belongs_logits, belongs)
