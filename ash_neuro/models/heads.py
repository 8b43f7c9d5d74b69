"""Pre-training heads on the shared backbone: ITC projections, ITM and MLM.

Losses live in `ash_neuro.losses`; these modules only map features to what the losses take.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ALBEF clamps its learnable softmax temperature to this range.
TEMPERATURE_RANGE = (0.001, 0.5)


class ContrastiveHead(nn.Module):
    """ITC: image and text features -> L2-normalised embeddings `(batch, embed_dim)`, plus the
    learnable temperature."""

    def __init__(
        self, image_dim: int, text_dim: int, embed_dim: int, temperature: float = 0.07
    ) -> None:
        super().__init__()
        lo, hi = TEMPERATURE_RANGE
        if not lo <= temperature <= hi:
            raise ValueError(f"temperature {temperature} outside ALBEF's range [{lo}, {hi}]")
        self.image_proj = nn.Linear(image_dim, embed_dim)
        self.text_proj = nn.Linear(text_dim, embed_dim)
        self.temp = nn.Parameter(torch.tensor(float(temperature)))

    def embed_image(self, pooled: Tensor) -> Tensor:
        """`(batch, image_dim)` -> `(batch, embed_dim)`, unit norm."""
        return F.normalize(self.image_proj(pooled), dim=-1)

    def embed_text(self, cls: Tensor) -> Tensor:
        """`(batch, text_dim)` -> `(batch, embed_dim)`, unit norm."""
        return F.normalize(self.text_proj(cls), dim=-1)

    def temperature(self) -> Tensor:
        """The temperature clamped to ALBEF's range (0-d; no gradient outside it)."""
        return self.temp.clamp(*TEMPERATURE_RANGE)


class MatchingHead(nn.Module):
    """ITM: fused [CLS] `(batch, width)` -> logits `(batch, 2)` (index 1 = matching pair)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(width, 2)

    def forward(self, fused_cls: Tensor) -> Tensor:
        return self.classifier(fused_cls)


class MaskedLMHead(nn.Module):
    """MLM: fused tokens `(..., width)` -> vocabulary logits `(..., vocab_size)` (BERT's head:
    dense, GELU, LayerNorm, decoder)."""

    def __init__(self, width: int, vocab_size: int) -> None:
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width))
        self.decoder = nn.Linear(width, vocab_size)

    def forward(self, fused: Tensor) -> Tensor:
        return self.decoder(self.transform(fused))
