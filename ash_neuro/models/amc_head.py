"""The associative mapping classification (AMC) layer of CMAL (arXiv 2410.12595).

At every anchor position of the hybrid prompt (`associative_prompt.py`) the unified semantic
encoder's output goes through one shared transform (dense, GELU, LayerNorm, as BERT's MLM head)
and two classifiers: which entity the position stands for (the data's anchor vocabulary, 15
for the world's shapes and colours) and whether the feature swapped into it belongs there
(index 1) or is a wrong one (index 0). The loss is `losses/amc.py`.
"""

from __future__ import annotations

from torch import Tensor, nn


class AssociativeMappingHead(nn.Module):
    """Fused states `(..., width)` -> (entity logits `(..., entities)`, belongs logits
    `(..., 2)`)."""

    def __init__(self, width: int, entities: int) -> None:
        super().__init__()
        if entities < 2:
            raise ValueError(f"the AMC layer needs at least 2 entities, got {entities}")
        self.transform = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width))
        self.entity = nn.Linear(width, entities)
        self.belongs = nn.Linear(width, 2)

    def forward(self, states: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.transform(states)
        return self.entity(hidden), self.belongs(hidden)
