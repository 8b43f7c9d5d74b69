"""Fusion encoder "albef": ALBEF's split of one BERT (Li et al. 2021, `models/xbert.py`): the
text encoder's lower layers stay text-only (what ITC reads) and its upper `model.fusion.depth`
layers become the fusion encoder, each given a cross-attention to the visual tokens between its
self-attention and its feed-forward block. With a pretrained text backbone the fusion layers
thus start from its upper layers (the cross-attention from scratch); with the scratch BERT the
split is the same architecture, trained from scratch.

Each fusion layer is BERT's post-norm layer with ALBEF's cross-attention inserted:

    x = LayerNorm(x + Dense(SelfAttention(x)))                      the BERT layer's own
    x = LayerNorm(x + Dense(CrossAttention(x, visual)))             new
    x = LayerNorm(x + Dense(act(Dense(x))))                         the BERT layer's own

The BERT layer's modules (`attention.self.query/key/value`, `attention.output`, `intermediate`,
`output`) are moved out of the text encoder and called through their plain sub-modules, with
attention computed here on `scaled_dot_product_attention` (a `BertLayer` with cross-attention
needs `is_decoder=True` in `transformers` 5, which makes its self-attention causal). Visual
tokens are projected to the text width first, as in "cross_attention".
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.config import FusionConfig
from ash_neuro.errors import ConfigError
from ash_neuro.models.fusion_encoder import check_pairing, cross_attend, merge_heads, split_heads
from ash_neuro.registry import FUSION_ENCODERS


def take_upper_layers(text_encoder: nn.Module, count: int) -> list[nn.Module]:
    """Remove the upper `count` layers of a BERT-style text encoder (`model.encoder.layer`) and
    return them; the encoder keeps (and runs) the lower ones."""
    layers = getattr(getattr(text_encoder.model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ConfigError(
            "model.fusion.kind=albef needs a BERT-style text encoder (layers in encoder.layer)"
        )
    if not 0 < count < len(layers):
        raise ConfigError(
            f"model.fusion.depth={count} must leave the text encoder's {len(layers)} layers at "
            "least one text-only layer (ALBEF: 6 of 12)"
        )
    keep = len(layers) - count
    upper = list(layers[keep:])
    text_encoder.model.encoder.layer = nn.ModuleList(layers[:keep])
    text_encoder.model.config.num_hidden_layers = keep
    return upper


class CrossAttention(nn.Module):
    """BERT-style cross-attention block: x `(B, L, width)` attends to visual `(B_img, n, width)`
    -> LayerNorm(x + Dense(attention)) `(B, L, width)`."""

    def __init__(self, config) -> None:
        super().__init__()
        from transformers.models.bert.modeling_bert import BertSelfOutput

        width = config.hidden_size
        self.heads = config.num_attention_heads
        self.dropout = config.attention_probs_dropout_prob
        self.query = nn.Linear(width, width)
        self.key_value = nn.Linear(width, 2 * width)
        self.output = BertSelfOutput(config)

    def forward(
        self, x: Tensor, visual: Tensor, visual_index: Tensor | None, attend: Tensor | None
    ) -> Tensor:
        kv = self.key_value(visual)
        if visual_index is not None:
            kv = kv.index_select(0, visual_index)
        k, v = (split_heads(t, self.heads) for t in kv.chunk(2, dim=-1))
        q = split_heads(self.query(x), self.heads)
        dropout = self.dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attend, dropout_p=dropout)
        return self.output(merge_heads(attended), x)


class ALBEFFusionLayer(nn.Module):
    """A BERT layer (its modules, moved here) with a cross-attention block inserted."""

    def __init__(self, layer: nn.Module, config) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.dropout = config.attention_probs_dropout_prob
        self.attention = layer.attention
        self.cross_attention = CrossAttention(config)
        self.intermediate = layer.intermediate
        self.output = layer.output

    def self_attention(self, x: Tensor, attend: Tensor) -> Tensor:
        own = self.attention.self
        q, k, v = (split_heads(proj(x), self.heads) for proj in (own.query, own.key, own.value))
        dropout = self.dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attend, dropout_p=dropout)
        return self.attention.output(merge_heads(attended), x)

    def forward(
        self,
        x: Tensor,
        attend: Tensor,
        visual: Tensor,
        visual_index: Tensor | None,
        visual_attend: Tensor | None = None,
    ) -> Tensor:
        x = self.self_attention(x, attend)
        x = self.cross_attention(x, visual, visual_index, visual_attend)
        return self.output(self.intermediate(x), x)


@FUSION_ENCODERS.register("albef")
class ALBEFFusion(nn.Module):
    """(text `(B, L, width)`, mask `(B, L)`, visual `(B_img, n, visual_width)`
    [, visual_index `(B,)`, visual_mask `(B_img, n)`]) -> fused `(B, L, width)`, through the
    text encoder's upper `cfg.depth` layers."""

    # built from the text encoder (`ASHNet` hands it over), whose upper layers it takes
    takes_text_layers = True

    def __init__(
        self, cfg: FusionConfig, width: int, visual_width: int, text_encoder: nn.Module
    ) -> None:
        super().__init__()
        config = text_encoder.model.config
        layers = take_upper_layers(text_encoder, cfg.depth)
        self.visual_proj = nn.Linear(visual_width, width)
        self.layers = nn.ModuleList(ALBEFFusionLayer(layer, config) for layer in layers)

    def forward(
        self,
        text_hidden: Tensor,
        text_mask: Tensor,
        visual_tokens: Tensor,
        visual_index: Tensor | None = None,
        visual_mask: Tensor | None = None,
    ) -> Tensor:
        check_pairing(text_hidden, visual_tokens, visual_index)
        visual = self.visual_proj(visual_tokens)
        return cross_attend(self.layers, text_hidden, text_mask, visual, visual_index, visual_mask)
