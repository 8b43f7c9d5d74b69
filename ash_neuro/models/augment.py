"""Cheap, differentiable image augmentation for the second view of the spike contrastive loss.

A per-image random resized crop (`affine_grid` + bilinear `grid_sample`, aspect ratio kept) and
mild brightness/contrast/saturation jitter, all batched torch ops on the input's device, drawn
from torch's global RNG so that a seeded or resumed run replays them.

No horizontal flip: captions say "left of"/"right of", and a flipped view would be a positive
for the wrong description. No hue jitter either: captions name colours. Crops keep at least
`min_scale` of each side so that most objects of a small scene stay in view.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R BT.601 luma weights, for the grey image that saturation jitter blends towards
LUMA = (0.299, 0.587, 0.114)


def augment_view(image: Tensor, min_scale: float = 0.7, jitter: float = 0.2) -> Tensor:
    """`(B, 3, H, W)` in [0, 1] -> an augmented view of the same shape, in [0, 1]."""
    return augment_pair(image, None, min_scale, jitter)[0]


def augment_pair(
    image: Tensor,
    instance_map: Tensor | None,
    min_scale: float = 0.7,
    jitter: float = 0.2,
) -> tuple[Tensor, Tensor | None]:
    """`augment_view` of `image` and, when given, its panoptic instance map `(B, H, W)` under the
    same crop (nearest-neighbour: ids stay ids; the same random draws as `augment_view`)."""
    batch = image.shape[0]

    def uniform(lo: float, hi: float) -> Tensor:
        u = torch.rand(batch, device=image.device, dtype=image.dtype)
        return lo + (hi - lo) * u

    scale = uniform(min_scale, 1.0)
    theta = torch.zeros(batch, 2, 3, device=image.device, dtype=image.dtype)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = uniform(-1.0, 1.0) * (1 - scale)
    theta[:, 1, 2] = uniform(-1.0, 1.0) * (1 - scale)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    view = F.grid_sample(image, grid, mode="bilinear", align_corners=False)
    cropped_map = None
    if instance_map is not None:
        ids = instance_map.unsqueeze(1).to(grid.dtype)
        cropped = F.grid_sample(ids, grid, mode="nearest", align_corners=False)
        cropped_map = cropped.squeeze(1).round().to(instance_map.dtype)

    def factor() -> Tensor:
        return uniform(1 - jitter, 1 + jitter).view(batch, 1, 1, 1)

    view = view * factor()
    mean = view.mean(dim=(1, 2, 3), keepdim=True)
    view = (view - mean) * factor() + mean
    luma = torch.tensor(LUMA, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    grey = (view * luma).sum(dim=1, keepdim=True)
    view = (view - grey) * factor() + grey
    return view.clamp(0.0, 1.0), cropped_map
