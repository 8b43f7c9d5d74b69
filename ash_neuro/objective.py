"""The pre-training objective: every enabled loss of `LossConfig` on one batch.

A batch is `image` `(B, 3, H, W)` float in [0, 1], `text_ids` and `text_mask` `(B, L)` int64
(BERT-style: [CLS] ... [SEP] [PAD]...), and optionally `image_id` `(B,)` (captions of the same
image are then positives of one another, never negatives). A loss with weight 0 is not
computed at all (nor is anything only it needs: the augmented view, the masked text, the ITM
pairs). The spiking losses (spike contrastive, STUA, spike rate) apply to a hybrid model only;
for an ANN-only model (`model.hybrid: false`) they are skipped whatever their weight, so that
switching the spiking encoder off is one config change.

The spike contrastive loss and STUA use `LossConfig.temperature` as their fixed temperature;
ITC uses the model's learnable one (initialised to the same value by `build_model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ash_neuro.config import LossConfig
from ash_neuro.losses.itc import image_text_logits, itc_loss_from_logits
from ash_neuro.losses.itm import itm_loss, sample_hard_negatives
from ash_neuro.losses.mlm import IGNORE_INDEX, TokenizerInfo, mask_tokens, mlm_loss
from ash_neuro.losses.spike_contrastive import spike_contrastive_loss
from ash_neuro.losses.spike_rate import spike_rate_loss
from ash_neuro.losses.stua import stua_loss
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.augment import augment_view

LOSS_NAMES = ("itc", "itm", "mlm", "spike_contrastive", "stua", "spike_rate")
SPIKING_LOSSES = ("spike_contrastive", "stua", "spike_rate")


def enabled_losses(model: ASHNet, loss_cfg: LossConfig) -> list[str]:
    """The losses this model computes under `loss_cfg`, in `LOSS_NAMES` order."""
    names = [name for name in LOSS_NAMES if getattr(loss_cfg, name) > 0]
    if not model.hybrid:
        names = [name for name in names if name not in SPIKING_LOSSES]
    if not names:
        raise ValueError("every pre-training loss has weight 0; enable at least one")
    return names


def itm_pairs_loss(
    model: ASHNet,
    visual_tokens: Tensor,
    text_hidden: Tensor,
    text_mask: Tensor,
    logits_i2t: Tensor,
    image_ids: Tensor | None = None,
) -> Tensor:
    """ITM over the B positive pairs and hard negatives drawn from the ITC logits `(B, B)`."""
    neg_image, neg_text = sample_hard_negatives(logits_i2t, image_ids)
    text_ok, image_ok = neg_image >= 0, neg_text >= 0
    own = torch.arange(len(text_hidden), device=text_hidden.device)
    texts = torch.cat([own, own[text_ok], neg_text[image_ok]])
    images = torch.cat([own, neg_image[text_ok], own[image_ok]])
    labels = (torch.arange(len(texts), device=texts.device) < len(own)).long()
    fused = model.fuse(text_hidden[texts], text_mask[texts], visual_tokens, images)
    return itm_loss(model.itm(fused[:, 0]), labels)


def masked_lm_loss(
    model: ASHNet,
    visual_tokens: Tensor,
    text_ids: Tensor,
    text_mask: Tensor,
    info: TokenizerInfo,
    mask_prob: float,
) -> Tensor:
    """MLM: mask the captions, encode and fuse them with their images, predict the originals."""
    masked, labels = mask_tokens(text_ids, text_mask, info, mask_prob)
    hidden = model.encode_text(masked, text_mask).hidden
    fused = model.fuse(hidden, text_mask, visual_tokens)
    chosen = labels != IGNORE_INDEX
    return mlm_loss(model.mlm(fused[chosen]), labels[chosen])


def pretraining_losses(
    model: ASHNet,
    batch: Mapping[str, Tensor],
    loss_cfg: LossConfig,
    tokenizer_info: TokenizerInfo,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """({loss name: 0-d tensor, ..., "total": weighted sum}, {LIF layer: detached mean rate}).

    The rates are those of the batch's images (not the augmented view); empty for an ANN-only
    model.
    """
    names = enabled_losses(model, loss_cfg)
    image, text_ids, text_mask = batch["image"], batch["text_ids"], batch["text_mask"]
    image_ids = batch.get("image_id")
    visual = model.encode_image(image)
    text = None
    if {"itc", "itm", "stua"} & set(names):
        text = model.encode_text(text_ids, text_mask)
    logits = None
    if {"itc", "itm"} & set(names):
        logits = image_text_logits(visual.image_embed, text.text_embed, model.itc.temperature())

    losses: dict[str, Tensor] = {}
    for name in names:
        if name == "itc":
            losses[name] = itc_loss_from_logits(logits, image_ids)
        elif name == "itm":
            losses[name] = itm_pairs_loss(
                model, visual.tokens, text.hidden, text_mask, logits.detach(), image_ids
            )
        elif name == "mlm":
            losses[name] = masked_lm_loss(
                model, visual.tokens, text_ids, text_mask, tokenizer_info, loss_cfg.mask_prob
            )
        elif name == "spike_contrastive":
            # both views carry gradients (SimCLR); the second is a fresh crop and jitter
            other = model.encode_image(augment_view(image))
            losses[name] = spike_contrastive_loss(
                visual.spikes,
                other.spikes,
                temperature=loss_cfg.temperature,
                hard_negatives=loss_cfg.hard_negatives,
                hard_negative_weight=loss_cfg.hard_negative_weight,
                image_ids=image_ids,
            )
        elif name == "stua":
            losses[name] = stua_loss(
                visual.spike_embed, text.text_embed, loss_cfg.temperature, image_ids
            )
        elif name == "spike_rate":
            losses[name] = spike_rate_loss(visual.spike_rates, loss_cfg.target_rate)
    losses["total"] = sum(getattr(loss_cfg, name) * losses[name] for name in names)
    rates = {name: rate.detach() for name, rate in visual.spike_rates.items()}
    return losses, rates


class PretrainingObjective(nn.Module):
    """`pretraining_losses` as a module holding the model (what DistributedDataParallel
    wraps): `objective(batch) -> (losses, rates)`. `tokenizer` is a `transformers` tokenizer
    or a `TokenizerInfo`."""

    def __init__(self, model: ASHNet, loss_cfg: LossConfig, tokenizer: Any) -> None:
        super().__init__()
        self.model = model
        self.loss_cfg = loss_cfg
        self.tokenizer_info = (
            tokenizer
            if isinstance(tokenizer, TokenizerInfo)
            else TokenizerInfo.from_tokenizer(tokenizer)
        )
        enabled_losses(model, loss_cfg)

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        return pretraining_losses(self.model, batch, self.loss_cfg, self.tokenizer_info)
