"""The unified semantic encoder (CMAL): one self-attention stream over text and visual tokens,
read from two hypersphere spaces, with the fusion encoders' contract."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from ash_neuro.config import FusionConfig, config_from_dict
from ash_neuro.models.factory import build_model
from ash_neuro.models.unified_encoder import UnifiedSemanticEncoder, sinusoid
from tests.models.conftest import TINY, make_batch


@pytest.fixture
def unified() -> UnifiedSemanticEncoder:
    torch.manual_seed(0)
    cfg = FusionConfig(kind="unified", depth=2, heads=2, sphere_dim=8, amc_entities=5)
    return UnifiedSemanticEncoder(cfg, width=16, visual_width=24)


def test_the_contract_of_a_fusion_encoder(unified):
    text, mask = torch.randn(3, 7, 16), torch.ones(3, 7, dtype=torch.long)
    assert unified(text, mask, torch.randn(3, 11, 24)).shape == (3, 7, 16)
    visual = torch.randn(2, 9, 24)
    index = torch.tensor([1, 0, 1])
    torch.testing.assert_close(
        unified(text, mask, visual, index), unified(text, mask, visual[index])
    )
    with pytest.raises(ValueError, match="visual_index"):
        unified(text, mask, visual)


def test_its_inputs_are_unit_features_of_two_separate_spheres(unified):
    text, visual = torch.randn(2, 5, 16), torch.randn(2, 4, 24)
    for sphere, x in ((unified.text_sphere, text), (unified.visual_sphere, visual)):
        norms = sphere(x).norm(dim=-1)
        torch.testing.assert_close(norms, torch.ones_like(norms))
    assert unified.text_sphere.proj.weight.shape == (8, 16)
    assert unified.visual_sphere.proj.weight.shape == (8, 24)


def test_text_and_visual_tokens_read_each_other(unified):
    """Single stream: the text positions change with the image and the visual positions with
    the text (cross-attention gives only the first)."""
    t, v = unified.text_sphere(torch.randn(2, 5, 16)), unified.visual_sphere(torch.randn(2, 4, 24))
    mask = torch.ones(2, 5, dtype=torch.long)
    text_out, visual_out = unified.joint(t, mask, v)
    other_visual = unified.joint(t.flip(0), mask, v)[1]
    assert not torch.allclose(other_visual, visual_out)
    assert not torch.allclose(unified.joint(t, mask, v.flip(0))[0], text_out)


def test_padded_tokens_of_either_side_change_no_real_output(unified):
    text, visual = torch.randn(2, 6, 16), torch.randn(2, 5, 24)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6])
    visual_mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    fused = unified(text, mask, visual, visual_mask=visual_mask)
    noisy_text, noisy_visual = text.clone(), visual.clone()
    noisy_text[0, 4:] = 30 * torch.randn(2, 16)
    noisy_visual[1, 3:] = 30 * torch.randn(2, 24)
    again = unified(noisy_text, mask, noisy_visual, visual_mask=visual_mask)
    torch.testing.assert_close(again[0, :4], fused[0, :4])
    torch.testing.assert_close(again[1], fused[1])


def test_a_swapped_feature_enters_through_its_own_modalitys_map(unified):
    """A visual feature at a text position is read by `from_visual`: the same result as
    putting `from_visual(f) - from_text(f)` into the text slot's input by hand."""
    t = unified.text_sphere(torch.randn(1, 4, 16))
    v = unified.visual_sphere(torch.randn(1, 3, 24))
    mask = torch.ones(1, 4, dtype=torch.long)
    swapped = torch.tensor([[False, True, False, False]])
    hybrid = t.clone()
    hybrid[0, 1] = v[0, 0]
    got = unified.embed(hybrid, swapped, 0)
    scale = math.sqrt(hybrid.shape[-1])  # unit features enter at unit variance
    by_hand = unified.from_text(hybrid * scale) + unified.slot_type.weight[0]
    by_hand[0, 1] = unified.from_visual(v[0, 0] * scale) + unified.slot_type.weight[0]
    torch.testing.assert_close(got, by_hand)
    plain = unified.joint(hybrid, mask, v)[0]
    assert not torch.allclose(unified.joint(hybrid, mask, v, text_swapped=swapped)[0], plain)


def test_sinusoidal_positions():
    codes = sinusoid(3, 4, torch.device("cpu"))
    # channel pairs (sin, cos) at rates 1 and 1e4 ** (-2 / 4) = 0.01
    expected = torch.tensor(
        [
            [0.0, 1.0, 0.0, 1.0],
            [0.841471, 0.540302, 0.0099998, 0.99995],
            [0.909297, -0.416147, 0.0199987, 0.9998],
        ]  # fmt: skip
    )
    torch.testing.assert_close(codes, expected, atol=1e-5, rtol=0)


def test_the_backbone_declares_what_the_unified_encoder_adds():
    cfg = config_from_dict(TINY)
    fusion = dataclasses.replace(cfg.model.fusion, kind="unified", amc_entities=15)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, fusion=fusion))
    model = build_model(cfg, 40)
    assert {"spheres", "amc"} <= model.outputs
    assert model.fusion_encoder.amc.entity.out_features == 15
    batch = make_batch()
    text = model.encode_text(batch["text_ids"], batch["text_mask"])
    visual = model.encode_image(batch["image"])
    fused = model.fuse(text.hidden, batch["text_mask"], visual.tokens)
    assert fused.shape == text.hidden.shape
    no_amc = dataclasses.replace(fusion, amc_entities=0)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, fusion=no_amc))
    assert "amc" not in build_model(cfg, 40).outputs
