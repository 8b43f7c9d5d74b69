"""Visual concrete encoder: the ANN half of an ASH-Net (ViT-style, continuous latents).

Image `(batch, 3, H, W)` in [0, 1] -> tokens `(batch, 1 + (H/p)(W/p), dim)`: a learned [CLS]
token followed by one token per non-overlapping `p x p` patch (row-major), with learned
positional embeddings, `depth` pre-norm transformer blocks and a final LayerNorm (pre-norm
blocks leave the residual stream unnormalised; the spiking encoder reads these tokens as input
currents, so their scale must be fixed).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ash_neuro.config import VisualConfig

# The image is moved from [0, 1] to [-1, 1]; a fixed affine map, not data statistics, since the
# procedural world's colour statistics are not ImageNet's.
PIXEL_MEAN = 0.5
PIXEL_STD = 0.5


class VisualConcreteEncoder(nn.Module):
    """ViT-style patch encoder producing continuous tokens `(batch, 1 + n_patches, dim)`."""

    def __init__(self, cfg: VisualConfig, image_size: int) -> None:
        super().__init__()
        if image_size % cfg.patch_size:
            raise ValueError(f"patch_size {cfg.patch_size} must divide image_size {image_size}")
        self.image_size = image_size
        self.patch_size = cfg.patch_size
        self.dim = cfg.dim
        self.n_patches = (image_size // cfg.patch_size) ** 2
        # a strided convolution is the per-patch linear map of ViT, without an unfold copy
        self.patch_embed = nn.Conv2d(3, cfg.dim, cfg.patch_size, stride=cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.n_patches, cfg.dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        layer = nn.TransformerEncoderLayer(
            cfg.dim,
            cfg.heads,
            dim_feedforward=int(cfg.dim * cfg.mlp_ratio),
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)

    @property
    def n_tokens(self) -> int:
        """Tokens per image, [CLS] included."""
        return 1 + self.n_patches

    def forward(self, image: Tensor) -> Tensor:
        """`(batch, 3, H, W)` in [0, 1] -> `(batch, 1 + n_patches, dim)`."""
        if image.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"expected images of {self.image_size}x{self.image_size}, got "
                f"{tuple(image.shape[-2:])}"
            )
        x = self.patch_embed((image - PIXEL_MEAN) / PIXEL_STD)
        x = x.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        return self.norm(self.blocks(x))
