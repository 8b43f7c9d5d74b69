"""Downstream task heads on the shared backbone's fused states.

A classifier maps fused [CLS] features to class logits (VQA answers, VE's three labels, and
NLVR's true/false from the two images' [CLS] states side by side, as ALBEF and ViCHA do).
Grounding scores each candidate box of the image against the referring expression: a box is
described by its coordinates and by the visual tokens it covers (pooled with the patch/box
overlap as weights), and scored together with the expression's fused [CLS].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class ClassifierHead(nn.Module):
    """`(batch, in_dim)` -> logits `(batch, n_classes)`: dense, GELU, LayerNorm, dense."""

    def __init__(self, in_dim: int, n_classes: int, hidden: int) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.GELU(), nn.LayerNorm(hidden), nn.Linear(hidden, n_classes)
        )

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)


def box_features(boxes: Tensor) -> Tensor:
    """Boxes `(..., 4)` x0 y0 x1 y1 in [0, 1] -> `(..., 7)`: corners, centre, area."""
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    size = boxes[..., 2:] - boxes[..., :2]
    return torch.cat([boxes, centre, size[..., :1] * size[..., 1:]], dim=-1)


def pool_regions(patch_tokens: Tensor, boxes: Tensor) -> Tensor:
    """Mean of the patch tokens inside each box, weighted by the patch area the box covers.

    patch_tokens `(B, g*g, dim)` in row-major grid order over the image, boxes `(B, K, 4)`
    x0 y0 x1 y1 normalised to [0, 1] -> `(B, K, dim)`. Area weights (not patch centres) keep a
    box smaller than a patch from pooling nothing; an empty (padding) box pools zeros.
    """
    batch, n, _ = patch_tokens.shape
    grid = math.isqrt(n)
    if grid * grid != n:
        raise ValueError(f"{n} patch tokens do not form a square grid")
    edges = torch.linspace(0, 1, grid + 1, device=boxes.device, dtype=boxes.dtype)

    def overlap(lo: Tensor, hi: Tensor) -> Tensor:  # (B, K) -> (B, K, grid)
        return (
            torch.minimum(hi[..., None], edges[1:]) - torch.maximum(lo[..., None], edges[:-1])
        ).clamp(min=0)

    ox, oy = overlap(boxes[..., 0], boxes[..., 2]), overlap(boxes[..., 1], boxes[..., 3])
    weights = (oy[..., :, None] * ox[..., None, :]).flatten(2)  # (B, K, grid*grid) rows = y
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp(min=1e-12)
    return weights @ patch_tokens


def pool_segments(segment_tokens: Tensor, segments: Tensor, boxes: Tensor) -> Tensor:
    """Mean of the segment tokens weighted by how much of each box each segment covers.

    segment_tokens `(B, n, dim)`, segments `(B, H, W)` int64 (token of each pixel, -1 none),
    boxes `(B, K, 4)` x0 y0 x1 y1 normalised to [0, 1] -> `(B, K, dim)`: token j's weight for a
    box is the box's area (in pixels, fractional at its edges) covered by segment j; an empty
    (padding) box pools zeros. With one segment per patch this is `pool_regions`.
    """
    batch, height, width = segments.shape
    count = segment_tokens.shape[1]

    def overlap(lo: Tensor, hi: Tensor, size: int) -> Tensor:  # (B, K) -> (B, K, size)
        edges = torch.linspace(0, 1, size + 1, device=boxes.device, dtype=boxes.dtype)
        return (
            torch.minimum(hi[..., None], edges[1:]) - torch.maximum(lo[..., None], edges[:-1])
        ).clamp(min=0)

    ox = overlap(boxes[..., 0], boxes[..., 2], width)
    oy = overlap(boxes[..., 1], boxes[..., 3], height)
    pixels = (oy[..., :, None] * ox[..., None, :]).flatten(2)  # (B, K, H*W)
    onehot = torch.nn.functional.one_hot(segments.clamp(min=0), count).to(boxes.dtype)
    onehot = (onehot * (segments >= 0).unsqueeze(-1)).view(batch, height * width, count)
    weights = pixels @ onehot  # (B, K, n)
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp(min=1e-12)
    return weights @ segment_tokens


class BoxScoringHead(nn.Module):
    """(fused [CLS] `(B, width)`, region features `(B, K, region_dim)`, boxes `(B, K, 4)`,
    mask `(B, K)` bool) -> candidate logits `(B, K)`, -inf where the mask is False."""

    def __init__(self, width: int, region_dim: int) -> None:
        super().__init__()
        self.candidate = nn.Sequential(
            nn.Linear(region_dim + 7, width), nn.GELU(), nn.LayerNorm(width)
        )
        self.text = nn.Linear(width, width)
        self.score = nn.Sequential(nn.Linear(2 * width, width), nn.GELU(), nn.Linear(width, 1))

    def forward(self, fused_cls: Tensor, regions: Tensor, boxes: Tensor, mask: Tensor) -> Tensor:
        candidates = self.candidate(torch.cat([regions, box_features(boxes)], dim=-1))
        text = self.text(fused_cls)[:, None, :].expand_as(candidates)
        logits = self.score(torch.cat([candidates * text, candidates + text], dim=-1))
        return logits.squeeze(-1).masked_fill(~mask, float("-inf"))
