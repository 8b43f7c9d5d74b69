"""ASHNet: the hybrid artificial/spiking vision-language network (ASH-Nets, arXiv 2308.09455),
assembled from the components the config names (`kind:` in each `model` sub-section).

    image ─► visual concrete encoder (ANN) ─► VisualFeatures ─┬──────────────► adapter ─► tokens
                                                              └► semantic abstract encoder (SNN)
                                                                 ─► SpikeTrains ─┘
    text ids ─► text encoder ─► TextFeatures ─► fusion encoder (cross-attends to tokens) ─► fused

The ITC image embedding is the projection of the mean of the joined tokens, so the spiking
tokens shape it (the [CLS] position alone would not see them: the adapter's norm is per
token). With `model.spiking.kind: none` the same network runs without the spiking encoder (the
ANN-only baseline): `spiking` is None and there is no spiking parameter at all.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.config import ModelConfig
from ash_neuro.models.heads import ContrastiveHead, MaskedLMHead, MatchingHead
from ash_neuro.models.outputs import SpikeTrains, TextOutput, VisualFeatures, VisualOutput
from ash_neuro.models.text_encoder import TextEncoder
from ash_neuro.registry import ADAPTERS, FUSION_ENCODERS, SPIKING_ENCODERS, VISUAL_ENCODERS

# What a network can produce for the losses (`Loss.needs`): every network the first set, a
# network with a spiking encoder the second too.
OUTPUTS = frozenset({"visual", "text", "image_embed", "text_embed", "fused", "itm", "mlm"})
SPIKING_OUTPUTS = frozenset({"spikes", "spike_rates", "spike_embed"})


class ASHNet(nn.Module):
    """The full pre-training network: encoders, adapter, fusion and heads on one backbone."""

    def __init__(
        self,
        cfg: ModelConfig,
        vocab_size: int,
        pad_token_id: int = 0,
        image_size: int = 64,
        temperature: float = 0.07,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        vdim = cfg.visual.dim
        self.visual_concrete_encoder = VISUAL_ENCODERS.get(cfg.visual.kind)(cfg.visual, image_size)
        self.semantic_abstract_encoder = SPIKING_ENCODERS.get(cfg.spiking.kind)(cfg.spiking, vdim)
        spike_dim = None if self.semantic_abstract_encoder is None else cfg.spiking.out_dim
        self.adapter = ADAPTERS.get(cfg.adapter.kind)(cfg.adapter, vdim, spike_dim)
        self.text_encoder = TextEncoder.build(cfg.text, vocab_size, pad_token_id)
        width = self.text_encoder.width
        self.fusion_encoder = FUSION_ENCODERS.get(cfg.fusion.kind)(cfg.fusion, width, vdim)
        self.itc = ContrastiveHead(vdim, width, cfg.embed_dim, temperature)
        self.itm = MatchingHead(width)
        self.mlm = MaskedLMHead(width, vocab_size)
        # STUA's projection of the pooled spike rates into the text embedding space
        self.spike_embed_proj = None if spike_dim is None else nn.Linear(spike_dim, cfg.embed_dim)

    @property
    def hybrid(self) -> bool:
        """Whether the network has a spiking encoder."""
        return self.semantic_abstract_encoder is not None

    @property
    def outputs(self) -> frozenset[str]:
        """The named outputs this network produces (what a loss may declare it `needs`)."""
        return OUTPUTS | SPIKING_OUTPUTS if self.hybrid else OUTPUTS

    def encode_image(self, image: Tensor, instance_map: Tensor | None = None) -> VisualOutput:
        """`(B, 3, H, W)` float in [0, 1] (and, for encoders that read it, the panoptic
        instance map `(B, H, W)`) -> `VisualOutput`."""
        features = self.visual_concrete_encoder(image, instance_map)
        spiking = None
        if self.semantic_abstract_encoder is not None:
            spiking = self.semantic_abstract_encoder(features.tokens)
        return self.join_visual(features, spiking)

    def join_visual(self, features: VisualFeatures, spiking: SpikeTrains | None) -> VisualOutput:
        """The adapter and embeddings after the spiking encoder, so that spikes computed
        outside PyTorch (the exported encoder on Lava) re-enter the network where Norse's
        would."""
        spike_embed = None
        if spiking is not None:
            pooled = spiking.spikes.mean(dim=(0, 2))
            spike_embed = F.normalize(self.spike_embed_proj(pooled), dim=-1)
        tokens, grids = self.adapter(features, spiking)
        return VisualOutput(
            tokens=tokens,
            grids=grids,
            features=features,
            spiking=spiking,
            image_embed=self.itc.embed_image(tokens.mean(dim=1)),
            spike_embed=spike_embed,
        )

    def encode_text(self, ids: Tensor, mask: Tensor) -> TextOutput:
        """ids, mask `(B, L)` int64 -> `TextOutput`."""
        features = self.text_encoder(ids, mask)
        return TextOutput(features, self.itc.embed_text(features.hidden[:, 0]))

    def fuse(
        self,
        text_hidden: Tensor,
        text_mask: Tensor,
        visual_tokens: Tensor,
        visual_index: Tensor | None = None,
    ) -> Tensor:
        """`(B, L, width)`, `(B, L)`, `(B_img, n', dim)` -> fused `(B, L, width)`; text b reads
        image `visual_index[b]` (default: image b, B_img = B)."""
        return self.fusion_encoder(text_hidden, text_mask, visual_tokens, visual_index)
