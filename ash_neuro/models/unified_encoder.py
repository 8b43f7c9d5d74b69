"""Fusion encoder "unified": CMAL's unified semantic encoder (arXiv 2410.12595), a
single-stream transformer over text and visual tokens together.

Where "cross_attention" (ALBEF) runs the text through self-attention and lets it read the image
through cross-attention, this encoder reads one sequence, the text tokens then the visual
tokens, with self-attention over all of it in every layer (ViLT/UNITER style), so visual tokens
read the text as much as the reverse. It is built as `Fusion(cfg, width, visual_width)` like
every fusion encoder and keeps their contract, `forward(text_hidden, text_mask, visual_tokens,
visual_index, visual_mask) -> (B, L, width)` at the text positions ([CLS] first, for ITM and
the tasks; MLM reads every position), so ITM, MLM and all five tasks run on it unchanged.

Its inputs are the two hypersphere spaces of CMAL's uni-modal encoding (`hypersphere.py`):
text token states and visual object tokens each through their own linear map and L2
normalisation (`text_sphere`, `visual_sphere`), the unit features the associative prompt layer
swaps. A feature enters the sequence through its own modality's input map (`from_text`,
`from_visual`), wherever it sits: a visual feature swapped into a text position is still read
as a visual feature, which is what lets the encoder associate it with the words around it.
Each position adds the embedding of its slot type (text or visual) and, for text slots, a
sinusoidal position code (Vaswani et al. 2017; the sequence position of a swapped-in feature
is known though the feature itself carries none). Visual slots are a set: no position.

`joint` returns both halves of the output, the text positions and the visual ones (the AMC
layer reads anchors on both sides). Pre-norm layers of self-attention and a 4x GELU
feed-forward on `scaled_dot_product_attention`; padded text and visual tokens are masked out
as keys. The AMC layer (`amc_head.py`) belongs to this encoder when `amc_entities` > 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.config import FusionConfig
from ash_neuro.models.amc_head import AssociativeMappingHead
from ash_neuro.models.fusion_encoder import check_pairing, merge_heads, split_heads
from ash_neuro.models.hypersphere import Hypersphere
from ash_neuro.registry import FUSION_ENCODERS

TEXT_SLOT, VISUAL_SLOT = 0, 1


def sinusoid(length: int, width: int, device: torch.device) -> Tensor:
    """`(length, width)` sinusoidal position codes (sin on even, cos on odd channels)."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(
        torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / width)
    )
    codes = torch.zeros(length, width, device=device)
    codes[:, 0::2] = torch.sin(position * rate)
    codes[:, 1::2] = torch.cos(position * rate)[:, : width // 2]
    return codes


class UnifiedLayer(nn.Module):
    """One pre-norm layer: self-attention over the whole sequence, feed-forward."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attention_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.ffn_norm = nn.LayerNorm(width)
        self.ffn = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: Tensor, attend: Tensor) -> Tensor:
        """x `(B, S, width)`, attend `(B, 1, 1, S)` bool (True: a real token) -> `(B, S, width)`."""
        q, k, v = self.qkv(self.attention_norm(x)).chunk(3, dim=-1)
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        x = x + self.out(merge_heads(F.scaled_dot_product_attention(q, k, v, attend)))
        return x + self.ffn(self.ffn_norm(x))


@FUSION_ENCODERS.register("unified")
class UnifiedSemanticEncoder(nn.Module):
    """(text `(B, L, width)`, mask `(B, L)`, visual `(B_img, n, visual_width)`
    [, visual_index `(B,)`, visual_mask `(B_img, n)`]) -> fused text positions `(B, L, width)`."""

    def __init__(self, cfg: FusionConfig, width: int, visual_width: int) -> None:
        super().__init__()
        if width % cfg.heads:
            raise ValueError(f"fusion heads {cfg.heads} must divide the text width {width}")
        self.text_sphere = Hypersphere(width, cfg.sphere_dim)
        self.visual_sphere = Hypersphere(visual_width, cfg.sphere_dim)
        self.from_text = nn.Linear(cfg.sphere_dim, width)
        self.from_visual = nn.Linear(cfg.sphere_dim, width)
        self.slot_type = nn.Embedding(2, width)
        nn.init.normal_(self.slot_type.weight, std=0.02)  # BERT's init: content dominates
        self.layers = nn.ModuleList(UnifiedLayer(width, cfg.heads) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(width)
        self.amc = AssociativeMappingHead(width, cfg.amc_entities) if cfg.amc_entities else None
        self.width = width

    @property
    def outputs(self) -> frozenset[str]:
        """What this encoder adds to `ASHNet.outputs`: the hypersphere features, and the AMC
        layer when it has one."""
        return frozenset({"spheres", "amc"} if self.amc is not None else {"spheres"})

    def embed(self, features: Tensor, from_visual: Tensor, slot: int) -> Tensor:
        """Unit features `(B, S, sphere_dim)`, each through its own modality's input map
        (`from_visual` `(B, S)` bool: a visual feature), plus the slot type (`TEXT_SLOT`,
        `VISUAL_SLOT`) -> `(B, S, width)`."""
        # a unit vector's components are about 1/sqrt(dim): scaled by sqrt(dim) they enter at
        # unit variance, the scale of the position codes (as Vaswani et al. scale embeddings),
        # else the positions and slot types drown the content at initialisation
        scaled = features * math.sqrt(features.shape[-1])
        mapped = torch.where(
            from_visual.unsqueeze(-1), self.from_visual(scaled), self.from_text(scaled)
        )
        return mapped + self.slot_type.weight[slot]

    def joint(
        self,
        text: Tensor,
        text_mask: Tensor,
        visual: Tensor,
        visual_mask: Tensor | None = None,
        text_swapped: Tensor | None = None,
        visual_swapped: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The single-stream pass over unit text `(B, L, E)` and visual `(B, n, E)` features
        (`text_swapped` `(B, L)`: text positions holding visual features; `visual_swapped`
        `(B, n)`: visual positions holding text features) -> (text positions `(B, L, width)`,
        visual positions `(B, n, width)`)."""
        length = text.shape[1]
        if text_swapped is None:
            text_swapped = torch.zeros(text.shape[:2], dtype=torch.bool, device=text.device)
        if visual_swapped is None:
            visual_swapped = torch.zeros(visual.shape[:2], dtype=torch.bool, device=text.device)
        x_text = self.embed(text, text_swapped, TEXT_SLOT)
        x_text = x_text + sinusoid(length, self.width, text.device).to(x_text.dtype)
        x = torch.cat([x_text, self.embed(visual, ~visual_swapped, VISUAL_SLOT)], dim=1)
        real_visual = (
            torch.ones(visual.shape[:2], dtype=torch.bool, device=visual.device)
            if visual_mask is None
            else visual_mask.bool()
        )
        attend = torch.cat([text_mask != 0, real_visual], dim=1)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, attend)
        x = self.norm(x)
        return x[:, :length], x[:, length:]

    def forward(
        self,
        text_hidden: Tensor,
        text_mask: Tensor,
        visual_tokens: Tensor,
        visual_index: Tensor | None = None,
        visual_mask: Tensor | None = None,
    ) -> Tensor:
        check_pairing(text_hidden, visual_tokens, visual_index)
        visual = self.visual_sphere(visual_tokens)  # once per image, however many texts read it
        if visual_index is not None:
            visual = visual.index_select(0, visual_index)
            if visual_mask is not None:
                visual_mask = visual_mask.index_select(0, visual_index)
        return self.joint(self.text_sphere(text_hidden), text_mask, visual, visual_mask)[0]
