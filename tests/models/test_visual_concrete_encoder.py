"""The ANN visual concrete encoder: patches to continuous tokens."""

from __future__ import annotations

import pytest
import torch

from ash_neuro.config import VisualConfig
from ash_neuro.models.visual_concrete_encoder import VisualConcreteEncoder


def test_tokens_are_cls_plus_one_per_patch():
    encoder = VisualConcreteEncoder(VisualConfig(patch_size=4, dim=16, depth=1, heads=2), 16)
    features = encoder(torch.rand(3, 3, 16, 16))
    tokens = features.tokens
    assert tokens.shape == (3, 1 + 16, 16) and encoder.n_tokens == 17
    # the patch tokens follow [CLS] as a 4x4 grid, and every token is real
    assert (features.grid.start, features.grid.rows, features.grid.cols) == (1, 4, 4)
    assert features.grid.stop == 17 and features.mask is None
    # the embedded input and the block's output, before the final norm
    assert len(features.hidden_states) == 2
    torch.testing.assert_close(tokens, encoder.norm(features.hidden_states[-1]))
    # the final LayerNorm fixes the scale the spiking encoder reads as currents
    assert torch.allclose(tokens.pow(2).mean(-1), torch.ones(3, 17), atol=1e-3)


def test_patches_are_local_and_row_major():
    torch.manual_seed(0)
    encoder = VisualConcreteEncoder(VisualConfig(patch_size=8, dim=8, depth=1, heads=2), 16)
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    patch = encoder.patch_embed((image - 0.5) / 0.5).flatten(2).transpose(1, 2)
    patch[0, 1].sum().backward()  # patch 1 = top row, right column
    touched = image.grad[0].abs().sum(0) > 0
    assert touched[:8, 8:].all() and not touched[8:].any() and not touched[:, :8].any()


def test_wrong_image_size_is_refused():
    encoder = VisualConcreteEncoder(VisualConfig(patch_size=8, dim=8, depth=1, heads=2), 16)
    with pytest.raises(ValueError, match="16x16"):
        encoder(torch.rand(1, 3, 32, 32))
