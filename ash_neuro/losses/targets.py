"""Which pairs in a batch are positives, and cross-entropy against several positives.

Shared by the contrastive losses: a batch may hold several captions of one image, and a pair
of the same image is never a negative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def positive_mask(
    batch: int, image_ids: Tensor | None = None, device: torch.device | None = None
) -> Tensor:
    """`(batch, batch)` bool: True where items i and j show the same image (the diagonal at
    least; with `image_ids` `(batch,)`, every pair with equal ids)."""
    if image_ids is None:
        return torch.eye(batch, dtype=torch.bool, device=device)
    if image_ids.shape != (batch,):
        raise ValueError(f"image_ids must have shape ({batch},), got {tuple(image_ids.shape)}")
    return image_ids.view(-1, 1) == image_ids.view(1, -1)


def soft_cross_entropy(logits: Tensor, positives: Tensor) -> Tensor:
    """Mean over rows of the cross-entropy of `logits` `(rows, cols)` against the uniform
    distribution over each row's positives `(rows, cols)` bool (ALBEF's soft ITC targets)."""
    targets = positives.to(logits.dtype)
    targets = targets / targets.sum(dim=1, keepdim=True)
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
