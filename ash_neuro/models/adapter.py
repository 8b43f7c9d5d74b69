"""Adapters: how the spiking encoder's output re-joins the ANN tokens for the heads.

An adapter is registered in `registry.ADAPTERS` and built as `Adapter(cfg, dim, spike_dim)`
(`spike_dim` None without a spiking encoder); it maps `(VisualFeatures, SpikeTrains | None)`
to the joined tokens `(batch, n', dim)` and the `TokenLayout`s (patch grids or segments) that
locate them in the image (one per token set; grounding pools each set per box), the joined
tokens being whole blocks of the feature rows. `token_sets` says how many layouts it yields,
so that a head can be sized before any forward pass.

"concat" (ASH-Nets): spike trains `(T, batch, n, out_dim)` become rates (mean over the time
axis, `(batch, n, out_dim)`, multiples of 1/T), are projected to the visual width and appended
to the projected ANN tokens along the token axis; one LayerNorm over all of them puts both
sides on one scale. No type embedding marks a token's origin: the fusion encoder and heads see
one set of visual tokens and cannot tell which side a token came from. With no spiking encoder
only the ANN tokens pass (through the same projection and norm).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from ash_neuro.config import AdapterConfig
from ash_neuro.models.outputs import SpikeTrains, TokenLayout, VisualFeatures
from ash_neuro.registry import ADAPTERS


@ADAPTERS.register("concat")
class ConcatAdapter(nn.Module):
    """ANN tokens `(batch, n, dim)` [+ spikes `(T, batch, n, spike_dim)`] -> joined tokens
    `(batch, n [+ n], dim)`."""

    def __init__(self, cfg: AdapterConfig, dim: int, spike_dim: int | None) -> None:
        super().__init__()
        self.ann_proj = nn.Linear(dim, dim)
        self.spike_proj = nn.Linear(spike_dim, dim) if spike_dim is not None else None
        self.norm = nn.LayerNorm(dim)
        self.token_sets = 1 if spike_dim is None else 2

    def forward(
        self, features: VisualFeatures, spiking: SpikeTrains | None = None
    ) -> tuple[Tensor, tuple[TokenLayout, ...]]:
        tokens = self.ann_proj(features.tokens)
        grids = features.layouts
        if spiking is not None:
            if self.spike_proj is None:
                raise ValueError("this adapter was built without a spiking input")
            rates = spiking.spikes.mean(dim=0)
            n = tokens.shape[1]
            tokens = torch.cat([tokens, self.spike_proj(rates)], dim=1)
            # the spike rows are the same token rows, so they cover the image the same way
            grids += tuple(dataclasses.replace(g, start=g.start + n) for g in grids)
        return self.norm(tokens), grids
