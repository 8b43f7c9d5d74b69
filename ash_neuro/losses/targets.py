"""Which pairs in a batch are positives, cross-entropy against several positives, and the
batch of every process.

Shared by the contrastive losses: a batch may hold several captions of one image, and a pair
of the same image is never a negative. Under torchrun, ITC and STUA contrast each process's
rows against the rows of every process (`gather_batch`, as ALBEF and open_clip do), so a run of
N processes computes the same loss as one process with the N batches together.
"""

from __future__ import annotations

import torch
import torch.distributed as torch_dist
import torch.distributed.nn.functional as dist_functional
import torch.nn.functional as F
from torch import Tensor


def distributed() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized()


def gather_batch(rows: Tensor) -> tuple[Tensor, int]:
    """(`rows` `(B, ...)` of every process concatenated in rank order, the offset of this
    process's rows in it). Gradients flow back to each process's own rows (the autograd
    all_gather; with DistributedDataParallel's averaging the gradient is that of one process
    holding every row). Every process must pass the same B (the loader drops last batches). A
    single process: `rows`, 0."""
    if not distributed():
        return rows, 0
    parts = dist_functional.all_gather(rows) if rows.is_floating_point() else _gather(rows)
    return torch.cat(parts), torch_dist.get_rank() * rows.shape[0]


def _gather(rows: Tensor) -> list[Tensor]:
    parts = [torch.empty_like(rows) for _ in range(torch_dist.get_world_size())]
    torch_dist.all_gather(parts, rows.contiguous())
    return parts


def gathered_positives(image_ids: Tensor | None, batch: int, device: torch.device) -> tuple:
    """(this process's ids `(B,)`, every process's ids `(N*B,)`): `image_ids` when given, else
    each row's position in the gathered batch (each row its own image)."""
    own = image_ids
    if own is None:
        offset = torch_dist.get_rank() * batch if distributed() else 0
        own = torch.arange(batch, device=device) + offset
    return own, gather_batch(own)[0]


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
