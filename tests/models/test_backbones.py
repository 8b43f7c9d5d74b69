"""Freezing and the learning rate of pretrained parts (`train.freeze`,
`train.pretrained_lr_scale`)."""

from __future__ import annotations

import dataclasses

import pytest

from ash_neuro.config import config_from_dict
from ash_neuro.errors import ConfigError
from ash_neuro.loop import build_optimizer
from ash_neuro.models.backbones import freeze, pretrained_lr_scales
from ash_neuro.models.factory import build_model
from tests.models.conftest import TINY, VOCAB


def tiny(**train):
    model = {**TINY["model"], "text": {**TINY["model"]["text"], "depth": 2}}
    return config_from_dict({**TINY, "model": model, "train": train})


def trainable(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_freezing_the_text_encoder_stops_exactly_its_parameters():
    model = build_model(tiny(), VOCAB)
    text = sum(p.numel() for p in model.text_encoder.parameters())
    others = trainable(model) - text
    assert freeze(model, ["text"]) == text
    assert trainable(model.text_encoder) == 0 and trainable(model) == others


def test_freezing_lower_layers_keeps_the_upper_ones_trainable():
    model = build_model(tiny(), VOCAB)
    bert = model.text_encoder.model
    freeze(model, ["text:1"])
    assert trainable(bert.embeddings) == 0 and trainable(bert.encoder.layer[0]) == 0
    upper = bert.encoder.layer[1]
    assert trainable(upper) == sum(p.numel() for p in upper.parameters()) > 0


def test_freezing_more_layers_than_there_are_is_one_line():
    with pytest.raises(ConfigError, match="has 2 layers"):
        freeze(build_model(tiny(), VOCAB), ["text:3"])


@pytest.mark.parametrize("part", ["txt", "text:x", "visual:-1"])
def test_a_freeze_entry_must_name_a_part(part):
    with pytest.raises(ConfigError, match="train.freeze"):
        tiny(freeze=[part])


def test_pretrained_parts_train_at_their_scaled_learning_rate():
    cfg = tiny(lr=1e-3, pretrained_lr_scale=0.1)
    model = build_model(cfg, VOCAB)
    # the scale reads the names only: mark the text encoder as a pretrained one
    text = dataclasses.replace(cfg.model.text, pretrained="minilm")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, text=text))
    assert pretrained_lr_scales(cfg) == {"text_encoder.": 0.1}
    assert pretrained_lr_scales(cfg, "backbone.") == {"backbone.text_encoder.": 0.1}
    optimizer = build_optimizer(model, cfg, pretrained_lr_scales(cfg))
    text_ids = {id(p) for p in model.text_encoder.parameters()}
    for group in optimizer.param_groups:
        in_text = {id(p) in text_ids for p in group["params"]}
        assert len(in_text) == 1  # a group is all text encoder or none of it
        assert group["lr"] == pytest.approx(1e-4 if in_text.pop() else 1e-3)
