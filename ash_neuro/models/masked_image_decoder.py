"""Masked image modelling, MAE-style (He et al. 2022; ViCHA's image-side objective): the visual
encoder reads a random quarter of an image's patches and a small decoder predicts the pixels of
every patch; the `mim` loss (`ash_neuro/losses/mim.py`) scores the masked ones.

Registered as the image decoder "mae" (and "none"). For B images of P patches and mask ratio r
(`loss.mim_mask_ratio`, 0.75 as in MAE and ViCHA):

    keep    floor(P (1 - r)) patches per image (MAE's count), drawn independently per image
            (`random_patch_mask`); the other P - floor(P (1 - r)) are masked
    encode  the visual encoder's embedded [CLS] and kept patches (positions added before the
            drop, so each kept patch knows where it lies) through its blocks and final norm
    decode  a linear map to the decoder width, a learned mask token at every dropped patch,
            fixed 2-D sine-cosine positions (MAE's), `decoder_depth` pre-norm transformer
            blocks, a LayerNorm and a linear map to the p * p * 3 pixels of each patch

ViCHA's decoder is 2 blocks at its ViT-B's width 768 beside 12 encoder blocks; ours keeps the
visual width (128) and 1 block beside 2 (`model.mim.decoder_depth`), the smallest decoder that
still attends across patches. The decoder exists for pre-training only: no task and no
deployment reads it. The masked pass runs the patch encoder only (ViCHA's unimodal MAE), so
neither the spiking encoder nor the fusion sees masked images.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ash_neuro.config import MIMConfig, VisualConfig
from ash_neuro.errors import ConfigError
from ash_neuro.models.visual_concrete_encoder import VisualConcreteEncoder
from ash_neuro.registry import IMAGE_DECODERS


def kept_patches(patches: int, mask_ratio: float) -> int:
    """How many of `patches` MAE keeps visible at `mask_ratio`: floor(patches * (1 - ratio)),
    at least one."""
    return max(1, int(patches * (1 - mask_ratio)))


def random_patch_mask(
    batch: int, patches: int, mask_ratio: float, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """(mask `(batch, patches)` bool, True on masked patches; keep `(batch, kept)` int64, the
    visible patches of each image in ascending order): each image keeps `kept_patches` patches
    chosen uniformly at random (the first of a random permutation), independently per image."""
    kept = kept_patches(patches, mask_ratio)
    order = torch.rand(batch, patches, device=device).argsort(dim=1)
    keep = order[:, :kept].sort(dim=1).values
    mask = torch.ones(batch, patches, dtype=torch.bool, device=device)
    mask.scatter_(1, keep, False)
    return mask, keep


def sincos_positions(side: int, dim: int) -> Tensor:
    """Fixed 2-D sine-cosine positions of a `side x side` grid, row-major, `(side * side, dim)`:
    the first half of the channels encodes the column, the second the row, each as sines then
    cosines of the position times frequencies 10000^(-k / (dim / 4)), k < dim / 4 (MAE's)."""
    if dim % 4:
        raise ValueError(f"sine-cosine positions need a width divisible by 4, got {dim}")
    quarter = dim // 4
    frequencies = 10000.0 ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    grid = torch.arange(side, dtype=torch.float64)
    rows, cols = torch.meshgrid(grid, grid, indexing="ij")

    def encode(position: Tensor) -> Tensor:
        angles = position.reshape(-1, 1) * frequencies
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([encode(cols), encode(rows)], dim=1).float()


def patch_encoder(visual_encoder: nn.Module) -> VisualConcreteEncoder:
    """The ViT patch encoder of a visual encoder: "vit" itself, or the one a pooling encoder
    ("panoptic_instances") runs first."""
    for candidate in (visual_encoder, getattr(visual_encoder, "patches", None)):
        if isinstance(candidate, VisualConcreteEncoder):
            return candidate
    raise ConfigError(
        f"model.mim.kind=mae needs a ViT patch encoder; {type(visual_encoder).__name__} has none"
    )


@IMAGE_DECODERS.register("mae")
class MaskedImageDecoder(nn.Module):
    """The visible patches' encoding `(B, 1 + kept, dim)` -> every patch's predicted pixels
    `(B, P, p * p * 3)` (`reconstruct` runs the encoder on a random mask first)."""

    def __init__(self, cfg: MIMConfig, visual: VisualConfig, image_size: int) -> None:
        super().__init__()
        dim, self.patch_size = visual.dim, visual.patch_size
        side = image_size // visual.patch_size
        self.patches = side * side
        self.embed = nn.Linear(dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.mask_token, std=0.02)
        # [CLS] keeps a zero position, as in MAE; fixed, so not part of the weights
        positions = torch.cat([torch.zeros(1, dim), sincos_positions(side, dim)])
        self.register_buffer("positions", positions.unsqueeze(0), persistent=False)
        layer = nn.TransformerEncoderLayer(
            dim,
            visual.heads,
            dim_feedforward=int(dim * visual.mlp_ratio),
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, cfg.decoder_depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.pixels = nn.Linear(dim, visual.patch_size**2 * 3)

    def forward(self, encoded: Tensor, keep: Tensor) -> Tensor:
        """`encoded` `(B, 1 + kept, dim)` ([CLS] first, then the kept patches in `keep`'s order),
        `keep` `(B, kept)` -> predicted pixels `(B, P, p * p * 3)` (in the layout of
        `losses.mim.patch_pixels`)."""
        x = self.embed(encoded)
        batch, _, dim = x.shape
        grid = self.mask_token.expand(batch, self.patches, dim)
        grid = grid.scatter(1, keep.unsqueeze(-1).expand(-1, -1, dim), x[:, 1:])
        x = torch.cat([x[:, :1], grid], dim=1) + self.positions
        return self.pixels(self.norm(self.blocks(x)))[:, 1:]

    def reconstruct(
        self, visual_encoder: nn.Module, image: Tensor, mask_ratio: float
    ) -> tuple[Tensor, Tensor]:
        """Images `(B, 3, H, W)` in [0, 1] -> (predicted pixels `(B, P, p * p * 3)`, mask
        `(B, P)` bool, True on the patches the encoder did not see)."""
        vit = patch_encoder(visual_encoder)
        tokens = vit.embed(image)
        mask, keep = random_patch_mask(len(image), self.patches, mask_ratio, image.device)
        index = (keep + 1).unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
        visible = torch.cat([tokens[:, :1], tokens.gather(1, index)], dim=1)
        encoded = vit.norm(vit.run_blocks(visible)[-1])
        return self(encoded, keep), mask


@IMAGE_DECODERS.register("none")
def no_image_decoder(cfg: MIMConfig, visual: VisualConfig, image_size: int) -> None:
    """No masked image modelling."""
    return None
