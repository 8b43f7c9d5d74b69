"""Fusion encoder "cross_attention": text self-attention plus cross-attention to the joined
visual tokens (ALBEF). Fusion encoders are registered in `registry.FUSION_ENCODERS` and built as
`Fusion(cfg, width, visual_width)`.

Text hidden states `(B, L, width)` with their mask `(B, L)` attend to visual tokens
`(B_img, n, visual_width)` -> fused states `(B, L, width)`; position 0 ([CLS]) feeds the ITM
head, every position the MLM head. Visual tokens are first projected to the text width. Text
b reads image `visual_index[b]` (default: image b), so that ITM's 3B pairs, which all show
the batch's B images, project each image and compute its keys and values once rather than
once per pair (on 2 CPU cores this halves the fusion's cost).

Each layer is pre-norm: bidirectional self-attention over the text (padding masked out),
cross-attention to the visual tokens, a 4x GELU feed-forward; one LayerNorm closes the stack.
The layers are written here, on `scaled_dot_product_attention`, rather than taken from
`transformers` (transformers 5 refuses cross-attention in a `BertLayer` unless
`is_decoder=True`, which makes its self-attention causal, while ALBEF's fusion reads the text
bidirectionally) or from `torch.nn.TransformerDecoderLayer` (whose cross-attention recomputes
keys and values for every pair). Padded visual tokens (absent instances of GSHN's instance
tokens) are masked out of the cross-attention by `visual_mask`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.config import FusionConfig
from ash_neuro.registry import FUSION_ENCODERS


def split_heads(x: Tensor, heads: int) -> Tensor:
    """`(B, n, width)` -> `(B, heads, n, width / heads)`."""
    batch, n, width = x.shape
    return x.view(batch, n, heads, width // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """`(B, heads, n, head_dim)` -> `(B, n, heads * head_dim)`."""
    batch, heads, n, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, n, heads * head_dim)


class FusionLayer(nn.Module):
    """One pre-norm layer: self-attention, cross-attention to images, feed-forward."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.self_norm = nn.LayerNorm(width)
        self.self_qkv = nn.Linear(width, 3 * width)
        self.self_out = nn.Linear(width, width)
        self.cross_norm = nn.LayerNorm(width)
        self.cross_q = nn.Linear(width, width)
        self.cross_kv = nn.Linear(width, 2 * width)
        self.cross_out = nn.Linear(width, width)
        self.ffn_norm = nn.LayerNorm(width)
        self.ffn = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(
        self,
        x: Tensor,
        attend: Tensor,
        visual: Tensor,
        visual_index: Tensor | None,
        visual_attend: Tensor | None = None,
    ) -> Tensor:
        """x `(B, L, width)`, attend `(B, 1, 1, L)` bool (True = a real token), visual
        `(B_img, n, width)`, visual_index `(B,)` or None, visual_attend `(B, 1, 1, n)` bool or
        None (every visual token real) -> `(B, L, width)`."""
        q, k, v = self.self_qkv(self.self_norm(x)).chunk(3, dim=-1)
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        x = x + self.self_out(merge_heads(F.scaled_dot_product_attention(q, k, v, attend)))

        kv = self.cross_kv(visual)
        if visual_index is not None:
            kv = kv.index_select(0, visual_index)
        k, v = (split_heads(t, self.heads) for t in kv.chunk(2, dim=-1))
        q = split_heads(self.cross_q(self.cross_norm(x)), self.heads)
        x = x + self.cross_out(merge_heads(F.scaled_dot_product_attention(q, k, v, visual_attend)))
        return x + self.ffn(self.ffn_norm(x))


def check_pairing(text_hidden: Tensor, visual_tokens: Tensor, visual_index: Tensor | None) -> None:
    """Texts read their own image unless `visual_index` says which image each reads."""
    if visual_index is None and len(visual_tokens) != len(text_hidden):
        raise ValueError(
            f"{len(text_hidden)} texts and {len(visual_tokens)} images: pass visual_index"
        )


def cross_attend(
    layers: nn.ModuleList,
    text_hidden: Tensor,
    text_mask: Tensor,
    visual: Tensor,
    visual_index: Tensor | None,
    visual_mask: Tensor | None,
) -> Tensor:
    """Run text through `layers` of self- plus cross-attention to the (projected) visual tokens
    `visual`, padded text and visual positions masked; shared by every cross-attention fusion."""
    attend = (text_mask != 0)[:, None, None, :]
    visual_attend = None
    if visual_mask is not None:
        if visual_index is not None:
            visual_mask = visual_mask.index_select(0, visual_index)
        visual_attend = visual_mask[:, None, None, :]
    x = text_hidden
    for layer in layers:
        x = layer(x, attend, visual, visual_index, visual_attend)
    return x


@FUSION_ENCODERS.register("cross_attention")
class FusionEncoder(nn.Module):
    """(text `(B, L, width)`, mask `(B, L)`, visual `(B_img, n, visual_width)`
    [, visual_index `(B,)`, visual_mask `(B_img, n)`]) -> fused `(B, L, width)`."""

    def __init__(self, cfg: FusionConfig, width: int, visual_width: int) -> None:
        super().__init__()
        if width % cfg.heads:
            raise ValueError(f"fusion heads {cfg.heads} must divide the text width {width}")
        self.visual_proj = nn.Linear(visual_width, width)
        self.layers = nn.ModuleList(FusionLayer(width, cfg.heads) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(width)

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
        x = cross_attend(self.layers, text_hidden, text_mask, visual, visual_index, visual_mask)
        return self.norm(x)
