"""The fusion encoder: bidirectional text self-attention plus cross-attention to images."""

from __future__ import annotations

import pytest
import torch

from ash_neuro.config import FusionConfig
from ash_neuro.models.fusion_encoder import FusionEncoder


@pytest.fixture
def fusion() -> FusionEncoder:
    torch.manual_seed(0)
    return FusionEncoder(FusionConfig(depth=2, heads=2), width=16, visual_width=24)


def test_shape_follows_the_text_and_visual_width_is_projected(fusion):
    text, mask = torch.randn(3, 7, 16), torch.ones(3, 7, dtype=torch.long)
    assert fusion(text, mask, torch.randn(3, 11, 24)).shape == (3, 7, 16)


def test_padded_positions_do_not_affect_real_tokens(fusion):
    text, visual = torch.randn(2, 6, 16), torch.randn(2, 9, 24)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    changed = text.clone()
    changed[0, 4:] = torch.randn(2, 16) * 10
    a, b = fusion(text, mask, visual), fusion(changed, mask, visual)
    torch.testing.assert_close(a[0, :4], b[0, :4])


def test_self_attention_is_bidirectional(fusion):
    text, visual = torch.randn(1, 5, 16), torch.randn(1, 9, 24)
    mask = torch.ones(1, 5, dtype=torch.long)
    changed = text.clone()
    changed[0, -1] = torch.randn(16)
    # a change at the last token reaches [CLS]: no causal mask
    assert not torch.allclose(fusion(text, mask, visual)[0, 0], fusion(changed, mask, visual)[0, 0])


def test_output_depends_on_the_image(fusion):
    text, mask = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.long)
    visual = torch.randn(2, 9, 24)
    assert not torch.allclose(fusion(text, mask, visual), fusion(text, mask, visual.flip(0)))


def test_visual_index_equals_gathering_the_images(fusion):
    text, mask = torch.randn(5, 6, 16), torch.ones(5, 6, dtype=torch.long)
    visual = torch.randn(3, 9, 24)
    index = torch.tensor([2, 0, 0, 1, 2])
    torch.testing.assert_close(fusion(text, mask, visual, index), fusion(text, mask, visual[index]))
    with pytest.raises(ValueError, match="visual_index"):
        fusion(text, mask, visual)


def test_masked_visual_tokens_are_not_attended(fusion):
    """Padded visual tokens (GSHN's absent instances): changing them changes nothing, and the
    result equals the fusion over the real tokens alone; `visual_index` picks each text's mask."""
    text, mask = torch.randn(3, 5, 16), torch.ones(3, 5, dtype=torch.long)
    visual = torch.randn(2, 6, 24)
    visual_mask = torch.tensor([[True] * 6, [True, True, True, False, False, False]])
    index = torch.tensor([1, 0, 1])
    fused = fusion(text, mask, visual, index, visual_mask)
    noisy = visual.clone()
    noisy[1, 3:] = 50 * torch.randn(3, 24)
    torch.testing.assert_close(fusion(text, mask, noisy, index, visual_mask), fused)
    alone = fusion(text[[0]], mask[[0]], visual[[1], :3])
    torch.testing.assert_close(fused[[0]], alone)
    assert not torch.allclose(fusion(text, mask, noisy, index), fused)  # unmasked: it would
