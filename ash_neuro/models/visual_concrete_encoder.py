"""Visual concrete encoder: the ANN half of an ASH-Net (ViT-style, continuous latents).

Registered as the visual encoder "vit". Image `(batch, 3, H, W)` in [0, 1] -> `VisualFeatures`
with tokens `(batch, 1 + (H/p)(W/p), dim)`: a learned [CLS]
token followed by one token per non-overlapping `p x p` patch (row-major), with learned
positional embeddings, `depth` pre-norm transformer blocks and a final LayerNorm (pre-norm
blocks leave the residual stream unnormalised; the spiking encoder reads these tokens as input
currents, so their scale must be fixed). The hidden states are the embedded patches and each
block's output, before the final norm.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ash_neuro.config import VisualConfig
from ash_neuro.models.outputs import TokenGrid, VisualFeatures
from ash_neuro.registry import VISUAL_ENCODERS

# The image is moved from [0, 1] to [-1, 1]; a fixed affine map, not data statistics, since the
# procedural world's colour statistics are not ImageNet's.
PIXEL_MEAN = 0.5
PIXEL_STD = 0.5


@VISUAL_ENCODERS.register("vit")
class VisualConcreteEncoder(nn.Module):
    """ViT-style patch encoder producing continuous tokens `(batch, 1 + n_patches, dim)`."""

    def __init__(self, cfg: VisualConfig, image_size: int) -> None:
        super().__init__()
        if image_size % cfg.patch_size:
            raise ValueError(f"patch_size {cfg.patch_size} must divide image_size {image_size}")
        self.image_size = image_size
        self.patch_size = cfg.patch_size
        self.dim = cfg.dim
        side = image_size // cfg.patch_size
        self.n_patches = side * side
        self.grid = TokenGrid(start=1, rows=side, cols=side)
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

    def embed(self, image: Tensor) -> Tensor:
        """`(batch, 3, H, W)` in [0, 1] -> the embedded input `(batch, 1 + n_patches, dim)`:
        [CLS] then the patches, positions added (masked image modelling keeps a subset of its
        patch rows before `run_blocks`)."""
        if image.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"expected images of {self.image_size}x{self.image_size}, got "
                f"{tuple(image.shape[-2:])}"
            )
        x = self.patch_embed((image - PIXEL_MEAN) / PIXEL_STD)
        x = x.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], dim=1) + self.pos_embed

    def run_blocks(self, x: Tensor) -> list[Tensor]:
        """Embedded tokens `(batch, n, dim)` -> `[x, block 1's output, ...]` (before the final
        norm), what nn.TransformerEncoder computes, keeping each output."""
        hidden = [x]
        for block in self.blocks.layers:
            hidden.append(block(hidden[-1]))
        return hidden

    def forward(self, image: Tensor, instance_map: Tensor | None = None) -> VisualFeatures:
        """`(batch, 3, H, W)` in [0, 1] -> tokens `(batch, 1 + n_patches, dim)` and hidden
        states (patches need no instance map)."""
        hidden = self.run_blocks(self.embed(image))
        return VisualFeatures(self.norm(hidden[-1]), tuple(hidden), self.grid)
