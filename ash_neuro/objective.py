"""The pre-training objective: the weighted sum of the registered losses of `loss.weights`.

A batch is `image` `(B, 3, H, W)` float in [0, 1], `text_ids` and `text_mask` `(B, L)` int64
(BERT-style: [CLS] ... [SEP] [PAD]...), and optionally `image_id` `(B,)` (captions of the same
image are then positives of one another, never negatives) and `instance_map` `(B, H, W)` (for a
visual encoder that reads panoptic maps). A loss with weight 0 is not built
at all, nor is anything only it needs (the augmented view, the masked text, the ITM pairs): the
model's outputs are computed on demand by `ForwardPass`, once per batch. A loss whose `needs`
the model does not produce is skipped whatever its weight (the spiking losses of an ANN-only
network), so that switching the spiking encoder off is one config change.

The losses run in the order of `loss.weights`; that order fixes the order of their random draws
(ITM negatives, MLM masks, the augmented view), so a seeded run replays exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import torch
from torch import Tensor, nn

from ash_neuro.config import LossConfig
from ash_neuro.errors import ConfigError
from ash_neuro.losses.base import Loss
from ash_neuro.losses.itc import image_text_logits
from ash_neuro.losses.mlm import TokenizerInfo
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.augment import augment_pair
from ash_neuro.models.outputs import TextOutput, VisualOutput
from ash_neuro.models.semantic_abstract_encoder import silent_and_saturated
from ash_neuro.registry import LOSSES


class ForwardPass:
    """The model's outputs on one batch, each computed when a loss first asks for it.

    The images are encoded at once (every loss reads them, and their random draws come first).
    """

    def __init__(
        self,
        model: ASHNet,
        batch: Mapping[str, Tensor],
        cfg: LossConfig,
        tokenizer: TokenizerInfo,
    ) -> None:
        self.model, self.batch, self.cfg, self.tokenizer = model, batch, cfg, tokenizer
        self.image_ids: Tensor | None = batch.get("image_id")
        self.visual: VisualOutput = model.encode_image(batch["image"], batch.get("instance_map"))

    @cached_property
    def text(self) -> TextOutput:
        return self.model.encode_text(self.batch["text_ids"], self.batch["text_mask"])

    @cached_property
    def itc_logits(self) -> Tensor:
        """Image-to-text logits `(B, B)` at the model's learnable temperature."""
        temperature = self.model.itc.temperature()
        return image_text_logits(self.visual.image_embed, self.text.text_embed, temperature)

    @cached_property
    def second_view(self) -> VisualOutput:
        """The batch's images under a fresh random crop and colour jitter (their panoptic maps,
        where the batch has them, under the same crop)."""
        view, instance_map = augment_pair(self.batch["image"], self.batch.get("instance_map"))
        return self.model.encode_image(view, instance_map)


def enabled_losses(model: ASHNet, cfg: LossConfig) -> dict[str, Loss]:
    """{name: loss} of every loss with a non-zero weight whose needs the model meets, in the
    order of `cfg.weights`; an unknown name, no loss at all, or a weighted loss whose optional
    component (`Loss.component`) the network lacks is a one-line ConfigError."""
    losses = {}
    for name, weight in cfg.weights.items():
        loss_class = LOSSES.get(name)
        if weight != 0 and loss_class.needs <= model.outputs:
            losses[name] = loss_class(cfg)
        elif weight != 0 and loss_class.component is not None:
            raise ConfigError(
                f"loss.weights.{name}={weight} needs the component {loss_class.component}, "
                f"which this network lacks; set {loss_class.component} (see configs/vicha.yaml) "
                f"or loss.weights.{name}=0"
            )
    if not losses:
        raise ConfigError(
            "every pre-training loss this network can compute has weight 0; set one of "
            f"loss.weights ({', '.join(cfg.weights)}) above 0"
        )
    return losses


class PretrainingObjective(nn.Module):
    """The objective as a module holding the model (what DistributedDataParallel wraps):
    `objective(batch) -> ({name: loss, ..., "total": weighted sum}, {LIF layer: detached mean
    rate})`; the rates are those of the batch's images (empty for an ANN-only network).
    `tokenizer` is a `transformers` tokenizer or a `TokenizerInfo`."""

    def __init__(self, model: ASHNet, cfg: LossConfig, tokenizer: Any) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg
        self.tokenizer_info = (
            tokenizer
            if isinstance(tokenizer, TokenizerInfo)
            else TokenizerInfo.from_tokenizer(tokenizer)
        )
        self.losses = enabled_losses(model, cfg)

    @property
    def batch_needs(self) -> frozenset[str]:
        """What the enabled losses read from a batch beyond images and captions
        (`Loss.batch_needs`; "anchors" for CMAL's associative mapping classification)."""
        return frozenset().union(*(loss.batch_needs for loss in self.losses.values()))

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        forward = ForwardPass(self.model, batch, self.cfg, self.tokenizer_info)
        values = {name: loss(forward) for name, loss in self.losses.items()}
        values["total"] = sum(self.cfg.weights[name] * values[name] for name in self.losses)
        rates = {name: rate.detach() for name, rate in forward.visual.spike_rates.items()}
        if forward.visual.spiking is not None:  # the training log's silent/saturated shares
            rates |= neuron_share_log(forward.visual.spiking.layers, forward.visual.features.mask)
        return values, rates


def neuron_share_log(layers: Mapping[str, Tensor], mask: Tensor | None) -> dict[str, Tensor]:
    """{`lif1_silent`: share of lif1's neurons that never fired on the batch's real rows,
    `lif1_saturated`: share that fired at every step, ...} (`silent_and_saturated`)."""
    shares = {}
    for name, spikes in layers.items():
        silent, saturated = silent_and_saturated(spikes, mask)
        shares[f"{name}_silent"] = torch.tensor(silent)
        shares[f"{name}_saturated"] = torch.tensor(saturated)
    return shares
