"""Adapter "ratio" (GSHN, arXiv 2501.19069): the spiking and continuous branches fused with a
learned ratio,

    V' = LayerNorm(r * E_SNN + F_GAT),

token by token: E_SNN is the spiking encoder's output rates (spikes `(T, B, n, out_dim)`
averaged over the time axis, multiples of 1/T) projected to the visual width, F_GAT the tokens
the adapter receives (the graph encoder's output; the visual encoder's tokens without one), and
r a learned scalar starting at `model.adapter.ratio_init`. Unlike "concat" the token count
stays n (one token per instance), so the fusion encoder reads K tokens per image. The closing
LayerNorm puts V' on the scale the fusion encoder expects, as "concat"'s does; r still sets how
much of the spiking branch enters each token. Without a spiking encoder V' = LayerNorm(F_GAT).

The tokens keep the visual features' layout: segment tokens (`TokenSegments`, grounding pools
them per box by pixel overlap) or a patch grid.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ash_neuro.config import AdapterConfig
from ash_neuro.models.outputs import SpikeTrains, TokenLayout, VisualFeatures
from ash_neuro.registry import ADAPTERS


@ADAPTERS.register("ratio")
class RatioAdapter(nn.Module):
    """Tokens `(B, n, dim)` [+ spikes `(T, B, n, spike_dim)`] -> V' `(B, n, dim)`."""

    token_sets = 1

    def __init__(self, cfg: AdapterConfig, dim: int, spike_dim: int | None) -> None:
        super().__init__()
        self.spike_proj = nn.Linear(spike_dim, dim) if spike_dim is not None else None
        self.ratio = nn.Parameter(torch.tensor(float(cfg.ratio_init)))
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, features: VisualFeatures, spiking: SpikeTrains | None = None
    ) -> tuple[Tensor, tuple[TokenLayout, ...]]:
        tokens = features.tokens
        if spiking is not None:
            if self.spike_proj is None:
                raise ValueError("this adapter was built without a spiking input")
            tokens = self.ratio * self.spike_proj(spiking.spikes.mean(dim=0)) + tokens
        return self.norm(tokens), features.layouts
