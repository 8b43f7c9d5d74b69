"""Uni-modal semantic encoding into a hypersphere (CMAL, arXiv 2410.12595).

CMAL embeds visual objects and text tokens into *separate* hypersphere spaces to learn
intra-modal features, instead of pulling both into one shared space by cross-modal contrast.
Here each space is a linear map of an encoder's features followed by L2 normalisation: unit
vectors `(..., dim)` on S^(dim-1). The visual space reads the visual object tokens (one per
panoptic instance, the spiking and continuous branches joined by the adapter), the text space
the text encoder's token states. The two maps are separate modules and no loss compares the
two spaces directly: each has its own intra-modal objective (`losses/hypersphere.py`), and
only the unified semantic encoder, which reads both, learns how they associate.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Hypersphere(nn.Module):
    """Features `(..., in_dim)` -> unit vectors `(..., dim)`: a linear map, then L2 norm."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)

    def forward(self, features: Tensor) -> Tensor:
        return F.normalize(self.proj(features), dim=-1)
