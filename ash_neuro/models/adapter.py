"""Adapter: re-joins the spiking encoder's output with the ANN tokens for the heads.

Spike trains `(T, batch, n, out_dim)` become rates (mean over the time axis, `(batch, n,
out_dim)`, multiples of 1/T), are projected to the visual width and appended to the projected
ANN tokens along the token axis; one LayerNorm over all of them puts both sides on one scale.
No type embedding marks a token's origin: the fusion encoder and heads see one set of visual
tokens and cannot tell which side a token came from. With no spiking encoder (`hybrid: false`)
only the ANN tokens pass (through the same projection and norm).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Adapter(nn.Module):
    """ANN tokens `(batch, n, dim)` [+ spikes `(T, batch, m, spike_dim)`] ->
    joined tokens `(batch, n [+ m], dim)`."""

    def __init__(self, dim: int, spike_dim: int | None) -> None:
        super().__init__()
        self.ann_proj = nn.Linear(dim, dim)
        self.spike_proj = nn.Linear(spike_dim, dim) if spike_dim is not None else None
        self.norm = nn.LayerNorm(dim)

    def forward(self, ann_tokens: Tensor, spikes: Tensor | None = None) -> Tensor:
        tokens = self.ann_proj(ann_tokens)
        if spikes is not None:
            if self.spike_proj is None:
                raise ValueError("this adapter was built without a spiking input")
            rates = spikes.mean(dim=0)
            tokens = torch.cat([tokens, self.spike_proj(rates)], dim=1)
        return self.norm(tokens)
