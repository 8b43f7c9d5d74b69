"""MLM: BERT masking of the caption and the cross-entropy of the fused tokens' predictions.

Of the real (non-special, non-padding) tokens, each is chosen with probability `mask_prob`; a
chosen token becomes [MASK] 80% of the time, a random non-special token 10%, and stays itself
10% (BERT). Labels are the original ids at chosen positions and -100 elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ash_neuro.losses.base import Loss
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TokenizerInfo:
    """What masking needs to know of the tokenizer."""

    vocab_size: int
    pad_id: int
    mask_id: int
    special_ids: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> TokenizerInfo:
        """From a `transformers` tokenizer with [PAD] and [MASK] tokens."""
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs [PAD] and [MASK] tokens for MLM")
        return cls(
            vocab_size=len(tokenizer),
            pad_id=tokenizer.pad_token_id,
            mask_id=tokenizer.mask_token_id,
            special_ids=tuple(sorted(set(tokenizer.all_special_ids))),
        )


def mask_tokens(
    ids: Tensor,
    attention_mask: Tensor,
    info: TokenizerInfo,
    mask_prob: float,
) -> tuple[Tensor, Tensor]:
    """ids, attention_mask `(B, L)` -> (masked ids `(B, L)`, labels `(B, L)` with -100 at
    positions not to predict). Specials ([CLS], [SEP], [PAD], ...) and padding are never
    chosen. Random draws come from torch's global RNG (seed it for a replayable run)."""
    device = ids.device
    specials = torch.tensor(info.special_ids, device=device)
    candidates = (attention_mask != 0) & ~torch.isin(ids, specials)
    chosen = candidates & (torch.rand(ids.shape, device=device) < mask_prob)
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    roll = torch.rand(ids.shape, device=device)
    to_mask = chosen & (roll < 0.8)
    to_random = chosen & (roll >= 0.8) & (roll < 0.9)
    vocabulary = torch.ones(info.vocab_size, dtype=torch.bool, device=device)
    vocabulary[specials] = False
    ordinary = vocabulary.nonzero().squeeze(1)
    picks = torch.randint(len(ordinary), ids.shape, device=device)
    masked = torch.where(to_mask, torch.full_like(ids, info.mask_id), ids)
    masked = torch.where(to_random, ordinary[picks], masked)
    return masked, labels


def mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of `logits` `(..., V)` against `labels` `(...)` over positions whose
    label is not -100; zero (with a gradient path) when there are none."""
    logits = logits.reshape(-1, logits.shape[-1])
    labels = labels.reshape(-1)
    count = (labels != IGNORE_INDEX).sum()
    total = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / count.clamp_min(1)


@LOSSES.register("mlm")
class MaskedLanguageModelling(Loss):
    """Mask the captions, encode and fuse them with their images, predict the originals."""

    needs = frozenset({"fused", "mlm"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        model, batch = forward.model, forward.batch
        mask = batch["text_mask"]
        masked, labels = mask_tokens(batch["text_ids"], mask, forward.tokenizer, self.cfg.mask_prob)
        hidden = model.encode_text(masked, mask).hidden
        fused = model.fuse(hidden, mask, forward.visual.tokens, visual_mask=forward.visual.mask)
        chosen = labels != IGNORE_INDEX
        return mlm_loss(model.mlm(fused[chosen]), labels[chosen])
