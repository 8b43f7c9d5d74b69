"""VQA loss: binary cross-entropy against the soft answer scores (the standard VQA target).

Each answer is an independent yes/no with target min(#annotators agreeing / 3, 1); the loss
is summed over the answer vocabulary and averaged over the batch (Teney et al. 2018 scale the
mean by the number of answers, which is the same thing).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def vqa_soft_bce_loss(logits: Tensor, answer_scores: Tensor) -> Tensor:
    """logits, answer_scores `(B, A)` (scores in [0, 1]) -> 0-d loss."""
    if logits.shape != answer_scores.shape:
        raise ValueError(f"logits {tuple(logits.shape)} vs scores {tuple(answer_scores.shape)}")
    loss = F.binary_cross_entropy_with_logits(logits, answer_scores, reduction="sum")
    return loss / len(logits)
