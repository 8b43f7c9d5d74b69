"""ASHNet: the hybrid artificial/spiking vision-language network (ASH-Nets, arXiv 2308.09455).

    image ─► visual concrete encoder (ANN) ─► ann tokens ─┬──────────────► adapter ─► tokens
                                                          └► semantic abstract encoder (SNN)
                                                             ─► spikes (T, B, n, out) ─┘
    text ids ─► text encoder ─► hidden ─► fusion encoder (cross-attends to tokens) ─► fused

The ITC image embedding is the projection of the mean of the joined tokens, so the spiking
tokens shape it (the [CLS] position alone would not see them: the adapter's norm is per
token). With `hybrid: false` the same network runs without the spiking encoder (the ANN-only
baseline): `spikes` is None, `spike_rates` empty, and there is no spiking parameter at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.config import ModelConfig
from ash_neuro.models.adapter import Adapter
from ash_neuro.models.fusion_encoder import FusionEncoder
from ash_neuro.models.heads import ContrastiveHead, MaskedLMHead, MatchingHead
from ash_neuro.models.semantic_abstract_encoder import SemanticAbstractEncoder
from ash_neuro.models.text_encoder import TextEncoder
from ash_neuro.models.visual_concrete_encoder import VisualConcreteEncoder


@dataclass
class VisualOutput:
    """What `ASHNet.encode_image` returns for a batch of B images.

    tokens       `(B, n', dim)` joined visual tokens (n' = 2n hybrid, n ANN-only)
    ann_tokens   `(B, n, dim)` the visual concrete encoder's tokens ([CLS] first)
    spikes       `(T, B, n, out_dim)` in {0, 1}, or None without the spiking encoder
    spike_rates  {`lif1`: 0-d mean rate, ...} per LIF layer (differentiable)
    image_embed  `(B, embed_dim)` ITC embedding, unit norm
    spike_embed  `(B, embed_dim)` STUA embedding of the pooled spike rates, unit norm, or None
    """

    tokens: Tensor
    ann_tokens: Tensor
    spikes: Tensor | None
    image_embed: Tensor
    spike_rates: dict[str, Tensor] = field(default_factory=dict)
    spike_embed: Tensor | None = None


@dataclass
class TextOutput:
    """`hidden` `(B, L, width)` text encoder states; `text_embed` `(B, embed_dim)` unit norm."""

    hidden: Tensor
    text_embed: Tensor


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
        self.visual_concrete_encoder = VisualConcreteEncoder(cfg.visual, image_size)
        self.semantic_abstract_encoder = (
            SemanticAbstractEncoder(cfg.spiking, vdim) if cfg.hybrid else None
        )
        self.adapter = Adapter(vdim, cfg.spiking.out_dim if cfg.hybrid else None)
        self.text_encoder = TextEncoder.build(cfg.text, vocab_size, pad_token_id)
        width = self.text_encoder.width
        self.fusion_encoder = FusionEncoder(cfg.fusion, width, vdim)
        self.itc = ContrastiveHead(vdim, width, cfg.embed_dim, temperature)
        self.itm = MatchingHead(width)
        self.mlm = MaskedLMHead(width, vocab_size)
        # STUA's projection of the pooled spike rates into the text embedding space
        self.spike_embed_proj = (
            nn.Linear(cfg.spiking.out_dim, cfg.embed_dim) if cfg.hybrid else None
        )

    @property
    def hybrid(self) -> bool:
        return self.semantic_abstract_encoder is not None

    def encode_image(self, image: Tensor) -> VisualOutput:
        """`(B, 3, H, W)` float in [0, 1] -> `VisualOutput`."""
        ann = self.visual_concrete_encoder(image)
        spikes, rates = None, {}
        if self.semantic_abstract_encoder is not None:
            spikes, rates = self.semantic_abstract_encoder(ann)
        return self.join_visual(ann, spikes, rates)

    def join_visual(
        self, ann: Tensor, spikes: Tensor | None, rates: dict[str, Tensor] | None = None
    ) -> VisualOutput:
        """ANN tokens `(B, n, dim)` and spikes `(T, B, n, out_dim)` (or None) -> `VisualOutput`:
        the adapter and embeddings after the spiking encoder, so that spikes computed outside
        PyTorch (the exported encoder on Lava) re-enter the network where Norse's would."""
        spike_embed = None
        if spikes is not None:
            pooled = spikes.mean(dim=(0, 2))
            spike_embed = F.normalize(self.spike_embed_proj(pooled), dim=-1)
        tokens = self.adapter(ann, spikes)
        return VisualOutput(
            tokens=tokens,
            ann_tokens=ann,
            spikes=spikes,
            image_embed=self.itc.embed_image(tokens.mean(dim=1)),
            spike_rates=rates or {},
            spike_embed=spike_embed,
        )

    def encode_text(self, ids: Tensor, mask: Tensor) -> TextOutput:
        """ids, mask `(B, L)` int64 -> `TextOutput`."""
        hidden = self.text_encoder(ids, mask)
        return TextOutput(hidden=hidden, text_embed=self.itc.embed_text(hidden[:, 0]))

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
