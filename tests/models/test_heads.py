"""Pre-training heads: ITC projections and temperature, ITM, MLM."""

from __future__ import annotations

import pytest
import torch

from ash_neuro.models.heads import ContrastiveHead, MaskedLMHead, MatchingHead


def test_itc_embeddings_are_unit_norm_in_the_shared_space():
    head = ContrastiveHead(image_dim=12, text_dim=16, embed_dim=8)
    image, text = head.embed_image(torch.randn(4, 12)), head.embed_text(torch.randn(4, 16))
    assert image.shape == text.shape == (4, 8)
    torch.testing.assert_close(image.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(4))


def test_temperature_is_learnable_and_clamped_to_albefs_range():
    head = ContrastiveHead(12, 16, 8, temperature=0.07)
    assert head.temp.requires_grad and head.temperature().item() == pytest.approx(0.07)
    with torch.no_grad():
        head.temp.fill_(5.0)
    assert head.temperature().item() == 0.5
    with torch.no_grad():
        head.temp.fill_(-1.0)
    assert head.temperature().item() == pytest.approx(0.001)
    with pytest.raises(ValueError, match="range"):
        ContrastiveHead(12, 16, 8, temperature=0.9)


def test_itm_and_mlm_output_shapes():
    assert MatchingHead(16)(torch.randn(5, 16)).shape == (5, 2)
    assert MaskedLMHead(16, 40)(torch.randn(2, 7, 16)).shape == (2, 7, 40)
