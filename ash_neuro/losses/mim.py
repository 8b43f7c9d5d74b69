"""MIM: masked image modelling loss, MAE-style (He et al. 2022, as ViCHA uses it).

The decoder (`models/masked_image_decoder.py`) predicts every patch's pixels from the visible
quarter; the loss is the mean squared error against the image's own pixels, per patch averaged
over its p * p * 3 values, then averaged over the masked patches only (a visible patch's
prediction does not count: copying what the encoder saw teaches nothing):

    L_mim = sum_{b, j} m_bj * mean_k (pred_bjk - target_bjk)^2 / sum_{b, j} m_bj

Targets (`loss.mim_norm_pix`, MAE's norm_pix_loss, on in ViCHA): each patch's pixels minus
their mean over the patch, divided by sqrt(their unbiased variance + 1e-6), so the decoder
predicts local structure rather than the patch's brightness. Pixels are the image's in [0, 1].
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ash_neuro.losses.base import Loss
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass

NORM_PIX_EPS = 1e-6  # MAE's


def patch_pixels(image: Tensor, patch_size: int) -> Tensor:
    """Images `(B, C, H, W)` -> `(B, P, p * p * C)`: patches row-major, each patch's pixels
    row-major with the channels innermost."""
    batch, channels, height, width = image.shape
    p = patch_size
    x = image.reshape(batch, channels, height // p, p, width // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(batch, (height // p) * (width // p), p * p * channels)


def normalise_patches(pixels: Tensor) -> Tensor:
    """`(B, P, k)` -> each patch's values minus their mean, over sqrt(unbiased variance + eps)."""
    mean = pixels.mean(dim=-1, keepdim=True)
    var = pixels.var(dim=-1, keepdim=True)
    return (pixels - mean) / (var + NORM_PIX_EPS).sqrt()


def masked_patch_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean over the masked patches (`mask` `(B, P)` bool) of each patch's mean squared error
    between `pred` and `target` `(B, P, k)`."""
    per_patch = (pred - target).pow(2).mean(dim=-1)
    weights = mask.to(per_patch.dtype)
    return (per_patch * weights).sum() / weights.sum().clamp(min=1)


@LOSSES.register("mim")
class MaskedImageModelling(Loss):
    needs = frozenset({"image_reconstruction"})
    component = "model.mim.kind"

    def __call__(self, forward: ForwardPass) -> Tensor:
        model, image = forward.model, forward.batch["image"]
        decoder = model.image_decoder
        ratio = self.cfg.mim_mask_ratio
        pred, mask = decoder.reconstruct(model.visual_concrete_encoder, image, ratio)
        target = patch_pixels(image, decoder.patch_size)
        if self.cfg.mim_norm_pix:
            target = normalise_patches(target)
        return masked_patch_loss(pred, target, mask)
