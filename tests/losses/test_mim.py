"""Masked image modelling: the mask ratio is MAE's count per image, the loss counts masked
patches only, targets are per-patch normalised pixels, and the encoder never sees a masked
patch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ash_neuro.config import MIMConfig, VisualConfig
from ash_neuro.losses.mim import masked_patch_loss, normalise_patches, patch_pixels
from ash_neuro.models.masked_image_decoder import (
    MaskedImageDecoder,
    random_patch_mask,
    sincos_positions,
)
from ash_neuro.models.visual_concrete_encoder import VisualConcreteEncoder


@pytest.mark.parametrize(
    ("patches", "ratio", "masked"), [(64, 0.75, 48), (16, 0.6, 10), (9, 0.5, 5)]
)
def test_each_image_masks_its_share_of_patches(patches, ratio, masked):
    torch.manual_seed(0)
    mask, keep = random_patch_mask(32, patches, ratio)
    assert mask.shape == (32, patches) and mask.dtype == torch.bool
    assert (mask.sum(dim=1) == masked).all()  # MAE keeps floor(P (1 - ratio))
    assert keep.shape == (32, patches - masked)
    assert (keep.diff(dim=1) > 0).all()  # ascending, no repeats
    assert not mask.gather(1, keep).any()  # the kept patches are exactly the unmasked ones
    assert len({tuple(row.tolist()) for row in keep}) > 1  # drawn per image


def test_over_many_draws_every_patch_is_masked_at_the_ratio():
    torch.manual_seed(1)
    mask, _ = random_patch_mask(4000, 16, 0.75)
    share = mask.float().mean(dim=0)
    assert torch.allclose(share, torch.full((16,), 0.75), atol=0.03)  # no patch favoured


def test_the_loss_counts_masked_patches_only():
    # one image, two patches of two values: pred 0, target [1, 1] and [3, 3]; only patch 0 masked
    pred = torch.zeros(1, 2, 2)
    target = torch.tensor([[[1.0, 1.0], [3.0, 3.0]]])
    mask = torch.tensor([[True, False]])
    assert masked_patch_loss(pred, target, mask).item() == pytest.approx(1.0)
    assert masked_patch_loss(pred, target, ~mask).item() == pytest.approx(9.0)


def test_the_loss_against_numpy_and_blind_to_visible_patches():
    generator = torch.Generator().manual_seed(2)
    pred, target = torch.randn(3, 10, 12, generator=generator), torch.randn(3, 10, 12)
    mask = torch.rand(3, 10, generator=generator) < 0.7
    p, t, m = pred.numpy(), target.numpy(), mask.numpy()
    oracle = ((p - t) ** 2).mean(axis=-1)[m].mean()
    assert masked_patch_loss(pred, target, mask).item() == pytest.approx(float(oracle), rel=1e-5)
    changed = pred.clone()
    changed[~mask] += 100.0
    assert masked_patch_loss(changed, target, mask).item() == pytest.approx(float(oracle), rel=1e-5)
    changed[mask] += 1.0
    assert masked_patch_loss(changed, target, mask).item() > oracle + 0.5


def test_patch_pixels_layout_against_numpy():
    image = torch.rand(2, 3, 8, 12)
    ours = patch_pixels(image, 4).numpy()
    x = image.numpy()
    for b in range(2):
        for row in range(2):
            for col in range(3):
                block = x[b, :, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4]  # (3, 4, 4)
                expected = block.transpose(1, 2, 0).reshape(-1)  # pixels row-major, channel last
                np.testing.assert_array_equal(ours[b, row * 3 + col], expected)


def test_normalised_targets_against_numpy():
    pixels = torch.rand(2, 5, 48)
    x = pixels.numpy().astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, ddof=1, keepdims=True)  # MAE's torch.var: unbiased
    expected = (x - mean) / np.sqrt(var + 1e-6)
    np.testing.assert_allclose(normalise_patches(pixels).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_sincos_positions_by_hand():
    pos = sincos_positions(side=3, dim=8)  # quarter 2: frequencies 1 and 1/100
    assert pos.shape == (9, 8)
    row, col = 1, 2  # token 5
    expected = [
        np.sin(col),
        np.sin(col / 100),
        np.cos(col),
        np.cos(col / 100),
        np.sin(row),
        np.sin(row / 100),
        np.cos(row),
        np.cos(row / 100),
    ]
    np.testing.assert_allclose(pos[row * 3 + col].numpy(), expected, rtol=1e-6, atol=1e-7)


def small_encoder_and_decoder(size: int = 16, patch: int = 4):
    torch.manual_seed(0)
    visual = VisualConfig(patch_size=patch, dim=16, depth=2, heads=2)
    return VisualConcreteEncoder(visual, size), MaskedImageDecoder(MIMConfig("mae"), visual, size)


def test_reconstruction_shapes_and_ratio():
    encoder, decoder = small_encoder_and_decoder()
    pred, mask = decoder.reconstruct(encoder, torch.rand(5, 3, 16, 16), 0.75)
    assert pred.shape == (5, 16, 4 * 4 * 3)
    assert (mask.sum(dim=1) == 12).all()


def test_the_encoder_sees_the_visible_patches_only():
    encoder, decoder = small_encoder_and_decoder()
    image = torch.rand(1, 3, 16, 16)
    torch.manual_seed(7)
    pred, mask = decoder.reconstruct(encoder, image, 0.75)
    masked = int(mask[0].nonzero()[0])
    visible = int((~mask[0]).nonzero()[0])

    def with_patch_changed(index: int) -> torch.Tensor:
        changed = image.clone()
        row, col = divmod(index, 4)
        changed[..., 4 * row : 4 * row + 4, 4 * col : 4 * col + 4] = (
            1 - changed[..., 4 * row : 4 * row + 4, 4 * col : 4 * col + 4]
        )
        torch.manual_seed(7)  # the same mask
        again, same_mask = decoder.reconstruct(encoder, changed, 0.75)
        assert torch.equal(same_mask, mask)
        return again

    torch.testing.assert_close(with_patch_changed(masked), pred)
    assert not torch.allclose(with_patch_changed(visible), pred)
